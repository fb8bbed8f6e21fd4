#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# SMTP AUTH in smtp-recv, on stdin/stdout: TLS is said to be on by SSL_PROTOCOL, as tls-wrap
# without -n says it (the real handshakes are in smtp-recv-tls.bats). The credentials are checked
# by the real checkpassword-mysql against the demo users (alice/alice-demo, bob/bob-demo).

setup() {
	load lib/common
	load lib/smtp
	make_queue
	userdb-compile -f "$REPO/etc/demo/users.txt" "$BATS_TEST_TMPDIR/users.cdb" || fail "userdb-compile"
	export USERDB=$BATS_TEST_TMPDIR/users.cdb MAILROOT=$BATS_TEST_TMPDIR/mail
	export SMTP_HOSTNAME=mx.example.test TCPREMOTEIP=192.0.2.7 TCPLOCALIP=192.0.2.1
	# -d 0: no delay after a refusal, so that the tests run fast.
	export CHECKPASSWORD="$BIN/checkpassword-mysql -d 0 true"
	export SSL_PROTOCOL=TLSv1.3 SSL_CIPHER=TLS_AES_256_GCM_SHA384
}

# b64 FORMAT: printf's escapes (\0) allowed.
b64() {
	printf "$1" | base64 -w0
}

@test "EHLO offers AUTH PLAIN LOGIN under TLS, and not without it or without CHECKPASSWORD" {
	run -0 --separate-stderr smtp_session <<<'EHLO c.example.org'
	assert_line '250-AUTH PLAIN LOGIN'
	refute_line '250-STARTTLS'
	run -0 --separate-stderr smtp_session SSL_PROTOCOL= <<<'EHLO c.example.org'
	refute_line --partial AUTH
	run -0 --separate-stderr smtp_session CHECKPASSWORD= <<<'EHLO c.example.org'
	refute_line --partial AUTH
	run -0 --separate-stderr smtp_session SSL_PROTOCOL= SMTP_AUTH_PLAINTEXT=1 <<<'EHLO c.example.org'
	assert_line '250-AUTH PLAIN LOGIN'
}

@test "AUTH PLAIN with an initial response: 235, then the user may relay; the Received says ESMTPSA" {
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
MAIL FROM:<alice@example.test>
RCPT TO:<someone@remote.example>
RSET
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
MAIL FROM:<alice@example.test> AUTH=<>
RCPT TO:<someone@remote.example>
DATA
Subject: out

hello
.
QUIT
EOF
	assert_line -n 10 '554 5.7.1 relay access denied'
	assert_line -n 12 '235 2.7.0 authentication successful'
	assert_line -n 13 '250 2.1.0 sender ok'
	assert_line -n 14 '250 2.1.5 recipient ok'
	assert_line --regexp '^250 2\.0\.0 ok: queued as [0-9]+-[0-9]{6}-[0-9]+$'
	assert_stderr_line "smtp-recv: [0-9]+ auth ok client=192\.0\.2\.7 mechanism=PLAIN user=\"alice@example\.test\""
	assert_stderr_line "smtp-recv: [0-9]+ [0-9]+-[0-9]{6}-[0-9]+ accepted from=<alice@example\.test> to=<someone@remote\.example> nrcpt=1 size=[0-9]+ client=192\.0\.2\.7 tls=TLSv1\.3 user=alice@example\.test"
	refute_output --partial alice-demo
	[[ $stderr != *alice-demo* ]] || fail "the password is in the log"
	local id=$(queue_ids)
	run -0 queue_message "$id"
	assert_line -n 0 'Received: from c.example.org ([192.0.2.7])'
	assert_line -n 1 $'\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)'
	assert_line -n 2 $'\tby mx.example.test (postroom) with ESMTPSA id '"$id"
	run -0 queue_envelope "$id"
	assert_output $'Falice@example.test\nTsomeone@remote.example'
}

@test "MAIL AUTH= takes a whole xtext mailbox (RFC 4954 section 5), however long the line allows" {
	local box=$(printf 'a%.0s' $(seq 200))+2B@example.test
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
MAIL FROM:<bob@example.org> AUTH=$box
RSET
MAIL FROM:<bob@example.org> AUTH=<> SIZE=100
EOF
	assert_line -n 9 '250 2.1.0 sender ok'
	assert_line -n 11 '250 2.1.0 sender ok'
}

@test "AUTH PLAIN after a 334, AUTH LOGIN with and without an initial response" {
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
AUTH PLAIN
$(b64 'bob@example.test\0bob@example.test\0bob-demo')
QUIT
EOF
	assert_line -n 9 '334 '
	assert_line -n 10 '235 2.7.0 authentication successful'
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
AUTH LOGIN
$(b64 'bob@example.test')
$(b64 'bob-demo')
QUIT
EOF
	assert_line -n 9 '334 VXNlcm5hbWU6'
	assert_line -n 10 '334 UGFzc3dvcmQ6'
	assert_line -n 11 '235 2.7.0 authentication successful'
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
AUTH LOGIN $(b64 'Bob@Example.TEST')
$(b64 'bob-demo')
MAIL FROM:<bob@example.test>
EOF
	assert_line -n 9 '334 UGFzc3dvcmQ6'
	assert_line -n 10 '235 2.7.0 authentication successful'
	assert_line -n 11 '250 2.1.0 sender ok'
}

@test "a wrong password: 535 5.7.8, logged without the password; SMTP_AUTH_MAXFAIL failures close" {
	run -0 --separate-stderr smtp_session SMTP_AUTH_MAXFAIL=2 <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 '\0alice@example.test\0guess-one')
AUTH PLAIN $(b64 '\0nobody@example.test\0guess-two')
NOOP
EOF
	assert_line -n 9 '535 5.7.8 authentication credentials invalid'
	assert_line -n 10 '535 5.7.8 authentication credentials invalid'
	assert_line -n 11 '421 4.7.0 too many failed authentications, closing connection'
	assert_equal "${#lines[@]}" 12
	assert_stderr_line "smtp-recv: [0-9]+ auth failed client=192\.0\.2\.7 mechanism=PLAIN user=\"alice@example\.test\""
	assert_stderr_line "smtp-recv: [0-9]+ auth failed client=192\.0\.2\.7 mechanism=PLAIN user=\"nobody@example\.test\""
	[[ $stderr != *guess-* ]] || fail "a password is in the log"
	# The default is 3.
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 '\0alice@example.test\0x')
AUTH PLAIN $(b64 '\0alice@example.test\0y')
AUTH PLAIN $(b64 '\0alice@example.test\0z')
NOOP
EOF
	assert_line -n 11 '535 5.7.8 authentication credentials invalid'
	assert_line -n 12 '421 4.7.0 too many failed authentications, closing connection'
}

@test "AUTH refusals: no TLS 538, no EHLO 503, twice 503, in a transaction 503, unknown mechanism 504" {
	run -0 --separate-stderr smtp_session SSL_PROTOCOL= <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
EOF
	assert_line -n 8 '538 5.7.11 encryption required for authentication: STARTTLS first'
	run -0 --separate-stderr smtp_session <<EOF
HELO c.example.org
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
EHLO c.example.org
MAIL FROM:<x@remote.example>
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
RSET
AUTH CRAM-MD5
AUTH
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
EOF
	assert_line -n 2 '503 5.5.1 send EHLO first'
	assert_line -n 12 '503 5.5.1 AUTH not allowed during a mail transaction'
	assert_line -n 13 '250 2.0.0 ok'
	assert_line -n 14 '504 5.5.4 unrecognized authentication mechanism'
	assert_line -n 15 '501 5.5.4 syntax: AUTH mechanism [initial-response]'
	assert_line -n 16 '235 2.7.0 authentication successful'
	assert_line -n 17 '503 5.5.1 already authenticated'
	run -0 --separate-stderr smtp_session CHECKPASSWORD= <<<$'EHLO c.example.org\nAUTH PLAIN'
	assert_line -n 8 '502 5.5.1 AUTH not available'
}

@test "malformed responses: cancel 501, bad base64 501, no NULs 501, another authorization id 535" {
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
AUTH LOGIN
*
AUTH PLAIN not*base64
AUTH PLAIN $(b64 'alice@example.test alice-demo')
AUTH PLAIN $(b64 'bob@example.test\0alice@example.test\0alice-demo')
AUTH PLAIN =
AUTH PLAIN $(b64 '\0\0alice-demo')
EOF
	assert_line -n 9 '334 VXNlcm5hbWU6'
	assert_line -n 10 '501 5.0.0 authentication cancelled'
	assert_line -n 11 '501 5.5.2 cannot decode the response'
	assert_line -n 12 '501 5.5.2 malformed PLAIN response'
	assert_line -n 13 "535 5.7.8 the authorization identity must be the user's own"
	assert_line -n 14 '501 5.5.2 malformed PLAIN response'
	assert_line -n 15 '535 5.7.8 authentication credentials invalid'
}

@test "a long AUTH line is taken up to 12288 bytes; credentials over 512 bytes are refused" {
	local long=$(head -c 3000 /dev/zero | tr '\0' x)
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 "\\0alice@example.test\\0$long")
NOOP $long
QUIT
EOF
	assert_line -n 9 '535 5.7.8 authentication credentials invalid'
	assert_line -n 10 '500 5.5.2 line too long'
	assert_line -n 11 '221 2.0.0 bye'
	local huge=$(head -c 13000 /dev/zero | tr '\0' A)
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
AUTH PLAIN $huge
QUIT
EOF
	assert_line -n 9 '500 5.5.6 authentication exchange line is too long'
	assert_line -n 10 '221 2.0.0 bye'
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
AUTH LOGIN
$huge
QUIT
EOF
	assert_line -n 9 '334 VXNlcm5hbWU6'
	assert_line -n 10 '500 5.5.6 authentication exchange line is too long'
	assert_line -n 11 '221 2.0.0 bye'
}

@test "a checkpassword program in trouble: 454 4.7.0, and one log line; a hung one is killed" {
	printf '#!/bin/sh\nexit 111\n' >"$BATS_TEST_TMPDIR/cp-trouble"
	printf '#!/bin/sh\nexec sleep 30\n' >"$BATS_TEST_TMPDIR/cp-hang"
	chmod 755 "$BATS_TEST_TMPDIR/cp-trouble" "$BATS_TEST_TMPDIR/cp-hang"
	run -0 --separate-stderr smtp_session CHECKPASSWORD="$BATS_TEST_TMPDIR/cp-trouble" <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
EOF
	assert_line -n 9 '454 4.7.0 temporary authentication failure'
	assert_stderr_line "smtp-recv: [0-9]+ auth trouble client=192\.0\.2\.7 mechanism=PLAIN user=\"alice@example\.test\" reason=\"$(re_escape "$BATS_TEST_TMPDIR")/cp-trouble exited 111\""
	run -0 --separate-stderr smtp_session CHECKPASSWORD="$BATS_TEST_TMPDIR/cp-hang" SMTP_AUTH_TIMEOUT=1 <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
EOF
	assert_line -n 9 '454 4.7.0 temporary authentication failure'
	assert_stderr_line "smtp-recv: [0-9]+ auth trouble client=192\.0\.2\.7 mechanism=PLAIN user=\"alice@example\.test\" reason=\"$(re_escape "$BATS_TEST_TMPDIR")/cp-hang was killed by signal 14\""
	# Trouble counts toward SMTP_AUTH_MAXFAIL: each try costs a process.
	run -0 --separate-stderr smtp_session CHECKPASSWORD="$BATS_TEST_TMPDIR/cp-trouble" SMTP_AUTH_MAXFAIL=2 <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
NOOP
EOF
	assert_line -n 10 '454 4.7.0 temporary authentication failure'
	assert_line -n 11 '421 4.7.0 too many failed authentications, closing connection'
	# A program that cannot be run: its own line says why.
	run -0 --separate-stderr smtp_session CHECKPASSWORD="$BATS_TEST_TMPDIR/nonexistent true" <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
EOF
	assert_line -n 9 '454 4.7.0 temporary authentication failure'
	assert_stderr_line "smtp-recv: [0-9]+ trouble: unable to run $(re_escape "$BATS_TEST_TMPDIR")/nonexistent: No such file or directory"
	assert_stderr_line "smtp-recv: [0-9]+ auth trouble .* reason=\"$(re_escape "$BATS_TEST_TMPDIR")/nonexistent exited 127\""
}

@test "a user name with blanks, controls or quotes is refused without asking; 535" {
	printf '#!/bin/sh\necho asked >>"$0.log"\nexit 1\n' >"$BATS_TEST_TMPDIR/cp"
	chmod 755 "$BATS_TEST_TMPDIR/cp"
	run -0 --separate-stderr smtp_session CHECKPASSWORD="$BATS_TEST_TMPDIR/cp" <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 '\0alice example\0pw')
AUTH PLAIN $(b64 '\0alice\r\nforged\0pw')
AUTH LOGIN $(b64 'a"b')
$(b64 'pw')
EOF
	assert_line -n 9 '535 5.7.8 authentication credentials invalid'
	assert_line -n 10 '535 5.7.8 authentication credentials invalid'
	assert_line -n 11 '334 UGFzc3dvcmQ6'
	assert_line -n 12 '535 5.7.8 authentication credentials invalid'
	assert_line -n 13 '421 4.7.0 too many failed authentications, closing connection'
	[ ! -e "$BATS_TEST_TMPDIR/cp.log" ] || fail "the checkpassword program was asked"
	assert_stderr_line 'smtp-recv: [0-9]+ auth failed client=192\.0\.2\.7 mechanism=PLAIN user="alice\\x0d\\x0aforged"'
}

@test "HELO under TLS: the Received says SMTP, since ESMTPS and ESMTPA are for EHLO (RFC 3848)" {
	run -0 --separate-stderr smtp_session <<'EOF'
HELO c.example.org
MAIL FROM:<x@remote.example>
RCPT TO:<alice@example.test>
DATA
Subject: x

.
EOF
	local id=$(queue_ids)
	run -0 queue_message "$id"
	assert_line -n 2 $'\tby mx.example.test (postroom) with SMTP id '"$id"
}

@test "SMTP_SENDER_LOGIN: the user's own address, an alias of it, an extension, <>; not bob's" {
	run -0 --separate-stderr smtp_session SMTP_SENDER_LOGIN=1 <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
MAIL FROM:<bob@example.test>
MAIL FROM:<someone@remote.example>
MAIL FROM:<postmaster@example.test>
RSET
MAIL FROM:<Alice+lists@Example.Test>
RSET
MAIL FROM:<>
RSET
MAIL FROM:<alice@example.test>
EOF
	assert_line -n 10 '553 5.7.1 sender <bob@example.test> is not owned by user alice@example.test'
	assert_line -n 11 '553 5.7.1 sender <someone@remote.example> is not owned by user alice@example.test'
	assert_line -n 12 '250 2.1.0 sender ok'
	assert_line -n 14 '250 2.1.0 sender ok'
	assert_line -n 16 '250 2.1.0 sender ok'
	assert_line -n 18 '250 2.1.0 sender ok'
	assert_stderr_line "smtp-recv: [0-9]+ reject client=192\.0\.2\.7 from=<bob@example\.test> user=alice@example\.test reason=\"sender not owned\""
	# Without the setting, any sender goes.
	run -0 --separate-stderr smtp_session <<EOF
EHLO c.example.org
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
MAIL FROM:<bob@example.test>
EOF
	assert_line -n 10 '250 2.1.0 sender ok'
}

@test "SMTP_AUTH_REQUIRED: no MAIL before AUTH (530), even to a local user" {
	run -0 --separate-stderr smtp_session SMTP_AUTH_REQUIRED=1 <<EOF
EHLO c.example.org
MAIL FROM:<someone@remote.example>
AUTH PLAIN $(b64 '\0alice@example.test\0alice-demo')
MAIL FROM:<alice@example.test>
EOF
	assert_line -n 9 '530 5.7.0 authentication required'
	assert_line -n 10 '235 2.7.0 authentication successful'
	assert_line -n 11 '250 2.1.0 sender ok'
	run -100 --separate-stderr smtp_session SMTP_AUTH_REQUIRED=1 CHECKPASSWORD= <<<'QUIT'
	assert_equal "$stderr" 'smtp-recv: fatal: SMTP_AUTH_REQUIRED is set but CHECKPASSWORD is not'
}

@test "without the UCSPI-TLS descriptors there is no STARTTLS: 502, not offered" {
	run -0 --separate-stderr smtp_session SSL_PROTOCOL= <<'EOF'
EHLO c.example.org
STARTTLS
EOF
	refute_line '250-STARTTLS'
	assert_line -n 8 '502 5.5.1 STARTTLS not available'
	# Descriptors that are not open are not UCSPI-TLS either.
	run -0 --separate-stderr smtp_session SSL_PROTOCOL= SSLCTLFD=55 SSLREADFD=56 SSLWRITEFD=57 <<<'EHLO c.example.org'
	refute_line '250-STARTTLS'
}

# auth_memory PLAIN|LOGIN: runs smtp-recv with its input in a pipe, filled before it starts so
# that its first read takes 8192 bytes: NOOP lines, then credentials that straddle the end of
# those 8192 bytes (inside the password's base64), then the start of a command, so that input
# is still unread after the AUTH. Once the 235 is out (the session still open, waiting for the
# rest of that command), reads the process's memory through /proc/PID/maps and /proc/PID/mem
# and prints "found ..." for each trace of the password, then "scanned".
auth_memory() {
	TESTLIB=$TESTLIB "$PYTHON" - "$1" "$BIN/smtp-recv" <<'PY'
import base64, os, re, subprocess, sys
mech, prog = sys.argv[1:3]
password = b"alice-demo"
if mech == "PLAIN":
    secret = base64.b64encode(b"\0alice@example.test\0" + password)
    auth = b"AUTH PLAIN " + secret + b"\r\n"
    # Base64 characters 24 on encode the password: split inside them.
    split, traces = len(b"AUTH PLAIN ") + 32, [secret[i:i + 8] for i in range(24, len(secret) - 7)]
else:
    secret = base64.b64encode(password)
    auth = b"AUTH LOGIN " + base64.b64encode(b"alice@example.test") + b"\r\n" + secret + b"\r\n"
    split, traces = len(auth) - 2 - 8, [secret[i:i + 8] for i in range(len(secret) - 7)]
head = b"EHLO c.example.org\r\n"
left, pad = 8192 - len(head) - split, b""
while left > 0:
    n = 500 if left >= 506 else left
    pad += b"NOOP " + b"x" * (n - 7) + b"\r\n" if n > 6 else b"NOOP\r\n"
    left -= n
data = head + pad + auth + b"NOOP"
assert data.index(auth) + split == 8192
rfd, wfd = os.pipe()
os.write(wfd, data)
p = subprocess.Popen([prog], stdin=rfd, stdout=subprocess.PIPE)
os.close(rfd)
out = b""
while not re.search(rb"\r\n235 [^\r]*\r\n$", out):
    chunk = p.stdout.read1(65536)
    if not chunk:
        sys.exit("smtp-recv ended: " + out[-300:].decode(errors="replace"))
    out += chunk
sys.path.insert(0, os.environ["TESTLIB"])
from memscan import scan
for line in scan(p.pid, [password] + traces):
    print(line)
print("scanned")
p.kill()
p.wait()
PY
}

@test "credentials straddling the end of the input buffer leave no trace in memory after 235 (PLAIN and LOGIN)" {
	for mech in LOGIN PLAIN; do
		run -0 --separate-stderr auth_memory $mech
		assert_output scanned
	done
}
