#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# Real mail clients against imap-serve over implicit TLS (tcpserver + tls-wrap, the 993
# service), logging in through checkpassword-mysql, on mail delivered by smtp-recv and
# queue-run: mbsync (isync) syncs folders both ways and a second run changes nothing; mutt
# reads the INBOX; mutt with CONDSTORE and QRESYNC, and offlineimap3, resynchronise without
# reading a message again (imap-serve's log counts the message files a session read).
#
# mutt is interactive: it runs in a detached tmux session on its own socket, 200x50, and the
# test reads the screen with capture-pane, waiting (wait_until) for what must show before
# sending the next keys. Nothing waits a fixed time.

load lib/common
load lib/smtp
load lib/tls
load lib/imap

setup() {
	export TZ=UTC
	imap_users
	make_queue
	# Signed by a test CA, for 127.0.0.1: mbsync (isync 1.4) checks Host against the
	# certificate's DNS names and CN only, so the address is one of those too.
	make_ca
	make_leaf 127.0.0.1 DNS:127.0.0.1,IP:127.0.0.1 "$BATS_TEST_TMPDIR/cert.pem" "$BATS_TEST_TMPDIR/key.pem"
	run -0 --separate-stderr smtp_session SMTP_HOSTNAME=mx.example.test \
		< <(imap_py "$TESTLIB/imap_client.py" smtp)
	run -0 --separate-stderr queue-run -1
	assert_count 4 msg_count "$(alice_maildir)"
	start_server CERTFILE="$BATS_TEST_TMPDIR/cert.pem" KEYFILE="$BATS_TEST_TMPDIR/key.pem" \
		USERDB="$USERDB" MAILROOT="$MAILROOT" TZ=UTC -- tls-wrap imap-serve $CHECKPW
	TMUX_SOCK=$BATS_TEST_TMPDIR/tmux.sock
}

teardown() {
	if [ -S "${TMUX_SOCK:-}" ]; then
		tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
	fi
	stop_server
	common_teardown
}

# py ARGS <<'PY': a python3 script with imap_client's names, PORT and MAILDIR (alice's);
# shows what it printed when it fails.
py() {
	run imap_py - "$@" < <(
		printf 'import sys\nfrom imap_client import *\nPORT = %s\nMAILDIR = %s\nARGS = sys.argv[1:]\n' \
			"'$SERVER_PORT'" "'$(alice_maildir)'"
		cat
	)
	[ "$status" -eq 0 ] || fail "$(printf 'the script failed (exit %s):\n%s' "$status" "$output")"
}

# snapshot DIR: every file under DIR, its path and a hash of its content, sorted (mbsync's
# lock and journal files left out).
snapshot() {
	(cd "$1" && find . -type f ! -name '.mbsyncstate.lock' ! -name '.mbsyncstate.journal' \
		! -name '.mbsyncstate.new' -print0 | LC_ALL=C sort -z | xargs -0 sha1sum)
}

# mbsync_rc LOCAL: an mbsync configuration for alice on the server, into the Maildir++ LOCAL.
mbsync_rc() {
	cat >"$BATS_TEST_TMPDIR/mbsyncrc" <<EOF
IMAPAccount server
Host 127.0.0.1
Port $SERVER_PORT
User alice@example.test
Pass alice-demo
SSLType IMAPS
CertificateFile $BATS_TEST_TMPDIR/ca.pem
PipelineDepth 1

IMAPStore server
Account server

MaildirStore local
Path $1/
Inbox $1/INBOX
SubFolders Verbatim

Channel alice
Far :server:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
EOF
}

@test "mbsync: folders sync into a local Maildir, a new local message and a flag go back, a second run is a no-op" {
	# A folder with a message of its own on the server, besides INBOX and the special ones.
	py <<'PY'
c = connect("tls:" + PORT)
c.ok("CREATE Projects")
typ, _ = c.append("Projects", "(\\Flagged)", None,
                  b"From: Bob <bob@example.org>\r\nSubject: in a folder\r\nMessage-Id: <p1@example.org>\r\n\r\nfolder body\r\n")
eq(typ, "OK", "APPEND")
c.logout()
PY
	local local=$BATS_TEST_TMPDIR/local
	mkdir -p "$local"
	mbsync_rc "$local"
	run mbsync -c "$BATS_TEST_TMPDIR/mbsyncrc" -V -a
	[ "$status" -eq 0 ] || fail "mbsync: $output"
	# Every folder, every message, byte for byte.
	[ -d "$local/INBOX/cur" ] && [ -d "$local/Projects/cur" ] && [ -d "$local/Sent/cur" ] &&
		[ -d "$local/Trash/cur" ] || fail "$(find "$local" -maxdepth 2)"
	py "$local" <<'PY'
import glob
local = ARGS[0]
for name in ("m1", "m2", "m3", "m4"):
    # (mbsync puts an X-TUID header of its own into the copies it makes.)
    got = re.sub(rb"(?m)^X-TUID: [^\r\n]*\r\n", b"", message_crlf(maildir_file(local + "/INBOX", name)))
    eq(got, message_crlf(maildir_file(MAILDIR, name)), name)
files = glob.glob(local + "/Projects/cur/*") + glob.glob(local + "/Projects/new/*")
eq(len(files), 1, "Projects")
with open(files[0], "rb") as f:
    check(b"folder body" in f.read(), files[0])
check(files[0].endswith(":2,F"), "the \\Flagged flag: " + files[0])
PY
	# Locally: a new message, and m1 flagged.
	printf 'From: Alice <alice@example.test>\nSubject: written offline\nMessage-Id: <m9@example.test>\n\npushed back\n' \
		>"$local/INBOX/new/1700000000.local1.client"
	local f1
	f1=$(grep -rl '^Message-Id: <m1@' "$local/INBOX/cur" "$local/INBOX/new" || true)
	[ -n "$f1" ] || fail "no local m1"
	case $f1 in
	*:2,*) mv "$f1" "$(dirname "$f1")/../cur/$(basename "${f1%%:2,*}"):2,F${f1##*:2,}" ;;
	*) mv "$f1" "$(dirname "$f1")/../cur/$(basename "$f1"):2,F" ;;
	esac
	run mbsync -c "$BATS_TEST_TMPDIR/mbsyncrc" -V -a
	[ "$status" -eq 0 ] || fail "mbsync: $output"
	py <<'PY'
c = connect("tls:" + PORT)
c.ok("EXAMINE INBOX")
mm = msgmap(c)
eq(sorted(mm), ["m1", "m2", "m3", "m4", "m9"], "the server's INBOX")
it = fetch1(c, "FETCH %d (BODY.PEEK[] FLAGS)" % mm["m9"])
eq(re.sub(rb"(?m)^X-TUID: [^\r\n]*\r\n", b"", it["BODY[]"]), b"From: Alice <alice@example.test>\r\nSubject: written offline\r\nMessage-Id: <m9@example.test>\r\n\r\npushed back\r\n", "the pushed message")
it = fetch1(c, "FETCH %d FLAGS" % mm["m1"])
check("\\Flagged" in flagset(it["FLAGS"]), "m1's flags on the server: %r" % it)
c.logout()
PY
	# A third run finds nothing to do: neither side changes.
	snapshot "$(alice_maildir)" >"$BATS_TEST_TMPDIR/server.before"
	snapshot "$local" >"$BATS_TEST_TMPDIR/local.before"
	run mbsync -c "$BATS_TEST_TMPDIR/mbsyncrc" -V -a
	[ "$status" -eq 0 ] || fail "mbsync: $output"
	snapshot "$(alice_maildir)" >"$BATS_TEST_TMPDIR/server.after"
	snapshot "$local" >"$BATS_TEST_TMPDIR/local.after"
	run diff "$BATS_TEST_TMPDIR/server.before" "$BATS_TEST_TMPDIR/server.after"
	[ "$status" -eq 0 ] || fail "the server's Maildir changed: $output"
	run diff "$BATS_TEST_TMPDIR/local.before" "$BATS_TEST_TMPDIR/local.after"
	[ "$status" -eq 0 ] || fail "the local Maildir changed: $output"
}

# mutt_start URL: mutt on URL in a detached tmux session "mutt" (200x50); MUTT_HEADER_CACHE
# and MUTT_EXTRA (muttrc lines) when set.
mutt_start() {
	local home=$BATS_TEST_TMPDIR/mutthome
	mkdir -p "$home"
	cp "$BATS_TEST_TMPDIR/cert.pem" "$home/certs"
	cat >"$home/muttrc" <<EOF
set hostname=client.example.test
set certificate_file=$home/certs
set ssl_verify_host=no
set ssl_starttls=no
set imap_user=alice@example.test
set imap_pass=alice-demo
set imap_passive=yes
set folder=imaps://127.0.0.1:$SERVER_PORT/
set spoolfile=+INBOX
set record=""
set postponed=""
set mbox=""
set move=no
set header_cache="${MUTT_HEADER_CACHE:-}"
set message_cachedir=""
set sort=date-sent
set index_format="IDX %-3C %s"
set pager_index_lines=0
set pager_stop=yes
set help=no
set timeout=0
set mail_check=3600
set confirmappend=no
set quit=yes
set wait_key=no
${MUTT_EXTRA:-}
EOF
	tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -s mutt -x 200 -y 50 \
		env HOME="$home" TERM=xterm mutt -n -F "$home/muttrc" -f "$1" ||
		fail "tmux did not start"
}

# screen_has TEXT: the mutt screen shows TEXT (fixed string).
screen_has() {
	tmux -S "$TMUX_SOCK" capture-pane -p -t mutt 2>/dev/null | grep -qF -- "$1"
}

@test "mutt reads the INBOX over imaps: the index lists the four subjects by date, a message opens with its body" {
	mutt_start "imaps://127.0.0.1:$SERVER_PORT/INBOX"
	wait_until 150 screen_has 'Lunch tomorrow?' ||
		fail "$(printf 'the index did not show:\n%s' "$(tmux -S "$TMUX_SOCK" capture-pane -p -t mutt)")"
	run -0 sh -c "tmux -S '$TMUX_SOCK' capture-pane -p -t mutt | grep '^.\\{0,4\\}IDX'"
	# In date-sent order, the RFC 2047 Subject decoded.
	[ "${#lines[@]}" -eq 4 ] || fail "$output"
	assert_line -n 0 --regexp 'IDX 1 +Meeting agenda'
	assert_line -n 1 --regexp 'IDX 2 +Grüße aus Köln'
	assert_line -n 2 --regexp 'IDX 3 +Report attached'
	assert_line -n 3 --regexp 'IDX 4 +Lunch tomorrow\?'
	# The first message, opened: its body in the pager.
	tmux -S "$TMUX_SOCK" send-keys -t mutt Enter
	wait_until 100 screen_has 'the quick brown fox jumps over the lazy dog.' ||
		fail "$(printf 'the message did not show:\n%s' "$(tmux -S "$TMUX_SOCK" capture-pane -p -t mutt)")"
	screen_has 'Subject: Meeting agenda' || fail "$(tmux -S "$TMUX_SOCK" capture-pane -p -t mutt)"
	# Back to the index and out: mutt ends, its session with it; reading set \Seen on the server.
	tmux -S "$TMUX_SOCK" send-keys -t mutt q
	wait_until 50 screen_has 'IDX 4' || fail "$(tmux -S "$TMUX_SOCK" capture-pane -p -t mutt)"
	tmux -S "$TMUX_SOCK" send-keys -t mutt q
	wait_until 100 sh -c "! tmux -S '$TMUX_SOCK' has-session -t mutt 2>/dev/null" || fail "mutt did not quit"
	py <<'PY'
c = connect("tls:" + PORT)
c.ok("EXAMINE INBOX")
mm = msgmap(c)
got = {n: "\\Seen" in flagset(fetch1(c, "FETCH %d FLAGS" % s)["FLAGS"]) for n, s in mm.items()}
eq(got, {"m1": True, "m2": False, "m3": False, "m4": False}, "\\Seen after mutt read m1")
c.logout()
PY
}

# reads: the read=N of every "logged out" line of the server's log, one per line.
reads() {
	sed -n 's/.*: logged out read=\([0-9]*\).*/\1/p' "$SERVER_LOG"
}

# reads_since N: the sum of the read=N of the "logged out" lines after the first N.
reads_since() {
	reads | tail -n +$(($1 + 1)) | awk '{ n += $1 } END { print n + 0 }'
}

# mutt_quit: q in mutt's index, and mutt gone.
mutt_quit() {
	tmux -S "$TMUX_SOCK" send-keys -t mutt q
	wait_until 100 sh -c "! tmux -S '$TMUX_SOCK' has-session -t mutt 2>/dev/null" || fail "mutt did not quit"
}

# mutt_visit N: mutt (as mutt_start) on the INBOX until its index shows N messages, then out;
# waits for its session's "logged out" line.
mutt_visit() {
	local n=$1 before
	before=$(reads | wc -l)
	mutt_start "imaps://127.0.0.1:$SERVER_PORT/INBOX"
	wait_until 150 screen_has "IDX $n " ||
		fail "$(printf 'the index did not show %s messages:\n%s' "$n" "$(tmux -S "$TMUX_SOCK" capture-pane -p -t mutt)")"
	mutt_quit
	wait_until 100 sh -c "[ \$(sed -n 's/.*: logged out read=//p' '$SERVER_LOG' | wc -l) -gt $before ]" ||
		fail "$(printf 'no logout:\n%s' "$(cat "$SERVER_LOG")")"
}

@test "mutt with imap_condstore, imap_qresync and a header cache: the second visit reads no message, and learns of a flag and an expunge" {
	export MUTT_HEADER_CACHE=$BATS_TEST_TMPDIR/mutthome/hcache
	export MUTT_EXTRA=$'set imap_condstore=yes\nset imap_qresync=yes\nset index_format="IDX %-3C %Z %s"'
	mutt_visit 4
	[ -f "$(alice_maildir)/postroom-modseq" ] || fail "mutt did not turn CONDSTORE on"
	[ "$(reads | tail -1)" -ge 1 ] || fail "the first visit read nothing: $(reads)"
	py <<'PY'
c = connect("tls:" + PORT)
c.ok("SELECT INBOX")
mm = msgmap(c)
c.ok("STORE %d +FLAGS (\\Flagged)" % mm["m3"])
c.ok("STORE %d +FLAGS (\\Deleted)" % mm["m2"])
c.ok("EXPUNGE")
c.logout()
PY
	local before
	before=$(reads | wc -l)
	mutt_start "imaps://127.0.0.1:$SERVER_PORT/INBOX"
	wait_until 150 screen_has 'IDX 3 ' || fail "$(tmux -S "$TMUX_SOCK" capture-pane -p -t mutt)"
	# The flag came with QRESYNC's FETCH (m3, Report attached, shows !), the expunge with
	# its VANISHED (EARLIER): m2 is gone.
	run -0 sh -c "tmux -S '$TMUX_SOCK' capture-pane -p -t mutt | grep '^.\\{0,4\\}IDX'"
	assert_output --regexp 'IDX [0-9] .*! +Report attached'
	refute_line --regexp '!.*Meeting agenda'
	refute_line --regexp '!.*Lunch tomorrow'
	refute_output --partial 'Grüße aus Köln'
	mutt_quit
	wait_until 100 sh -c "[ \$(sed -n 's/.*: logged out read=//p' '$SERVER_LOG' | wc -l) -gt $before ]" ||
		fail "$(printf 'no logout:\n%s' "$(cat "$SERVER_LOG")")"
	[ "$(reads_since "$before")" -eq 0 ] || fail "the second visit read messages: $(reads)"
}

@test "offlineimap3: a second sync reads no message on the server; a new message is the only one read by the third" {
	local rc=$BATS_TEST_TMPDIR/offlineimaprc local_md=$BATS_TEST_TMPDIR/oi-mail before
	cat >"$rc" <<EOF
[general]
accounts = alice
metadata = $BATS_TEST_TMPDIR/oi-meta
ui = quiet

[Account alice]
localrepository = near
remoterepository = far

[Repository near]
type = Maildir
localfolders = $local_md

[Repository far]
type = IMAP
remotehost = 127.0.0.1
remoteport = $SERVER_PORT
remoteuser = alice@example.test
remotepass = alice-demo
ssl = yes
sslcacertfile = $BATS_TEST_TMPDIR/ca.pem
maxconnections = 1
folderfilter = lambda name: name == 'INBOX'
EOF
	before=$(reads | wc -l)
	run -0 timeout 120 offlineimap -c "$rc" -o
	[ "$(find "$local_md/INBOX/cur" "$local_md/INBOX/new" -type f | wc -l)" -eq 4 ] ||
		fail "$(find "$local_md"; printf '%s\n' "$output")"
	[ "$(reads_since "$before")" -ge 4 ] || fail "the first sync read $(reads_since "$before")"
	before=$(reads | wc -l)
	run -0 timeout 120 offlineimap -c "$rc" -o
	[ "$(reads | wc -l)" -gt "$before" ] || fail "no session logged out: $(cat "$SERVER_LOG")"
	[ "$(reads_since "$before")" -eq 0 ] || fail "the second sync read $(reads_since "$before")"
	# One more message: the third sync reads it and nothing else.
	printf 'From: a@example.org\nSubject: late\nMessage-Id: <late@example.org>\n\nlate\n' |
		SENDER=a@example.org RECIPIENT=alice@example.test maildir-deliver "$(alice_maildir)"
	before=$(reads | wc -l)
	run -0 timeout 120 offlineimap -c "$rc" -o
	[ "$(reads_since "$before")" -eq 1 ] || fail "the third sync read $(reads_since "$before")"
	[ "$(find "$local_md/INBOX/cur" "$local_md/INBOX/new" -type f | wc -l)" -eq 5 ] ||
		fail "$(find "$local_md")"
}
