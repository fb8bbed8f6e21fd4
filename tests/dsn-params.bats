#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# DSN parameters (RFC 3461) end to end on the receiving side and in the SMTP client: smtp-recv
# advertises DSN, checks RET, ENVID, NOTIFY and ORCPT and stores them as the envelope items of
# queue(5), in-process and through QMAILQUEUE=queue-inject; SMTP_DSN=0 turns it all off;
# queue-inject takes the items in their places only; smtp-send passes them to a peer that offers
# DSN and to no other. Peers run on 127.0.0.1 under tcpserver; smtp-send goes by -r, no DNS.

load lib/common
load lib/smtp

setup() {
	make_queue
	make_userdb
	unset QMAILQUEUE SMTP_DSN MAXERRORS SMTP_LINE_MAX
	export SMTP_HOSTNAME=mx.example.test TCPREMOTEIP=192.0.2.7 TCPLOCALIP=192.0.2.1
	export SMTP_SEND_TIMEOUTS=connect=10,greeting=10,helo=10,mail=10,rcpt=10,data=10,block=10,dot=10
	PEER_LOG=$BATS_TEST_TMPDIR/peer.log
	make_message "$BATS_TEST_TMPDIR/message" dsn-1
}

teardown() {
	stop_server
	common_teardown
}

# The envelope of the test's one message, as smtp-recv should store it (C string notation).
ITEMS='Fbob@example.org\x00EQQ+2Bx\x00HHDRS\x00Talice@example.test\x00NSUCCESS,FAILURE\x00Orfc822;bob+2Bx@example.org\x00\x00'
PLAIN='Fbob@example.org\x00Talice@example.test\x00\x00'

# One message with every DSN parameter, as an LF script for smtp_session.
dsn_session() {
	cat <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org> RET=HDRS ENVID=QQ+2Bx
RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@example.org
DATA
Subject: dsn

body
.
QUIT
EOF
}

# queue_tail ID: everything after the message in the queue file ID (its envelope, and records
# if any), as a Python bytes literal without the b'': NULs as \x00. Checks the header first.
queue_tail() {
	"$PYTHON" - "$QUEUEDIR/msg/$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
assert data[:5] == b"PRQ1 " and data[25:26] == b"\n", "not a queue file"
n = int(data[5:25])
assert 26 + n <= len(data), "message length past the end"
print(repr(data[26 + n:])[2:-1])
PY
}

# one_queued: the id of the one message in the queue.
one_queued() {
	local ids
	ids=$(queue_ids)
	[ -n "$ids" ] && [ "$(wc -l <<<"$ids")" = 1 ] || fail "expected one queued message, got: '$ids'"
	echo "$ids"
}

# rcpt_lines PARAM...: EHLO, MAIL and one RCPT to alice per PARAM (the parameter text after the
# address), then QUIT, as an LF script.
rcpt_lines() {
	local p
	printf 'EHLO client.example.org\nMAIL FROM:<bob@example.org>\n'
	for p in "$@"; do printf 'RCPT TO:<alice@example.test> %s\n' "$p"; done
	printf 'QUIT\n'
}

# py_dsn PORT: the test's message over a socket with python3 smtplib, every DSN parameter given
# as a client library gives them; prints whether DSN was offered and each reply code.
py_dsn() {
	"$PYTHON" - "$1" "$BATS_TEST_TMPDIR/message" <<'PY'
import smtplib, sys
port, path = sys.argv[1:3]
msg = open(path, "rb").read().replace(b"\n", b"\r\n")
s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="client.example.org", timeout=10)
s.ehlo()
print("DSN", "offered" if s.has_extn("dsn") else "not offered")
print("MAIL", s.mail("bob@example.org", ["RET=HDRS", "ENVID=QQ+2Bx"])[0])
print("RCPT", s.rcpt("alice@example.test", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob+2Bx@example.org"])[0])
print("DATA", s.data(msg)[0])
s.quit()
PY
}

# --- smtp-recv --------------------------------------------------------------------------------

@test "EHLO lists DSN after ENHANCEDSTATUSCODES; SMTP_DSN=0 leaves it out" {
	run -0 --separate-stderr smtp_session <<<'EHLO client.example.org'
	assert_output - <<'EOF'
220 mx.example.test ESMTP postroom
250-mx.example.test
250-PIPELINING
250-SIZE 26214400
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250 SMTPUTF8
EOF
	run -0 --separate-stderr smtp_session SMTP_DSN=0 <<<'EHLO client.example.org'
	refute_line '250-DSN'
	assert_line '250-ENHANCEDSTATUSCODES'
	run -0 --separate-stderr smtp_session SMTP_DSN=1 <<<'EHLO client.example.org'
	assert_line '250-DSN'
}

@test "SMTP_DSN other than 0 or 1: exit 100, one line" {
	run -100 --separate-stderr env SMTP_DSN=yes smtp-recv </dev/null
	assert_output ''
	assert_equal "$stderr" 'smtp-recv: fatal: SMTP_DSN must be 0 or 1'
}

@test "RET, ENVID, NOTIFY, ORCPT accepted and queued as the envelope items E H N O, in their places" {
	run -0 --separate-stderr smtp_session < <(dsn_session)
	assert_line -n 8 '250 2.1.0 sender ok'
	assert_line -n 9 '250 2.1.5 recipient ok'
	assert_line -n 11 --regexp '^250 2\.0\.0 ok: queued as '
	local id
	id=$(one_queued)
	run -0 queue_tail "$id"
	assert_output "$ITEMS"
	# The message itself is as without DSN.
	run -0 queue_body "$id"
	assert_output $'Subject: dsn\n\nbody'
}

@test "the same through QMAILQUEUE=queue-inject: the same envelope, byte for byte" {
	run -0 --separate-stderr smtp_session QMAILQUEUE="$(command -v queue-inject)" < <(dsn_session)
	assert_line -n 11 --regexp '^250 2\.0\.0 ok: queued as '
	local id
	id=$(one_queued)
	run -0 queue_tail "$id"
	assert_output "$ITEMS"
}

@test "over a socket with python3 smtplib: DSN offered, every parameter stored" {
	start_tcpserver
	run -0 py_dsn "$SMTP_PORT"
	assert_output - <<'EOF'
DSN offered
MAIL 250
RCPT 250
DATA 250
EOF
	local id
	id=$(one_queued)
	run -0 queue_tail "$id"
	assert_output "$ITEMS"
}

@test "keywords and RET/NOTIFY values in any case, in any order: stored in the order of queue(5) (E H, N O), RET and NOTIFY upper-cased" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org> ret=full envid=Ab+2Bc
RCPT TO:<alice@example.test> orcpt=RFC822;Bob@Example.org notify=delay,Success
RCPT TO:<bob@example.test> Notify=never
RCPT TO:<carol@example.test>
DATA
x
.
EOF
	assert_line -n 13 --regexp '^250 2\.0\.0 ok: queued as '
	run -0 queue_tail "$(one_queued)"
	assert_output 'Fbob@example.org\x00EAb+2Bc\x00HFULL\x00Talice@example.test\x00NDELAY,SUCCESS\x00ORFC822;Bob@Example.org\x00Tbob@example.test\x00NNEVER\x00Tcarol@example.test\x00\x00'
}

@test "without DSN parameters the envelope is qmail-queue's, byte for byte" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
DATA
x
.
EOF
	run -0 queue_tail "$(one_queued)"
	assert_output "$PLAIN"
}

@test "bad NOTIFY: NEVER with others, unknown word, empty, a word twice, a stray comma, no value: 501" {
	run -0 --separate-stderr smtp_session MAXERRORS=100 < <(rcpt_lines 'NOTIFY=NEVER,SUCCESS' \
		'NOTIFY=FOO' 'NOTIFY=' 'NOTIFY=SUCCESS,SUCCESS' 'NOTIFY=SUCCESS,' 'NOTIFY=,DELAY' \
		'NOTIFY' 'NOTIFY=SUCCESS;FAILURE')
	local i
	for i in 9 10 11 12 13 14 16; do
		assert_line -n "$i" '501 5.5.4 bad NOTIFY parameter: NEVER, or a list of SUCCESS, FAILURE, DELAY'
	done
	assert_line -n 15 '501 5.5.4 NOTIFY needs a value'
	assert_line -n 17 '221 2.0.0 bye'
}

@test "bad ORCPT: no ';', bad xtext (+ZZ, lower-case hex, a bare '+', '='), no addr-type, no address, over 500: 501" {
	local long
	long="ORCPT=rfc822;$(printf 'a%.0s' $(seq 494))"	# 501 characters
	run -0 --separate-stderr smtp_session MAXERRORS=100 < <(rcpt_lines 'ORCPT=rfc822bob@example.org' \
		'ORCPT=rfc822;+ZZ' 'ORCPT=rfc822;bob+2bx@example.org' 'ORCPT=rfc822;bob+' \
		'ORCPT=rfc822;a=b' 'ORCPT=;bob@example.org' 'ORCPT=rfc822;' 'ORCPT=rf(c;bob' "$long")
	local i
	for i in 9 10 11 12 13 14 15 16; do
		assert_line -n "$i" '501 5.5.4 bad ORCPT parameter: addr-type;xtext'
	done
	assert_line -n 17 '501 5.5.4 ORCPT longer than 500 characters'
	# 500 characters, and spaces (+20) in the address, are fine.
	long="ORCPT=rfc822;$(printf 'a%.0s' $(seq 493))"
	run -0 --separate-stderr smtp_session < <(rcpt_lines "$long" 'ORCPT=rfc822;"a+20b"@example.org' \
		'ORCPT=X-LOCAL;bob')
	assert_line -n 9 '250 2.1.5 recipient ok'
	assert_line -n 10 '250 2.1.5 recipient ok'
	assert_line -n 11 '250 2.1.5 recipient ok'
}

@test "ENVID: 100 characters accepted, 101 refused; bad xtext, DEL (+7F), no value, RET other than FULL/HDRS: 501" {
	local e100 e101
	e100=$(printf 'e%.0s' $(seq 100))
	e101=${e100}f
	run -0 --separate-stderr smtp_session MAXERRORS=100 <<EOF
EHLO client.example.org
MAIL FROM:<bob@example.org> ENVID=$e101
MAIL FROM:<bob@example.org> ENVID=a+ZZ
MAIL FROM:<bob@example.org> ENVID=a+7Fb
MAIL FROM:<bob@example.org> ENVID=
MAIL FROM:<bob@example.org> RET=NONE
MAIL FROM:<bob@example.org> RET
MAIL FROM:<bob@example.org> ENVID=$e100
RSET
MAIL FROM:<bob@example.org> ENVID=a+20b
EOF
	assert_line -n 8 '501 5.5.4 ENVID longer than 100 characters'
	assert_line -n 9 '501 5.5.4 bad ENVID parameter: xtext of printable characters'
	assert_line -n 10 '501 5.5.4 bad ENVID parameter: xtext of printable characters'
	assert_line -n 11 '501 5.5.4 bad ENVID parameter: xtext of printable characters'
	assert_line -n 12 '501 5.5.4 bad RET parameter: FULL or HDRS'
	assert_line -n 13 '501 5.5.4 RET needs a value'
	assert_line -n 14 '250 2.1.0 sender ok'
	assert_line -n 16 '250 2.1.0 sender ok'
}

@test "a DSN parameter given twice: 501, nothing kept of the command, the session goes on" {
	run -0 --separate-stderr smtp_session MAXERRORS=100 <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org> RET=HDRS RET=HDRS
MAIL FROM:<bob@example.org> ENVID=a ENVID=b
MAIL FROM:<bob@example.org> ENVID=a
RCPT TO:<alice@example.test> NOTIFY=DELAY NOTIFY=DELAY
RCPT TO:<alice@example.test> ORCPT=rfc822;a ORCPT=rfc822;a
RCPT TO:<alice@example.test> NOTIFY=FAILURE
DATA
x
.
EOF
	assert_line -n 8 '501 5.5.4 duplicate RET parameter'
	assert_line -n 9 '501 5.5.4 duplicate ENVID parameter'
	assert_line -n 10 '250 2.1.0 sender ok'
	assert_line -n 11 '501 5.5.4 duplicate NOTIFY parameter'
	assert_line -n 12 '501 5.5.4 duplicate ORCPT parameter'
	assert_line -n 13 '250 2.1.5 recipient ok'
	assert_line -n 15 --regexp '^250 2\.0\.0 ok: queued as '
	run -0 queue_tail "$(one_queued)"
	assert_output 'Fbob@example.org\x00Ea\x00Talice@example.test\x00NFAILURE\x00\x00'
}

@test "after HELO, or with SMTP_DSN=0: the parameters are unknown, 555; plain mail still flows" {
	run -0 --separate-stderr smtp_session <<'EOF'
HELO client.example.org
MAIL FROM:<bob@example.org> RET=HDRS
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test> NOTIFY=NEVER
QUIT
EOF
	assert_line -n 2 '555 5.5.4 unsupported MAIL parameter'
	assert_line -n 4 '555 5.5.4 unsupported RCPT parameter'
	run -0 --separate-stderr smtp_session SMTP_DSN=0 MAXERRORS=100 <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org> RET=HDRS
MAIL FROM:<bob@example.org> ENVID=QQ
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test> NOTIFY=SUCCESS
RCPT TO:<alice@example.test> ORCPT=rfc822;bob@example.org
RCPT TO:<alice@example.test>
DATA
x
.
EOF
	assert_line -n 7 '555 5.5.4 unsupported MAIL parameter'
	assert_line -n 8 '555 5.5.4 unsupported MAIL parameter'
	assert_line -n 9 '250 2.1.0 sender ok'
	assert_line -n 10 '555 5.5.4 unsupported RCPT parameter'
	assert_line -n 11 '555 5.5.4 unsupported RCPT parameter'
	assert_line -n 12 '250 2.1.5 recipient ok'
	assert_line -n 14 --regexp '^250 2\.0\.0 ok: queued as '
	run -0 queue_tail "$(one_queued)"
	assert_output "$PLAIN"
}

@test "a queue program that knows no DSN items refuses them (554 5.3.0); with SMTP_DSN=0 the mail goes through it" {
	# A stand-in for a foreign qmail-queue: the old envelope only (F, T, the end).
	cat >"$BATS_TEST_TMPDIR/oldqueue" <<EOF
#!$PYTHON
import os, sys
while os.read(0, 65536):
    pass
env = b""
while True:
    b = os.read(1, 65536)
    if not b:
        break
    env += b
items = env.split(b"\0")
ok = items[0][:1] == b"F" and items[-2:] == [b"", b""] and all(i[:1] == b"T" for i in items[1:-2])
sys.exit(0 if ok else 91)
EOF
	chmod +x "$BATS_TEST_TMPDIR/oldqueue"
	run -0 --separate-stderr smtp_session QMAILQUEUE="$BATS_TEST_TMPDIR/oldqueue" < <(dsn_session)
	assert_line -n 11 '554 5.3.0 envelope format error'
	run -0 --separate-stderr smtp_session QMAILQUEUE="$BATS_TEST_TMPDIR/oldqueue" SMTP_DSN=0 <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
DATA
x
.
EOF
	assert_line -n 10 --regexp '^250 2\.0\.0 ok: queued as '
}

@test "a RCPT line may be 500 octets longer than SMTP_LINE_MAX with DSN (RFC 3461 section 4), not without" {
	local pad orcpt
	pad=$(printf 'x%.0s' $(seq 450))
	orcpt="ORCPT=rfc822;$(printf 'o%.0s' $(seq 493))"	# ORCPT= and 500 characters
	# RCPT TO:<alice@example.test> (28) NOTIFY=SUCCESS,FAILURE,DELAY (28) ORCPT (506), 2 spaces
	# and CRLF: 566 octets, over 512 and under 1012; with the pad, over 1012.
	run -0 --separate-stderr smtp_session MAXERRORS=100 <<EOF
EHLO client.example.org
MAIL FROM:<bob@example.org> RET=HDRS ENVID=x
RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE,DELAY $orcpt
RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE,DELAY $orcpt $pad
QUIT
EOF
	assert_line -n 8 '250 2.1.0 sender ok'
	assert_line -n 9 '250 2.1.5 recipient ok'
	assert_line -n 10 '500 5.5.2 line too long'
	run -0 --separate-stderr smtp_session MAXERRORS=100 SMTP_DSN=0 <<EOF
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE,DELAY $orcpt
QUIT
EOF
	assert_line -n 8 '500 5.5.2 line too long'
}

@test "RSET and a new MAIL forget the parameters of the transaction before" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org> RET=HDRS ENVID=old
RCPT TO:<alice@example.test> NOTIFY=NEVER
RSET
MAIL FROM:<bob@example.org> ENVID=new
RCPT TO:<alice@example.test>
DATA
x
.
EOF
	assert_line -n 14 --regexp '^250 2\.0\.0 ok: queued as '
	run -0 queue_tail "$(one_queued)"
	assert_output 'Fbob@example.org\x00Enew\x00Talice@example.test\x00\x00'
}

# --- queue-inject -----------------------------------------------------------------------------

# inject_env FORMAT [ARG...]: queue-inject of the test message with the envelope printf FORMAT.
inject_env() {
	# shellcheck disable=SC2059
	printf "$@" >"$BATS_TEST_TMPDIR/env"
	queue-inject 1<"$BATS_TEST_TMPDIR/env" <"$BATS_TEST_TMPDIR/message"
}

@test "queue-inject: the DSN items in their places are queued byte for byte" {
	run -0 --separate-stderr inject_env 'Fbob@example.org\0EQQ+2Bx\0HHDRS\0Talice@example.test\0NSUCCESS,FAILURE\0Orfc822;bob+2Bx@example.org\0Tcarol@example.test\0Orfc822;c\0Nnever\0Tdave@example.test\0\0'
	assert_output ''
	assert_equal "$stderr" ''
	run -0 queue_tail "$(one_queued)"
	assert_output 'Fbob@example.org\x00EQQ+2Bx\x00HHDRS\x00Talice@example.test\x00NSUCCESS,FAILURE\x00Orfc822;bob+2Bx@example.org\x00Tcarol@example.test\x00Orfc822;c\x00Nnever\x00Tdave@example.test\x00\x00'
	# H then E is as good as E then H.
	run -0 inject_env 'F\0Hfull\0Ex\0Ta@example.test\0\0'
}

@test "queue-inject: items out of place, twice for one owner, or with bad values: exit 91, nothing queued" {
	local env
	for env in \
		'Fb@example.org\0Ta@example.test\0EQQ\0\0' \
		'Fb@example.org\0Ta@example.test\0HHDRS\0\0' \
		'Fb@example.org\0NSUCCESS\0Ta@example.test\0\0' \
		'Fb@example.org\0Orfc822;a\0Ta@example.test\0\0' \
		'EQQ\0Fb@example.org\0Ta@example.test\0\0' \
		'Fb@example.org\0EQQ\0EQQ\0Ta@example.test\0\0' \
		'Fb@example.org\0HFULL\0HHDRS\0Ta@example.test\0\0' \
		'Fb@example.org\0Ta@example.test\0NNEVER\0NNEVER\0\0' \
		'Fb@example.org\0Ta@example.test\0Orfc822;a\0Orfc822;a\0\0' \
		'Fb@example.org\0Ta@example.test\0NSUCCESS\0Fc@example.org\0\0' \
		'Fb@example.org\0HNONE\0Ta@example.test\0\0' \
		'Fb@example.org\0Ta@example.test\0NFOO\0\0' \
		'Fb@example.org\0Ta@example.test\0NNEVER,SUCCESS\0\0' \
		'Fb@example.org\0Ta@example.test\0NSUCCESS,SUCCESS\0\0' \
		'Fb@example.org\0Ta@example.test\0N\0\0' \
		'Fb@example.org\0Ta@example.test\0Orfc822a\0\0' \
		'Fb@example.org\0Ta@example.test\0Orfc822;+ZZ\0\0' \
		'Fb@example.org\0Ta@example.test\0Orfc822;a b\0\0' \
		'Fb@example.org\0E\0Ta@example.test\0\0' \
		'Fb@example.org\0Ea+2\0Ta@example.test\0\0' \
		'Fb@example.org\0Ea\tb\0Ta@example.test\0\0' \
		'Fb@example.org\0EQQ\0HHDRS\0\0'; do
		run -91 --separate-stderr inject_env "$env"
		assert_one_stderr_line queue-inject
		assert_equal "$stderr" 'queue-inject: fatal: envelope format error'
	done
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
}

@test "queue-inject: an ORCPT of 500 characters is taken, 501 is a format error (91), an item over 1003 bytes exit 11" {
	local o500 o501 o1004
	o500="rfc822;$(printf 'a%.0s' $(seq 493))"
	o501=${o500}a
	o1004="rfc822;$(printf 'a%.0s' $(seq 997))"
	run -0 inject_env 'Fb@example.org\0Ta@example.test\0O%s\0\0' "$o500"
	run -91 --separate-stderr inject_env 'Fb@example.org\0Ta@example.test\0O%s\0\0' "$o501"
	assert_one_stderr_line queue-inject
	run -11 --separate-stderr inject_env 'Fb@example.org\0Ta@example.test\0O%s\0\0' "$o1004"
	assert_one_stderr_line queue-inject
	assert_count 1 file_count "$QUEUEDIR/msg"
}

# --- smtp-send --------------------------------------------------------------------------------

# send_dsn PORT [SMTP-SEND-ARG...]: smtp-send -r to PORT, bob to alice with every DSN parameter.
send_dsn() {
	local port=$1
	shift
	smtp-send -r "127.0.0.1:$port" -N success,FAILURE -O 'rfc822;bob+2Bx@example.org' -R hdrs \
		-V QQ+2Bx "$@" bob@example.org alice@example.test <"$BATS_TEST_TMPDIR/message"
}

@test "smtp-send to smtp-recv with DSN: the parameters arrive and are queued there as items" {
	start_tcpserver
	run -0 --separate-stderr send_dsn "$SMTP_PORT"
	assert_output --regexp '^alice@example\.test delivered 250 2\.0\.0 "ok: queued as [0-9-]+" host=127\.0\.0\.1\[127\.0\.0\.1\] tls=none$'
	run -0 queue_tail "$(one_queued)"
	assert_output "$ITEMS"
}

@test "smtp-send to smtp-recv with SMTP_DSN=0: no parameter is sent, the message is delivered" {
	start_tcpserver SMTP_DSN=0
	run -0 --separate-stderr send_dsn "$SMTP_PORT"
	assert_output --regexp '^alice@example\.test delivered 250 2\.0\.0 '
	run -0 queue_tail "$(one_queued)"
	assert_output "$PLAIN"
}

@test "smtp-send to a scripted peer: RET, ENVID, NOTIFY, ORCPT on the wire with DSN offered, none without" {
	start_server PEER_LOG="$PEER_LOG" PEER_EXT=PIPELINING,DSN -- "$PYTHON" "$TESTLIB/smtp_peer.py" smtp
	run -0 --separate-stderr send_dsn "$SERVER_PORT"
	assert_line -n 0 --regexp '^alice@example\.test delivered 250 '
	run -0 bash -c "grep '^READ ' '$PEER_LOG' | grep -v 'EHLO\|QUIT' | head -1 | sed 's/^READ //'"
	assert_output "b'MAIL FROM:<bob@example.org> RET=HDRS ENVID=QQ+2Bx\\r\\nRCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@example.org\\r\\nDATA\\r\\n'"
	stop_server
	: >"$PEER_LOG"
	start_server PEER_LOG="$PEER_LOG" PEER_EXT=PIPELINING -- "$PYTHON" "$TESTLIB/smtp_peer.py" smtp
	run -0 --separate-stderr send_dsn "$SERVER_PORT"
	assert_line -n 0 --regexp '^alice@example\.test delivered 250 '
	run -0 bash -c "grep '^READ ' '$PEER_LOG' | grep -v 'EHLO\|QUIT' | head -1 | sed 's/^READ //'"
	assert_output "b'MAIL FROM:<bob@example.org>\\r\\nRCPT TO:<alice@example.test>\\r\\nDATA\\r\\n'"
}

@test "smtp-send: without -N/-O/-R/-V nothing is added, even when the peer offers DSN" {
	start_server PEER_LOG="$PEER_LOG" PEER_EXT=PIPELINING,DSN -- "$PYTHON" "$TESTLIB/smtp_peer.py" smtp
	run -0 --separate-stderr smtp-send -r "127.0.0.1:$SERVER_PORT" bob@example.org alice@example.test \
		<"$BATS_TEST_TMPDIR/message"
	run -0 bash -c "grep '^READ ' '$PEER_LOG' | grep -v 'EHLO\|QUIT' | head -1 | sed 's/^READ //'"
	assert_output "b'MAIL FROM:<bob@example.org>\\r\\nRCPT TO:<alice@example.test>\\r\\nDATA\\r\\n'"
}

@test "smtp-send: a bad -N, -O, -R or -V is a usage error, exit 100, before any connection" {
	local opt
	for opt in '-N NEVER,DELAY' '-N' '-O rfc822' '-O rfc822;+ZZ' '-R NONE' "-V $(printf 'v%.0s' $(seq 101))" '-V a=b'; do
		# shellcheck disable=SC2086
		run -100 --separate-stderr smtp-send -r 127.0.0.1:9 $opt bob@example.org alice@example.test </dev/null
		assert_one_stderr_line smtp-send
		assert_output ''
	done
}
