#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# Submission with real TLS: smtp-recv under tls-wrap under tcpserver, as make run and a real
# installation run it, against openssl s_client, swaks and python3 smtplib. STARTTLS on the
# submission port (587: UCSPITLS=!, AUTH through checkpassword-mysql), implicit TLS (465), and the
# STARTTLS command injection (CVE-2011-0411).

load lib/common
load lib/smtp
load lib/tls

setup() {
	make_queue
	userdb-compile -f "$REPO/etc/demo/users.txt" "$BATS_TEST_TMPDIR/users.cdb" || fail "userdb-compile"
	export USERDB=$BATS_TEST_TMPDIR/users.cdb MAILROOT=$BATS_TEST_TMPDIR/mail
	make_cert mx.example.test "$BATS_TEST_TMPDIR/cert.pem" "$BATS_TEST_TMPDIR/key.pem"
	SERVER_ENV=(SMTP_HOSTNAME=mx.example.test CERTFILE="$BATS_TEST_TMPDIR/cert.pem"
		KEYFILE="$BATS_TEST_TMPDIR/key.pem" SMTP_SENDER_LOGIN=1
		CHECKPASSWORD="$BIN/checkpassword-mysql -d 0 true")
}

teardown() {
	stop_server
	common_teardown
}

# submission [VAR=V...]: the 587 service on $SERVER_PORT.
submission() {
	start_server "${SERVER_ENV[@]}" UCSPITLS='!' "$@" -- tls-wrap -n smtp-recv
}

# smtps [VAR=V...]: the 465 service on $SERVER_PORT.
smtps() {
	start_server "${SERVER_ENV[@]}" "$@" -- tls-wrap smtp-recv
}

# queued_remote ADDRESS: one message in the queue, for ADDRESS, sent over TLS after AUTH.
queued_remote() {
	local id=$(queue_ids)
	[ -n "$id" ] || fail "nothing in the queue"
	run -0 queue_envelope "$id"
	assert_line "T$1"
	run -0 queue_message "$id"
	assert_line --regexp $'^\tby mx\\.example\\.test \\(postroom\\) with ESMTPSA id '
	assert_line --regexp $'^\t\\(using TLSv1\\.3 with cipher TLS_[A-Z0-9_]+\\)$'
}

@test "openssl s_client -starttls smtp: a TLS 1.3 handshake, then EHLO gets 250 with AUTH" {
	submission
	run -0 bash -c "printf 'EHLO client.example.org\nQUIT\n' |
		openssl s_client -starttls smtp -connect 127.0.0.1:$SERVER_PORT -crlf -ign_eof -brief 2>&1 | tr -d '\\r'"
	assert_line 'Protocol version: TLSv1.3'
	assert_line --partial 'Peer certificate: CN = mx.example.test'
	assert_line '250-mx.example.test'
	assert_line '250-AUTH PLAIN LOGIN'
	refute_line '250-STARTTLS'
	assert_line '250 SMTPUTF8'
	assert_line '221 2.0.0 bye'
	wait_until 20 grep -q 'starttls client=' "$SERVER_LOG"
	run -0 grep 'smtp-recv: .* starttls ' "$SERVER_LOG"
	assert_regex "$output" '^smtp-recv: [0-9]+ starttls client=127\.0\.0\.1 protocol=TLSv1\.3 cipher=TLS_[A-Z0-9_]+$'
}

@test "openssl s_client to the implicit-TLS port: TLS 1.3 first, then the greeting and EHLO 250" {
	smtps
	run -0 bash -c "printf 'EHLO client.example.org\nQUIT\n' |
		openssl s_client -connect 127.0.0.1:$SERVER_PORT -crlf -ign_eof -brief 2>&1 | tr -d '\\r'"
	assert_line 'Protocol version: TLSv1.3'
	assert_line '220 mx.example.test ESMTP postroom'
	assert_line '250-AUTH PLAIN LOGIN'
	refute_line '250-STARTTLS'
	assert_line '221 2.0.0 bye'
}

@test "swaks --tls --auth submits to a remote address: queued for remote delivery" {
	submission
	run -0 swaks --server "127.0.0.1:$SERVER_PORT" --helo client.example.org --timeout 10 --tls \
		--auth-user alice@example.test --auth-password alice-demo \
		--from alice@example.test --to someone@remote.example --header 'Subject: via swaks'
	assert_line --regexp '^ *<~  235 2\.7\.0 authentication successful$'
	assert_line --regexp '^ *<~  250 2\.0\.0 ok: queued as [0-9]+-[0-9]{6}-[0-9]+$'
	queued_remote someone@remote.example
	# And through 465 with swaks's implicit TLS.
	stop_server
	smtps
	run -0 swaks --server "127.0.0.1:$SERVER_PORT" --helo client.example.org --timeout 10 --tlsc \
		--auth-user bob@example.test --auth-password bob-demo \
		--from bob@example.test --to other@remote.example
	assert_line --regexp '^ *<~  250 2\.0\.0 ok: queued as [0-9]+-[0-9]{6}-[0-9]+$'
}

@test "python3 smtplib: starttls, login, sendmail to a remote address; without login, 554" {
	submission
	run -0 "$PYTHON" - "$SERVER_PORT" <<'PY'
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
msg = "Subject: via smtplib\r\n\r\nhello\r\n"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.example.org", timeout=10)
s.starttls(context=ctx)
try:
    s.sendmail("alice@example.test", ["someone@remote.example"], msg)
except smtplib.SMTPRecipientsRefused as e:
    code, text = e.recipients["someone@remote.example"]
    print("without login:", code, text.decode())
print("login:", s.login("alice@example.test", "alice-demo")[0])
print("refused:", s.sendmail("alice@example.test", ["someone@remote.example"], msg))
s.quit()
PY
	assert_line 'without login: 554 5.7.1 relay access denied'
	assert_line 'login: 235'
	assert_line 'refused: {}'
	queued_remote someone@remote.example
}

@test "the same without AUTH is refused 554, and swaks without TLS gets 530 on the submission port" {
	submission
	run swaks --server "127.0.0.1:$SERVER_PORT" --helo client.example.org --timeout 10 --tls \
		--from alice@example.test --to someone@remote.example
	assert_failure
	assert_line --regexp '^ *<~\* 554 5\.7\.1 relay access denied$'
	run swaks --server "127.0.0.1:$SERVER_PORT" --helo client.example.org --timeout 10 \
		--from alice@example.test --to someone@remote.example
	assert_failure
	assert_line --regexp '^ *<\*\* 530 5\.7\.0 must issue a STARTTLS command first$'
	run -0 queue_ids
	assert_output ''
}

@test "AUTH before STARTTLS on the submission port: 538; MAIL: 530; AUTH is not offered before TLS" {
	submission
	run -0 plain_chat "$SERVER_PORT" <<EOF
EHLO client.example.org
AUTH PLAIN $(printf '\0alice@example.test\0alice-demo' | base64 -w0)
MAIL FROM:<alice@example.test>
QUIT
EOF
	assert_line '250-STARTTLS'
	refute_line --partial 'AUTH PLAIN LOGIN'
	assert_line '530 5.7.0 must issue a STARTTLS command first'
	assert_line --index 9 '530 5.7.0 must issue a STARTTLS command first'
	assert_line --index 10 '530 5.7.0 must issue a STARTTLS command first'
	# UCSPITLS=! makes TLS a must for AUTH, before it is a question of the mechanism: 530.
	# Without it (port 25 with AUTH allowed), AUTH in cleartext is 538.
	stop_server
	start_server "${SERVER_ENV[@]}" -- tls-wrap -n smtp-recv
	run -0 plain_chat "$SERVER_PORT" <<EOF
EHLO client.example.org
AUTH PLAIN $(printf '\0alice@example.test\0alice-demo' | base64 -w0)
MAIL FROM:<alice@example.test>
EOF
	assert_line '538 5.7.11 encryption required for authentication: STARTTLS first'
	assert_line '250 2.1.0 sender ok'
}

@test "wrong password over TLS: 535; after SMTP_AUTH_MAXFAIL failures the session is closed" {
	submission SMTP_AUTH_MAXFAIL=2
	run -0 tls_chat "$SERVER_PORT" starttls <<EOF
EHLO client.example.org
AUTH PLAIN $(printf '\0alice@example.test\0wrong' | base64 -w0)
AUTH PLAIN $(printf '\0alice@example.test\0wrong-again' | base64 -w0)
NOOP
EOF
	assert_line '535 5.7.8 authentication credentials invalid'
	assert_line '421 4.7.0 too many failed authentications, closing connection'
	assert_line EOF
}

@test "STARTTLS injection: STARTTLS and RSET in one packet, the RSET gets no reply inside TLS" {
	submission
	run -0 "$PYTHON" - "$SERVER_PORT" <<'PY'
import socket, ssl, sys
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = raw.makefile("rb")
def reply(f):
    lines = []
    while True:
        r = f.readline().decode().rstrip("\r\n")
        lines.append(r)
        if r[3:4] != "-":
            return lines
print("greeting:", reply(f)[0])
raw.sendall(b"EHLO client.example.org\r\n")
reply(f)
raw.sendall(b"STARTTLS\r\nRSET\r\n")	# one write: one packet on loopback
print("starttls:", reply(f)[0])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(raw)
s.settimeout(1.5)
try:
    data = s.recv(4096)
    print("unasked inside TLS:", data)
except socket.timeout:
    print("nothing unasked inside TLS")
s.settimeout(10)
s.sendall(b"NOOP\r\n")
print("first reply inside TLS:", s.makefile("rb").readline().decode().rstrip())
PY
	assert_line 'greeting: 220 mx.example.test ESMTP postroom'
	assert_line 'starttls: 220 2.0.0 ready to start TLS'
	assert_line 'nothing unasked inside TLS'
	assert_line 'first reply inside TLS: 250 2.0.0 ok'
	wait_until 20 grep -q 'discarded' "$SERVER_LOG"
	run -0 grep discarded "$SERVER_LOG"
	assert_regex "$output" '^smtp-recv: [0-9]+ discarded 6 bytes sent after STARTTLS before the handshake client=127\.0\.0\.1$'
}

@test "after STARTTLS the session starts over: MAIL needs a new EHLO" {
	submission
	run -0 tls_chat "$SERVER_PORT" starttls <<'EOF'
MAIL FROM:<alice@example.test>
EHLO client.example.org
STARTTLS
QUIT
EOF
	assert_line '503 5.5.1 send HELO or EHLO first'
	assert_line '503 5.5.1 TLS is already on'
	assert_line --regexp '^TLS TLSv1.3 '
}

@test "port 25 with STARTTLS: offered, not required; mail from the internet still comes in" {
	start_server "${SERVER_ENV[@]}" -- tls-wrap -n smtp-recv
	run -0 swaks --server "127.0.0.1:$SERVER_PORT" --helo client.example.org --timeout 10 \
		--from someone@remote.example --to alice@example.test
	assert_line --regexp '^ *<-  250-STARTTLS$'
	assert_line --regexp '^ *<-  250 2\.0\.0 ok: queued as [0-9]+-[0-9]{6}-[0-9]+$'
	run -0 swaks --server "127.0.0.1:$SERVER_PORT" --helo client.example.org --timeout 10 --tls \
		--from someone@remote.example --to bob@example.test
	assert_line --regexp '^ *<~  250 2\.0\.0 ok: queued as [0-9]+-[0-9]{6}-[0-9]+$'
	# One came in cleartext, one over TLS; the Received headers say which.
	local id withs=()
	for id in $(queue_ids); do
		withs+=("$(queue_message "$id" | sed -n 's/^\tby mx\.example\.test (postroom) with \([A-Z]*\) id .*/\1/p')")
	done
	assert_equal "${withs[*]}" 'ESMTP ESMTPS'
}

@test "UCSPITLS=- hides STARTTLS, and no program smtp-recv runs gets the UCSPI-TLS descriptors" {
	# A checkpassword that looks for the descriptors its environment names, then refuses.
	cat >"$BATS_TEST_TMPDIR/cp" <<'SH'
#!/bin/sh
for fd in "$SSLCTLFD" "$SSLREADFD" "$SSLWRITEFD"; do
	if [ -e "/proc/$$/fd/$fd" ]; then echo "has $fd"; else echo "not $fd"; fi
done >"$0.fds"
exit 1
SH
	chmod 755 "$BATS_TEST_TMPDIR/cp"
	start_server "${SERVER_ENV[@]}" UCSPITLS=- SMTP_AUTH_PLAINTEXT=1 \
		CHECKPASSWORD="$BATS_TEST_TMPDIR/cp" -- tls-wrap -n smtp-recv
	run -0 plain_chat "$SERVER_PORT" <<EOF
EHLO client.example.org
STARTTLS
AUTH PLAIN $(printf '\0alice@example.test\0pw' | base64 -w0)
EOF
	refute_line '250-STARTTLS'
	assert_line '502 5.5.1 STARTTLS not available'
	assert_line '535 5.7.8 authentication credentials invalid'
	run -0 cat "$BATS_TEST_TMPDIR/cp.fds"
	assert_output --regexp '^not [0-9]+
not [0-9]+
not [0-9]+$'
}
