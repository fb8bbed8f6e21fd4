#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# COMPRESS=DEFLATE (RFC 4978) in imap-serve: python3's zlib on the client side
# (tests/lib/imap_deflate.py), on "imap-serve -A" over pipes and under tls-server over TLS.
# What must hold: every reply arrives without the client sending anything more (a burst of 100
# pipelined commands, IDLE and its EXISTS, with sync and with partial flushes, inflated input
# larger than the server's read buffer), literals both ways, and a client's bad stream or
# compression bomb costs nothing but its session. mutt (Debian 12's, built with zlib) is the
# real client that speaks it.

load lib/common
load lib/smtp
load lib/tls
load lib/imap

setup() {
	MD=$BATS_TEST_TMPDIR/md
	mkdir -p "$MD/new" "$MD/cur" "$MD/tmp"
	IMAP_LOG=$BATS_TEST_TMPDIR/imap.log
	: >"$IMAP_LOG"
	local i
	for i in 1 2 3; do
		printf 'From: a@example.test\nSubject: message %s\n\nbody of message %s\n' "$i" "$i" |
			SENDER=a@example.test RECIPIENT=alice@example.test maildir-deliver "$MD" ||
			fail "maildir-deliver failed"
	done
}

teardown() {
	if [ -S "${TMUX_SOCK:-}" ]; then
		tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
	fi
	stop_server
	common_teardown
}

# py ARGS... <<'PY': a python3 script with imap_deflate's names, deliver from imap_client, and
# MD (the Maildir), LOG (imap-serve's stderr), PORT in its globals. It must exit 0.
py() {
	run imap_py - "$@" < <(
		printf 'import re, sys, zlib\nfrom imap_deflate import *\nfrom imap_client import deliver, eq\n'
		printf 'MD = %s\nLOG = %s\nPORT = %s\n' "'$MD'" "'$IMAP_LOG'" "'${SERVER_PORT:-}'"
		cat
	)
	[ "$status" -eq 0 ] || fail "$(printf 'the session failed (exit %s):\n%s\nlog:\n%s' \
		"$status" "$output" "$(cat "$IMAP_LOG")")"
}

@test "COMPRESS DEFLATE: offered after login, OK uncompressed, then every command compressed both ways; logged at start and at logout" {
	py <<'PY'
c = preauth(MD, log=LOG)
check("COMPRESS=DEFLATE" in c.greeting.split("]")[0].split(), c.greeting)
lines = c.compress()
check(re.match(r"^T1 OK ", lines[-1]), lines)
caps = c.ok("CAPABILITY")[0].split()
check("COMPRESS=DEFLATE" in caps, caps)
check(any('"INBOX"' in l or " INBOX" in l for l in c.ok('LIST "" "*"')), "LIST")
st = c.ok("STATUS INBOX (MESSAGES)")
check('* STATUS "INBOX" (MESSAGES 3)' in st, st)
sel = c.ok("SELECT INBOX")
check("* 3 EXISTS" in sel, sel)
f = c.ok("FETCH 2 BODY.PEEK[TEXT]")
check(f[0] == "* 2 FETCH (BODY[TEXT] {19}\r\nbody of message 2\r\n)", f)
c.ok("LOGOUT")
c.rest()
check(c.counts[0] > 0 and c.counts[1] > c.counts[0], "nothing compressed came: %r" % c.counts)
eq(c.close(), 0, "exit code")
PY
	run -0 cat "$IMAP_LOG"
	assert_line 'imap-serve: -: compression started: DEFLATE'
	assert_line --regexp '^imap-serve: -: logged out read=[0-9]+ deflate_in=[1-9][0-9]*/[1-9][0-9]* deflate_out=[1-9][0-9]*/[1-9][0-9]*$'
}

@test "COMPRESS: not before login: not offered, and BAD" {
	imap_users
	run -0 imap_session <<'EOF'
a CAPABILITY
b COMPRESS DEFLATE
c LOGOUT
EOF
	refute_line --regexp '^\* CAPABILITY .*COMPRESS'
	assert_line --regexp '^b BAD '
}

@test "COMPRESS: twice is NO [COMPRESSIONACTIVE]; FOO, none or two arguments are BAD; the session goes on compressed" {
	py <<'PY'
c = preauth(MD, log=LOG)
for text in ("COMPRESS FOO", "COMPRESS", "COMPRESS DEFLATE DEFLATE", 'COMPRESS "DEFLATE"'):
    r = c.command(text)
    check(re.match(r"^T\d+ BAD ", r[-1]), "%s: %r" % (text, r))
c.compress()
r = c.command("COMPRESS DEFLATE")
check(re.match(r"^T\d+ NO \[COMPRESSIONACTIVE\] ", r[-1]), r)
# Once active, any algorithm (as Dovecot answers).
r = c.command("COMPRESS FOO")
check(re.match(r"^T\d+ NO \[COMPRESSIONACTIVE\] ", r[-1]), r)
c.ok("NOOP")
c.ok("LOGOUT")
PY
}

# burst FLUSH: SELECT, then 100 commands in one write ended by one flush of kind FLUSH, whose
# 100 tagged replies must all come without another byte from the client; then IDLE, a delivery
# during it, DONE.
burst() {
	py "$1" <<'PY'
flush = getattr(zlib, sys.argv[1])
c = preauth(MD, log=LOG)
c.compress()
c.ok("SELECT INBOX")
kinds = ["NOOP", "FETCH 1:* (FLAGS UID)", "SEARCH ALL", "UID FETCH 2 BODY.PEEK[HEADER]",
         "SEARCH SUBJECT message", "CHECK", "FETCH 3 RFC822.SIZE", "STATUS INBOX (MESSAGES)"]
tags = ["B%d" % i for i in range(100)]
c.send("".join("%s %s\r\n" % (t, kinds[i % len(kinds)]) for i, t in enumerate(tags)), flush)
got = []
while len(got) < 100:
    line = c.line(timeout=10)
    if not line.startswith("*"):
        got.append(line.split()[0:2])
check(got == [[t, "OK"] for t in tags], got)
# IDLE: its continuation, a delivery's EXISTS, DONE; nothing waits for more input.
c.send("I1 IDLE\r\n", flush)
check(c.line(10).startswith("+ "), "no continuation")
deliver(MD, b"From: a@example.test\nSubject: during idle\n\nhello\n")
check(c.line(10) == "* 4 EXISTS", "no EXISTS")
c.send("DONE\r\n", flush)
r = c.until("I1", 10)
check(r[-1].startswith("I1 OK "), r)
c.ok("LOGOUT")
PY
}

@test "COMPRESS: 100 pipelined commands in one compressed write with one sync flush get all 100 replies; IDLE's continuation, EXISTS and DONE come at once" {
	burst Z_SYNC_FLUSH
}

@test "COMPRESS: the same with partial flushes (what stalled mox's inflater)" {
	burst Z_PARTIAL_FLUSH
}

@test "COMPRESS: inflated input larger than the read buffer: a burst ending at its edge in IDLE and DONE is answered without more input" {
	# The server reads into 16384 bytes (struct conn's inspace): commands that fill it exactly
	# up to IDLE leave DONE inside the inflater; IDLE must see it there, not wait on the fd.
	py <<'PY'
c = preauth(MD, log=LOG)
c.compress()
c.ok("SELECT INBOX")
for size in (16384, 16384 * 3 + 1000):
    head = "".join("P%d NOOP\r\n" % i for i in range(50))
    idle = "I IDLE\r\n"
    pad = size - len(head) - len(idle) - len('F SEARCH SUBJECT ""\r\n')
    data = head + 'F SEARCH SUBJECT "%s"\r\n' % ("x" * pad) + idle
    check(size != 16384 or len(data) == 16384, len(data))
    c.send(data + "DONE\r\nZ NOOP\r\n", zlib.Z_SYNC_FLUSH)
    lines = c.until("Z", timeout=10)
    check(lines[-1].startswith("Z OK"), lines)
    check(any(l.startswith("I OK ") for l in lines), lines)
    check(sum(1 for l in lines if re.match(r"^P\d+ OK", l)) == 50, lines)
c.ok("LOGOUT")
PY
}

@test "COMPRESS: APPEND with a synchronizing literal and with LITERAL+, and a 1 MiB message fetched whole" {
	py <<'PY'
c = preauth(MD, log=LOG)
c.compress()
msg = b"From: a@example.test\r\nSubject: appended\r\n\r\n" + b"line of text\r\n" * 100
c.send("A1 APPEND INBOX {%d}\r\n" % len(msg))
check(c.line(10).startswith("+ "), "no continuation for the literal")
c.send(msg + b"\r\n")
r = c.until("A1")
check(re.match(r"^A1 OK \[APPENDUID \d+ 4\]", r[-1]), r)
c.send(b"A2 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
r = c.until("A2")
check(re.match(r"^A2 OK \[APPENDUID \d+ 5\]", r[-1]), r)
# 1 MiB of varied text, delivered; fetched whole through the compressor.
import random
rnd = random.Random(7)
words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta", b"eta", b"theta"]
body = b"".join(b" ".join(rnd.choice(words) for _ in range(12)) + b"\n" for _ in range(20000))
deliver(MD, b"From: a@example.test\nSubject: big\n\n" + body)
c.ok("SELECT INBOX")
r = c.ok("UID FETCH 6 BODY.PEEK[]")
import glob
path = [p for p in glob.glob(MD + "/cur/*") + glob.glob(MD + "/new/*") if b"Subject: big" in open(p, "rb").read()]
want = open(path[0], "rb").read().replace(b"\n", b"\r\n")
check(len(want) > 1 << 20, len(want))
m = re.match(r"^\* 6 FETCH \(UID 6 BODY\[\] \{(\d+)\}\r\n", r[0])
check(m and int(m.group(1)) == len(want), r[0][:200])
eq(r[0].encode("latin-1")[m.end():], want + b")", "the message fetched")
check(c.counts[0] < c.counts[1] / 2, "1 MiB of text not compressed: %r" % c.counts)
c.ok("LOGOUT")
PY
}

@test "COMPRESS: a stream that is not DEFLATE ends the session with a log line and exit 0" {
	py <<'PY'
c = preauth(MD, log=LOG)
c.compress()
c.ok("NOOP")
c.send_raw(b"\xff\xff\xff\xff garbage, not deflate\r\n" * 4)
rest = c.rest(10)
check(rest == b"* BYE Compressed input not valid\r\n", rest)
code = c.close()
check(code == 0, "exit %r" % code)
PY
	run -0 cat "$IMAP_LOG"
	assert_line 'imap-serve: closed: compressed input not valid'
	refute_output --partial 'AddressSanitizer'
	refute_output --partial 'runtime error'
}

@test "COMPRESS: a compression bomb (a 64 MiB line, a 64 MiB literal over APPENDLIMIT) is refused by the usual limits, in bounded memory" {
	py <<'PY'
TIME = ["/usr/bin/time", "-f", "maxrss=%M", "-o", MD + "/../rss"]
def maxrss():
    return int(open(MD + "/../rss").read().split("maxrss=")[1].split()[0])
# The baseline: a session that compresses a few commands (the sanitizer build is far bigger).
c = preauth(MD, log=LOG, wrap=TIME)
c.compress()
c.ok("SELECT INBOX")
c.ok("LOGOUT")
c.rest()
c.close()
limit = maxrss() + 8192
c = preauth(MD, log=LOG, env={"IMAP_APPENDLIMIT": "1048576"}, wrap=TIME)
c.compress()
# A literal over APPENDLIMIT sent without waiting: APPEND reads it and throws it away (RFC 7888
# section 4), NO [TOOBIG], and the session goes on; 64 MiB of zeros deflate to 64 KiB.
def bomb(c, head, byte):
    try:
        c.send(head, zlib.Z_NO_FLUSH)
        for _ in range(64):
            c.send(byte * (1 << 20), zlib.Z_NO_FLUSH)
        c.send(b"\r\n")
    except BrokenPipeError:
        pass
bomb(c, b"A APPEND INBOX {67108864+}\r\n", b"\0")
r = c.until("A", 30)
check(re.search(r"^A NO \[TOOBIG\]", r[-1]), r)
c.ok("LOGOUT")
c.rest()
c.close()
check(maxrss() < limit, "maxrss %d KiB, over %d" % (maxrss(), limit))
# A line of 64 MiB: BYE, the line too long.
c = preauth(MD, log=LOG, wrap=TIME)
c.compress()
bomb(c, b"L SEARCH SUBJECT ", b"x")
rest = c.rest(30)
check(re.search(rb"^\* BYE ", rest, re.M), rest)
c.close()
check(maxrss() < limit, "maxrss %d KiB, over %d" % (maxrss(), limit))
PY
}

# screen: mutt's screen; screen_has TEXT: it shows TEXT.
screen() {
	tmux -S "$TMUX_SOCK" capture-pane -p -t mutt 2>/dev/null
}
screen_has() {
	screen | grep -qF -- "$1"
}

# pool_server: the imaps service as make run runs it (tls-server -S, imap-serve's pool), with
# alice's Maildir holding setup's three messages; MD is hers.
pool_server() {
	imap_users
	local alice
	alice=$(alice_maildir)
	mkdir -p "$(dirname "$alice")"
	mv "$MD" "$alice"
	MD=$alice
	make_cert imap.example.test "$BATS_TEST_TMPDIR/cert.pem" "$BATS_TEST_TMPDIR/key.pem"
	start_listening tls-server "$BIN/tls-server" -- CERTFILE="$BATS_TEST_TMPDIR/cert.pem" \
		KEYFILE="$BATS_TEST_TMPDIR/key.pem" USERDB="$USERDB" MAILROOT="$MAILROOT" -c2 -S2 \
		-- "$BIN/imap-serve" $CHECKPW
}

@test "COMPRESS under tls-server over TLS: LOGIN, COMPRESS, 100 pipelined commands, IDLE with a delivery, LOGOUT" {
	pool_server
	py <<'PY'
c = tls(int(PORT))
check(c.greeting.startswith("* OK"), c.greeting)
check("COMPRESS" not in c.greeting, "COMPRESS before login: " + c.greeting)
r = c.ok("LOGIN alice@example.test alice-demo")
check("COMPRESS=DEFLATE" in r[-1], r)
c.compress()
c.ok("SELECT INBOX")
tags = ["B%d" % i for i in range(100)]
c.send("".join("%s %s\r\n" % (t, ("NOOP", "FETCH 1:* FLAGS", "SEARCH ALL")[i % 3])
               for i, t in enumerate(tags)))
got = []
while len(got) < 100:
    line = c.line(10)
    if not line.startswith("*"):
        got.append(line.split()[0:2])
check(got == [[t, "OK"] for t in tags], got)
c.send("I IDLE\r\n")
check(c.line(10).startswith("+ "), "no continuation")
deliver(MD, b"From: a@example.test\nSubject: during idle\n\nhello\n")
check(c.line(10) == "* 4 EXISTS", "no EXISTS")
c.send("DONE\r\n")
check(c.until("I", 10)[-1].startswith("I OK "), "IDLE did not end")
r = c.ok("LOGOUT")
check(r[0].startswith("* BYE"), r)
PY
	wait_until 50 grep -q 'logged out read=[0-9]* deflate_in=' "$SERVER_LOG" || fail "$(cat "$SERVER_LOG")"
	run -0 cat "$SERVER_LOG"
	assert_line 'imap-serve: alice@example.test: compression started: DEFLATE'
}

@test "mutt (imap_deflate=yes) reads the INBOX over imaps with COMPRESS=DEFLATE" {
	pool_server
	TMUX_SOCK=$BATS_TEST_TMPDIR/tmux.sock
	local home=$BATS_TEST_TMPDIR/mutthome
	mkdir -p "$home"
	cat >"$home/muttrc" <<MUTTRC
set ssl_verify_host=no
set ssl_verify_dates=no
set certificate_file=$home/certs
set imap_user=alice@example.test
set imap_pass=alice-demo
set imap_deflate=yes
set folder=imaps://127.0.0.1:$SERVER_PORT/
set spoolfile=+INBOX
set record=""
set postponed=""
set mbox=""
set move=no
set header_cache=""
set message_cachedir=""
set index_format="IDX %-3C %s"
set help=no
set timeout=0
set mail_check=3600
set quit=yes
set wait_key=no
MUTTRC
	# The certificate is the test's own, given as trusted.
	cp "$BATS_TEST_TMPDIR/cert.pem" "$home/certs"
	tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -s mutt -x 200 -y 50 \
		env HOME="$home" TERM=xterm mutt -n -F "$home/muttrc" -f "imaps://127.0.0.1:$SERVER_PORT/INBOX" ||
		fail "tmux did not start"
	wait_until 150 screen_has 'message 3' ||
		fail "$(printf 'the index did not show:\n%s\nlog:\n%s' "$(screen)" "$(cat "$SERVER_LOG")")"
	screen_has 'message 1' && screen_has 'message 2' || fail "$(screen)"
	tmux -S "$TMUX_SOCK" send-keys -t mutt Enter
	wait_until 100 screen_has 'body of message' || fail "$(screen)"
	tmux -S "$TMUX_SOCK" send-keys -t mutt q
	wait_until 50 screen_has 'IDX' || fail "$(screen)"
	tmux -S "$TMUX_SOCK" send-keys -t mutt q
	wait_until 100 sh -c "! tmux -S '$TMUX_SOCK' has-session -t mutt 2>/dev/null" || fail "mutt did not quit"
	wait_until 50 grep -q 'logged out read=[0-9]* deflate_in=' "$SERVER_LOG" || fail "$(cat "$SERVER_LOG")"
	run -0 cat "$SERVER_LOG"
	assert_line 'imap-serve: alice@example.test: compression started: DEFLATE'
}
