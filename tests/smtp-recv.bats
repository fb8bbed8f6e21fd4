#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# smtp-recv on stdin/stdout, no socket: every reply of smtp-recv(8), the limits, DATA decoding
# and what reaches the queue, the Received header and the log lines.

setup() {
	load lib/common
	load lib/smtp
	make_queue
	make_userdb
	unset RELAYCLIENT QMAILQUEUE DATABYTES MAXRCPT MAXERRORS MAXCOMMANDS SMTP_LINE_MAX \
		SMTP_TEXT_MAX SMTP_TIMEOUT SMTP_COMMAND_TIMEOUT SMTP_DATA_TIMEOUT SMTP_DATA_RATE \
		RECIPIENT_DELIMITER
	export SMTP_HOSTNAME=mx.example.test TCPREMOTEIP=192.0.2.7 TCPLOCALIP=192.0.2.1
}

# One message from bob@example.org to alice, as an LF script for smtp_session.
hello_alice() {
	cat <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
DATA
Subject: hi

body
.
QUIT
EOF
}

@test "an argument is a usage error: exit 100, nothing on stdout" {
	run -100 --separate-stderr smtp-recv extra </dev/null
	assert_output ''
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" '^smtp-recv: usage: smtp-recv'
}

@test "QUEUEDIR or USERDB unset: exit 111 before the greeting" {
	run -111 --separate-stderr env -u QUEUEDIR smtp-recv </dev/null
	assert_output ''
	assert_equal "$stderr" 'smtp-recv: fatal: QUEUEDIR is not set'
	run -111 --separate-stderr env -u USERDB smtp-recv </dev/null
	assert_output ''
	assert_equal "$stderr" 'smtp-recv: fatal: USERDB is not set'
}

@test "a numeric variable out of its range: exit 100" {
	run -100 --separate-stderr env DATABYTES=12abc smtp-recv </dev/null
	assert_output ''
	assert_regex "$stderr" '^smtp-recv: fatal: DATABYTES must be a number'
	run -100 --separate-stderr env MAXRCPT=0 smtp-recv </dev/null
	assert_regex "$stderr" '^smtp-recv: fatal: MAXRCPT must be a number'
}

@test "greeting and QUIT, every reply ending in CRLF" {
	run -0 bash -c "printf 'QUIT\r\n' | smtp-recv 2>/dev/null | od -An -c | tr -s ' \n' ' '"
	assert_output ' 2 2 0 m x . e x a m p l e . t e s t E S M T P p o s t r o o m \r \n 2 2 1 2 . 0 . 0 b y e \r \n '
}

@test "greeting uses the host name when SMTP_HOSTNAME is unset" {
	run -0 --separate-stderr smtp_session SMTP_HOSTNAME= <<<'QUIT'
	assert_line -n 0 "220 $(hostname) ESMTP postroom"
}

@test "EHLO: host name and exactly the advertised keywords, in order" {
	run -0 --separate-stderr smtp_session DATABYTES=2000000 <<'EOF'
EHLO client.example.org
QUIT
EOF
	assert_output - <<'EOF'
220 mx.example.test ESMTP postroom
250-mx.example.test
250-PIPELINING
250-SIZE 2000000
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250 SMTPUTF8
221 2.0.0 bye
EOF
}

@test "EHLO advertises the default SIZE 26214400" {
	run -0 --separate-stderr smtp_session <<<'EHLO c.example.org'
	assert_line '250-SIZE 26214400'
}

@test "HELO: one 250 line; MAIL parameters are refused after HELO" {
	run -0 --separate-stderr smtp_session <<'EOF'
HELO client.example.org
MAIL FROM:<bob@example.org> SIZE=10
MAIL FROM:<bob@example.org>
EOF
	assert_output - <<'EOF'
220 mx.example.test ESMTP postroom
250 mx.example.test
555 5.5.4 unsupported MAIL parameter
250 2.1.0 sender ok
EOF
}

@test "HELO or EHLO without a name: 501 5.5.4" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO
HELO
helo c.example.org
EOF
	assert_line -n 1 '501 5.5.4 a domain name or address literal is required'
	assert_line -n 2 '501 5.5.4 a domain name or address literal is required'
	assert_line -n 3 '250 mx.example.test'
}

@test "EHLO or HELO with spaces alone: 501 5.5.4; spaces around a name are not part of it" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO   
HELO  
EHLO   client.example.org  
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
DATA
x
.
EOF
	assert_line -n 1 '501 5.5.4 a domain name or address literal is required'
	assert_line -n 2 '501 5.5.4 a domain name or address literal is required'
	assert_line -n 3 '250-mx.example.test'
	local id=${lines[-1]##* }
	run -0 queue_message "$id"
	assert_line -n 0 'Received: from client.example.org ([192.0.2.7])'
}

@test "sequence errors: 503 before HELO, before MAIL, nested MAIL; 554 DATA without recipients" {
	run -0 --separate-stderr smtp_session <<'EOF'
MAIL FROM:<bob@example.org>
EHLO client.example.org
RCPT TO:<alice@example.test>
DATA
MAIL FROM:<bob@example.org>
MAIL FROM:<carol@example.org>
DATA
RSET
RCPT TO:<alice@example.test>
QUIT
EOF
	assert_output - <<'EOF'
220 mx.example.test ESMTP postroom
503 5.5.1 send HELO or EHLO first
250-mx.example.test
250-PIPELINING
250-SIZE 26214400
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250 SMTPUTF8
503 5.5.1 need MAIL before RCPT
503 5.5.1 need MAIL before DATA
250 2.1.0 sender ok
503 5.5.1 nested MAIL command
554 5.5.1 no valid recipients
250 2.0.0 ok
503 5.5.1 need MAIL before RCPT
221 2.0.0 bye
EOF
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "the other commands: RSET NOOP VRFY HELP, 502 for EXPN BDAT TURN ETRN, 500 for the unknown" {
	run -0 --separate-stderr smtp_session MAXERRORS=100 <<'EOF'
RSET
noop
VRFY alice
HELP
EXPN team
BDAT 10 LAST
TURN
ETRN example.test
XYZZY
NOOPS
DATA now
QUIT
EOF
	assert_output - <<'EOF'
220 mx.example.test ESMTP postroom
250 2.0.0 ok
250 2.0.0 ok
252 2.5.0 cannot verify, but will accept mail and attempt delivery
214 2.0.0 commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP
502 5.5.1 command not implemented
502 5.5.1 command not implemented
502 5.5.1 command not implemented
502 5.5.1 command not implemented
500 5.5.2 command not recognized
500 5.5.2 command not recognized
501 5.5.4 DATA takes no argument
221 2.0.0 bye
EOF
}

@test "RSET with an argument and VRFY without one: 501 5.5.4, as Postfix" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RSET now
RCPT TO:<alice@example.test>
VRFY
VRFY  
VRFY alice
RSET 
EOF
	assert_line -n 9 '501 5.5.4 syntax: RSET'
	# The transaction stands: RSET with an argument did nothing.
	assert_line -n 10 '250 2.1.5 recipient ok'
	assert_line -n 11 '501 5.5.4 syntax: VRFY address'
	assert_line -n 12 '501 5.5.4 syntax: VRFY address'
	assert_line -n 13 '252 2.5.0 cannot verify, but will accept mail and attempt delivery'
	assert_line -n 14 '250 2.0.0 ok'
}

@test "MAIL SIZE= must be an RFC 1870 number: no sign, no blank, at most 20 digits" {
	run -0 --separate-stderr smtp_session MAXERRORS=100 <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org> SIZE=-1
MAIL FROM:<bob@example.org> SIZE=+5
MAIL FROM:<bob@example.org> SIZE=-18446744073709551615
MAIL FROM:<bob@example.org> SIZE=
MAIL FROM:<bob@example.org> SIZE=0x10
MAIL FROM:<bob@example.org> SIZE=123456789012345678901
MAIL FROM:<bob@example.org> SIZE=99999999999999999999
MAIL FROM:<bob@example.org> SIZE=18446744073709551616
MAIL FROM:<bob@example.org> SIZE=00000000000000001000
EOF
	assert_line -n 8 '501 5.5.4 bad SIZE parameter'
	assert_line -n 9 '501 5.5.4 bad SIZE parameter'
	assert_line -n 10 '501 5.5.4 bad SIZE parameter'
	assert_line -n 11 '501 5.5.4 bad SIZE parameter'
	assert_line -n 12 '501 5.5.4 bad SIZE parameter'
	assert_line -n 13 '501 5.5.4 bad SIZE parameter'
	# 20 digits are a well-formed size, too large for 64 bits and so for any limit.
	assert_line -n 14 '552 5.3.4 message size exceeds the fixed maximum'
	assert_line -n 15 '552 5.3.4 message size exceeds the fixed maximum'
	assert_line -n 16 '250 2.1.0 sender ok'
	assert_equal "${#lines[@]}" 17
}

@test "MAIL: syntax, parameters, null sender, SMTPUTF8" {
	run -0 --separate-stderr smtp_session MAXERRORS=100 <<'EOF'
EHLO client.example.org
MAIL FROM:bob@example.org
MAIL TO:<bob@example.org>
MAIL FROM:<bob@example.org> FOO=BAR
MAIL FROM:<bob@example.org> SIZE=abc
MAIL FROM:<jörg@example.org>
MAIL FROM:<jörg@example.org> SMTPUTF8
RSET
MAIL FROM:<> BODY=8BITMIME
RSET
MAIL FROM: <bob@example.org> BODY=7BIT SIZE=100
RCPT TO:<alice@example.test> FOO=BAR
QUIT
EOF
	assert_output - <<'EOF'
220 mx.example.test ESMTP postroom
250-mx.example.test
250-PIPELINING
250-SIZE 26214400
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250 SMTPUTF8
501 5.5.4 syntax: MAIL FROM:<address>
501 5.5.4 syntax: MAIL FROM:<address>
555 5.5.4 unsupported MAIL parameter
501 5.5.4 bad SIZE parameter
553 5.6.7 non-ASCII addresses require SMTPUTF8
250 2.1.0 sender ok
250 2.0.0 ok
250 2.1.0 sender ok
250 2.0.0 ok
250 2.1.0 sender ok
555 5.5.4 unsupported RCPT parameter
221 2.0.0 bye
EOF
}

@test "RCPT: mailboxes, aliases, +tags, catch-all and case are accepted" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
RCPT TO:<postmaster@example.test>
RCPT TO:<team@example.test>
RCPT TO:<all@example.test>
RCPT TO:<alice+lists@example.test>
RCPT TO:<ALICE@Example.TEST>
RCPT TO:<anyone@other.test>
QUIT
EOF
	assert_equal "$(grep -c '^250 2.1.5 recipient ok$' <<<"$output")" 7
	refute_line --regexp '^5'
}

@test "RCPT TO:<Postmaster> without a domain is accepted (RFC 5321 4.5.1 MUST)" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<Postmaster>
RCPT TO:<postmaster>
EOF
	assert_line -n 9 '250 2.1.5 recipient ok'
	assert_line -n 10 '250 2.1.5 recipient ok'
}

@test "RCPT: unknown user 550 5.1.1, alias loop 550 5.4.6, each logged as a reject" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<nobody@example.test>
RCPT TO:<nobody+tag@example.test>
RCPT TO:<loop1@example.test>
RCPT TO:<alice@example.test>
DATA
x
.
EOF
	assert_line -n 9 '550 5.1.1 no such user here'
	assert_line -n 10 '550 5.1.1 no such user here'
	assert_line -n 11 '550 5.4.6 alias loop for this address'
	assert_line -n 12 '250 2.1.5 recipient ok'
	assert_line -n 13 --partial '354 '
	assert_line -n 14 --regexp '^250 2\.0\.0 ok: queued as '
	assert_stderr_line 'smtp-recv: [0-9]+ reject client=192\.0\.2\.7 to=<nobody@example\.test> reply="550 5\.1\.1 no such user here"'
	assert_stderr_line 'smtp-recv: [0-9]+ reject client=192\.0\.2\.7 to=<loop1@example\.test> reply="550 5\.4\.6 alias loop for this address"'
	# Only the accepted recipient is in the envelope.
	run -0 queue_envelope "$(queue_ids)"
	assert_output - <<'EOF'
Fbob@example.org
Talice@example.test
EOF
}

@test "RECIPIENT_DELIMITER: empty turns extensions off, another character is used" {
	run -0 --separate-stderr smtp_session RECIPIENT_DELIMITER= <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice+tag@example.test>
EOF
	assert_line -n 9 '550 5.1.1 no such user here'
	run -0 --separate-stderr smtp_session RECIPIENT_DELIMITER=- <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice-tag@example.test>
RCPT TO:<alice+tag@example.test>
EOF
	assert_line -n 9 '250 2.1.5 recipient ok'
	assert_line -n 10 '550 5.1.1 no such user here'
}

@test "relaying: 554 5.7.1 without RELAYCLIENT, 250 and queued with RELAYCLIENT set empty" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<someone@remote.example>
EOF
	assert_line -n 9 '554 5.7.1 relay access denied'
	assert_regex "$stderr" 'reject client=192\.0\.2\.7 to=<someone@remote\.example> reply="554 5\.7\.1 relay access denied"'

	run -0 --separate-stderr smtp_session RELAYCLIENT= <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<someone@remote.example>
DATA
Subject: out

x
.
EOF
	assert_line -n 9 '250 2.1.5 recipient ok'
	assert_line -n 11 --regexp '^250 2\.0\.0 ok: queued as '
	run -0 queue_envelope "$(queue_ids)"
	assert_output - <<'EOF'
Fbob@example.org
Tsomeone@remote.example
EOF
}

@test "the user database cannot be read: 451 4.3.0 at RCPT and the session goes on" {
	run -0 --separate-stderr smtp_session USERDB="$BATS_TEST_TMPDIR/missing.cdb" <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
NOOP
EOF
	assert_line -n 9 '451 4.3.0 temporary failure looking up the recipient'
	assert_line -n 10 '250 2.0.0 ok'
	assert_regex "$stderr" 'smtp-recv: [0-9]+ trouble: '
}

@test "the queue cannot be written: 451 4.3.0 at DATA, nothing queued" {
	run -0 --separate-stderr smtp_session QUEUEDIR="$BATS_TEST_TMPDIR/no-queue" <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
DATA
QUIT
EOF
	assert_line -n 10 '451 4.3.0 temporary queue failure'
	assert_line -n 11 '221 2.0.0 bye'
	[ ! -e "$BATS_TEST_TMPDIR/no-queue" ]
}

@test "PIPELINING: a whole transaction in one write gets every reply, in order" {
	local script=$'EHLO client.example.org\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<carol@example.org>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n'
	# One printf, one write(2) of fewer than PIPE_BUF bytes.
	run -0 --separate-stderr bash -c 'printf "%s" "$1" | smtp-recv | tr -d "\r"' _ "$script"
	assert_equal "${#lines[@]}" 19
	assert_line -n 0 '220 mx.example.test ESMTP postroom'
	assert_line -n 7 '250 SMTPUTF8'
	assert_line -n 8 '250 2.1.0 sender ok'
	assert_line -n 9 '250 2.1.5 recipient ok'
	assert_line -n 10 '550 5.1.1 no such user here'
	assert_line -n 11 '250 2.1.5 recipient ok'
	assert_line -n 12 '354 go ahead, end with <CRLF>.<CRLF>'
	assert_line -n 13 --regexp '^250 2\.0\.0 ok: queued as [0-9]+-[0-9]{6}-[0-9]+$'
	assert_line -n 14 '250 2.1.0 sender ok'
	assert_line -n 15 '250 2.1.5 recipient ok'
	assert_line -n 16 '354 go ahead, end with <CRLF>.<CRLF>'
	assert_line -n 17 --regexp '^250 2\.0\.0 ok: queued as '
	assert_line -n 18 '221 2.0.0 bye'
	# Both messages, each with its own envelope and body.
	local first=${lines[13]##* } second=${lines[17]##* }
	[ "$first" != "$second" ]
	assert_count 2 file_count "$QUEUEDIR/msg"
	run -0 queue_envelope "$first"
	assert_output $'Fbob@example.org\nTalice@example.test\nTbob@example.test'
	run -0 queue_envelope "$second"
	assert_output $'Fcarol@example.org\nTcarol@example.test'
	run -0 queue_body "$second"
	assert_output $'Subject: two\n\nsecond'
}

@test "a command line of 512 octets is read; 513 gets 500 5.5.2 and the session goes on" {
	local ok=$(printf 'NOOP %0505d' 0) long=$(printf 'NOOP %0506d' 0)
	[ "${#ok}" -eq 510 ]
	run -0 --separate-stderr smtp_session <<EOF
$ok
$long
NOOP
EOF
	assert_output - <<'EOF'
220 mx.example.test ESMTP postroom
250 2.0.0 ok
500 5.5.2 line too long
250 2.0.0 ok
EOF
}

@test "a 100000-octet command line gets one 500 5.5.2, then the next command is answered" {
	run -0 --separate-stderr bash -c "{ printf 'MAIL FROM:<'; head -c 100000 /dev/zero | tr '\0' a; printf '>\r\nNOOP\r\nQUIT\r\n'; } | smtp-recv | tr -d '\r'"
	assert_output - <<'EOF'
220 mx.example.test ESMTP postroom
500 5.5.2 line too long
250 2.0.0 ok
221 2.0.0 bye
EOF
}

@test "SMTP_LINE_MAX raises the command line limit" {
	local long=$(printf 'NOOP %01000d' 0)
	run -0 --separate-stderr smtp_session SMTP_LINE_MAX=2048 <<<"$long"
	assert_line -n 1 '250 2.0.0 ok'
}

@test "a command with a NUL or a stray CR: 500 5.5.2" {
	run -0 --separate-stderr bash -c "printf 'NO\0OP\r\nNO\rOP\r\nNOOP\r\n' | smtp-recv | tr -d '\r'"
	assert_output - <<'EOF'
220 mx.example.test ESMTP postroom
500 5.5.2 bad characters in command
500 5.5.2 bad characters in command
250 2.0.0 ok
EOF
}

@test "a message larger than DATABYTES: 552 5.3.4 after the data, nothing queued, session goes on" {
	{
		printf 'EHLO client.example.org\nMAIL FROM:<bob@example.org>\nRCPT TO:<alice@example.test>\nDATA\nSubject: big\n\n'
		for i in $(seq 40); do printf '%070d\n' "$i"; done
		printf '.\nMAIL FROM:<bob@example.org>\nRCPT TO:<alice@example.test>\nDATA\nSubject: small\n\nsmall\n.\nQUIT\n'
	} >"$BATS_TEST_TMPDIR/script"
	run -0 --separate-stderr smtp_session DATABYTES=1024 <"$BATS_TEST_TMPDIR/script"
	assert_line -n 3 '250-SIZE 1024'
	assert_line -n 11 '552 5.3.4 message exceeds the maximum size of 1024 bytes'
	assert_line -n 12 '250 2.1.0 sender ok'
	assert_line -n 15 --regexp '^250 2\.0\.0 ok: queued as '
	assert_line -n 16 '221 2.0.0 bye'
	assert_count 1 file_count "$QUEUEDIR/msg"
	run -0 queue_body "$(queue_ids)"
	assert_output $'Subject: small\n\nsmall'
	assert_count 0 file_count "$QUEUEDIR/tmp"
}

@test "MAIL SIZE= over DATABYTES: 552 5.3.4 at once; at the limit: 250" {
	run -0 --separate-stderr smtp_session DATABYTES=1024 <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org> SIZE=1025
RCPT TO:<alice@example.test>
MAIL FROM:<bob@example.org> SIZE=1024
RSET
MAIL FROM:<bob@example.org> SIZE=99999999999999999999999
EOF
	assert_line -n 8 '552 5.3.4 message size exceeds the fixed maximum'
	assert_line -n 9 '503 5.5.1 need MAIL before RCPT'
	assert_line -n 10 '250 2.1.0 sender ok'
	assert_line -n 11 '250 2.0.0 ok'
	assert_line -n 12 --regexp '^5(01|52) 5\.'
}

@test "MAXRCPT=2: the third recipient gets 452 4.5.3, the message goes to two" {
	run -0 --separate-stderr smtp_session MAXRCPT=2 <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
RCPT TO:<bob@example.test>
RCPT TO:<carol@example.test>
RCPT TO:<postmaster@example.test>
DATA
x
.
EOF
	assert_line -n 9 '250 2.1.5 recipient ok'
	assert_line -n 10 '250 2.1.5 recipient ok'
	assert_line -n 11 '452 4.5.3 too many recipients'
	assert_line -n 12 '452 4.5.3 too many recipients'
	assert_line -n 14 --regexp '^250 2\.0\.0 ok: queued as '
	run -0 queue_envelope "$(queue_ids)"
	assert_output $'Fbob@example.org\nTalice@example.test\nTbob@example.test'
}

@test "a bare LF in DATA: 521 5.5.2, connection closed, nothing queued" {
	run -0 --separate-stderr bash -c "printf 'EHLO c.example.org\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: x\r\n\r\nbare\nLF\r\n.\r\nNOOP\r\n' | smtp-recv | tr -d '\r'"
	assert_line -n 10 '354 go ahead, end with <CRLF>.<CRLF>'
	assert_line -n 11 '521 5.5.2 bare CR or LF in the message data, closing connection'
	assert_equal "${#lines[@]}" 12
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
	assert_regex "$stderr" 'disconnect client=192\.0\.2\.7 messages=0 reply="521 5\.5\.2 bare CR or LF in the message data, closing connection" exit=0'
}

@test "a bare CR in DATA: 521 5.5.2, connection closed, nothing queued" {
	run -0 --separate-stderr bash -c "printf 'EHLO c.example.org\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: x\r\n\r\nbare\rCR\r\n.\r\nNOOP\r\n' | smtp-recv | tr -d '\r'"
	assert_line -n 11 '521 5.5.2 bare CR or LF in the message data, closing connection'
	assert_equal "${#lines[@]}" 12
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
}

@test "the final dot followed by a bare LF: 521, nothing queued" {
	run -0 --separate-stderr bash -c "printf 'EHLO c.example.org\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\nNOOP\r\n' | smtp-recv | tr -d '\r'"
	assert_line -n 11 '521 5.5.2 bare CR or LF in the message data, closing connection'
	assert_equal "${#lines[@]}" 12
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "EOF in the middle of DATA: nothing in msg/ nor tmp/" {
	run -0 --separate-stderr bash -c "printf 'EHLO c.example.org\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a mess' | smtp-recv | tr -d '\r'"
	assert_equal "${lines[-1]}" '354 go ahead, end with <CRLF>.<CRLF>'
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
	assert_regex "$stderr" 'smtp-recv: [0-9]+ disconnect client=192\.0\.2\.7 messages=0 exit=0'
	refute_regex "$stderr" 'accepted'
}

@test "EOF in the middle of DATA with QMAILQUEUE=queue-inject: nothing queued" {
	export QMAILQUEUE=$(command -v queue-inject)
	run -0 --separate-stderr bash -c "printf 'EHLO c.example.org\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a mess' | smtp-recv | tr -d '\r'"
	assert_equal "${lines[-1]}" '354 go ahead, end with <CRLF>.<CRLF>'
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
}

@test "dot-unstuffing: ..x arrives as .x, .. as ., and a line of one space-dot stays" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
DATA
Subject: dots

..x
..
...
 .
x.
.
EOF
	assert_line -n 11 --regexp '^250 2\.0\.0 ok: queued as '
	run -0 queue_body "$(queue_ids)"
	assert_output - <<'EOF'
Subject: dots

.x
.
..
 .
x.
EOF
}

@test "a line of 1001 octets in DATA: 554 5.6.0 after the data, nothing queued, session goes on" {
	local a999=$(printf '%0999d' 0)
	run -0 --separate-stderr smtp_session <<EOF
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
DATA
Subject: long

$a999
.
NOOP
EOF
	assert_line -n 11 '554 5.6.0 message has a line longer than 1000 octets'
	assert_line -n 12 '250 2.0.0 ok'
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
}

@test "a line of 1000 octets in DATA is accepted, and so is one that dot-stuffing makes 1001 (RFC 5321 4.5.3.1.6)" {
	local a998=$(printf '%0998d' 0) dot997=.$(printf '%0997d' 0)
	run -0 --separate-stderr smtp_session <<EOF
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
DATA
$a998
.
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
DATA
.$dot997
.
EOF
	assert_line -n 11 --regexp '^250 2\.0\.0 ok: queued as '
	assert_line -n 15 --regexp '^250 2\.0\.0 ok: queued as '
}

@test "8-bit, NUL and every other byte reach the Maildir byte-identical after CRLF to LF" {
	odd_message "$BATS_TEST_TMPDIR/message"
	{
		printf 'EHLO client.example.org\r\nMAIL FROM:<bob@example.org> BODY=8BITMIME\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n'
		smtp_wire "$BATS_TEST_TMPDIR/message"
		printf '.\r\nQUIT\r\n'
	} >"$BATS_TEST_TMPDIR/wire"
	run -0 --separate-stderr smtp_raw <"$BATS_TEST_TMPDIR/wire"
	assert_line -n 11 --regexp '^250 2\.0\.0 ok: queued as '
	run -0 --separate-stderr queue-run -1
	local files=("$MAILROOT"/example.test/alice/new/*)
	assert_equal "${#files[@]}" 1
	[ -f "${files[0]}" ]
	strip_added "${files[0]}" >"$BATS_TEST_TMPDIR/delivered"
	cmp "$BATS_TEST_TMPDIR/message" "$BATS_TEST_TMPDIR/delivered"
}

@test "Received header: from <helo> ([ip]) by <host> (postroom) with ESMTP id <id> for <rcpt>; <date>" {
	run -0 --separate-stderr smtp_session < <(hello_alice)
	assert_line -n 11 --regexp '^250 2\.0\.0 ok: queued as '
	local id=${lines[11]##* }
	assert_equal "$(queue_ids)" "$id"
	run -0 --keep-empty-lines queue_message "$id"
	assert_line -n 0 'Received: from client.example.org ([192.0.2.7])'
	assert_line -n 1 "	by mx.example.test (postroom) with ESMTP id $id"
	assert_line -n 2 '	for <alice@example.test>;'
	assert_line -n 3 --regexp $'^\t(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) 20[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}$'
	run -0 queue_body "$id"
	assert_output $'Subject: hi\n\nbody'
}

@test "Received header: an IPv6 client as [IPv6:...] (RFC 5321 4.1.3), an IPv4-mapped one as IPv4, none without TCPREMOTEIP" {
	local ip want
	for ip in 2001:db8::1 2001:DB8:0:0:0:0:0:1 ::ffff:192.0.2.7 ::1 unset; do
		case $ip in
		::ffff:*) want=' ([192.0.2.7])' ;;
		::1) want=' ([IPv6:::1])' ;;
		unset) want='' ;;
		*) want=' ([IPv6:2001:db8::1])' ;;
		esac
		if [ "$ip" = unset ]; then
			run -0 --separate-stderr smtp_session -u TCPREMOTEIP < <(hello_alice)
		else
			run -0 --separate-stderr smtp_session TCPREMOTEIP="$ip" < <(hello_alice)
		fi
		local id=${lines[11]##* }
		run -0 queue_message "$id"
		assert_line -n 0 "Received: from client.example.org$want"
		rm "$QUEUEDIR/msg/$id"
	done
}

@test "Received header: no 'for' with two recipients, 'with SMTP' after HELO, UTF8SMTP with SMTPUTF8" {
	run -0 --separate-stderr smtp_session <<'EOF'
HELO a(b)c
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
RCPT TO:<bob@example.test>
DATA
x
.
EHLO client.example.org
MAIL FROM:<jörg@example.org> SMTPUTF8
RCPT TO:<alice@example.test>
DATA
x
.
EOF
	local first=${lines[6]##* } second=${lines[17]##* }
	run -0 queue_message "$first"
	assert_line -n 0 'Received: from a?b?c ([192.0.2.7])'
	assert_line -n 1 "	by mx.example.test (postroom) with SMTP id $first;"
	assert_line -n 2 --regexp $'^\t[A-Z][a-z]{2}, '
	run -0 queue_message "$second"
	assert_line -n 1 "	by mx.example.test (postroom) with UTF8SMTP id $second"
	assert_line -n 2 '	for <alice@example.test>;'
	run -0 queue_envelope "$second"
	assert_line -n 0 'Fjörg@example.org'
}

@test "log lines: connect, accepted with the queue id, disconnect; replies only on stdout" {
	run -0 --separate-stderr smtp_session < <(hello_alice)
	local id=${lines[11]##* }
	refute_output --partial 'smtp-recv:'
	assert_equal "${#stderr_lines[@]}" 3
	[[ ${stderr_lines[0]} =~ ^smtp-recv:\ ([0-9]+)\ connect\ client=192\.0\.2\.7\ local=192\.0\.2\.1$ ]]
	local pid=${BASH_REMATCH[1]}
	assert_equal "${stderr_lines[1]}" "smtp-recv: $pid $id accepted from=<bob@example.org> to=<alice@example.test> nrcpt=1 size=18 client=192.0.2.7"
	assert_equal "${stderr_lines[2]}" "smtp-recv: $pid disconnect client=192.0.2.7 messages=1 reply=\"221 2.0.0 bye\" exit=0"
}

@test "log lines: two recipients, a null sender, and TCPREMOTEIP unset" {
	unset TCPREMOTEIP TCPLOCALIP
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<>
RCPT TO:<alice@example.test>
RCPT TO:<carol@example.test>
DATA
x
.
EOF
	local id=${lines[12]##* }
	assert_regex "${stderr_lines[0]}" '^smtp-recv: [0-9]+ connect client=unknown local=unknown$'
	assert_regex "${stderr_lines[1]}" "^smtp-recv: [0-9]+ $id accepted from=<> to=<alice@example\.test>,<carol@example\.test> nrcpt=2 size=2 client=unknown\$"
	assert_regex "${stderr_lines[2]}" '^smtp-recv: [0-9]+ disconnect client=unknown messages=1 exit=0$'
}

@test "log lines escape what the client sent" {
	run -0 --separate-stderr smtp_session <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<"no\"body"@example.test>
EOF
	assert_line -n 9 '550 5.1.1 no such user here'
	# The quotes and the backslash come out as \xNN.
	assert_stderr_line 'smtp-recv: [0-9]+ reject client=192\.0\.2\.7 to=<\\x22no\\x5c\\x22body\\x22@example\.test> reply="550 5\.1\.1 no such user here"'
	# Every log line is one line: connect, reject, disconnect.
	assert_equal "${#stderr_lines[@]}" 3
}

@test "MAXERRORS=3: 421 4.7.0 after the third error and the connection closes" {
	run -0 --separate-stderr smtp_session MAXERRORS=3 <<'EOF'
BOGUS
MAIL FROM:<bob@example.org>
NOOP
EXPN x
NOOP
EOF
	assert_output - <<'EOF'
220 mx.example.test ESMTP postroom
500 5.5.2 command not recognized
503 5.5.1 send HELO or EHLO first
250 2.0.0 ok
502 5.5.1 command not implemented
421 4.7.0 too many errors, closing connection
EOF
	assert_regex "$stderr" 'disconnect client=192\.0\.2\.7 messages=0 reply="421 4\.7\.0 too many errors, closing connection" exit=0'
}

@test "unknown users count as errors too: MAXERRORS=2" {
	run -0 --separate-stderr smtp_session MAXERRORS=2 <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<nobody@example.test>
RCPT TO:<noone@example.test>
RCPT TO:<alice@example.test>
EOF
	assert_line -n 9 '550 5.1.1 no such user here'
	assert_line -n 10 '550 5.1.1 no such user here'
	assert_line -n 11 '421 4.7.0 too many errors, closing connection'
	assert_equal "${#lines[@]}" 12
}

@test "MAXCOMMANDS=10: the eleventh command gets 421 4.7.0" {
	run -0 --separate-stderr smtp_session MAXCOMMANDS=10 < <(for i in $(seq 12); do echo NOOP; done)
	assert_equal "$(grep -c '^250 2.0.0 ok$' <<<"$output")" 10
	assert_line -n 11 '421 4.7.0 too many commands, closing connection'
	assert_equal "${#lines[@]}" 12
}

@test "SMTP_TIMEOUT=1 with a client that stops writing: 421 4.4.2" {
	SECONDS=0
	run -0 --separate-stderr bash -c "{ printf 'EHLO client.example.org\r\n'; sleep 3; } | SMTP_TIMEOUT=1 smtp-recv | tr -d '\r'"
	assert_equal "${lines[-1]}" '421 4.4.2 timeout, closing connection'
	assert_equal "${#lines[@]}" 9
	assert_regex "$stderr" 'disconnect client=192\.0\.2\.7 messages=0 reply="421 4\.4\.2 timeout, closing connection" exit=0'
	[ "$SECONDS" -le 6 ]
}

@test "SMTP_DATA_TIMEOUT=1 with a client that trickles the data: 421 4.4.2, nothing queued" {
	run -0 --separate-stderr bash -c "{ printf 'EHLO client.example.org\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n'; for i in 1 2 3 4 5 6; do printf 'line %s\r\n' \$i; sleep 0.4; done; printf '.\r\n'; } | SMTP_DATA_TIMEOUT=1 smtp-recv | tr -d '\r'"
	assert_equal "${lines[-2]}" '354 go ahead, end with <CRLF>.<CRLF>'
	assert_equal "${lines[-1]}" '421 4.4.2 timeout in DATA, closing connection'
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
}

@test "SMTP_DATA_RATE: DATA's deadline grows by a second per SMTP_DATA_RATE bytes received" {
	# 1 s, and 4 s more for the 4000 bytes sent at once: the trickle after them is cut off
	# after 5 s, not after 1.
	local bulk=$(for i in $(seq 40); do printf '%098d\\r\\n' 0; done)
	SECONDS=0
	run -0 --separate-stderr bash -c "{ printf 'EHLO client.example.org\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n$bulk'; while printf x; do sleep 0.2; done; } | SMTP_DATA_TIMEOUT=1 SMTP_DATA_RATE=1000 smtp-recv | tr -d '\r'"
	local took=$SECONDS
	assert_equal "${lines[-1]}" '421 4.4.2 timeout in DATA, closing connection'
	[ "$took" -ge 4 ] || fail "cut off after $took s"
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "SMTP_COMMAND_TIMEOUT=1 with a client that sends a command a byte at a time: 421 4.4.2" {
	run -0 --separate-stderr bash -c "{ printf 'EHLO client.example.org\r\n'; while printf N; do sleep 0.2; done; } | SMTP_COMMAND_TIMEOUT=1 smtp-recv | tr -d '\r'"
	assert_equal "${lines[-1]}" '421 4.4.2 command not completed in time, closing connection'
	assert_regex "$stderr" 'disconnect client=192\.0\.2\.7 messages=0 reply="421 4\.4\.2 command not completed in time, closing connection" exit=0'
	run -100 --separate-stderr env SMTP_COMMAND_TIMEOUT=0 smtp-recv </dev/null
	assert_regex "$stderr" '^smtp-recv: fatal: SMTP_COMMAND_TIMEOUT must be a number from 1 to 86400'
	run -100 --separate-stderr env SMTP_DATA_RATE=0 smtp-recv </dev/null
	assert_regex "$stderr" '^smtp-recv: fatal: SMTP_DATA_RATE must be a number from 1 to 2147483647'
}

@test "a message is queued durably in msg/ with its envelope, tmp/ left empty" {
	run -0 --separate-stderr smtp_session < <(hello_alice)
	local id=${lines[11]##* }
	[ -f "$QUEUEDIR/msg/$id" ]
	assert_count 0 file_count "$QUEUEDIR/tmp"
	run -0 queue_envelope "$id"
	assert_output $'Fbob@example.org\nTalice@example.test'
}

@test "RCPT TO:<Postmaster> when the host name is no domain of ours: postmaster of the first domain" {
	run -0 --separate-stderr smtp_session SMTP_HOSTNAME=vm <<'EOF2'
HELO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<Postmaster>
DATA
Subject: to the postmaster

hello
.
QUIT
EOF2
	assert_line -n 3 '250 2.1.5 recipient ok'
	assert_line -n 5 --regexp '^250 2\.0\.0 ok: queued as '
	run -0 --separate-stderr queue-run -1
	# users.txt declares example.test first; its postmaster is an alias of alice.
	assert_count 1 msg_count "$(mailbox alice)"
}

@test "QMAILQUEUE=queue-inject with fds 3 and up closed (as under tcpserver): 250, queued" {
	# The queue program's pipes then land on fds 4-9, 6 among them: none may be lost on its way
	# to the child's 0, 1 and 6.
	hello_alice | crlf >"$BATS_TEST_TMPDIR/session"
	run -0 bash -c 'env QMAILQUEUE="$(command -v queue-inject)" smtp-recv <"$1" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- 2>/dev/null | sed "s/\r$//"' _ "$BATS_TEST_TMPDIR/session"
	assert_line -n 11 --regexp '^250 2\.0\.0 ok: queued as '
	assert_count 1 file_count "$QUEUEDIR/msg"
}

@test "log lines escape C1 controls and malformed UTF-8 from the peer, keep good UTF-8" {
	printf 'EHLO c\r\nMAIL FROM:<x@example.org> SMTPUTF8\r\nRCPT TO:<j\xc3\xb6rg\xc2\x9b@example.test>\r\nRCPT TO:<\xff@nowhere.test>\r\nQUIT\r\n' |
		smtp-recv >/dev/null 2>"$BATS_TEST_TMPDIR/log"
	run -0 cat "$BATS_TEST_TMPDIR/log"
	assert_output --partial 'to=<j'$'\xc3\xb6''rg\xc2\x9b@example.test>'
	refute_output --partial $'\xc2\x9b'
}

@test "a queue program that exits 0 without reading the whole message: 451, never 250" {
	printf '#!/bin/sh\nexit 0\n' >"$BATS_TEST_TMPDIR/liar"
	chmod +x "$BATS_TEST_TMPDIR/liar"
	{
		printf 'EHLO client.example.org\nMAIL FROM:<bob@example.org>\nRCPT TO:<alice@example.test>\nDATA\nSubject: big\n\n'
		for i in $(seq 5000); do printf '%s\n' "line $i of a message far larger than a pipe holds"; done
		printf '.\nQUIT\n'
	} | crlf >"$BATS_TEST_TMPDIR/session"
	run -0 --separate-stderr env QMAILQUEUE="$BATS_TEST_TMPDIR/liar" smtp-recv <"$BATS_TEST_TMPDIR/session"
	assert_line --partial '451 4.3.0 unable to hand the whole message to the queue program'
	refute_line --regexp '^250 2\.0\.0'
}

@test "RCPT TO:<postmaster@DOMAIN> of a domain with no postmaster of its own: accepted, delivered to POSTMASTER" {
	make_userdb 'domain third.test' 'mailbox x@third.test h example.test/x/'
	run -0 --separate-stderr smtp_session <<'EOF2'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<postmaster@third.test>
RCPT TO:<PostMaster@Third.Test>
RCPT TO:<webmaster@third.test>
DATA
Subject: to the postmaster

hello
.
QUIT
EOF2
	assert_line -n 9 '250 2.1.5 recipient ok'
	assert_line -n 10 '250 2.1.5 recipient ok'
	assert_line -n 11 '550 5.1.1 no such user here'
	POSTMASTER=carol@example.test run -0 --separate-stderr queue-run -1
	assert_count 1 msg_count "$(mailbox carol)"
	assert_count 0 msg_count "$(mailbox alice)"
	grep -qx 'X-Original-To: postmaster@third.test' "$(maildir_files "$(mailbox carol)")" ||
		fail "no X-Original-To naming postmaster@third.test: $(head -5 "$(maildir_files "$(mailbox carol)")")"
}

@test "RCPT to an alias over the expansion bound: 550 with the resolver's reason, not 'alias loop'" {
	load lib/aliases
	mapfile -t users < <(wide 41 25)
	make_userdb "${users[@]}"
	run -0 --separate-stderr smtp_session <<'EOF2'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<wide@example.test>
RCPT TO:<loop1@example.test>
QUIT
EOF2
	assert_line -n 9 '550 5.4.6 alias expansion too large for this address'
	assert_line -n 10 '550 5.4.6 alias loop for this address'
}

@test "a client that sends commands and never reads the replies is dropped after SMTP_TIMEOUT" {
	# Its socket fills up with our replies; without a deadline on writes, smtp-recv would wait
	# in write(2) for as long as the client likes, holding a connection slot.
	run -0 "$PYTHON" - "$(command -v smtp-recv)" <<'PY'
import socket, subprocess, sys, time
ours, theirs = socket.socketpair()
theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
p = subprocess.Popen([sys.argv[1]], stdin=ours, stdout=ours, stderr=subprocess.PIPE,
                     env=dict(__import__("os").environ, SMTP_TIMEOUT="1"))
ours.close()
theirs.setblocking(False)
sent, start = 0, time.monotonic()
try:
    while p.poll() is None and time.monotonic() - start < 30:
        try:
            sent += theirs.send(b"EHLO client.example.org\r\n" * 100)
        except BlockingIOError:
            time.sleep(0.05)	# our side is full too: smtp-recv is stuck writing, or gone
except (BrokenPipeError, ConnectionResetError):
    pass
try:
    code = p.wait(timeout=30)
finally:
    p.kill()
err = p.stderr.read().decode()
print("exit", code, "after %.1f s" % (time.monotonic() - start), "sent", sent)
print(err.strip().splitlines()[-1])
PY
	assert_line --regexp '^exit [0-9]+ after ([0-9]|1[0-9])\.[0-9] s sent [0-9]+$'
	assert_line --regexp 'disconnect client=192\.0\.2\.7 reason=.*(timed out|timeout)'
}
