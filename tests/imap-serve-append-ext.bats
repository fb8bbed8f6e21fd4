#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# imap-serve's literals and APPEND extensions, in python sessions with "imap-serve -A" on a pipe:
# LITERAL+ past the limits (RFC 7888, RFC 7889), MULTIAPPEND (RFC 3502) with APPENDUID sets
# (RFC 4315), BINARY (RFC 3516) and UTF8=ACCEPT (RFC 6855).

load lib/common

setup() {
	export TZ=UTC
	MD=$BATS_TEST_TMPDIR/md
	mkdir -p "$MD"/{cur,new,tmp}
}

# session [VAR=V...]: the python on stdin, with C a client of "imap-serve -A" in $MD (its
# environment with VAR=V...), MD the Maildir; fails with what it printed when it fails.
session() {
	run env "$@" PYTHONPATH="$TESTLIB" "$PYTHON" - < <(
		printf 'import os, re, sys\nfrom imap_client import *\nMD = %s\n' "'$MD'"
		printf 'C = connect("preauth:" + MD)\n'
		cat
	)
	[ "$status" -eq 0 ] || fail "$(printf 'the session failed (exit %s):\n%s' "$status" "$output")"
}

# files DIR: the number of files in DIR.
files() {
	find "$1" -type f | wc -l
}

@test "LITERAL+: an APPEND's non-synchronizing literal over APPENDLIMIT is read and thrown away, NO [TOOBIG], the next command answered" {
	session IMAP_APPENDLIMIT=4096 <<'PY'
caps = C.lines("CAPABILITY")[0].split()
check("LITERAL+" in caps and "APPENDLIMIT=4096" in caps, caps)
# The literal's bytes look like commands: answered, they would show.
body = b"x1 LOGOUT\r\n" * 500
reply = C.lines(b"APPEND INBOX {%d+}\r\n" % len(body) + body)
eq(len(reply), 1, "one reply to the APPEND")
check(re.match(r"^R\d+ NO \[TOOBIG\] ", reply[-1]), reply)
# MULTIAPPEND whose second message is over: the rest of the command is followed too, and
# nothing is stored.
small = b"Subject: s\r\n\r\nsmall\r\n"
reply = C.lines(b"APPEND INBOX {%d+}\r\n%s (\\Seen) {%d+}\r\n%s {%d+}\r\n%s" %
                (len(small), small, len(body), body, len(small), small))
eq(len(reply), 1, "one reply to the MULTIAPPEND")
check(re.match(r"^R\d+ NO \[TOOBIG\] ", reply[-1]), reply)
reply = C.ok("NOOP")
eq(len(reply), 1, "NOOP")
eq(status(C, "INBOX", "MESSAGES"), {"MESSAGES": 0}, "nothing stored")
C.logout()
PY
	[ "$(files "$MD/new")$(files "$MD/cur")$(files "$MD/tmp")" = 000 ] || fail "files left: $(find "$MD" -type f)"
}

@test "LITERAL+: a synchronizing literal over the limit gets NO [TOOBIG] and no continuation; the session goes on" {
	session IMAP_APPENDLIMIT=4096 <<'PY'
tag = C.raw_send("APPEND INBOX {4097}")
reply = split_lines(C.raw_read(tag, until_continuation=True))
eq(len(reply), 1, "no continuation")
check(re.match(r"^R\d+ NO \[TOOBIG\] ", reply[-1]), reply)
# The first message fits, the second does not: the client waits after the first.
tag = C.raw_send(b"APPEND INBOX {3+}\r\nabc {5000}")
reply = split_lines(C.raw_read(tag, until_continuation=True))
check(re.match(r"^R\d+ NO \[TOOBIG\] ", reply[-1]), reply)
C.ok("NOOP")
eq(status(C, "INBOX", "MESSAGES"), {"MESSAGES": 0}, "nothing stored")
C.logout()
PY
}

@test "LITERAL+: a non-synchronizing literal over the limit outside APPEND is BAD [TOOBIG], then BYE (RFC 7888 section 4); its bytes are never commands" {
	run -0 bash -c 'cd "$1" && "$2" -c "import sys
sys.stdout.write(\"a LOGIN {70000+}\r\n\" + \"b CREATE Injected\r\n\" * 5000 + \"\r\nc NOOP\r\n\")" |
		MAILDIR="$1" imap-serve -A 2>/dev/null | sed "s/\r\$//"' - "$MD" "$PYTHON"
	assert_line -n 1 --regexp '^a BAD \[TOOBIG\] Literal too big'
	assert_line -n 2 --regexp '^\* BYE '
	refute_line --regexp '^[bc] '
	[ ! -e "$MD/.Injected" ] || fail "the literal's bytes ran as a command"
}

@test "MULTIAPPEND: several messages in one APPEND, each with its flags and date, APPENDUID with a UID range" {
	session <<'PY'
caps = C.lines("CAPABILITY")[0].split()
check("MULTIAPPEND" in caps, caps)
m1 = b"Subject: one\r\n\r\nfirst\r\n"
m2 = b"Subject: two\r\n\r\nsecond\r\n"
m3 = b"Subject: three\r\n\r\nthird\r\n"
# RFC 3502's example, with synchronizing literals: a "+" for each.
tag = C.raw_send(b'APPEND INBOX (\\Seen) "05-May-2023 10:00:00 +0200" {%d}' % len(m1))
C.raw_read(tag, until_continuation=True)
C.send(m1 + b' (\\Flagged $Work) {%d}\r\n' % len(m2))
C.raw_read(tag, until_continuation=True)
C.send(m2 + b" {%d}\r\n" % len(m3))
C.raw_read(tag, until_continuation=True)
C.send(m3 + b"\r\n")
reply = split_lines(C.raw_read(tag))
m = re.match(r"^R\d+ OK \[APPENDUID ([1-9][0-9]*) 1:3\] ", reply[-1])
check(m, reply)
sel = C.ok("SELECT INBOX")
check("* 3 EXISTS" in sel, sel)
check("* OK [UIDVALIDITY %s] UIDs valid" % m.group(1) in sel, sel)
its = [it for _, it in fetches(C.raw("UID FETCH 1:3 (UID FLAGS INTERNALDATE BODY.PEEK[])"))]
eq([it["BODY[]"] for it in its], [m1, m2, m3], "the messages in order")
eq(flagset(its[0]["FLAGS"]) - {"\\Recent"}, {"\\Seen"}, "the first one's flags")
eq(flagset(its[1]["FLAGS"]) - {"\\Recent"}, {"\\Flagged", "$Work"}, "the second one's flags")
eq(flagset(its[2]["FLAGS"]), {"\\Recent"}, "the third one's flags")
eq(its[0]["INTERNALDATE"], b"05-May-2023 08:00:00 +0000", "the first one's date")
check(its[1]["INTERNALDATE"] != b"05-May-2023 08:00:00 +0000", "the second one has its own date")
# Into the selected folder, with LITERAL+: EXISTS before the tagged OK.
reply = C.lines(b"APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s" % (len(m1), m1, len(m2), m2))
check(re.match(r"^R\d+ OK \[APPENDUID %s 4:5\] " % m.group(1), reply[-1]), reply)
check("* 5 EXISTS" in reply, reply)
C.logout()
PY
}

@test "MULTIAPPEND: all or nothing: a folder that does not exist, an empty message, a bad date or too many messages store none" {
	session <<'PY'
m = b"Subject: x\r\n\r\nx\r\n"
reply = C.lines(b"APPEND Nowhere {%d+}\r\n%s {%d+}\r\n%s" % (len(m), m, len(m), m))
check(re.match(r"^R\d+ NO \[TRYCREATE\] ", reply[-1]), reply)
reply = C.lines(b"APPEND INBOX {%d+}\r\n%s {0+}\r\n" % (len(m), m))
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
reply = C.lines(b'APPEND INBOX {%d+}\r\n%s "31-Foo-2023 10:00:00 +0000" {%d+}\r\n%s' % (len(m), m, len(m), m))
check(re.match(r"^R\d+ BAD ", reply[-1]), reply)
reply = C.lines(b"APPEND INBOX" + b" {1+}\r\nx" * 1001)
check(re.match(r"^R\d+ NO \[LIMIT\] ", reply[-1]), reply)
eq(status(C, "INBOX", "MESSAGES"), {"MESSAGES": 0}, "nothing stored")
reply = C.lines(b"APPEND INBOX" + b" {1+}\r\nx" * 1000)
check(re.match(r"^R\d+ OK \[APPENDUID [0-9]+ 1:1000\] ", reply[-1]), reply)
C.logout()
PY
}

@test "MULTIAPPEND: a message that cannot be written takes back the ones before it (none stored, no file left)" {
	# Files of the session over 8 kB fail with EFBIG (SIGXFSZ ignored): the second message.
	session IMAP_APPENDLIMIT=1048576 <<'PY'
import subprocess, shlex
C.logout()
C = Stream("cd %s && trap '' XFSZ && ulimit -f 8 && MAILDIR=%s exec imap-serve -A" %
           (shlex.quote(MD), shlex.quote(MD)))
small = b"Subject: small\r\n\r\nsmall\r\n"
big = b"Subject: big\r\n\r\n" + b"y" * 20000 + b"\r\n"
reply = C.lines(b"APPEND INBOX (\\Seen) {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s" %
                (len(small), small, len(big), big, len(small), small))
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
eq(status(C, "INBOX", "MESSAGES"), {"MESSAGES": 0}, "nothing stored")
reply = C.lines(b"APPEND INBOX {%d+}\r\n%s" % (len(small), small))
check(re.match(r"^R\d+ OK \[APPENDUID [0-9]+ 1\] ", reply[-1]), reply)
C.logout()
PY
	[ "$(files "$MD/new")$(files "$MD/cur")$(files "$MD/tmp")" = 100 ] || fail "files: $(find "$MD" -type f)"
}
