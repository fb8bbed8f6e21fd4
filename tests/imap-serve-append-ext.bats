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

@test "BINARY: BINARY.PEEK[part] and BINARY.SIZE[part] of every part of the MIME corpus are Dovecot's, item by item" {
	# 38-*.eml is left out: Dovecot's BINARY.SIZE[1] of its base64 part fails with
	# UNKNOWN-CTE because another part of the message has an encoding it cannot undo; the
	# next test has that message's answers.
	make_private_dir
	[ -x /usr/lib/dovecot/imap ] || fail "Dovecot's imap is not installed (make deps)"
	local dovecot="setpriv --reuid=$NOBODY_UID --regid=$NOBODY_GID --clear-groups env -i USER=nobody HOME={home} /usr/lib/dovecot/imap -c {home}/dovecot.conf"
	local postroom="cd {maildir} && MAILDIR={maildir} exec $BIN/imap-serve -A"
	local corpus=$REPO/tests/fixtures/mime
	run --separate-stderr timeout 300 "$PYTHON" "$TESTLIB/imap_mime_compare.py" --binary \
		--workdir "$PRIVATE_DIR/work" --ref "$dovecot" --test "$postroom" \
		"$corpus"/[0-2]*.eml "$corpus"/3[0-79]-*.eml "$corpus"/4*.eml
	[ "$status" -eq 0 ] || fail "$(printf '%s\n' "$output" "$stderr" | head -c 20000)"
	assert_line '0 of 46 messages differ'
}

@test "BINARY: base64 and quoted-printable decoded, literal8 for decoded bytes, <partial>, \\Seen, NO [UNKNOWN-CTE] and NO [PARSE] for the whole command" {
	cp "$REPO/tests/fixtures/mime/38-cte-uppercase.eml" "$MD/cur/1.M1P1.host:2,"
	"$PYTHON" - "$MD/cur/2.M1P1.host:2," <<'PY'
import base64, sys
blob = bytes(range(256))
b64 = base64.b64encode(blob).decode()
open(sys.argv[1], "wb").write(("""From: a@example.test
Subject: binary
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=XX

--XX
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

caf=C3=A9 line  =20
soft=
break\x20\x20
--XX
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

%s
%s
--XX
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

caf\xc3\xa9
--XX--
""" % (b64[:200], b64[200:])).encode("latin-1"))
PY
	session <<'PY'
caps = C.lines("CAPABILITY")[0].split()
check("BINARY" in caps, caps)
C.ok("SELECT INBOX")
raw = C.raw("FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[3] BINARY.PEEK[2]<250.10> BINARY.PEEK[9])")
check(b"BINARY[1] ~{24}\r\ncaf\xc3\xa9 line   \r\nsoftbreak BINARY.SIZE[1] 24" in raw, raw)
check(b"BINARY[2] ~{256}\r\n" + bytes(range(256)) + b" BINARY.SIZE[2] 256" in raw, raw)
check(b"BINARY[3] {5}\r\ncaf\xc3\xa9" in raw, raw)
check(b"BINARY[2]<250> ~{6}\r\n" + bytes(range(250, 256)) in raw, raw)
check(b"BINARY[9] {0}\r\n" in raw, raw)
check(b"\\Seen" not in raw, "PEEK sets no flag: %r" % raw)
reply = C.lines("FETCH 2 (BINARY[3])")
check(any("\\Seen" in l for l in reply), reply)
# Message 1: BASE64 in capitals decoded; x-uuencode, "8bit junk after" and "quoted" cannot be
# undone: the whole FETCH fails, and nothing of it is sent.
raw = C.raw("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
check(b"BINARY[1] ~{5}\r\nHello BINARY.SIZE[1] 5" in raw, raw)
for part in (2, 3, 4):
    reply = C.lines("FETCH 1:2 (FLAGS BINARY.PEEK[%d])" % part)
    eq(len(reply), 1, "no FETCH response before the NO")
    check(re.match(r"^R\d+ NO \[UNKNOWN-CTE\] ", reply[-1]), reply)
# Syntax: BINARY takes part numbers only; BINARY.SIZE no partial.
for bad in ("BINARY[1.MIME]", "BINARY.PEEK[HEADER]", "BINARY.SIZE[1]<0.5>", "BINARY.FOO[1]"):
    reply = C.lines("FETCH 1 (%s)" % bad)
    check(re.match(r"^R\d+ BAD ", reply[-1]), (bad, reply))
C.logout()
PY
}

@test "BINARY: broken base64 or quoted-printable is NO [PARSE]" {
	printf 'From: a\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\n!!not base64\n' >"$MD/cur/1.M1P1.host:2,"
	printf 'From: a\nMIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\nbad =ZZ escape\n' >"$MD/cur/2.M1P1.host:2,"
	session <<'PY'
C.ok("SELECT INBOX")
for n in (1, 2):
    reply = C.lines("FETCH %d BINARY.PEEK[1]" % n)
    eq(len(reply), 1, "message %d: no FETCH response" % n)
    check(re.match(r"^R\d+ NO \[PARSE\] ", reply[-1]), reply)
C.logout()
PY
}

@test "BINARY: APPEND of a literal8 (~{n}) holding NULs, with LITERAL+ and as a synchronizing literal" {
	session <<'PY'
msg = (b"From: a@example.test\r\nSubject: nul\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
       b"a\x00b\x00c\r\n")
reply = C.lines(b"APPEND INBOX ~{%d+}\r\n%s" % (len(msg), msg))
check(re.match(r"^R\d+ OK \[APPENDUID [0-9]+ 1\] ", reply[-1]), reply)
tag = C.raw_send(b"APPEND INBOX (\\Seen) ~{%d}" % len(msg))
C.raw_read(tag, until_continuation=True)
C.send(msg + b"\r\n")
reply = split_lines(C.raw_read(tag))
check(re.match(r"^R\d+ OK \[APPENDUID [0-9]+ 2\] ", reply[-1]), reply)
C.ok("SELECT INBOX")
raw = C.raw("FETCH 1:2 (BINARY.PEEK[1] BINARY.SIZE[1])")
eq(raw.count(b"BINARY[1] ~{7}\r\na\x00b\x00c\r\n BINARY.SIZE[1] 7"), 2, raw)
C.logout()
PY
	local f n=0
	for f in "$MD"/cur/*; do
		cmp <(printf 'From: a@example.test\nSubject: nul\nMIME-Version: 1.0\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\na\0b\0c\n') "$f" ||
			fail "the stored message is not what was sent (with LF line ends)"
		n=$((n + 1))
	done
	[ "$n" -eq 2 ] || fail "$n messages in cur/"
}
