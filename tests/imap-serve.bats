#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# imap-serve before and at login, and what it does with bad input: on stdin/stdout, with the
# real checkpassword-mysql and the demo users (the TLS handshakes are in
# imap-serve-sessions.bats). A test that needs TLS to be on says so with SSL_PROTOCOL, as
# tls-wrap without -n does.

load lib/common
load lib/smtp
load lib/imap

setup() {
	imap_users
}

teardown() {
	common_teardown
}

@test "before TLS: LOGINDISABLED, and LOGIN and AUTHENTICATE are refused with PRIVACYREQUIRED" {
	run -0 imap_session IMAP_AUTH_PLAINTEXT=0 <<'EOF'
a CAPABILITY
b LOGIN alice@example.test alice-demo
c AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1kZW1v
d LOGOUT
EOF
	assert_line -n 0 --regexp '^\* OK \[CAPABILITY IMAP4rev1 .*LOGINDISABLED\] '
	assert_line -n 1 --regexp '^\* CAPABILITY IMAP4rev1 .*LOGINDISABLED$'
	refute_line --partial 'AUTH=PLAIN'
	assert_line -n 3 --regexp '^b NO \[PRIVACYREQUIRED\] '
	assert_line -n 4 --regexp '^c NO \[PRIVACYREQUIRED\] '
	assert_line -n 5 '* BYE Logging out'
	assert_line -n 6 --regexp '^d OK '
}

@test "under TLS: AUTH=PLAIN, no LOGINDISABLED, and LOGIN hands over to the session" {
	run -0 imap_session IMAP_AUTH_PLAINTEXT=0 SSL_PROTOCOL=TLSv1.3 <<'EOF'
a CAPABILITY
b LOGIN alice@example.test alice-demo
c SELECT INBOX
d LOGOUT
EOF
	assert_line -n 1 --regexp '^\* CAPABILITY IMAP4rev1 .*AUTH=PLAIN'
	refute_line --partial LOGINDISABLED
	assert_line --regexp '^b OK \[CAPABILITY IMAP4rev1 .*UIDPLUS.*\] Logged in$'
	assert_line '* 0 EXISTS'
	assert_line --regexp '^c OK \[READ-WRITE\] '
	assert_line --regexp '^d OK '
	# The session ran in alice's Maildir, which checkpassword-mysql made.
	[ -d "$(alice_maildir)/cur" ]
}

@test "AUTHENTICATE PLAIN with an initial response (SASL-IR) and after a continuation" {
	local ir
	ir=$(printf '\0alice@example.test\0alice-demo' | base64 -w0)
	run -0 imap_session <<EOF
a AUTHENTICATE PLAIN $ir
b LOGOUT
EOF
	assert_line --regexp '^a OK \[CAPABILITY .*\] Logged in$'
	run -0 imap_session <<EOF
a AUTHENTICATE PLAIN
$ir
b LOGOUT
EOF
	assert_line -n 1 '+ '
	assert_line --regexp '^a OK \[CAPABILITY .*\] Logged in$'
	# Another authorization identity than the one the password proves is refused.
	ir=$(printf 'bob@example.test\0alice@example.test\0alice-demo' | base64 -w0)
	run -0 imap_session <<EOF
a AUTHENTICATE PLAIN $ir
b AUTHENTICATE PLAIN
*
c AUTHENTICATE CRAM-MD5
d LOGOUT
EOF
	assert_line -n 1 --regexp '^a NO \[AUTHORIZATIONFAILED\] '
	assert_line -n 3 --regexp '^b BAD '
	assert_line -n 4 --regexp '^c NO '
}

@test "wrong passwords: NO [AUTHENTICATIONFAILED], and after the third the connection closes" {
	run -0 imap_session <<'EOF'
a LOGIN alice@example.test wrong1
b LOGIN alice@example.test wrong2
c LOGIN nobody@example.test wrong3
d LOGIN alice@example.test alice-demo
EOF
	assert_line -n 1 --regexp '^a NO \[AUTHENTICATIONFAILED\] '
	assert_line -n 2 --regexp '^b NO \[AUTHENTICATIONFAILED\] '
	assert_line -n 3 --regexp '^c NO \[AUTHENTICATIONFAILED\] '
	assert_line -n 4 '* BYE Too many failed logins'
	refute_line --regexp '^d '
	[ "${#lines[@]}" -eq 5 ]
	# A right password after a wrong one logs in (the limit is per connection, not a lockout).
	run -0 imap_session IMAP_AUTH_FAILURES=2 <<'EOF'
a LOGIN alice@example.test wrong1
b LOGIN alice@example.test alice-demo
c LOGOUT
EOF
	assert_line --regexp '^b OK \[CAPABILITY '
}

@test "commands sent right after LOGIN, before its answer, reach the session" {
	# Pipelined in one write: the pre-login process has read them already.
	run -0 imap_raw < <(printf 'a LOGIN alice@example.test alice-demo\r\nb SELECT INBOX\r\nc LOGOUT\r\n')
	assert_line --regexp '^a OK \[CAPABILITY '
	assert_line --regexp '^b OK \[READ-WRITE\] '
	assert_line --regexp '^c OK '
}

@test "a password pipelined after a failed LOGIN never reaches the environment of the program checkpassword runs" {
	local wrap=$BATS_TEST_TMPDIR/checkpw-wrap envs=$BATS_TEST_TMPDIR/envs
	# The checkpassword program, with the environment it gets written down first.
	printf '#!/bin/sh\nenv >>%s\nexec "$@"\n' "$envs" >"$wrap"
	chmod 755 "$wrap"
	run -0 bash -c 'printf "a LOGIN alice@example.test wrong\r\nb login alice@example.test alice-demo\r\nc SELECT INBOX\r\nd LOGOUT\r\n" |
		env IMAP_AUTH_PLAINTEXT=1 imap-serve "$1" $2 2>>"$3" | tr -d "\r"' - "$wrap" "$CHECKPW" "$IMAP_LOG"
	assert_line --regexp '^a NO \[AUTHENTICATIONFAILED\] '
	assert_line --regexp '^b OK \[CAPABILITY '
	assert_line --regexp '^c OK \[READ-WRITE\] '
	# Two runs: the first had nothing pending (the next command logs in again), the second
	# SELECT and LOGOUT.
	run grep -c '^IMAPLOGINTAG=' "$envs"
	assert_output 2
	run grep '^IMAPLOGINPENDING=' "$envs"
	assert_output "IMAPLOGINPENDING=$(printf 'c SELECT INBOX\r\nd LOGOUT\r\n' | base64 -w0)"
}

@test "commands that need a login, or do not exist, are BAD before it; ID and NOOP are fine" {
	run -0 imap_session <<'EOF'
a SELECT INBOX
b ID ("name" "test")
c NOOP
d FROBNICATE
e LOGOUT
EOF
	assert_line -n 1 --regexp '^a BAD '
	assert_line -n 2 '* ID ("name" "postroom")'
	assert_line -n 3 --regexp '^b OK '
	assert_line -n 4 --regexp '^c OK '
	assert_line -n 5 --regexp '^d BAD '
}

@test "IMAP_LOGIN_USER: the parser runs as that user, and a login still reaches the Maildir" {
	[ "$(id -u)" = 0 ] || skip "needs root to change users"
	local fifo=$BATS_TEST_TMPDIR/in out=$BATS_TEST_TMPDIR/out
	mkfifo "$fifo"
	env IMAP_AUTH_PLAINTEXT=1 IMAP_LOGIN_USER=nobody imap-serve $CHECKPW <"$fifo" >"$out" 2>&1 &
	local parent=$!
	track_pid "$parent"
	exec 5>"$fifo"
	wait_until 50 grep -q '^\* OK' "$out"
	local parser
	parser=$(pgrep -P "$parent")
	[ -n "$parser" ]
	# The parser: nobody's uid, every one of its four (real, effective, saved, fs).
	run awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$parser/status"
	assert_output "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID"
	run awk '/^Uid:/ { print $2 }' "/proc/$parent/status"
	assert_output 0
	printf 'a LOGIN alice@example.test alice-demo\r\nb SELECT INBOX\r\nc LOGOUT\r\n' >&5
	exec 5>&-
	wait_until 100 sh -c "! kill -0 $parent 2>/dev/null"
	run cat "$out"
	assert_line --regexp '^a OK \[CAPABILITY '
	assert_line --regexp '^b OK \[READ-WRITE\] '
}

@test "IMAP_LOGIN_USER not in /etc/passwd: one line, exit 111, before any greeting" {
	run -111 env IMAP_LOGIN_USER=no-such-user-here imap-serve $CHECKPW </dev/null
	assert_output "imap-serve: fatal: IMAP_LOGIN_USER no-such-user-here: no such user in /etc/passwd"
}

@test "-A run as root becomes the Maildir's owner: what it writes belongs to that user" {
	[ "$(id -u)" = 0 ] || skip "needs root to change users"
	make_private_dir
	local md=$PRIVATE_DIR/owned
	mkdir -p "$md"/{cur,new,tmp}
	chown -R nobody:nogroup "$md"
	chmod 700 "$md"
	run -0 imap_preauth "$md" <<'EOF'
a APPEND INBOX {5+}
hello
b LOGOUT
EOF
	assert_line --regexp '^a OK \[APPENDUID [0-9]+ 1\] '
	run find "$md" -user root
	assert_output ''
	run find "$md/cur" "$md/new" -type f -user nobody
	[ "${#lines[@]}" -eq 1 ]
}

@test "bad input: an over-long line closes with BYE, garbage is BAD, and 20 BADs in a row close" {
	run -0 imap_raw < <("$PYTHON" -c 'import sys; sys.stdout.write("a NOOP " + "x" * 70000 + "\r\nb LOGOUT\r\n")')
	assert_line -n 1 --regexp '^\* BYE .*too long'
	refute_line --regexp '^b '
	run -0 imap_raw < <(printf '\x01\x02\x03 garbage\r\n(((\r\n"unterminated\r\n)\r\n* NOOP\r\na NOOP\r\n')
	assert_line -n 1 --regexp '^\* BAD '
	assert_line --regexp '^a OK '
	run -0 imap_raw < <(for i in $(seq 25); do printf 'a%d WHAT\r\n' "$i"; done)
	assert_line '* BYE Too many bad commands'
	refute_line --regexp '^a21 '
}

@test "bad input: literals of 4 GB are refused before a byte of them is read, 10000 parentheses are BAD" {
	run -0 imap_raw < <(printf 'a LOGIN {4294967296}\r\nb NOOP\r\n')
	assert_line -n 1 --regexp '^a NO \[TOOBIG\] '
	assert_line -n 2 --regexp '^b OK '
	# A literal the client sends without waiting (LITERAL+) is not skipped: BAD [TOOBIG]
	# (RFC 7888 section 4), then BYE.
	run -0 imap_raw < <(printf 'a LOGIN {4294967296+}\r\nxxxx\r\nb NOOP\r\n')
	assert_line -n 1 --regexp '^a BAD \[TOOBIG\] '
	assert_line -n 2 --regexp '^\* BYE '
	refute_line --regexp '^b '
	run -0 imap_raw < <("$PYTHON" -c 'import sys; sys.stdout.write("a ID " + "(" * 10000 + ")" * 10000 + "\r\nb NOOP\r\n")')
	assert_line -n 1 --regexp '^a BAD .*nested'
	assert_line -n 2 --regexp '^b OK '
}

@test "bad input after login: what a peer sends does not grow memory without bound" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	# 200 commands of 60 kB of nested lists and literals each, and a 50 MB APPEND refused
	# against a 1 MB limit: the peak stays far below what they add up to.
	run -0 /usr/bin/time -f 'maxrss %M' "$BASH" -c '
		"$1" -c "import sys
sys.stdout.write(\"x SELECT INBOX\r\n\")
for i in range(200):
    sys.stdout.write(\"a%d SEARCH \" % i + \"(\" * 60 + \"ALL\" + \")\" * 60 + \" TEXT {60000+}\r\n\" + \"y\" * 60000 + \"\r\n\")
sys.stdout.write(\"b APPEND INBOX {52428800}\r\nc LOGOUT\r\n\")" |
		(cd "$2" && MAILDIR="$2" IMAP_APPENDLIMIT=1048576 imap-serve -A 2>/dev/null) | tail -n 4
	' - "$PYTHON" "$md"
	assert_line --regexp '^b NO \[TOOBIG\] '
	assert_line --regexp '^c OK '
	local rss
	rss=$(sed -n 's/^maxrss //p' <<<"$output")
	[ "$rss" -lt 30000 ] || fail "peak memory $rss kB"
}

@test "QUOTA: GETQUOTAROOT reports maildirsize's limit and usage; APPEND over it is NO [OVERQUOTA]" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	printf '2048S,10C\n1000 1\n' >"$md/maildirsize"
	printf 'Subject: x\n\n%01000d\n' 0 >"$md/cur/1.M1P1.host,S=1000:2,S"
	run -0 imap_preauth "$md" <<EOF
a GETQUOTAROOT INBOX
b GETQUOTA "User quota"
c APPEND INBOX {1500+}
$(printf "%01500d" 0)
d APPEND INBOX {10+}
0123456789
e GETQUOTA "nothing"
f LOGOUT
EOF
	assert_line -n 1 '* QUOTAROOT "INBOX" "User quota"'
	assert_line -n 2 '* QUOTA "User quota" (STORAGE 1 2 MESSAGE 1 10)'
	assert_line -n 3 --regexp '^a OK '
	assert_line -n 6 --regexp '^c NO \[OVERQUOTA\] '
	assert_line -n 7 --regexp '^d OK \[APPENDUID [0-9]+ 2\] '
	assert_line -n 8 --regexp '^e NO \[NONEXISTENT\] '
	# COPY adds to the quota as APPEND does; MOVE adds nothing.
	printf '1500S,10C\n1010 2\n' >"$md/maildirsize"
	run -0 imap_preauth "$md" <<'EOF'
a SELECT INBOX
b COPY 1 Archive
c MOVE 1 Archive
d LOGOUT
EOF
	assert_line --regexp '^b NO \[OVERQUOTA\] '
	assert_line --regexp '^c OK '
	# Without maildirsize there is no quota: no root.
	rm "$md/maildirsize"
	run -0 imap_preauth "$md" <<'EOF'
a GETQUOTAROOT INBOX
b LOGOUT
EOF
	assert_line -n 1 '* QUOTAROOT "INBOX"'
}

@test "costly input: LIST with 60 wildcards and SEARCH over a Subject of 30000 unfinished encoded words end at once" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	"$PYTHON" -c 'import sys; sys.stdout.write("Subject: " + "=?x?b?A" * 30000 + "\nFrom: a@b\n\nbody\n")' \
		>"$md/new/1.M1P1.host"
	local pattern
	pattern=$(printf '%%%.0s' $(seq 60))x
	SECONDS=0
	run -0 timeout 20 bash -c 'cd "$1" && printf "a LIST \"\" \"%s\"\r\nb SELECT INBOX\r\nc SEARCH SUBJECT foo\r\nd SEARCH TEXT foo\r\ne LOGOUT\r\n" "$2" |
		MAILDIR="$1" imap-serve -A 2>/dev/null | sed "s/\r\$//"' - "$md" "$pattern"
	assert_line --regexp '^a OK '
	assert_line '* SEARCH'
	assert_line --regexp '^d OK '
	[ "$SECONDS" -lt 5 ] || fail "took $SECONDS s"
}

@test "before login a literal is at most 8 kB, whatever IMAP_APPENDLIMIT says" {
	run -0 imap_raw IMAP_APPENDLIMIT=104857600 < <(printf 'a LOGIN {9000}\r\nb APPEND INBOX {100000000+}\r\n')
	assert_line -n 1 --regexp '^a NO \[TOOBIG\] '
	assert_line -n 2 --regexp '^b BAD \[TOOBIG\] '
	assert_line -n 3 --regexp '^\* BYE '
}

@test "a message that vanished during a FETCH is announced by the next NOOP" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	local i
	for i in 1 2 3; do printf 'Subject: %s\n\nx\n' "$i" >"$md/cur/$i.M1P1.host:2,"; done
	local fifo=$BATS_TEST_TMPDIR/in out=$BATS_TEST_TMPDIR/out
	mkfifo "$fifo"
	(cd "$md" && MAILDIR="$md" imap-serve -A <"$fifo" >"$out" 2>/dev/null) &
	track_pid $!
	exec 5>"$fifo"
	printf 'a SELECT INBOX\r\n' >&5
	wait_until 50 grep -q '^a OK' "$out"
	rm "$md/cur/2.M1P1.host:2,"
	printf 'b FETCH 1:* (FLAGS)\r\nc NOOP\r\nd FETCH 1:* (FLAGS)\r\ne LOGOUT\r\n' >&5
	exec 5>&-
	wait_until 50 grep -q '^e OK' "$out"
	run sed 's/\r$//' "$out"
	# The FETCH may not say EXPUNGE; the NOOP after it must, and then all is well again.
	assert_line '* 2 EXPUNGE'
	assert_line --regexp '^c OK '
	assert_line --regexp '^d OK '
	refute_line --regexp '^d NO'
}

@test "STORE refuses a bad set or a bad keyword before it creates any keyword" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	printf 'Subject: 1\n\nx\n' >"$md/cur/1.M1P1.host:2,"
	run -0 imap_preauth "$md" <<'EOF'
a SELECT INBOX
b STORE 99 +FLAGS (junkword)
c STORE 1 +FLAGS (a[b c])
d STORE 1 +FLAGS (goodword)
e LOGOUT
EOF
	assert_line --regexp '^b BAD '
	assert_line --regexp '^c BAD '
	assert_line --regexp '^d OK '
	run cat "$md/dovecot-keywords"
	assert_output '0 goodword'
}

@test "a client that drips its command a byte at a time is cut off when the command's time is up" {
	local fifo=$BATS_TEST_TMPDIR/in out=$BATS_TEST_TMPDIR/out
	mkfifo "$fifo"
	env IMAP_AUTH_PLAINTEXT=1 IMAP_LOGIN_TIMEOUT=2 imap-serve $CHECKPW <"$fifo" >"$out" 2>/dev/null &
	local pid=$!
	track_pid "$pid"
	# One byte every 0.5 s: each read is quick, the command never ends.
	drip_fifo "$fifo" a 12 0.5
	wait_until 50 sh -c "! kill -0 $pid 2>/dev/null"
	run grep -c 'BYE Disconnected for inactivity' "$out"
	assert_output 1
}

@test "the cache: BODYSTRUCTURE comes from postroom-cache once computed; without the cache it is computed again" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	local f="$md/cur/1.M1P1.host:2,S"
	printf 'Subject: one\n\nplain text\n' >"$f"
	local cmds='a SELECT INBOX\nb FETCH 1 (BODYSTRUCTURE)\nc LOGOUT\n'
	run -0 imap_preauth "$md" <<<"$(printf "$cmds")"
	assert_line --regexp '^\* 1 FETCH \(BODYSTRUCTURE \("text" "plain" '
	# The same file name with other contents: the cached answer stands (the cache is by UID,
	# as Dovecot's is; a Maildir file's contents never change)...
	printf 'Subject: one\nContent-Type: image/png\n\nxx\n' >"$f"
	run -0 imap_preauth "$md" <<<"$(printf "$cmds")"
	assert_line --regexp '^\* 1 FETCH \(BODYSTRUCTURE \("text" "plain" '
	# ...and with the cache gone, nothing is lost: it is read from the message again.
	rm "$md/postroom-cache"
	run -0 imap_preauth "$md" <<<"$(printf "$cmds")"
	assert_line --regexp '^\* 1 FETCH \(BODYSTRUCTURE \("image" "png" '
}

@test "the cache: SEARCH FROM, TO, CC, BCC and SUBJECT read the decoded fields from postroom-cache once computed" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	local f="$md/cur/1.M1P1.host:2,S"
	printf 'From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\nTo: ann@example.org\nSubject: hello\n\nx\n' >"$f"
	# reply TAG: the line just before TAG's tagged reply (SELECT's lines may grow).
	reply() { sed -n "/^$1 OK/{x;p;q};h" <<<"$output"; }
	local cmds='a SELECT INBOX\nb SEARCH CHARSET UTF-8 FROM jürgen\nc SEARCH HEADER subject hello\nd SEARCH TO bob\ne LOGOUT\n'
	run -0 imap_preauth "$md" <<<"$(printf "$cmds")"
	assert_equal "$(reply b)" '* SEARCH 1'
	assert_equal "$(reply c)" '* SEARCH 1'
	assert_equal "$(reply d)" '* SEARCH'
	# Other contents under the same name: the cached fields answer (a Maildir file never
	# changes; this shows that the file is not read)...
	printf 'From: nobody@example.org\nTo: bob@example.org\nSubject: other\n\nx\n' >"$f"
	run -0 imap_preauth "$md" <<<"$(printf "$cmds")"
	assert_equal "$(reply b)" '* SEARCH 1'
	assert_equal "$(reply c)" '* SEARCH 1'
	assert_equal "$(reply d)" '* SEARCH'
	# ...and without the cache, the file again.
	rm "$md/postroom-cache"
	run -0 imap_preauth "$md" <<<"$(printf "$cmds")"
	assert_equal "$(reply b)" '* SEARCH'
	assert_equal "$(reply c)" '* SEARCH'
	assert_equal "$(reply d)" '* SEARCH 1'
}

@test "the cache: a session in IDLE lets go of it and reads it again; what it cached before and after reaches the file" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	local one="$md/cur/1.M1P1.host:2,S" two="$md/cur/2.M2P1.host:2,S"
	printf 'Subject: one\n\nplain text\n' >"$one"
	printf 'Subject: two\n\nplain text\n' >"$two"
	run -0 imap_preauth "$md" <<<"$(printf 'a SELECT INBOX\nb FETCH 1 (BODYSTRUCTURE)\nc LOGOUT\n')"
	# Other contents under the same names: an answer of text/plain is the cache's.
	printf 'Subject: one\nContent-Type: image/png\n\nxx\n' >"$one"
	printf 'Subject: two\nContent-Type: audio/ogg\n\nxx\n' >"$two"
	# IDLE rests: the cache, which the session has added nothing to, is freed. Message 2's
	# value, computed next, is the session's own; message 1's must come from the file, read
	# again; the second IDLE writes message 2's beside it.
	run -0 imap_preauth "$md" <<<"$(printf 'a SELECT INBOX\nb IDLE\nDONE\nc FETCH 2 (BODYSTRUCTURE)\nd FETCH 1 (BODYSTRUCTURE)\ne IDLE\nDONE\nf LOGOUT\n')"
	assert_line --regexp '^\* 2 FETCH \(BODYSTRUCTURE \("audio" "ogg" '
	assert_line --regexp '^\* 1 FETCH \(BODYSTRUCTURE \("text" "plain" '
	printf 'Subject: two\nContent-Type: video/mp4\n\nxx\n' >"$two"
	run -0 imap_preauth "$md" <<<"$(printf 'a SELECT INBOX\nb FETCH 1:2 (BODYSTRUCTURE)\nc LOGOUT\n')"
	assert_line --regexp '^\* 1 FETCH \(BODYSTRUCTURE \("text" "plain" '
	assert_line --regexp '^\* 2 FETCH \(BODYSTRUCTURE \("audio" "ogg" '
	# A session that only adds a size after IDLE never reads the file until it writes it:
	# the file's values stay.
	printf 'Subject: three\n\nplain text\n' >"$md/cur/3.M3P1.host:2,S"
	run -0 imap_preauth "$md" <<<"$(printf 'a SELECT INBOX\nb IDLE\nDONE\nc FETCH 3 (RFC822.SIZE)\nd LOGOUT\n')"
	run -0 imap_preauth "$md" <<<"$(printf 'a SELECT INBOX\nb FETCH 1:2 (BODYSTRUCTURE)\nc LOGOUT\n')"
	assert_line --regexp '^\* 1 FETCH \(BODYSTRUCTURE \("text" "plain" '
	assert_line --regexp '^\* 2 FETCH \(BODYSTRUCTURE \("audio" "ogg" '
}

@test "the cache: a session that rests writes what it added, for the others to use while it idles" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	printf 'Subject: one\n\nplain text\n' >"$md/cur/1.M1P1.host:2,S"
	run -0 imap_py - "$md" "$BIN/imap-serve" <<'PYEOF'
import os, sys, time
from preauth import cmd, start
md, prog = sys.argv[1], sys.argv[2]
a = start(prog, md)
cmd(a, b"a1", b"SELECT INBOX")
cmd(a, b"a2", b"FETCH 1 (BODYSTRUCTURE)")
a.stdin.write(b"a3 IDLE\r\n"); a.stdin.flush()
assert a.stdout.readline().startswith(b"+ ")
# a rests right after its "+": the cache it writes then (there was none) is waited for.
for _ in range(500):
    if os.path.exists(md + "/postroom-cache"):
        break
    time.sleep(0.01)
# Other contents under the same name: a text/plain answer is the cache's, which a wrote when
# it went idle.
with open(md + "/cur/1.M1P1.host:2,S", "w") as f:
    f.write("Subject: one\nContent-Type: image/png\n\nxx\n")
b = start(prog, md)
cmd(b, b"b1", b"SELECT INBOX")
print("b:", cmd(b, b"b2", b"FETCH 1 (BODYSTRUCTURE)")[0])
cmd(b, b"b3", b"LOGOUT"); b.wait()
a.stdin.write(b"DONE\r\n"); a.stdin.flush()
assert a.stdout.readline().startswith(b"a3 OK")
cmd(a, b"a4", b"LOGOUT"); a.wait()
PYEOF
	assert_line --regexp '^b: \* 1 FETCH \(BODYSTRUCTURE \("text" "plain" '
}

@test "the cache: what another session wrote to it while this one had the folder open is kept when this one writes" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	printf 'Subject: one\n\nplain text\n' >"$md/cur/1.M1P1.host:2,S"
	printf 'Subject: two\n\nplain text\n' >"$md/cur/2.M2P1.host:2,S"
	run -0 imap_py - "$md" "$BIN/imap-serve" <<'PYEOF'
import sys
from preauth import cmd, start
md, prog = sys.argv[1], sys.argv[2]
a = start(prog, md)
cmd(a, b"a1", b"SELECT INBOX")          # a reads the cache (there is none yet)
b = start(prog, md)
cmd(b, b"b1", b"SELECT INBOX")
cmd(b, b"b2", b"FETCH 1 (BODYSTRUCTURE)")
cmd(b, b"b3", b"LOGOUT"); b.wait()      # b writes message 1's value
cmd(a, b"a2", b"FETCH 2 (BODYSTRUCTURE)")
cmd(a, b"a3", b"LOGOUT"); a.wait()      # a writes message 2's, and must keep b's
PYEOF
	# Other contents under the same names: text/plain answers are the cache's.
	printf 'Subject: one\nContent-Type: image/png\n\nxx\n' >"$md/cur/1.M1P1.host:2,S"
	printf 'Subject: two\nContent-Type: image/png\n\nxx\n' >"$md/cur/2.M2P1.host:2,S"
	run -0 imap_preauth "$md" <<<"$(printf 'a SELECT INBOX\nb FETCH 1:2 (BODYSTRUCTURE)\nc LOGOUT\n')"
	assert_line --regexp '^\* 1 FETCH \(BODYSTRUCTURE \("text" "plain" '
	assert_line --regexp '^\* 2 FETCH \(BODYSTRUCTURE \("text" "plain" '
}

@test "SEARCH takes at most 16 sequence or UID sets: each costs a byte per message of the folder" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	printf 'Subject: 1\n\nx\n' >"$md/cur/1.M1P1.host:2,"
	local sixteen seventeen
	sixteen=$(printf ' 1%.0s' $(seq 16))
	seventeen=$(printf ' UID 1%.0s' $(seq 17))
	run -0 imap_preauth "$md" <<EOF
a SELECT INBOX
b SEARCH$sixteen
c SEARCH$seventeen
d LOGOUT
EOF
	assert_line '* SEARCH 1'
	assert_line --regexp '^b OK '
	assert_line --regexp '^c BAD '
}

@test "a session that rests (IDLE) packs its view: its own and others' renames, new and expunged messages stay right" {
	local md=$BATS_TEST_TMPDIR/md
	mkdir -p "$md"/{cur,new,tmp}
	for i in 1 2 3 4; do
		printf 'Subject: m%s\n\nbody %s\n' "$i" "$i" >"$md/cur/$i.M${i}P1.host:2,S"
	done
	# Each IDLE packs the view's names into one block; what is renamed after a rest gets a
	# name of its own, freed on its own (a packed one freed alone is a crash, under ASan or
	# glibc's checks), and the next rest packs both kinds again.
	run -0 imap_py - "$md" "$BIN/imap-serve" <<'PYEOF'
import os, sys
import preauth
md, prog = sys.argv[1], sys.argv[2]
p = preauth.start(prog, md)
def cmd(tag, line):
    return preauth.cmd(p, tag, line)
def rest():
    preauth.idle(p)
def rename(n, flags):
    old = [f for f in os.listdir(md + "/cur") if f.startswith("%d." % n)][0]
    os.rename(md + "/cur/" + old, md + "/cur/%d.M%dP1.host:2,%s" % (n, n, flags))
cmd(b"a", b"SELECT INBOX")
rest()
print(cmd(b"b", b"STORE 1 +FLAGS (\\Flagged)"))
rename(2, "RS")
print(cmd(b"c", b"NOOP"))
with open(md + "/new/5.M5P1.host", "w") as f:
    f.write("Subject: m5\n\nbody 5\n")
print(cmd(b"d", b"NOOP"))
rest()
rename(3, "FS")
print(cmd(b"e", b"STORE 3 +FLAGS (\\Deleted)"))
print(cmd(b"f", b"STORE 1 -FLAGS (\\Flagged)"))
rename(1, "RS")
print(cmd(b"f2", b"STORE 1 FLAGS (\\Draft)"))
print(cmd(b"g", b"EXPUNGE"))
os.unlink(md + "/cur/" + [f for f in os.listdir(md + "/cur") if f.startswith("4.")][0])
print(cmd(b"h", b"NOOP"))
rest()
print(cmd(b"j", b"FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
rest()
cmd(b"k", b"LOGOUT")
assert p.wait() == 0
PYEOF
	assert_line "['* 1 FETCH (UID 1 FLAGS (\\\\Seen \\\\Flagged))']"
	assert_line "['* 2 FETCH (UID 2 FLAGS (\\\\Seen \\\\Answered))']"
	assert_line "['* 5 EXISTS', '* 1 RECENT']"
	# Message 3 was flagged by someone else just before: that stays beside \Deleted.
	assert_line "['* 3 FETCH (UID 3 FLAGS (\\\\Seen \\\\Flagged \\\\Deleted))']"
	assert_line "['* 1 FETCH (UID 1 FLAGS (\\\\Seen))']"
	# FLAGS replaces, whatever someone else set meanwhile.
	assert_line "['* 1 FETCH (UID 1 FLAGS (\\\\Draft))']"
	assert_line -n 6 "['* 3 EXPUNGE']"
	assert_line -n 7 "['* 3 EXPUNGE']"
	# What is left: 1, 2 and the new 5, each with its own subject and flags.
	assert_output --partial "'* 1 FETCH (UID 1 FLAGS (\\\\Draft) BODY[HEADER.FIELDS (SUBJECT)] {15}', 'Subject: m1', '', ')'"
	assert_output --partial "'* 2 FETCH (UID 2 FLAGS (\\\\Seen \\\\Answered) BODY[HEADER.FIELDS (SUBJECT)] {15}', 'Subject: m2', '', ')'"
	assert_output --partial "'* 3 FETCH (UID 5 FLAGS (\\\\Recent) BODY[HEADER.FIELDS (SUBJECT)] {15}', 'Subject: m5', '', ')'"
	[ "$(ls "$md/cur" | sort | tr '\n' ' ')" = "1.M1P1.host:2,D 2.M2P1.host:2,RS 5.M5P1.host " ]
	[ -z "$(ls "$md/new")" ]
}
