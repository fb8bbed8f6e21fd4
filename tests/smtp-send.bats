#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# smtp-send against real peers on 127.0.0.1: postroom's own smtp-recv under tcpserver (in
# cleartext, under tls-wrap -n with STARTTLS, as a submission smarthost with AUTH), and scripted
# python3 peers (tests/lib/smtp_peer.py) for what smtp-recv never does: 451 to RCPT, no SMTPUTF8,
# a small SIZE, a broken TLS handshake, no greeting, endless replies. All through the smarthost
# path (-r 127.0.0.1:PORT), which needs no DNS; the MX path is tested in the DNS test world.

load lib/common
load lib/smtp
load lib/tls

setup() {
	make_queue
	make_userdb
	# Short timeouts, so that a test that goes wrong fails fast; a test that waits for one
	# sets its own.
	export SMTP_SEND_TIMEOUTS=connect=10,greeting=10,helo=10,mail=10,rcpt=10,data=10,block=10,dot=10
	export SMTP_HOSTNAME=client.example.org
	make_message "$BATS_TEST_TMPDIR/message" m1
	PEER_LOG=$BATS_TEST_TMPDIR/peer.log
}

teardown() {
	stop_server
	common_teardown
}

# peer MODE [VAR=V...]: the scripted peer on $SERVER_PORT, recording into $PEER_LOG.
peer() {
	local mode=$1
	shift
	start_server PEER_LOG="$PEER_LOG" "$@" -- "$PYTHON" "$TESTLIB/smtp_peer.py" "$mode"
}

# send [SMTP-SEND-ARG...] < message: smtp-send -r to $SERVER_PORT.
send() {
	smtp-send -r "127.0.0.1:$SERVER_PORT" "$@"
}

# peer_reads: the peer's reads after the EHLO, one a line, as Python reprs.
peer_reads() {
	grep '^READ ' "$PEER_LOG" | grep -v "EHLO\|QUIT" | sed 's/^READ //'
}

# tls_peer CERT KEY [VAR=V...]: smtp-recv under tls-wrap -n (STARTTLS offered).
tls_peer() {
	local cert=$1 key=$2
	shift 2
	start_server SMTP_HOSTNAME=mx.example.test CERTFILE="$cert" KEYFILE="$key" UCSPITLS= "$@" \
		-- tls-wrap -n smtp-recv
}

# one_queued: the id of the one message in the queue.
one_queued() {
	local ids
	ids=$(queue_ids)
	[ -n "$ids" ] && [ "$(wc -l <<<"$ids")" = 1 ] || fail "expected one queued message, got: $ids"
	echo "$ids"
}

@test "usage: no recipient, an unknown option, a bad -t: exit 100 with one line" {
	run -100 --separate-stderr smtp-send bob@example.org
	assert_one_stderr_line smtp-send
	assert_output ''
	[[ $stderr == 'smtp-send: usage: smtp-send '* ]]
	run -100 --separate-stderr smtp-send -x bob@example.org alice@example.test
	assert_one_stderr_line smtp-send
	run -100 --separate-stderr smtp-send -t sometimes bob@example.org alice@example.test
	assert_one_stderr_line smtp-send
	run -100 --separate-stderr smtp-send -T greeting=0 bob@example.org alice@example.test
	assert_one_stderr_line smtp-send
	run -100 --separate-stderr smtp-send -r 127.0.0.1:99999 bob@example.org alice@example.test
	assert_one_stderr_line smtp-send
	run -100 --separate-stderr smtp-send bob@example.org alice@example.test bob@other.test
	assert_one_stderr_line smtp-send
}

@test "to smtp-recv: the odd message arrives byte for byte; an unknown user fails 550 5.1.1" {
	start_tcpserver
	odd_message "$BATS_TEST_TMPDIR/odd"
	run -0 --separate-stderr send bob@example.org alice@example.test nobody@example.test \
		bob@example.test <"$BATS_TEST_TMPDIR/odd"
	assert_equal "${#lines[@]}" 3
	assert_line -n 0 --regexp '^alice@example\.test delivered 250 2\.0\.0 "ok: queued as [0-9.-]+" host=127\.0\.0\.1\[127\.0\.0\.1\] tls=none$'
	assert_line -n 1 'nobody@example.test failed 550 5.1.1 "no such user here" host=127.0.0.1[127.0.0.1] tls=none'
	assert_line -n 2 --regexp '^bob@example\.test delivered 250 2\.0\.0 "ok: queued as [0-9.-]+" '
	local id
	id=$(one_queued)
	run -0 queue_envelope "$id"
	assert_output "$(printf 'Fbob@example.org\nTalice@example.test\nTbob@example.test')"
	queue_body "$id" >"$BATS_TEST_TMPDIR/arrived"
	cmp "$BATS_TEST_TMPDIR/odd" "$BATS_TEST_TMPDIR/arrived"
	# The peer's Received names our EHLO; 8-bit bytes went as BODY=8BITMIME.
	run -0 queue_message "$id"
	assert_line -n 0 'Received: from client.example.org ([127.0.0.1])'
}

@test "a message without a last line end, and lines of dots, arrive as the queue had them" {
	start_tcpserver
	printf 'Subject: dots\n\n.\n..\n.x\nno line end' >"$BATS_TEST_TMPDIR/dots"
	run -0 send '' alice@example.test <"$BATS_TEST_TMPDIR/dots"
	assert_output --regexp '^alice@example\.test delivered 250 '
	local id
	id=$(one_queued)
	queue_body "$id" >"$BATS_TEST_TMPDIR/arrived"
	printf 'Subject: dots\n\n.\n..\n.x\nno line end\n' | cmp - "$BATS_TEST_TMPDIR/arrived"
	run -0 queue_envelope "$id"
	assert_line -n 0 'F'
}

@test "a peer answering 451 to RCPT: deferred with its text, exit 111" {
	peer smtp PEER_RCPT='451 4.2.0 mailbox busy, try again later'
	run -111 --separate-stderr send bob@example.org alice@example.test bob@example.test <"$BATS_TEST_TMPDIR/message"
	assert_line -n 0 'alice@example.test deferred 451 4.2.0 "mailbox busy, try again later" host=127.0.0.1[127.0.0.1] tls=none'
	assert_line -n 1 'bob@example.test deferred 451 4.2.0 "mailbox busy, try again later" host=127.0.0.1[127.0.0.1] tls=none'
	refute grep -q '^MSG' "$PEER_LOG"
}

@test "PIPELINING: MAIL, every RCPT and DATA reach the peer in one read" {
	peer smtp
	run -0 send bob@example.org a@example.test b@example.test c@example.test <"$BATS_TEST_TMPDIR/message"
	assert_equal "${#lines[@]}" 3
	run -0 peer_reads
	assert_line -n 0 "b'MAIL FROM:<bob@example.org>\\r\\nRCPT TO:<a@example.test>\\r\\nRCPT TO:<b@example.test>\\r\\nRCPT TO:<c@example.test>\\r\\nDATA\\r\\n'"
	# Without PIPELINING, one command a read.
	stop_server
	: >"$PEER_LOG"
	peer smtp PEER_EXT=8BITMIME
	run -0 send bob@example.org a@example.test b@example.test <"$BATS_TEST_TMPDIR/message"
	run -0 peer_reads
	assert_line -n 0 "b'MAIL FROM:<bob@example.org>\\r\\n'"
	assert_line -n 1 "b'RCPT TO:<a@example.test>\\r\\n'"
	assert_line -n 2 "b'RCPT TO:<b@example.test>\\r\\n'"
	assert_line -n 3 "b'DATA\\r\\n'"
}

@test "HELO after a 5xx to EHLO: delivered, without ESMTP parameters" {
	peer smtp PEER_NOEHLO=1
	printf 'Subject: caf\xc3\xa9\n\n8-bit\n' >"$BATS_TEST_TMPDIR/8bit"
	run -0 send bob@example.org a@example.test <"$BATS_TEST_TMPDIR/8bit"
	assert_output --regexp '^a@example\.test delivered 250 2\.0\.0 "ok: got it" '
	run -0 grep -c "HELO client.example.org" "$PEER_LOG"
	run -0 peer_reads
	assert_line --partial "MAIL FROM:<bob@example.org>\\r\\n"
	refute_line --partial 'BODY='
}

@test "452 too many recipients: the rest go in a next transaction on the same connection" {
	start_tcpserver MAXRCPT=2
	run -0 --separate-stderr send bob@example.org alice@example.test bob@example.test \
		carol@example.test <"$BATS_TEST_TMPDIR/message"
	assert_line -n 0 --regexp '^alice@example\.test delivered 250 2\.0\.0 "ok: queued as '
	assert_line -n 1 --regexp '^bob@example\.test delivered 250 2\.0\.0 "ok: queued as '
	assert_line -n 2 --regexp '^carol@example\.test delivered 250 2\.0\.0 "ok: queued as '
	[ "${lines[0]##*queued as }" != "${lines[2]##*queued as }" ]
	assert_count 2 file_count "$QUEUEDIR/msg"
	# One session carried both (start_server's probe is a session of its own, without mail).
	wait_until 50 grep -q ' messages=2 ' "$SMTP_LOG"
	assert_log 'smtp-recv: [0-9]+ disconnect client=127\.0\.0\.1 messages=2 .*' "$SMTP_LOG"
}

@test "SIZE: a message over the peer's limit fails 552 5.3.4 and is never sent" {
	peer smtp PEER_EXT=PIPELINING,'SIZE 1000'
	make_message "$BATS_TEST_TMPDIR/big" big 5000
	run -0 send bob@example.org a@example.test b@example.test <"$BATS_TEST_TMPDIR/big"
	assert_line -n 0 --regexp '^a@example\.test failed 552 5\.3\.4 "message size [0-9]+ exceeds the size limit 1000 of 127\.0\.0\.1\[127\.0\.0\.1\]" host=127\.0\.0\.1\[127\.0\.0\.1\] tls=none$'
	assert_line -n 1 --regexp '^b@example\.test failed 552 5\.3\.4 '
	run -0 peer_reads
	refute_output --partial MAIL
	refute_output --partial DATA
	# Under the limit, SIZE= says how big it is.
	run -0 send bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message"
	local size=$(($(wc -c <"$BATS_TEST_TMPDIR/message") + $(wc -l <"$BATS_TEST_TMPDIR/message")))
	run -0 peer_reads
	assert_line --partial "MAIL FROM:<bob@example.org> SIZE=$size\\r\\n"
}

@test "SMTPUTF8: a UTF-8 sender to a peer without it fails 553 5.6.7; to smtp-recv, delivered" {
	peer smtp
	run -0 send 'jos'$'\xc3\xa9''@example.org' a@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output "a@example.test failed 553 5.6.7 \"SMTPUTF8 is required, but was not offered by 127.0.0.1[127.0.0.1]\" host=127.0.0.1[127.0.0.1] tls=none"
	refute grep -q MAIL "$PEER_LOG"
	stop_server
	start_tcpserver
	run -0 send 'jos'$'\xc3\xa9''@example.org' alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^alice@example\.test delivered 250 2\.0\.0 '
	run -0 queue_envelope "$(one_queued)"
	assert_line -n 0 'Fjos'$'\xc3\xa9''@example.org'
}

@test "STARTTLS to smtp-recv under tls-wrap -n: TLS 1.3, in the result line and both logs" {
	make_cert mx.example.test "$BATS_TEST_TMPDIR/cert.pem" "$BATS_TEST_TMPDIR/key.pem"
	tls_peer "$BATS_TEST_TMPDIR/cert.pem" "$BATS_TEST_TMPDIR/key.pem"
	run -0 --separate-stderr send bob@example.org alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^alice@example\.test delivered 250 2\.0\.0 "ok: queued as [0-9.-]+" host=127\.0\.0\.1\[127\.0\.0\.1\] tls=TLSv1\.3/TLS_[A-Z0-9_]+/unverified$'
	assert_stderr_line 'smtp-send: tls host=127\.0\.0\.1\[127\.0\.0\.1\] protocol=TLSv1\.3 cipher=TLS_[A-Z0-9_]+ verified=no reason=certificate verification failed: .*'
	wait_until 50 grep -q 'starttls client=' "$SERVER_LOG"
	assert_log 'smtp-recv: [0-9]+ starttls client=127\.0\.0\.1 protocol=TLSv1\.3 cipher=TLS_[A-Z0-9_]+' "$SERVER_LOG"
	run -0 queue_message "$(one_queued)"
	assert_line --regexp $'^\t\\(using TLSv1\\.3 with cipher TLS_[A-Z0-9_]+\\)$'
}

@test "-t verify: a certificate not naming the host is deferred with the reason; the right one with -C is delivered" {
	make_ca
	make_leaf mx.example.test DNS:mx.example.test "$BATS_TEST_TMPDIR/wrong.pem" "$BATS_TEST_TMPDIR/wrong.key"
	make_leaf 127.0.0.1 IP:127.0.0.1 "$BATS_TEST_TMPDIR/right.pem" "$BATS_TEST_TMPDIR/right.key"
	tls_peer "$BATS_TEST_TMPDIR/wrong.pem" "$BATS_TEST_TMPDIR/wrong.key"
	run -111 --separate-stderr send -t verify -C "$BATS_TEST_TMPDIR/ca.pem" bob@example.org \
		alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'alice@example.test deferred 421 4.7.5 "TLS: the certificate of 127.0.0.1[127.0.0.1] does not verify: certificate verification failed: IP address mismatch" host=127.0.0.1[127.0.0.1] tls=none'
	assert_count 0 file_count "$QUEUEDIR/msg"
	stop_server
	tls_peer "$BATS_TEST_TMPDIR/right.pem" "$BATS_TEST_TMPDIR/right.key"
	# Without -C the system's store does not know our CA.
	run -111 --separate-stderr send -t verify bob@example.org alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^alice@example\.test deferred 421 4\.7\.5 "TLS: the certificate of 127\.0\.0\.1\[127\.0\.0\.1\] does not verify: certificate verification failed: unable to get local issuer certificate" '
	run -0 --separate-stderr send -t verify -C "$BATS_TEST_TMPDIR/ca.pem" bob@example.org \
		alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^alice@example\.test delivered 250 2\.0\.0 "ok: queued as [0-9.-]+" host=127\.0\.0\.1\[127\.0\.0\.1\] tls=TLSv1\.3/TLS_[A-Z0-9_]+/verified$'
	assert_stderr_line 'smtp-send: tls host=127\.0\.0\.1\[127\.0\.0\.1\] protocol=TLSv1\.3 cipher=TLS_[A-Z0-9_]+ verified=yes'
	one_queued >/dev/null
}

@test "-t encrypt to a peer without STARTTLS: deferred; the default sends in cleartext" {
	start_tcpserver
	run -111 --separate-stderr send -t encrypt bob@example.org alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'alice@example.test deferred 421 4.7.4 "TLS is required, but was not offered by 127.0.0.1[127.0.0.1]" host=127.0.0.1[127.0.0.1] tls=none'
	assert_count 0 file_count "$QUEUEDIR/msg"
	run -0 send bob@example.org alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp ' tls=none$'
}

@test "opportunistic TLS to a peer whose handshake fails: retried once in cleartext, delivered, logged" {
	peer smtp PEER_BADTLS=1
	run -0 --separate-stderr send bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'a@example.test delivered 250 2.0.0 "ok: got it" host=127.0.0.1[127.0.0.1] tls=none'
	assert_stderr_line 'smtp-send: tls host=127\.0\.0\.1\[127\.0\.0\.1\] failed: TLS with 127\.0\.0\.1\[127\.0\.0\.1\]: TLS handshake failed: .*; retrying in cleartext'
	# (CONNECT lines count start_server's probe too: EHLO counts sessions.)
	run -0 grep -c 'EHLO' "$PEER_LOG"
	assert_output 2
	run -0 grep -c 'STARTTLS' "$PEER_LOG"
	assert_output 1
	run -0 grep -c '^MSG' "$PEER_LOG"
	assert_output 1
	# -t encrypt does not fall back.
	run -111 --separate-stderr send -t encrypt bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^a@example\.test deferred 421 4\.7\.5 "TLS with 127\.0\.0\.1\[127\.0\.0\.1\]: TLS handshake failed: '
}

# smarthost_peer [VAR=V...]: smtp-recv as a submission service (STARTTLS required, AUTH through
# checkpassword-mysql with the demo users), its certificate naming 127.0.0.1, from our CA.
smarthost_peer() {
	userdb-compile -f "$REPO/etc/demo/users.txt" "$BATS_TEST_TMPDIR/demo.cdb" || fail "userdb-compile"
	make_ca
	make_leaf 127.0.0.1 IP:127.0.0.1 "$BATS_TEST_TMPDIR/cert.pem" "$BATS_TEST_TMPDIR/key.pem"
	start_server SMTP_HOSTNAME=mx.example.test USERDB="$BATS_TEST_TMPDIR/demo.cdb" \
		CERTFILE="$BATS_TEST_TMPDIR/cert.pem" KEYFILE="$BATS_TEST_TMPDIR/key.pem" \
		UCSPITLS='!' SMTP_SENDER_LOGIN=1 CHECKPASSWORD="$BIN/checkpassword-mysql -d 0 true" \
		"$@" -- tls-wrap -n smtp-recv
}

# credentials MODE PASSWORD: alice's credentials file $BATS_TEST_TMPDIR/cred with that password.
credentials() {
	printf 'alice@example.test\n%s\n' "$2" >"$BATS_TEST_TMPDIR/cred"
	chmod "$1" "$BATS_TEST_TMPDIR/cred"
}

# relay_send CODE [SMTP-SEND-ARG...]: alice's message to someone@remote.example with -a, exit CODE.
relay_send() {
	local code=$1
	shift
	run "-$code" --separate-stderr send -a "$BATS_TEST_TMPDIR/cred" "$@" alice@example.test \
		someone@remote.example <"$BATS_TEST_TMPDIR/message"
}

@test "smarthost -r -a to smtp-recv requiring STARTTLS and AUTH: delivered, verified against the host" {
	smarthost_peer
	credentials 600 alice-demo
	relay_send 0 -C "$BATS_TEST_TMPDIR/ca.pem"
	assert_output --regexp '^someone@remote\.example delivered 250 2\.0\.0 "ok: queued as [0-9.-]+" host=127\.0\.0\.1\[127\.0\.0\.1\] tls=TLSv1\.3/TLS_[A-Z0-9_]+/verified$'
	local id
	id=$(one_queued)
	run -0 queue_envelope "$id"
	assert_line 'Tsomeone@remote.example'
	run -0 queue_message "$id"
	assert_line --regexp $'^\tby mx\\.example\\.test \\(postroom\\) with ESMTPSA id '
	# -a means -t verify: without the CA the same smarthost is refused.
	relay_send 111
	assert_output --regexp '^someone@remote\.example deferred 421 4\.7\.5 "TLS: the certificate of 127\.0\.0\.1\[127\.0\.0\.1\] does not verify: '
}

@test "queue-run through a smarthost that refuses its AUTH: every message waits, none is sent over the refused session" {
	smarthost_peer
	credentials 600 not-her-password
	# queue-run's own queue and users; one worker, so that both messages go through it.
	local a=$BATS_TEST_TMPDIR/a
	mkdir -p "$a"
	queue-init "$a/queue"
	QUEUEDIR="$a/queue" inject alice@example.test someone@remote.example \
		<"$BATS_TEST_TMPDIR/message" || fail "inject"
	QUEUEDIR="$a/queue" inject alice@example.test other@remote.example \
		<"$BATS_TEST_TMPDIR/message" || fail "inject"
	run -0 --separate-stderr env QUEUEDIR="$a/queue" MAILROOT="$a/mail" \
		SMARTHOST="127.0.0.1:$SERVER_PORT" SMARTHOST_AUTH="$BATS_TEST_TMPDIR/cred" \
		SMTP_CAFILE="$BATS_TEST_TMPDIR/ca.pem" queue-run -1 -c 1
	# The first is refused AUTH; the smarthost then waits (a refused login is for the
	# administrator to fix), and the second with it.
	[ "$(grep -c ' result=deferred .* 535 5\.7\.8 ' <<<"$stderr")" = 1 ] || fail "$stderr"
	[ "$(grep -c ' result=deferred ' <<<"$stderr")" = 2 ] || fail "$stderr"
	! grep -q 'result=failed\| notice ' <<<"$stderr" || fail "a message failed: $stderr"
	assert_count 2 file_count "$a/queue/msg"
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "smarthost: a wrong password is deferred with the peer's 535 text" {
	smarthost_peer
	credentials 400 not-her-password
	relay_send 111 -C "$BATS_TEST_TMPDIR/ca.pem"
	assert_output --regexp '^someone@remote\.example deferred 535 5\.7\.8 "authentication credentials invalid" host=127\.0\.0\.1\[127\.0\.0\.1\] tls=TLSv1\.3/TLS_[A-Z0-9_]+/verified$'
	assert_stderr_line 'smtp-send: auth host=127\.0\.0\.1\[127\.0\.0\.1\] user=alice@example\.test refused: 535 5\.7\.8'
	! grep -q not-her-password <<<"$stderr"
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "a credentials file others may read: one line, exit 111, no connection" {
	peer smtp
	credentials 644 alice-demo
	relay_send 111
	assert_output ''
	assert_one_stderr_line smtp-send
	assert_stderr_line "smtp-send: fatal: the credentials file $(re_escape "$BATS_TEST_TMPDIR/cred") may be read or written by others \\(mode 0644\\): make it 0600 or 0400"
	chmod 640 "$BATS_TEST_TMPDIR/cred"
	relay_send 111
	assert_one_stderr_line smtp-send
	printf 'only-a-user\n' >"$BATS_TEST_TMPDIR/cred1"
	chmod 600 "$BATS_TEST_TMPDIR/cred1"
	run -111 --separate-stderr send -a "$BATS_TEST_TMPDIR/cred1" alice@example.test someone@remote.example \
		<"$BATS_TEST_TMPDIR/message"
	assert_one_stderr_line smtp-send
	[ ! -e "$PEER_LOG" ] || refute grep -q EHLO "$PEER_LOG"
}

@test "a 421 greeting, a refused connection: deferred with what happened" {
	peer greet421
	run -111 --separate-stderr send bob@example.org a@example.test b@example.test <"$BATS_TEST_TMPDIR/message"
	assert_line -n 0 'a@example.test deferred 421 4.3.2 "127.0.0.1[127.0.0.1] said: 421 peer.test busy, come back later" host=127.0.0.1[127.0.0.1] tls=none'
	assert_line -n 1 --regexp '^b@example\.test deferred 421 4\.3\.2 '
	local port=$SERVER_PORT
	stop_server
	run -111 --separate-stderr smtp-send -r "127.0.0.1:$port" bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output "a@example.test deferred 421 4.4.1 \"connect to 127.0.0.1[127.0.0.1]:$port: Connection refused\" host=127.0.0.1[127.0.0.1] tls=none"
	assert_stderr_line "smtp-send: host=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\] port=$port: 421 4\\.4\\.1 connect to .*"
}

@test "bounds: a peer that never greets is deferred after the greeting timeout" {
	peer silent
	run -111 --separate-stderr send -T greeting=1 bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'a@example.test deferred 421 4.4.2 "timeout with 127.0.0.1[127.0.0.1] while waiting for the greeting" host=127.0.0.1[127.0.0.1] tls=none'
}

# bounded MODE TEXT-ERE: smtp-send to the peer in MODE is deferred with TEXT, in little memory.
bounded() {
	peer "$1"
	run -111 --separate-stderr /usr/bin/time -f 'maxrss=%M' smtp-send -r "127.0.0.1:$SERVER_PORT" \
		-T greeting=5 bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp "^a@example\\.test deferred 421 4\\.5\\.0 \"$2\" host=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\] tls=none\$"
	local rss=${stderr##*maxrss=}
	# A few MB for the program (more under ASan); a reply held whole would be 1 MB or more.
	[ "$rss" -lt 80000 ] || fail "smtp-send used ${rss} kB"
	[ -z "${POSTROOM_BIN:-}" ] && { [ "$rss" -lt 12000 ] || fail "smtp-send used ${rss} kB"; }
	return 0
}

@test "bounds: a 100 kB reply line is deferred, in bounded memory" {
	bounded longline '127\.0\.0\.1\[127\.0\.0\.1\] sent a reply line longer than 2048 bytes while waiting for the greeting'
}

@test "bounds: a reply without CRLF is deferred, in bounded memory" {
	bounded nocrlf '127\.0\.0\.1\[127\.0\.0\.1\] sent a reply line longer than 2048 bytes while waiting for the greeting'
}

@test "bounds: 100 000 continuation lines are deferred, in bounded memory" {
	bounded continuation '127\.0\.0\.1\[127\.0\.0\.1\] sent a reply of more than 200 lines while waiting for the greeting'
}

@test "without SMTP_HOSTNAME, EHLO names this machine, not the smarthost of -r" {
	peer smtp
	unset SMTP_HOSTNAME
	run -0 send bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^a@example\.test delivered 250 '
	run -0 grep -c "READ b'EHLO $(re_escape "$(hostname)")\\\\r\\\\n'" "$PEER_LOG"
	refute grep -q 'EHLO 127\.0\.0\.1' "$PEER_LOG"
}

@test "-a without -r, a bad -r: usage errors (100) before the message is read" {
	credentials 600 alice-demo
	# stdin a directory: reading it would fail (111), so 100 says it was never read.
	run -100 --separate-stderr smtp-send -a "$BATS_TEST_TMPDIR/cred" bob@example.org \
		alice@example.test </
	assert_one_stderr_line smtp-send
	[[ $stderr == 'smtp-send: usage: smtp-send '* ]]
	run -100 --separate-stderr smtp-send -r 127.0.0.1:99999 bob@example.org alice@example.test </
	assert_one_stderr_line smtp-send
	assert_stderr_line "$(re_escape "smtp-send: fatal: bad relay host '127.0.0.1:99999': HOST, HOST:PORT or [ADDRESS]:PORT")"
	run -100 --separate-stderr smtp-send -t sometimes bob@example.org alice@example.test </
	assert_one_stderr_line smtp-send
}

@test "a recipient without a domain fails alone, 553 5.1.3; the others are delivered" {
	start_tcpserver
	run -0 --separate-stderr send bob@example.org alice@example.test nodomain bob@ \
		bob@example.test <"$BATS_TEST_TMPDIR/message"
	assert_equal "${#lines[@]}" 4
	assert_line -n 0 --regexp '^alice@example\.test delivered 250 '
	assert_line -n 1 'nodomain failed 553 5.1.3 "recipient address has no domain" host=- tls=none'
	assert_line -n 2 'bob@ failed 553 5.1.3 "recipient address has no domain" host=- tls=none'
	assert_line -n 3 --regexp '^bob@example\.test delivered 250 '
	run -0 queue_envelope "$(one_queued)"
	assert_output "$(printf 'Fbob@example.org\nTalice@example.test\nTbob@example.test')"
}

@test "an address over 254 bytes fails alone (553 5.1.3); a sender over 254 fails them all" {
	start_tcpserver
	local long
	long=$(printf 'x%.0s' $(seq 1100))@example.test
	run -0 --separate-stderr send bob@example.org "$long" alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_line -n 0 "$long failed 553 5.1.3 \"recipient address longer than 254 bytes (RFC 5321 4.5.3.1.3)\" host=127.0.0.1[127.0.0.1] tls=none"
	assert_line -n 1 --regexp '^alice@example\.test delivered 250 '
	run -0 --separate-stderr send "$long" alice@example.test bob@example.test <"$BATS_TEST_TMPDIR/message"
	assert_line -n 0 'alice@example.test failed 553 5.1.3 "sender address longer than 254 bytes (RFC 5321 4.5.3.1.3)" host=127.0.0.1[127.0.0.1] tls=none'
	assert_line -n 1 --regexp '^bob@example\.test failed 553 5\.1\.3 "sender address longer '
	assert_count 1 file_count "$QUEUEDIR/msg"
}

@test "control bytes in an address are escaped in the result line" {
	peer smtp
	run -0 --separate-stderr send bob@example.org $'a\001b"@example.test' c@example.test \
		<"$BATS_TEST_TMPDIR/message"
	assert_equal "${#lines[@]}" 2
	assert_line -n 0 'a\x01b\x22@example.test failed 553 5.1.3 "control characters in the address" host=127.0.0.1[127.0.0.1] tls=none'
	assert_line -n 1 --regexp '^c@example\.test delivered 250 '
}

@test "552 to RCPT after an accepted one: like 452, the rest go in a next transaction" {
	peer smtp PEER_MAXRCPT=1 PEER_TOOMANY='552 5.5.3 too many recipients'
	run -0 --separate-stderr send bob@example.org a@example.test b@example.test c@example.test \
		<"$BATS_TEST_TMPDIR/message"
	assert_line -n 0 'a@example.test delivered 250 2.0.0 "ok: got it" host=127.0.0.1[127.0.0.1] tls=none'
	assert_line -n 1 'b@example.test delivered 250 2.0.0 "ok: got it" host=127.0.0.1[127.0.0.1] tls=none'
	assert_line -n 2 'c@example.test delivered 250 2.0.0 "ok: got it" host=127.0.0.1[127.0.0.1] tls=none'
	run -0 grep -c '^MSG' "$PEER_LOG"
	assert_output 3
}

@test "a reply to DATA other than 354: a 2xx defers 451 4.5.0 (no body was sent), a 5xx fails" {
	peer smtp PEER_DATA='250 2.0.0 thanks'
	run -111 --separate-stderr send bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'a@example.test deferred 451 4.5.0 "127.0.0.1[127.0.0.1] sent an unexpected reply to DATA: 250 thanks" host=127.0.0.1[127.0.0.1] tls=none'
	stop_server
	peer smtp PEER_DATA='554 5.6.0 no thanks'
	run -0 --separate-stderr send bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'a@example.test failed 554 5.6.0 "no thanks" host=127.0.0.1[127.0.0.1] tls=none'
	refute grep -q '^MSG' "$PEER_LOG"
}

@test "SIZE= counts CRLF but not the dot-stuffing (RFC 1870), and is SIZE=0 for an empty message" {
	peer smtp PEER_EXT=PIPELINING,SIZE
	printf '.\n..\nx\n' >"$BATS_TEST_TMPDIR/dots"
	run -0 send bob@example.org a@example.test <"$BATS_TEST_TMPDIR/dots"
	: >"$BATS_TEST_TMPDIR/empty"
	run -0 send bob@example.org a@example.test <"$BATS_TEST_TMPDIR/empty"
	run -0 peer_reads
	assert_line -n 0 --partial "MAIL FROM:<bob@example.org> SIZE=10\\r\\n"
	assert_line -n 2 --partial "MAIL FROM:<bob@example.org> SIZE=0\\r\\n"
}

@test "150 recipients: 100 in the first transaction, 50 in the next, on one connection" {
	peer smtp
	local rcpts=() i
	for i in $(seq 150); do rcpts+=("r$i@example.test"); done
	run -0 --separate-stderr send bob@example.org "${rcpts[@]}" <"$BATS_TEST_TMPDIR/message"
	assert_equal "${#lines[@]}" 150
	run -0 grep -c ' delivered 250 2.0.0 "ok: got it" ' <<<"$output"
	run -0 grep '^RCPTS' "$PEER_LOG"
	assert_output "$(printf "RCPTS b'100'\nRCPTS b'50'")"
	run -0 grep -c '^MSG' "$PEER_LOG"
	assert_output 2
	# One session: the probe's CONNECT and ours.
	run -0 grep -c "^READ b'EHLO" "$PEER_LOG"
	assert_output 1
}

@test "the result lines are out before QUIT is answered; a QUIT never answered loses nothing" {
	peer smtp PEER_QUIT=hang
	send -T helo=60,quit=60 bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message" \
		>"$BATS_TEST_TMPDIR/out" 2>/dev/null &
	local pid=$!
	wait_until 100 grep -q '^QUIT' "$PEER_LOG" || fail "no QUIT: $(cat "$PEER_LOG")"
	wait_until 100 grep -q ' delivered ' "$BATS_TEST_TMPDIR/out" || fail "no result while QUIT waits"
	kill "$pid"
	wait "$pid" || true
	# QUIT's own timeout (short by default) ends it, delivered, exit 0.
	run -0 --separate-stderr send -T quit=1 bob@example.org a@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'a@example.test delivered 250 2.0.0 "ok: got it" host=127.0.0.1[127.0.0.1] tls=none'
}

@test "smarthost: credentials of 511 bytes each are sent (AUTH PLAIN of 1379 bytes)" {
	smarthost_peer
	{ printf 'u%.0s' $(seq 511); echo; printf 'p%.0s' $(seq 511); echo; } >"$BATS_TEST_TMPDIR/cred"
	chmod 600 "$BATS_TEST_TMPDIR/cred"
	relay_send 111 -C "$BATS_TEST_TMPDIR/ca.pem"
	assert_output --regexp '^someone@remote\.example deferred 535 5\.7\.8 "authentication credentials invalid" '
}
