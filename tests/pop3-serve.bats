#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# pop3-serve: before login on stdin/stdout (CAPA, USER/PASS, AUTH PLAIN, the limits), and
# sessions end to end with python3 poplib (tests/lib/pop3_client.py), fetchmail and getmail6
# over tls-server (STLS with -n, and implicit TLS) or tcpserver + tls-wrap, logging in through
# the real checkpassword-mysql with the demo users. The mail came through smtp-recv and
# queue-run (imap_client's corpus: m1 ... m4), or was written into the Maildir by hand
# (pop3_client's EXTRA: dots, nonl, eight). What RETR sends is compared byte for byte with the
# Maildir file made CRLF and dot-stuffed; UIDL with the value dovecot-uidlist gives
# (Dovecot's %08Xu%08Xv); what QUIT did with what the Maildir holds, and with what imap-serve
# shows of it.

load lib/common
load lib/smtp
load lib/tls
load lib/imap
load lib/pop3

setup() {
	pop3_users
	IMAP_LOG=$BATS_TEST_TMPDIR/imap.log
	ALICE=$MAILROOT/example.test/alice
}

teardown() {
	stop_server
	common_teardown
}

# alice_dir: alice's Maildir, made, with the awkward messages in it (and nothing else).
alice_dir() {
	mkdir -p "$ALICE"/{cur,new,tmp}
	pop3_py "$TESTLIB/pop3_client.py" extra "$ALICE" || fail "pop3_client.py extra"
}

# capa_lines: the lines of the first CAPA answer in $output ("+OK" up to "."), without those two.
capa_lines() {
	printf '%s\n' "${lines[@]}" | sed -n '2,/^\.$/p' | sed '1d;$d'
}

# assert_capa WANT...: the first CAPA answer in $output is exactly the lines WANT, in any order.
assert_capa() {
	local got want
	got=$(capa_lines | LC_ALL=C sort)
	want=$(printf '%s\n' "$@" | LC_ALL=C sort)
	[ "$got" = "$want" ] || fail "$(printf 'CAPA:\n%s\nexpected:\n%s' "$got" "$want")"
}

# after_capa N: line N after the first CAPA answer's "." (0: the line right after it).
after_capa() {
	local i
	for i in "${!lines[@]}"; do
		if [ "${lines[$i]}" = . ]; then
			printf '%s\n' "${lines[$((i + 1 + $1))]:-}"
			return 0
		fi
	done
	return 1
}

# assert_after_capa N [--regexp] WANT: line N after the first CAPA answer's "." in $output is WANT
# (or matches the extended regular expression WANT); $output and $lines stay as they are.
assert_after_capa() {
	local n=$1 got
	shift
	got=$(after_capa "$n") || fail "$(printf 'no CAPA answer in:\n%s' "$output")"
	if [ "$1" = --regexp ]; then
		[[ $got =~ $2 ]] ||
			fail "$(printf 'line %d after CAPA is %s, expected to match %s\n%s' "$n" "$got" "$2" "$output")"
	else
		[ "$got" = "$1" ] ||
			fail "$(printf 'line %d after CAPA is %s, expected %s\n%s' "$n" "$got" "$1" "$output")"
	fi
}

# wire_total MAILDIR: the size of its messages together, with CRLF line ends, as STAT gives it.
wire_total() {
	pop3_py -c 'import sys
from pop3_client import maildir_files, read, wire_size
print(sum(wire_size(read(p)) for p in maildir_files(sys.argv[1]).values()))' "$1"
}

# plain_b64 AUTHZID AUTHCID PASSWORD: a SASL PLAIN response, base64.
plain_b64() {
	printf '%s\0%s\0%s' "$1" "$2" "$3" | base64 -w0
}

# --- before login, on stdin/stdout ---------------------------------------------------------------

@test "before TLS: +OK postroom ready, CAPA without USER, SASL or STLS; USER, PASS and AUTH refused with [AUTH]" {
	local ir
	ir=$(plain_b64 '' alice@example.test alice-demo)
	run -0 pop3_session POP3_AUTH_PLAINTEXT=0 <<EOF
CAPA
USER alice@example.test
PASS alice-demo
AUTH PLAIN $ir
STAT
STLS
QUIT
EOF
	assert_line -n 0 '+OK postroom ready'
	assert_line -n 1 --regexp '^\+OK'
	# No UCSPI-TLS descriptors: no STLS either.
	assert_capa TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING 'EXPIRE NEVER' 'IMPLEMENTATION postroom'
	assert_after_capa 0 --regexp '^-ERR \[AUTH\] '
	assert_after_capa 1 --regexp '^-ERR \[AUTH\] '
	assert_after_capa 2 --regexp '^-ERR \[AUTH\] '
	# No session: STAT is for the TRANSACTION state only.
	assert_after_capa 3 --regexp '^-ERR'
	# No UCSPI-TLS descriptors: no STLS.
	assert_after_capa 4 --regexp '^-ERR'
	assert_after_capa 5 --regexp '^\+OK'
	[ "${#lines[@]}" -eq 16 ] || fail "$output"
	# No login was tried: alice's Maildir was never made.
	[ ! -e "$ALICE" ]
}

@test "under TLS (or with POP3_AUTH_PLAINTEXT=1): CAPA has USER and SASL PLAIN, and USER/PASS logs in" {
	alice_dir
	run -0 pop3_session POP3_AUTH_PLAINTEXT=0 SSL_PROTOCOL=TLSv1.3 <<'EOF'
CAPA
USER alice@example.test
PASS alice-demo
CAPA
STAT
QUIT
EOF
	assert_line -n 0 '+OK postroom ready'
	assert_capa TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING 'EXPIRE NEVER' 'IMPLEMENTATION postroom' \
		USER 'SASL PLAIN'
	assert_after_capa 0 --regexp '^\+OK'
	assert_after_capa 1 '+OK Logged in'
	# CAPA in the TRANSACTION state: no login capabilities any more.
	run -0 pop3_session POP3_AUTH_PLAINTEXT=0 SSL_PROTOCOL=TLSv1.3 <<'EOF'
USER alice@example.test
PASS alice-demo
CAPA
QUIT
EOF
	assert_line -n 2 '+OK Logged in'
	lines=("${lines[@]:2}")
	assert_capa TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING 'EXPIRE NEVER' 'IMPLEMENTATION postroom'
	# POP3_AUTH_PLAINTEXT=1 without TLS: the same offer before login.
	run -0 pop3_session POP3_AUTH_PLAINTEXT=1 <<'EOF'
CAPA
USER alice@example.test
PASS alice-demo
STAT
QUIT
EOF
	assert_capa TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING 'EXPIRE NEVER' 'IMPLEMENTATION postroom' \
		USER 'SASL PLAIN'
	assert_after_capa 1 '+OK Logged in'
	# The three awkward messages, with their sizes as on the wire.
	assert_after_capa 2 "+OK 3 $(wire_total "$ALICE")"
}

@test "AUTH PLAIN with an initial response and after '+ '; '*' aborts; other mechanisms and wrong passwords are refused" {
	alice_dir
	local ir bad
	ir=$(plain_b64 '' alice@example.test alice-demo)
	run -0 pop3_session <<EOF
AUTH PLAIN $ir
STAT
QUIT
EOF
	assert_line -n 1 '+OK Logged in'
	assert_line -n 2 --regexp '^\+OK 3 [0-9]+$'
	run -0 pop3_session <<EOF
AUTH PLAIN
$ir
STAT
QUIT
EOF
	assert_line -n 1 '+ '
	assert_line -n 2 '+OK Logged in'
	assert_line -n 3 --regexp '^\+OK 3 [0-9]+$'
	bad=$(plain_b64 '' alice@example.test wrong)
	run -0 pop3_session <<EOF
AUTH PLAIN
*
AUTH CRAM-MD5
AUTH PLAIN $bad
AUTH PLAIN %%%notbase64%%%
CAPA
QUIT
EOF
	assert_line -n 1 '+ '
	assert_line -n 2 --regexp '^-ERR'
	assert_line -n 3 --regexp '^-ERR'
	assert_line -n 4 '-ERR [AUTH] Authentication failed'
	assert_line -n 5 --regexp '^-ERR'
	# Still before login: the next command is answered.
	assert_line -n 6 --regexp '^\+OK'
	assert_line --regexp '^IMPLEMENTATION postroom$'
}

@test "wrong passwords: -ERR [AUTH], and after the third the connection closes; a right one after a wrong one logs in" {
	alice_dir
	run -0 pop3_session <<'EOF'
USER alice@example.test
PASS wrong1
USER alice@example.test
PASS wrong2
USER nobody@example.test
PASS wrong3
USER alice@example.test
PASS alice-demo
STAT
EOF
	assert_line -n 0 '+OK postroom ready'
	assert_line -n 1 --regexp '^\+OK'
	assert_line -n 2 '-ERR [AUTH] Authentication failed'
	assert_line -n 4 '-ERR [AUTH] Authentication failed'
	assert_line -n 6 '-ERR [AUTH] Authentication failed'
	# Closed after the third -ERR: nothing else was answered.
	[ "${#lines[@]}" -eq 7 ] || fail "$(printf '%d lines:\n%s' "${#lines[@]}" "$output")"
	# POP3_AUTH_FAILURES=2: one wrong is not the limit; the right password logs in.
	run -0 pop3_session POP3_AUTH_FAILURES=2 <<'EOF'
USER alice@example.test
PASS wrong1
USER alice@example.test
PASS alice-demo
STAT
QUIT
EOF
	assert_line -n 2 '-ERR [AUTH] Authentication failed'
	assert_line -n 4 '+OK Logged in'
	assert_line -n 5 --regexp '^\+OK 3 [0-9]+$'
	# ...and with POP3_AUTH_FAILURES=1 the first wrong one closes (AUTH counts as USER/PASS does).
	run -0 pop3_session POP3_AUTH_FAILURES=1 <<EOF
AUTH PLAIN $(plain_b64 '' alice@example.test wrong)
USER alice@example.test
PASS alice-demo
EOF
	assert_line -n 1 '-ERR [AUTH] Authentication failed'
	[ "${#lines[@]}" -eq 2 ] || fail "$output"
}

@test "checkpassword trouble (no user database) is -ERR [SYS/TEMP], not a wrong password" {
	run -0 pop3_session USERDB="$BATS_TEST_TMPDIR/missing.cdb" <<'EOF'
USER alice@example.test
PASS alice-demo
QUIT
EOF
	assert_line -n 2 --regexp '^-ERR \[SYS/TEMP\] '
	assert_line -n 3 --regexp '^\+OK'
}

@test "bad commands: -ERR each, the session goes on; 20 in a row close with -ERR Too many bad commands" {
	# 15 bad, a good one, 15 bad: never 20 in a row.
	run -0 pop3_raw < <(
		for i in $(seq 15); do printf 'FROB%d\r\n' "$i"; done
		printf 'CAPA\r\n'
		for i in $(seq 15); do printf 'RETR\r\n'; done
		printf 'QUIT\r\n'
	)
	refute_line --partial 'Too many bad commands'
	[ "$(grep -c '^-ERR' <<<"$output")" -eq 30 ] || fail "$output"
	assert_line --regexp '^IMPLEMENTATION postroom$'
	[[ ${lines[-1]} == +OK* ]] || fail "QUIT: ${lines[-1]}"
	# 25 in a row: closed at the 20th.
	run -0 pop3_raw < <(for i in $(seq 25); do printf 'FROB%d\r\n' "$i"; done; printf 'QUIT\r\n')
	assert_equal "${lines[-1]}" '-ERR Too many bad commands'
	[ "${#lines[@]}" -ge 21 ] && [ "${#lines[@]}" -le 22 ] ||
		fail "$(printf 'not closed at the 20th bad command: %d lines:\n%s' "${#lines[@]}" "$output")"
	# In the TRANSACTION state too.
	alice_dir
	run -0 pop3_preauth "$ALICE" POP3_BAD_COMMANDS=3 <<'EOF'
FROB1
FROB2
FROB3
STAT
EOF
	assert_line -n 0 '+OK postroom POP3 session'
	assert_line -n 1 --regexp '^-ERR'
	assert_line -n 2 --regexp '^-ERR'
	assert_equal "${lines[-1]}" '-ERR Too many bad commands'
	refute_line --regexp '^\+OK 3 '
}

@test "a line over 2048 bytes is -ERR Line too long, before and after login, and the session goes on" {
	alice_dir
	run -0 pop3_raw < <("$PYTHON" -c 'import sys
sys.stdout.write("USER " + "x" * 3000 + "\r\nCAPA\r\nUSER " + "y" * 70000 + "\r\n")
sys.stdout.write("USER alice@example.test\r\nPASS alice-demo\r\nNOOP " + "z" * 5000 + "\r\nSTAT\r\nQUIT\r\n")')
	assert_line -n 1 '-ERR Line too long'
	assert_line -n 2 --regexp '^\+OK'
	assert_line --regexp '^IMPLEMENTATION postroom$'
	assert_after_capa 0 '-ERR Line too long'
	assert_after_capa 2 '+OK Logged in'
	assert_after_capa 3 '-ERR Line too long'
	assert_after_capa 4 --regexp '^\+OK 3 [0-9]+$'
	assert_after_capa 5 --regexp '^\+OK'
	# A long name that fits is not "too long".
	run -0 pop3_raw < <("$PYTHON" -c 'import sys; sys.stdout.write("USER " + "u" * 1500 + "\r\nQUIT\r\n")')
	refute_line --partial 'too long'
}

@test "POP3_TIMEOUT: an idle client gets -ERR Disconnected for inactivity, before and after login" {
	alice_dir
	local fifo=$BATS_TEST_TMPDIR/in out=$BATS_TEST_TMPDIR/out
	mkfifo "$fifo"
	env POP3_AUTH_PLAINTEXT=1 POP3_TIMEOUT=1 pop3-serve $CHECKPW <"$fifo" >"$out" 2>>"$POP3_LOG" &
	local pid=$!
	track_pid "$pid"
	exec 5>"$fifo"
	wait_until 100 sh -c "! kill -0 $pid 2>/dev/null" || fail "still running: $(cat "$out")"
	exec 5>&-
	run sed 's/\r$//' "$out"
	assert_output "$(printf '+OK postroom ready\n-ERR Disconnected for inactivity')"
	# After login: the session's own deadline.
	rm -f "$out"
	env POP3_AUTH_PLAINTEXT=1 POP3_TIMEOUT=1 pop3-serve $CHECKPW <"$fifo" >"$out" 2>>"$POP3_LOG" &
	pid=$!
	track_pid "$pid"
	exec 5>"$fifo"
	printf 'USER alice@example.test\r\nPASS alice-demo\r\n' >&5
	wait_until 100 sh -c "! kill -0 $pid 2>/dev/null" || fail "still running: $(cat "$out")"
	exec 5>&-
	run sed 's/\r$//' "$out"
	assert_line -n 2 '+OK Logged in'
	assert_line -n 3 '-ERR Disconnected for inactivity'
	[ "${#lines[@]}" -eq 4 ] || fail "$output"
}

@test "POP3_TIMEOUT: a client that drips a command a byte at a time is cut off too" {
	local fifo=$BATS_TEST_TMPDIR/in out=$BATS_TEST_TMPDIR/out
	mkfifo "$fifo"
	env POP3_AUTH_PLAINTEXT=1 POP3_TIMEOUT=2 pop3-serve $CHECKPW <"$fifo" >"$out" 2>>"$POP3_LOG" &
	local pid=$!
	track_pid "$pid"
	# One byte every 0.5 s for 6 s: each read is quick, the command never ends.
	drip_fifo "$fifo" N 12 0.5
	wait_until 50 sh -c "! kill -0 $pid 2>/dev/null" || fail "still running"
	run grep -c 'Disconnected for inactivity' "$out"
	assert_output 1
}

@test "commands sent with USER and PASS in one write reach the session (PIPELINING before login)" {
	alice_dir
	run -0 pop3_raw < <(printf 'CAPA\r\nUSER alice@example.test\r\nPASS alice-demo\r\nSTAT\r\nLIST 1\r\nNOOP\r\nQUIT\r\n')
	assert_after_capa 1 '+OK Logged in'
	assert_after_capa 2 --regexp '^\+OK 3 [0-9]+$'
	assert_after_capa 3 --regexp '^\+OK 1 [0-9]+$'
	assert_after_capa 4 --regexp '^\+OK'
	assert_after_capa 5 --regexp '^\+OK'
}

# --- the TRANSACTION state, by hand ---------------------------------------------------------------

@test "-A by hand: STAT, LIST, UIDL, TOP, RETR, DELE, RSET, NOOP; a deleted message is gone for the session until RSET" {
	alice_dir
	local size
	size=$(wire_total "$ALICE")
	run -0 pop3_preauth "$ALICE" <<'EOF'
STAT
NOOP
LIST
DELE 1
DELE 1
LIST 1
RETR 1
TOP 1 0
STAT
RSET
STAT
LIST 4
RETR 0
TOP 2 x
USER alice@example.test
QUIT
EOF
	assert_line -n 0 '+OK postroom POP3 session'
	assert_line -n 1 --regexp '^\+OK 3 [0-9]+$'
	local total=${lines[1]#+OK 3 } one
	assert_line -n 2 --regexp '^\+OK'
	assert_line -n 3 --regexp '^\+OK'
	assert_line -n 4 --regexp '^1 [0-9]+$'
	assert_line -n 5 --regexp '^2 [0-9]+$'
	assert_line -n 6 --regexp '^3 [0-9]+$'
	assert_line -n 7 '.'
	one=${lines[4]#1 }
	# DELE 1, again (-ERR), and message 1 is gone from LIST, RETR and TOP.
	assert_line -n 8 --regexp '^\+OK'
	assert_line -n 9 --regexp '^-ERR'
	assert_line -n 10 --regexp '^-ERR'
	assert_line -n 11 --regexp '^-ERR'
	assert_line -n 12 --regexp '^-ERR'
	assert_line -n 13 "+OK 2 $((total - one))"
	assert_line -n 14 --regexp '^\+OK'
	assert_line -n 15 "+OK 3 $total"
	assert_line -n 16 --regexp '^-ERR'
	assert_line -n 17 --regexp '^-ERR'
	assert_line -n 18 --regexp '^-ERR'
	assert_line -n 19 --regexp '^-ERR'
	assert_line -n 20 --regexp '^\+OK'
	[ "${#lines[@]}" -eq 21 ] || fail "$output"
	# RSET undid the DELE: QUIT removed nothing.
	[ "$(ls "$ALICE/cur" "$ALICE/new" | grep -c '^17000001')" -eq 3 ] || fail "$(ls -R "$ALICE")"
	# The sizes: the three files with CRLF line ends.
	assert_equal "$total" "$size"
}

@test "-A run as root becomes the Maildir's owner: what it writes, renames and locks belongs to that user" {
	[ "$(id -u)" = 0 ] || skip "needs root to change users"
	make_private_dir
	export MAILROOT=$PRIVATE_DIR/mail
	ALICE=$MAILROOT/example.test/alice
	alice_dir
	chown -R nobody:nogroup "$MAILROOT"
	chmod 700 "$ALICE"
	run -0 pop3_session <<'EOF'
USER alice@example.test
PASS alice-demo
RETR 1
DELE 2
QUIT
EOF
	assert_line -n 2 '+OK Logged in'
	assert_line -n 3 --regexp '^\+OK [0-9]+ octets$'
	[[ ${lines[-1]} == +OK* ]] || fail "QUIT: ${lines[-1]}"
	run find "$ALICE" -user root
	assert_output ''
	# It did write: dovecot-uidlist, the \Seen flag on message 1, one message fewer.
	[ -f "$ALICE/dovecot-uidlist" ]
	[ "$(find "$ALICE/cur" "$ALICE/new" -type f | wc -l)" -eq 2 ]
	[ "$(find "$ALICE/cur" -name '*:2,*S*' | wc -l)" -eq 1 ]
}

# --- sessions over TLS with poplib ----------------------------------------------------------------

@test "STLS (tls-server -n): CAPA and [AUTH] before it, then USER/PASS; STAT LIST UIDL TOP RETR byte for byte; DELE and QUIT remove" {
	deliver_corpus
	alice_dir
	pop3_cert
	pop3_stls
	pop3_script <<'PY'
p = connect("plain:" + PORT, login=False)
eq(p.welcome, b"+OK postroom ready", "greeting")
caps = p.capa()
for w in ("STLS", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE", "IMPLEMENTATION"):
    check(w in caps, "no %s before STLS: %r" % (w, caps))
eq(caps["EXPIRE"], ["NEVER"], "EXPIRE")
eq(caps["IMPLEMENTATION"], ["postroom"], "IMPLEMENTATION")
check("USER" not in caps and "SASL" not in caps, "USER or SASL before STLS: %r" % caps)
err = pop3_error(lambda: p.user("alice@example.test"))
check(err.startswith(b"-ERR [AUTH] "), err)
err = pop3_error(lambda: p.pass_("alice-demo"))
check(err.startswith(b"-ERR [AUTH] "), err)
p.stls(context(CA))
eq(p.sock.version(), "TLSv1.3", "TLS version")
caps = p.capa()
check("STLS" not in caps, "STLS after STLS: %r" % caps)
check("USER" in caps, "no USER under TLS: %r" % caps)
eq(caps.get("SASL"), ["PLAIN"], "SASL under TLS")
# STLS again: refused.
check(p.raw_line("STLS").startswith(b"-ERR"), "a second STLS")
p.user("alice@example.test")
eq(p.pass_("alice-demo"), b"+OK Logged in", "PASS")
caps = p.capa()
check("STLS" not in caps and "USER" not in caps and "SASL" not in caps, "CAPA after login: %r" % caps)
check("TOP" in caps and "UIDL" in caps and "PIPELINING" in caps, "CAPA after login: %r" % caps)
check_mailbox(p, MAILDIR)
# DELE m2 and dots, QUIT: their files are gone, the rest stay.
ids = by_msgid(p)
before = maildir_files(MAILDIR)
gone = {b for b, path in before.items() if b"<m2@" in read(path) or b"<dots@" in read(path)}
eq(len(gone), 2, "the files of m2 and dots")
p.dele(ids["m2"])
p.dele(ids["dots"])
err = pop3_error(lambda: p.dele(ids["m2"]))
check(err.startswith(b"-ERR"), err)
check(p.quit().startswith(b"+OK"), "QUIT")
after = maildir_files(MAILDIR)
eq(sorted(after), sorted(set(before) - gone), "the Maildir after DELE and QUIT")
p = connect("stls:" + PORT, cafile=CA)
eq(p.stat()[0], 5, "STAT in the next session")
check_mailbox(p, MAILDIR)
p.quit()
PY
}

@test "STLS: what the client sent after STLS in the same write is thrown away, not run under TLS" {
	alice_dir
	pop3_cert
	pop3_stls
	pop3_script <<'PY'
raw = socket.create_connection(("127.0.0.1", int(PORT)), timeout=10)
eq(raw.recv(100), b"+OK postroom ready\r\n", "greeting")
# STLS and a USER in one write: the USER was sent in the clear, and must not count.
raw.sendall(b"STLS\r\nUSER alice@example.test\r\n")
reply = b""
while not reply.endswith(b"\r\n"):
    chunk = raw.recv(100)
    check(chunk, "EOF after STLS")
    reply += chunk
check(reply.startswith(b"+OK"), "STLS: %r" % reply)
s = context(CA).wrap_socket(raw)
f = s.makefile("rb")
s.sendall(b"PASS alice-demo\r\n")
r = f.readline()
check(r.startswith(b"-ERR"), "the answer to PASS after STLS, whose USER came before it: %r" % r)
check(not r.startswith(b"-ERR [IN-USE]"), r)
s.sendall(b"USER alice@example.test\r\nPASS alice-demo\r\nSTAT\r\nQUIT\r\n")
check(f.readline().startswith(b"+OK"), "USER")
eq(f.readline(), b"+OK Logged in\r\n", "PASS")
check(f.readline().startswith(b"+OK 3 "), "STAT")
check(f.readline().startswith(b"+OK"), "QUIT")
PY
}

@test "implicit TLS (tls-server): CAPA with USER and SASL PLAIN; every message byte for byte; RSET undoes DELE" {
	deliver_corpus
	alice_dir
	pop3_cert
	pop3s
	pop3_script <<'PY'
p = connect("tls:" + PORT, login=False, cafile=CA)
eq(p.sock.version(), "TLSv1.3", "TLS version")
eq(p.welcome, b"+OK postroom ready", "greeting")
caps = p.capa()
check("STLS" not in caps, "STLS under implicit TLS: %r" % caps)
check("USER" in caps, "no USER: %r" % caps)
eq(caps.get("SASL"), ["PLAIN"], "SASL")
p.user("alice@example.test")
eq(p.pass_("alice-demo"), b"+OK Logged in", "PASS")
check_mailbox(p, MAILDIR)
check(p.raw_line("STLS").startswith(b"-ERR"), "STLS in a session under TLS")
before = sorted(maildir_files(MAILDIR))
for n in range(1, 8):
    p.dele(n)
eq(p.stat(), (0, 0), "STAT with every message deleted")
check(p.rset().startswith(b"+OK"), "RSET")
eq(p.stat()[0], 7, "STAT after RSET")
check_mailbox(p, MAILDIR)
p.quit()
eq(sorted(maildir_files(MAILDIR)), before, "the Maildir after DELE, RSET and QUIT")
# AUTH PLAIN, as poplib would send it, logs in too.
import base64
p = connect("tls:" + PORT, login=False, cafile=CA)
eq(p._shortcmd("AUTH PLAIN " + base64.b64encode(b"\0alice@example.test\0alice-demo").decode()),
   b"+OK Logged in", "AUTH PLAIN")
eq(p.stat()[0], 7, "STAT after AUTH")
p.quit()
PY
}

@test "tcpserver + tls-wrap -n: STLS, then a login and RETR, as tls-server serves them" {
	deliver_corpus
	alice_dir
	pop3_cert
	start_server CERTFILE="$POP3_CERT" KEYFILE="$POP3_KEY" USERDB="$USERDB" MAILROOT="$MAILROOT" \
		UCSPITLS='!' -- tls-wrap -n pop3-serve $CHECKPW
	pop3_script <<'PY'
p = connect("plain:" + PORT, login=False)
check("STLS" in p.capa(), "no STLS")
err = pop3_error(lambda: p.user("alice@example.test"))
check(err.startswith(b"-ERR [AUTH] "), err)
p.stls(context(CA))
p.user("alice@example.test")
eq(p.pass_("alice-demo"), b"+OK Logged in", "PASS")
check_mailbox(p, MAILDIR)
p.quit()
PY
}

@test "UIDL is %08X%08X of dovecot-uidlist's UID and UIDVALIDITY, the same in the next session, and a new message gets the next UID" {
	deliver_corpus
	alice_dir
	pop3_cert
	pop3s
	pop3_script <<'PY'
def uidls(p):
    _, lines, _ = p.uidl()
    return dict(l.decode().split() for l in lines)

p = connect("tls:" + PORT, cafile=CA)
first = uidls(p)
p.quit()
exp = expected_uidls(MAILDIR)
eq(sorted(first.values()), sorted(exp.values()), "UIDL against dovecot-uidlist")
for v in first.values():
    check(re.match(r"^[0-9A-F]{16}$", v), "UIDL %r" % v)
validity, nextuid, uids = uidlist(MAILDIR)
eq(sorted(uids.values()), list(range(1, 8)), "the UIDs of the seven messages")
eq(nextuid, 8, "N")

p = connect("tls:" + PORT, cafile=CA)
eq(uidls(p), first, "UIDL in a second session")
p.quit()

# A message added by hand to new/: the next UID; the others keep theirs.
with open(MAILDIR + "/new/1700000200.M200P1.host.test", "wb") as f:
    f.write(b"Subject: late\nMessage-Id: <late@extra.test>\n\nlate\n")
p = connect("tls:" + PORT, cafile=CA)
third = uidls(p)
ids = by_msgid(p)
p.quit()
eq(len(third), 8, "UIDL count")
eq(third[str(ids["late"])], "%08X%08X" % (8, validity), "the new message's UIDL")
eq(sorted(v for n, v in third.items() if n != str(ids["late"])), sorted(first.values()), "the others")
eq(expected_uidls(MAILDIR)["1700000200.M200P1.host.test"], "%08X%08X" % (8, validity), "dovecot-uidlist")
PY
	# imap-serve gives the same messages the same UIDs.
	run -0 --separate-stderr pop3_py - "$ALICE" <<'PY'
import subprocess, sys
from pop3_client import *
md = sys.argv[1]
out = subprocess.run(["imap-serve", "-A"], cwd=md, env=dict(os.environ, MAILDIR=md),
                     input=b"a SELECT INBOX\r\nb FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])\r\nc LOGOUT\r\n",
                     capture_output=True, check=True).stdout.decode("latin-1")
validity, _, uids = uidlist(md)
files = maildir_files(md)
got = {}
for m in re.finditer(r"\* \d+ FETCH \(UID (\d+) RFC822.SIZE (\d+) .*?Message-Id: <([^@]+)@", out, re.S | re.I):
    got[m.group(3)] = (int(m.group(1)), int(m.group(2)))
eq(len(got), 8, "imap-serve's messages: " + out)
for base, path in files.items():
    mid = re.search(rb"(?i)Message-Id: <([^@]+)@", read(path)).group(1).decode()
    eq(got[mid], (uids[base], wire_size(read(path))), "UID and size of %s in imap-serve" % mid)
PY
}

@test "UIDL from a dovecot-uidlist that Dovecot wrote: its UIDs and UIDVALIDITY as they are, and its next UID for a new message" {
	mkdir -p "$ALICE"/{cur,new,tmp}
	printf 'Subject: a\nMessage-Id: <a@x>\n\na\n' >"$ALICE/cur/1600000001.M1P1.mx:2,S"
	printf 'Subject: b\nMessage-Id: <b@x>\n\nb\n' >"$ALICE/cur/1600000002.M2P1.mx:2,"
	printf 'Subject: c\nMessage-Id: <c@x>\n\nc\n' >"$ALICE/new/1600000003.M3P1.mx"
	# UIDs 3 and 17 (the others were expunged long ago), the W (size with CRLF) extension
	# field on one, N 40.
	local w
	w=$(sed 's/$/\r/' "$ALICE/cur/1600000002.M2P1.mx:2," | wc -c)
	printf '3 V1234567890 N40 G0123456789abcdef0123456789abcdef\n3 :1600000001.M1P1.mx\n17 W%d :1600000002.M2P1.mx\n' \
		"$w" >"$ALICE/dovecot-uidlist"
	run -0 pop3_preauth "$ALICE" <<'EOF'
UIDL
QUIT
EOF
	local v first
	v=$(printf '%08X' 1234567890)
	# UIDs 3 and 17, and 40 for the message the uidlist does not know yet.
	assert_line --regexp "^[1-3] 00000003$v\$"
	assert_line --regexp "^[1-3] 00000011$v\$"
	assert_line --regexp "^[1-3] 00000028$v\$"
	[ "${#lines[@]}" -eq 7 ] || fail "$output"
	first=$output
	# The same in the next session.
	run -0 pop3_preauth "$ALICE" <<'EOF'
UIDL
QUIT
EOF
	assert_equal "$output" "$first"
	grep -q '^40 .*:1600000003.M3P1.mx$' "$ALICE/dovecot-uidlist" || fail "$(cat "$ALICE/dovecot-uidlist")"
	# (Dovecot appends records and leaves N as it was until it rewrites the file: the next
	# UID is past both.) Another new message: 41.
	printf 'Subject: d\nMessage-Id: <d@x>\n\nd\n' >"$ALICE/new/1600000004.M4P1.mx"
	run -0 pop3_preauth "$ALICE" <<'EOF'
UIDL
QUIT
EOF
	assert_line --regexp "^[1-4] 00000029$v\$"
	[ "${#lines[@]}" -eq 8 ] || fail "$output"
	grep -q '^41 .*:1600000004.M4P1.mx$' "$ALICE/dovecot-uidlist" || fail "$(cat "$ALICE/dovecot-uidlist")"
}

@test "messages are the INBOX as it was at login: one delivered meanwhile waits for the next session" {
	alice_dir
	pop3_cert
	pop3s
	pop3_script <<'PY'
p = connect("tls:" + PORT, cafile=CA)
eq(p.stat()[0], 3, "STAT")
with open(MAILDIR + "/new/1700000300.M300P1.host.test", "wb") as f:
    f.write(b"Subject: meanwhile\nMessage-Id: <meanwhile@extra.test>\n\nnew\n")
eq(p.stat()[0], 3, "STAT after a delivery")
eq(len(p.list()[1]), 3, "LIST after a delivery")
check(p.raw_line("RETR 4").startswith(b"-ERR"), "RETR 4")
p.quit()
p = connect("tls:" + PORT, cafile=CA)
eq(p.stat()[0], 4, "STAT in the next session")
check("meanwhile" in by_msgid(p), "the new message")
p.quit()
PY
}

@test "QUIT marks what RETR sent \\Seen (S in the file name, as imap-serve shows it), not what TOP sent; a dropped connection marks and removes nothing" {
	deliver_corpus
	alice_dir
	pop3_cert
	pop3s
	pop3_script <<'PY'
def flags_of(name):
    for base, path in maildir_files(MAILDIR).items():
        if ("<%s@" % name).encode() in read(path):
            return info(path) or ""
    raise Failure("no file for " + name)

def session_ends():
    # Once the dropped session's process is gone, the mailbox is free: a login works.
    def attempt():
        try:
            q = connect("tls:" + PORT, cafile=CA)
        except poplib.error_proto as e:
            check(b"[IN-USE]" in e.args[0], e.args[0])
            return None
        return q
    return wait_for(attempt, 10, "a login after the dropped connection")

# Dropped: RETR m1, DELE m2, then the connection goes without QUIT.
p = connect("tls:" + PORT, cafile=CA)
ids = by_msgid(p)
p.retr(ids["m1"])
p.dele(ids["m2"])
before = sorted(maildir_files(MAILDIR))
p.drop()
q = session_ends()
eq(q.stat()[0], 7, "STAT after the dropped session")
eq(sorted(maildir_files(MAILDIR)), before, "files after the dropped session")
check("S" not in flags_of("m1"), "m1 was marked \\Seen by a session that never QUIT")
q.quit()

# QUIT: RETR m1 and dots, TOP m3; m1 and dots are \Seen, m3 is not, nonl keeps its F.
p = connect("tls:" + PORT, cafile=CA)
ids = by_msgid(p)
p.retr(ids["m1"])
p.retr(ids["dots"])
p.top(ids["m3"], 3)
p.quit()
for name, want in (("m1", True), ("dots", True), ("m3", False), ("m4", False), ("nonl", False)):
    eq("S" in flags_of(name), want, "\\Seen on %s" % name)
check("F" in flags_of("nonl"), "nonl lost its F flag")
PY
	# What IMAP sees: \Seen on m1 and dots only.
	run -0 --separate-stderr imap_preauth "$ALICE" <<'EOF'
a EXAMINE INBOX
b FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])
c LOGOUT
EOF
	local seen
	seen=$(grep -A1 '\\Seen' <<<"$output" | grep -o '^Message-Id: <[^@]*' | sed 's/.*<//' | sort | tr '\n' ' ')
	assert_equal "$seen" 'dots m1 '
}

@test "POP3_EXPIRE=0: CAPA says EXPIRE 0, and QUIT deletes what RETR sent; a dropped session deletes nothing" {
	alice_dir
	pop3_cert
	pop3s POP3_EXPIRE=0
	pop3_script <<'PY'
p = connect("tls:" + PORT, login=False, cafile=CA)
eq(p.capa()["EXPIRE"], ["0"], "EXPIRE before login")
p.user("alice@example.test")
p.pass_("alice-demo")
eq(p.capa()["EXPIRE"], ["0"], "EXPIRE after login")
ids = by_msgid(p)
p.retr(ids["dots"])
p.drop()
def login():
    try:
        return connect("tls:" + PORT, cafile=CA)
    except poplib.error_proto as e:
        check(b"[IN-USE]" in e.args[0], e.args[0])
p = wait_for(login, 10, "a login after the dropped connection")
eq(p.stat()[0], 3, "STAT after a dropped session")
ids = by_msgid(p)
p.retr(ids["dots"])
p.retr(ids["eight"])
p.top(ids["nonl"], 1)
p.quit()
left = [read(path) for path in maildir_files(MAILDIR).values()]
eq(len(left), 1, "messages left")
check(b"<nonl@" in left[0], "the one left is nonl")
PY
}

@test "[IN-USE]: a second login while a session is in TRANSACTION is refused and closed; after QUIT the mailbox is free" {
	alice_dir
	pop3_cert
	pop3s
	pop3_script <<'PY'
p1 = connect("tls:" + PORT, cafile=CA)
p1.dele(1)
p2 = connect("tls:" + PORT, login=False, cafile=CA)
p2.user("alice@example.test")
err = pop3_error(lambda: p2.pass_("alice-demo"))
check(err.startswith(b"-ERR [IN-USE] "), err)
check(p2.closed(), "the connection stays open after [IN-USE]")
# Another mailbox is not locked.
connect("tls:" + PORT, user="bob@example.test", password="bob-demo").quit()
# The first session goes on, and its DELE counts.
eq(p1.stat()[0], 2, "STAT in the first session")
p1.quit()
p3 = connect("tls:" + PORT, cafile=CA)
eq(p3.stat()[0], 2, "STAT after the first session's QUIT")
p3.quit()
PY
	[ -e "$ALICE/postroom-pop3.lock" ]
}

@test "PIPELINING: STAT LIST UIDL TOP RETR DELE NOOP RSET QUIT in one write get their answers, in order" {
	deliver_corpus
	alice_dir
	pop3_cert
	pop3s
	pop3_script <<'PY'
p = connect("tls:" + PORT, cafile=CA)
files = maildir_files(MAILDIR)
exp = expected_uidls(MAILDIR)
byuidl = {v: k for k, v in exp.items()}
_, lines, _ = p.uidl()
uid = dict(l.decode().split() for l in lines)
data = {n: read(files[byuidl[uid[str(n)]]]) for n in range(1, 8)}
total = sum(wire_size(d) for d in data.values())
cmds = ["STAT", "LIST", "UIDL 2", "TOP 3 1", "RETR 4", "DELE 5", "LIST 5", "NOOP", "RSET", "STAT",
        "RETR 1", "QUIT"]
p.sock.sendall(b"".join(c.encode() + b"\r\n" for c in cmds))
f = p.file
def line():
    l = f.readline()
    check(l.endswith(b"\r\n"), "a line without CRLF: %r" % l)
    return l[:-2]
def multi():
    out = []
    while True:
        l = f.readline()
        if l == b".\r\n":
            return b"".join(out)
        check(l, "EOF in a multi-line answer")
        out.append(l)
eq(line(), b"+OK 7 %d" % total, "STAT")
check(line().startswith(b"+OK"), "LIST")
eq(multi(), b"".join(b"%d %d\r\n" % (n, wire_size(data[n])) for n in range(1, 8)), "LIST")
eq(line(), b"+OK 2 " + uid["2"].encode(), "UIDL 2")
check(line().startswith(b"+OK"), "TOP 3 1")
w = wire(data[3])
head = w[:w.index(b"\r\n\r\n") + 4]
rest = w[len(head):].split(b"\r\n")
eq(multi(), head + (rest[0] + b"\r\n" if rest[0] or len(rest) > 1 else b""), "TOP 3 1")
eq(line(), b"+OK %d octets" % wire_size(data[4]), "RETR 4")
eq(multi(), wire(data[4]), "RETR 4")
check(line().startswith(b"+OK"), "DELE 5")
check(line().startswith(b"-ERR"), "LIST 5 after DELE 5")
check(line().startswith(b"+OK"), "NOOP")
check(line().startswith(b"+OK"), "RSET")
eq(line(), b"+OK 7 %d" % total, "STAT after RSET")
eq(line(), b"+OK %d octets" % wire_size(data[1]), "RETR 1")
eq(multi(), wire(data[1]), "RETR 1")
check(line().startswith(b"+OK"), "QUIT")
eq(f.read(), b"", "EOF after QUIT")
PY
}

@test "POP3_LOGIN_DELAY: CAPA says LOGIN-DELAY; a second login of the same mailbox too soon is -ERR [LOGIN-DELAY], later it works" {
	alice_dir
	run -0 pop3_session POP3_LOGIN_DELAY=3600 <<'EOF'
CAPA
USER alice@example.test
PASS alice-demo
CAPA
QUIT
EOF
	assert_line --regexp '^LOGIN-DELAY 3600$'
	assert_after_capa 1 '+OK Logged in'
	run -0 pop3_session POP3_LOGIN_DELAY=3600 <<'EOF'
USER alice@example.test
PASS alice-demo
STAT
QUIT
EOF
	assert_line -n 2 --regexp '^-ERR \[LOGIN-DELAY\] '
	refute_line --regexp '^\+OK 3 '
	# bob is another mailbox.
	run -0 pop3_session POP3_LOGIN_DELAY=3600 <<'EOF'
USER bob@example.test
PASS bob-demo
QUIT
EOF
	assert_line -n 2 '+OK Logged in'
	# Without POP3_LOGIN_DELAY: no delay, no capability.
	run -0 pop3_session <<'EOF'
CAPA
USER alice@example.test
PASS alice-demo
QUIT
EOF
	refute_line --partial 'LOGIN-DELAY'
	assert_after_capa 1 '+OK Logged in'
	# 2 seconds: refused at once, and logged in once they have passed.
	run -0 pop3_session POP3_LOGIN_DELAY=2 <<'EOF'
USER alice@example.test
PASS alice-demo
QUIT
EOF
	assert_line -n 2 --regexp '^-ERR \[LOGIN-DELAY\] '
	logs_in() {
		pop3_session POP3_LOGIN_DELAY=2 <<<"$(printf 'USER alice@example.test\nPASS alice-demo\nQUIT')" |
			grep -qx '+OK Logged in'
	}
	wait_until 50 logs_in || fail "no login within 5 seconds with POP3_LOGIN_DELAY=2"
}

# --- real clients -----------------------------------------------------------------------------------

# fetched_check DIR: DIR holds one file for each of alice's seven messages, each with the
# original's header lines and body (a client may add header lines of its own and end lines its way).
fetched_check() {
	pop3_script "$1" <<'PY'
import glob
got = {}
for path in glob.glob(ARGS[0] + "/*") + glob.glob(ARGS[0] + "/new/*") + glob.glob(ARGS[0] + "/cur/*"):
    if os.path.isfile(path):
        data = read(path).replace(b"\r\n", b"\n")
        m = re.search(rb"(?im)^Message-Id: <([^@]+)@", data)
        check(m, "a fetched file without Message-Id: %s" % path)
        check(m.group(1).decode() not in got, "fetched twice: " + m.group(1).decode())
        got[m.group(1).decode()] = data
want = {}
for path in maildir_files(MAILDIR).values():
    data = read(path)
    want[re.search(rb"(?im)^Message-Id: <([^@]+)@", data).group(1).decode()] = data
eq(sorted(got), sorted(want), "the messages fetched")
for name, data in want.items():
    if not data.endswith(b"\n"):
        data += b"\n"
    head, body = data.split(b"\n\n", 1)
    ghead, gbody = got[name].split(b"\n\n", 1)
    eq(gbody, body, "the body of " + name)
    for h in head.split(b"\n"):
        check(h in ghead.split(b"\n"), "%s: header line %r missing" % (name, h))
PY
}

@test "fetchmail over STLS (tls-server -n), UIDL and keep, into a Maildir: every message once; a second run fetches nothing new" {
	command -v fetchmail >/dev/null || fail "fetchmail is not installed"
	local ids_before
	ids_before=$(stat -c '%Y %s' "$HOME/.fetchids" 2>/dev/null || echo none)
	deliver_corpus
	alice_dir
	pop3_cert
	pop3_stls
	local T=$BATS_TEST_TMPDIR got=$BATS_TEST_TMPDIR/fetched
	# The MDA: maildir-deliver into a local Maildir, with the envelope fetchmail gives (%F %T).
	printf '#!/bin/sh\nSENDER=$1 RECIPIENT=$2 exec %s/maildir-deliver %s\n' "$BIN" "$got" \
		>"$T/mda"
	chmod 755 "$T/mda"
	cat >"$T/fetchmailrc" <<EOF
set no syslog
poll 127.0.0.1 protocol POP3 service $SERVER_PORT uidl
	user "alice@example.test" there with password "alice-demo" is "root" here
	keep
	sslproto "TLS1.2+" sslcertck sslcertfile "$POP3_CA"
	mda "$T/mda %F %T"
EOF
	chmod 600 "$T/fetchmailrc"
	run env HOME="$T" FETCHMAILHOME="$T" fetchmail -v -f "$T/fetchmailrc" -i "$T/fetchids" --nosyslog
	[ "$status" -eq 0 ] || fail "$(printf 'fetchmail: exit %s\n%s' "$status" "$output")"
	assert_output --partial 'STLS'
	assert_output --partial '7 messages'
	[ "$(ls "$got/new" | wc -l)" -eq 7 ] || fail "$(ls -R "$got")"
	fetched_check "$got"
	[ -s "$T/fetchids" ]
	# Kept on the server.
	[ "$(find "$ALICE/cur" "$ALICE/new" -type f | wc -l)" -eq 7 ]
	# The second run: nothing new (exit 1, "no mail"), nothing written.
	run env HOME="$T" FETCHMAILHOME="$T" fetchmail -v -f "$T/fetchmailrc" -i "$T/fetchids" --nosyslog
	[ "$status" -eq 1 ] || fail "$(printf 'fetchmail, second run: exit %s\n%s' "$status" "$output")"
	[ "$(ls "$got/new" | wc -l)" -eq 7 ] || fail "$(ls -R "$got")"
	# A new message: the third run fetches it alone.
	printf 'Subject: later\nMessage-Id: <later@extra.test>\n\nlater\n' >"$ALICE/new/1700000400.M400P1.host.test"
	run env HOME="$T" FETCHMAILHOME="$T" fetchmail -v -f "$T/fetchmailrc" -i "$T/fetchids" --nosyslog
	[ "$status" -eq 0 ] || fail "$(printf 'fetchmail, third run: exit %s\n%s' "$status" "$output")"
	[ "$(ls "$got/new" | wc -l)" -eq 8 ] || fail "$(ls -R "$got")"
	fetched_check "$got"
	# The machine's own ~/.fetchids was not touched.
	assert_equal "$(stat -c '%Y %s' "$HOME/.fetchids" 2>/dev/null || echo none)" "$ids_before"
}

@test "getmail6 over implicit TLS (tls-server) into a Maildir, read_all = false: every message once; a second run fetches nothing" {
	command -v getmail >/dev/null || fail "getmail6 is not installed"
	deliver_corpus
	alice_dir
	pop3_cert
	pop3s
	# getmail delivers to a Maildir only as another user than root (nobody here), which must
	# reach it: a private directory (the test's own may be 0700).
	make_private_dir
	local T=$BATS_TEST_TMPDIR local=$PRIVATE_DIR/local
	mkdir -p "$local"/{cur,new,tmp} "$T/getmail"
	chown -R nobody:nogroup "$local"
	cat >"$T/getmail/getmailrc" <<EOF
[retriever]
type = SimplePOP3SSLRetriever
server = 127.0.0.1
port = $SERVER_PORT
username = alice@example.test
password = alice-demo
ca_certs = $POP3_CA
ssl_cert_hostname = 127.0.0.1

[destination]
type = Maildir
path = $local/
user = nobody

[options]
read_all = false
delete = false
delivered_to = false
received = false
verbose = 2
EOF
	run env HOME="$T" getmail --getmaildir "$T/getmail" --rcfile getmailrc
	[ "$status" -eq 0 ] || fail "$(printf 'getmail: exit %s\n%s' "$status" "$output")"
	assert_output --regexp '7 messages .*retrieved'
	[ "$(ls "$local/new" | wc -l)" -eq 7 ] || fail "$(ls -R "$local")"
	fetched_check "$local"
	run env HOME="$T" getmail --getmaildir "$T/getmail" --rcfile getmailrc
	[ "$status" -eq 0 ] || fail "$(printf 'getmail, second run: exit %s\n%s' "$status" "$output")"
	assert_output --regexp '0 messages .*retrieved'
	[ "$(ls "$local/new" | wc -l)" -eq 7 ] || fail "$(ls -R "$local")"
	[ "$(find "$ALICE/cur" "$ALICE/new" -type f | wc -l)" -eq 7 ]
}

@test "checkpassword trouble counts as a failed login: after POP3_AUTH_FAILURES of them the connection closes" {
	run -0 pop3_session USERDB="$BATS_TEST_TMPDIR/missing.cdb" POP3_AUTH_FAILURES=2 <<'EOF'
USER alice@example.test
PASS alice-demo
USER alice@example.test
PASS alice-demo
CAPA
EOF
	assert_line -n 2 --regexp '^-ERR \[SYS/TEMP\] '
	assert_line -n 4 --regexp '^-ERR \[SYS/TEMP\] '
	assert_equal "${#lines[@]}" 5	# closed: CAPA got no answer
}

@test "POP3_LOGIN_TIMEOUT bounds the whole login, however often the client speaks" {
	local fifo=$BATS_TEST_TMPDIR/in out=$BATS_TEST_TMPDIR/out
	mkfifo "$fifo"
	env POP3_AUTH_PLAINTEXT=1 POP3_LOGIN_TIMEOUT=2 pop3-serve $CHECKPW <"$fifo" >"$out" 2>/dev/null &
	local pid=$!
	track_pid "$pid"
	# A CAPA every 0.3 s: never idle, but never logged in either.
	drip_fifo "$fifo" 'CAPA\r\n' 40 0.3 &
	track_pid $!
	wait_until 60 sh -c "! kill -0 $pid 2>/dev/null"
	run grep -c 'Disconnected for inactivity' "$out"
	assert_output 1
}

@test "TOP answers a bare +OK; a line count past any message's (even past 2^64) sends it whole" {
	alice_dir
	local whole top
	whole=$(printf 'RETR 1\r\nQUIT\r\n' | (cd "$ALICE" && MAILDIR=$ALICE pop3-serve -A 2>/dev/null) | sed -n '3,/^\.\r$/p')
	run -0 pop3_preauth "$ALICE" <<'EOF'
TOP 1 0
TOP 1 99999999999999999999999
QUIT
EOF
	assert_line -n 1 '+OK'
	top=$(printf 'TOP 1 99999999999999999999999\r\nQUIT\r\n' | (cd "$ALICE" && MAILDIR=$ALICE pop3-serve -A 2>/dev/null) | sed -n '3,/^\.\r$/p')
	assert_equal "$top" "$whole"
	[ -n "$whole" ]
}

@test "a message that cannot be read at login fails the login with [SYS/TEMP]; QUIT never removes what was not DELE'd" {
	# A Maildir of nobody's with one file only root can read: -A, started as root, becomes
	# nobody and cannot read it.
	local md=$BATS_TEST_TMPDIR/nobody
	mkdir -p "$md"/{cur,new,tmp}
	printf 'Subject: mine\n\nx\n' >"$md/cur/1.M1P1.host:2,S"
	printf 'Subject: locked\n\nx\n' >"$md/cur/2.M2P1.host:2,S"
	chown -R "$NOBODY_UID:$NOBODY_GID" "$md"
	chown 0:0 "$md/cur/2.M2P1.host:2,S"
	chmod 600 "$md/cur/2.M2P1.host:2,S"
	# From a file, not a pipe: the session ends before it reads STAT, which would make a
	# writer on a pipe die of SIGPIPE.
	printf 'STAT\r\nQUIT\r\n' >"$BATS_TEST_TMPDIR/in"
	run -0 bash -c 'cd "$1" && MAILDIR=$1 pop3-serve -A <"$2" 2>/dev/null | tr -d "\r"' - \
		"$md" "$BATS_TEST_TMPDIR/in"
	assert_line -n 0 --regexp '^-ERR \[SYS/TEMP\] '
	assert_equal "${#lines[@]}" 1
	[ -f "$md/cur/2.M2P1.host:2,S" ] && [ -f "$md/cur/1.M1P1.host:2,S" ]
}

@test "QUIT removes exactly what was DELE'd, though messages flagged \\Deleted arrived during the session" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	printf 'Subject: one\n\nx\n' >"$md/cur/1.M1P1.host:2,"
	run -0 "$PYTHON" - "$md" "$BIN/pop3-serve" <<'PYEOF'
import os, subprocess, sys
md, prog = sys.argv[1], sys.argv[2]
p = subprocess.Popen([prog, "-A"], cwd=md, env=dict(os.environ, MAILDIR=md),
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
def say(line):
    p.stdin.write(line + b"\r\n"); p.stdin.flush()
    return p.stdout.readline()
assert p.stdout.readline().startswith(b"+OK")
assert say(b"STAT") == b"+OK 1 19\r\n"
assert say(b"DELE 1").startswith(b"+OK")
# Someone else's messages, flagged \Deleted (T), arrive before the QUIT.
for i in range(2, 40):
    open("%s/cur/%d.M%dP1.host:2,T" % (md, i, i), "w").write("Subject: other\n\nx\n")
assert say(b"QUIT").startswith(b"+OK")
p.wait()
left = sorted(os.listdir(md + "/cur"))
assert len(left) == 38 and not any(f.startswith("1.") for f in left), left
PYEOF
}

@test "a password pipelined after a failed login never reaches the environment of the program checkpassword runs" {
	local wrap=$BATS_TEST_TMPDIR/checkpw-wrap envs=$BATS_TEST_TMPDIR/envs
	# checkpassword-mysql, with the environment it gets written down first.
	printf '#!/bin/sh\nenv >>%s\nexec "$@"\n' "$envs" >"$wrap"
	chmod 755 "$wrap"
	run -0 bash -c 'printf "USER alice@example.test\r\nPASS wrong\r\nUSER alice@example.test\r\nPASS alice-demo\r\nSTAT\r\nQUIT\r\n" |
		env POP3_AUTH_PLAINTEXT=1 pop3-serve "$1" $2 2>>"$3" | tr -d "\r"' - "$wrap" "$CHECKPW" "$POP3_LOG"
	assert_line -n 2 '-ERR [AUTH] Authentication failed'
	assert_line -n 4 '+OK Logged in'
	assert_line -n 5 --regexp '^\+OK 0 0$'
	# Two runs: the first had nothing pending (the next lines log in again), the second STAT
	# and QUIT.
	run grep -c '^POP3LOGIN=1$' "$envs"
	assert_output 2
	run grep '^POP3LOGINPENDING=' "$envs"
	assert_output "POP3LOGINPENDING=$(printf 'STAT\r\nQUIT\r\n' | base64 -w0)"
}

@test "under tls-server nothing waits for a login: a refused PASS is answered by the next process, which reads on under TLS; a session that dies is not taken back" {
	alice_dir
	pop3_cert
	pop3_stls -c2 -S2
	run -0 pop3_py - "$SERVER_PORT" "$SERVER_PID" <<'PY'
import os, re, signal, sys
from pool_session import children, session_processes, starttls
port, master = int(sys.argv[1]), int(sys.argv[2])
s, f = starttls(port, b"STLS")
# One write: the refusal ends a process, and the next must find what came after it.
s.sendall(b"USER alice@example.test\r\nPASS wrong\r\nCAPA\r\nUSER alice@example.test\r\n"
          b"PASS alice-demo\r\nSTAT\r\n")
while True:
    line = f.readline().decode().rstrip()
    print(line)
    if re.match(r"\+OK \d+ \d+$", line):
        break
for cmdline, below in session_processes(master):
    print("session process:", cmdline, "children:", below)
# The session's process dies: the client is cut off, not taken back to before its login.
for w in children(master):
    for pool in children(w):
        for session in children(pool):
            os.kill(session, signal.SIGKILL)
print("after the kill:", repr(f.read().decode()))
PY
	assert_line -n 0 '+OK'
	assert_line -n 1 --regexp '^-ERR \[AUTH\] '
	# Still under TLS: USER offered, STLS not.
	assert_line -n 2 --regexp '^\+OK '
	assert_line 'USER'
	refute_line 'STLS'
	assert_line '+OK Logged in'
	assert_line --regexp '^\+OK [0-9]+ [0-9]+$'
	assert_line --regexp "^session process: $BIN/pop3-serve -A children: 0$"
	assert_equal "$(grep -c '^session process:' <<<"$output")" 1
	assert_line "after the kill: ''"
}
