#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# smtp-send's MX path in the DNS test world (tests/lib/world.bash): its own name server, peers
# on 127.0.0.2-9 port 25, everything run inside the namespace. The hosts come from mx_lookup
# in-process; the peers are smtp-recv, or the scripted peer of tests/lib/smtp_peer.py.

load lib/common
load lib/smtp
load lib/world
load lib/tls

setup() {
	world_start \
		'example.test MX 10 mx2.example.test' \
		'example.test MX 20 mx3.example.test' \
		'mx2.example.test A 127.0.0.2' \
		'mx3.example.test A 127.0.0.3' \
		'loop.test MX 10 self.loop.test' \
		'self.loop.test A 127.0.0.1' \
		'backup.test MX 10 mx2.example.test' \
		'backup.test MX 20 self.loop.test' \
		'named.test MX 10 me.example.test' \
		'me.example.test A 127.0.0.4' \
		'broken.test SERVFAIL'
	export SMTP_SEND_TIMEOUTS=connect=10,greeting=10,helo=10,mail=10,rcpt=10,data=10,block=10,dot=10
	export SMTP_HOSTNAME=me.example.test
	make_message "$BATS_TEST_TMPDIR/message" m1
}

teardown() {
	world_teardown
}

# queued_in DIR: the ids in the queue DIR.
queued_in() {
	ls "$1/msg"
}

@test "MX: the first MX's port closed: the second MX takes it" {
	world_peer 3
	run -0 --separate-stderr in_world smtp-send bob@example.org alice@example.test bob@example.test \
		<"$BATS_TEST_TMPDIR/message"
	assert_line -n 0 --regexp '^alice@example\.test delivered 250 2\.0\.0 "ok: queued as [0-9.-]+" host=mx3\.example\.test\[127\.0\.0\.3\] tls=none$'
	assert_line -n 1 --regexp '^bob@example\.test delivered 250 2\.0\.0 "ok: queued as [0-9.-]+" host=mx3\.example\.test\[127\.0\.0\.3\] tls=none$'
	assert_stderr_line 'smtp-send: host=mx2\.example\.test\[127\.0\.0\.2\] port=25: 421 4\.4\.1 connect to mx2\.example\.test\[127\.0\.0\.2\]:25: Connection refused'
	run -0 queued_in "$PEER_QUEUE"
	assert_equal "${#lines[@]}" 1
}

@test "MX: a 421 greeting from the first MX: the next MX takes it" {
	world_peer 2 -- "$PYTHON" "$TESTLIB/smtp_peer.py" greet421
	world_peer 3
	run -0 --separate-stderr in_world smtp-send bob@example.org alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^alice@example\.test delivered 250 2\.0\.0 "ok: queued as [0-9.-]+" host=mx3\.example\.test\[127\.0\.0\.3\] tls=none$'
	assert_stderr_line 'smtp-send: host=mx2\.example\.test\[127\.0\.0\.2\] port=25: 421 4\.3\.2 peer\.test busy, come back later'
}

@test "MX: every MX down: each recipient deferred, the text naming every host tried" {
	run -111 --separate-stderr in_world smtp-send bob@example.org alice@example.test bob@example.test \
		<"$BATS_TEST_TMPDIR/message"
	local text='connect to mx2.example.test[127.0.0.2]:25: Connection refused; connect to mx3.example.test[127.0.0.3]:25: Connection refused'
	assert_line -n 0 "alice@example.test deferred 421 4.4.1 \"$text\" host=mx3.example.test[127.0.0.3] tls=none"
	assert_line -n 1 "bob@example.test deferred 421 4.4.1 \"$text\" host=mx3.example.test[127.0.0.3] tls=none"
}

@test "MX: an MX that is our own address fails 554 5.4.6; as a backup MX only better ones are tried" {
	run -0 --separate-stderr in_world smtp-send bob@example.org someone@loop.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'someone@loop.test failed 554 5.4.6 "mail for loop.test loops back to myself" host=self.loop.test[127.0.0.1] tls=none'
	# Our name as the MX host's (SMTP_HOSTNAME), whatever its address.
	run -0 --separate-stderr in_world smtp-send bob@example.org someone@named.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'someone@named.test failed 554 5.4.6 "mail for named.test loops back to myself" host=me.example.test[127.0.0.4] tls=none'
	# We are the backup: the better MX is down, so the mail waits, and we never talk to ourselves.
	run -111 --separate-stderr in_world smtp-send bob@example.org someone@backup.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'someone@backup.test deferred 421 4.4.1 "connect to mx2.example.test[127.0.0.2]:25: Connection refused" host=mx2.example.test[127.0.0.2] tls=none'
	world_zone 'example.test MX 30 mx4.example.test' 'mx4.example.test A 127.0.0.4'
	# A peer that greets with our name is us too.
	world_peer 3 SMTP_HOSTNAME=me.example.test
	run -0 --separate-stderr in_world smtp-send -h me.example.test bob@example.org alice@example.test \
		<"$BATS_TEST_TMPDIR/message"
	assert_output 'alice@example.test failed 554 5.4.6 "mail for example.test loops back to myself" host=mx3.example.test[127.0.0.3] tls=none'
}

@test "MX: NXDOMAIN fails 550 5.1.2, SERVFAIL defers 451 4.4.3, with the resolver's reason" {
	run -0 --separate-stderr in_world smtp-send bob@example.org someone@nowhere.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^someone@nowhere\.test failed 550 5\.1\.2 ".*nowhere\.test.*" host=- tls=none$'
	run -111 --separate-stderr in_world smtp-send bob@example.org someone@broken.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^someone@broken\.test deferred 451 4\.4\.3 ".*broken\.test.*" host=- tls=none$'
}

@test "MX: -t verify against the MX host's name, with SNI, through the world's DNS" {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=test CA" \
		-keyout "$BATS_TEST_TMPDIR/ca.key" -out "$BATS_TEST_TMPDIR/ca.pem" 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mx2.example.test" \
		-keyout "$BATS_TEST_TMPDIR/key.pem" -out "$BATS_TEST_TMPDIR/csr" 2>/dev/null
	printf 'subjectAltName=DNS:mx2.example.test\n' >"$BATS_TEST_TMPDIR/ext"
	openssl x509 -req -in "$BATS_TEST_TMPDIR/csr" -CA "$BATS_TEST_TMPDIR/ca.pem" -CAkey "$BATS_TEST_TMPDIR/ca.key" \
		-CAcreateserial -days 2 -extfile "$BATS_TEST_TMPDIR/ext" -out "$BATS_TEST_TMPDIR/cert.pem" 2>/dev/null
	world_peer 2 CERTFILE="$BATS_TEST_TMPDIR/cert.pem" KEYFILE="$BATS_TEST_TMPDIR/key.pem" UCSPITLS= \
		-- tls-wrap -n smtp-recv
	run -0 --separate-stderr in_world smtp-send -t verify -C "$BATS_TEST_TMPDIR/ca.pem" bob@example.org \
		alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^alice@example\.test delivered 250 2\.0\.0 "ok: queued as [0-9.-]+" host=mx2\.example\.test\[127\.0\.0\.2\] tls=TLSv1\.3/TLS_[A-Z0-9_]+/verified$'
	assert_stderr_line 'smtp-send: tls host=mx2\.example\.test\[127\.0\.0\.2\] protocol=TLSv1\.3 cipher=TLS_[A-Z0-9_]+ verified=yes'
	# tls-wrap's session line shows the SNI we sent.
	wait_until 50 grep -q ' sni=' "$PEER_LOG"
	assert_log 'tls-wrap: [0-9]+ client=127\.0\.0\.1 sni=mx2\.example\.test protocol=TLSv1\.3 .*' "$PEER_LOG"
}

# smarthost_world_peer N:PORT [VAR=V...] -- PROG...: smtp-recv with AUTH (the demo users, through
# checkpassword-mysql) on 127.0.0.N:PORT inside, its certificate from our CA naming 127.0.0.N.
smarthost_world_peer() {
	local where=$1
	shift
	make_ca
	make_leaf "127.0.0.${where%%:*}" "IP:127.0.0.${where%%:*}" "$BATS_TEST_TMPDIR/cert.pem" \
		"$BATS_TEST_TMPDIR/key.pem"
	mkdir -p "$WORLD_DIR/peer${where%%:*}"
	cp "$REPO/etc/demo/users.txt" "$WORLD_DIR/peer${where%%:*}/users.txt"
	world_peer "$where" CERTFILE="$BATS_TEST_TMPDIR/cert.pem" KEYFILE="$BATS_TEST_TMPDIR/key.pem" \
		SMTP_SENDER_LOGIN=1 CHECKPASSWORD="$BIN/checkpassword-mysql -d 0 true" "$@"
	printf 'alice@example.test\nalice-demo\n' >"$BATS_TEST_TMPDIR/cred"
	chmod 600 "$BATS_TEST_TMPDIR/cred"
}

@test "smarthost -r 127.0.0.3:587 -a FILE, STARTTLS and AUTH required: delivered as ESMTPSA" {
	smarthost_world_peer 3:587 UCSPITLS='!' -- tls-wrap -n smtp-recv
	run -0 --separate-stderr in_world smtp-send -r 127.0.0.3:587 -a "$BATS_TEST_TMPDIR/cred" \
		-C "$BATS_TEST_TMPDIR/ca.pem" alice@example.test someone@remote.example \
		<"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^someone@remote\.example delivered 250 2\.0\.0 "ok: queued as [0-9-]+" host=127\.0\.0\.3\[127\.0\.0\.3\] tls=TLSv1\.3/TLS_[A-Z0-9_]+/verified$'
	grep -q 'authenticated alice@example.test' "$PEER_LOG" || fail "$(cat "$PEER_LOG")"
	run -0 queued_in "$PEER_QUEUE"
	assert_equal "${#lines[@]}" 1
}

@test "smarthost on port 465: implicit TLS, then AUTH: delivered" {
	smarthost_world_peer 4:465 -- tls-wrap smtp-recv
	run -0 --separate-stderr in_world smtp-send -r 127.0.0.4:465 -a "$BATS_TEST_TMPDIR/cred" \
		-C "$BATS_TEST_TMPDIR/ca.pem" alice@example.test someone@remote.example \
		<"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^someone@remote\.example delivered 250 2\.0\.0 "ok: queued as [0-9-]+" host=127\.0\.0\.4\[127\.0\.0\.4\] tls=TLSv1\.3/TLS_[A-Z0-9_]+/verified$'
	grep -Eq '^tls-wrap: [0-9]+ client=127\.0\.0\.1 sni=- protocol=TLSv1\.3 .* result="ok"' "$PEER_LOG" ||
		fail "no TLS session in the peer's log: $(cat "$PEER_LOG")"
}

@test "MX: a null MX fails 556 5.1.10 (RFC 7505)" {
	world_zone 'nullmx.test MX 0 .'
	run -0 --separate-stderr in_world smtp-send bob@example.org someone@nullmx.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'someone@nullmx.test failed 556 5.1.10 "Recipient address has null MX" host=- tls=none'
}

@test "MX: an address literal with -t verify: checked against the address's IP SAN, no SNI" {
	make_ca
	make_leaf 127.0.0.2 IP:127.0.0.2 "$BATS_TEST_TMPDIR/cert.pem" "$BATS_TEST_TMPDIR/key.pem"
	world_peer 2 CERTFILE="$BATS_TEST_TMPDIR/cert.pem" KEYFILE="$BATS_TEST_TMPDIR/key.pem" UCSPITLS= \
		-- tls-wrap -n smtp-recv
	run --separate-stderr in_world smtp-send -t verify -C "$BATS_TEST_TMPDIR/ca.pem" bob@example.org \
		'alice@[127.0.0.2]' <"$BATS_TEST_TMPDIR/message"
	# (smtp-recv does not take mail for a literal: what matters is the TLS that got that far.)
	assert_output --regexp '^alice@\[127\.0\.0\.2\] [a-z]+ [0-9]{3} .* host=\[127\.0\.0\.2\]\[127\.0\.0\.2\] tls=TLSv1\.3/TLS_[A-Z0-9_]+/verified$'
	wait_until 50 grep -q ' sni=' "$PEER_LOG"
	assert_log 'tls-wrap: [0-9]+ client=127\.0\.0\.1 sni=- protocol=TLSv1\.3 .*' "$PEER_LOG"
}

@test "MX: at most 5 addresses are tried (Postfix's smtp_mx_address_limit)" {
	world_zone 'many.test MX 10 m2.many.test' 'm2.many.test A 127.0.0.2' \
		'many.test MX 20 m3.many.test' 'm3.many.test A 127.0.0.3' \
		'many.test MX 30 m4.many.test' 'm4.many.test A 127.0.0.4' \
		'many.test MX 40 m5.many.test' 'm5.many.test A 127.0.0.5' \
		'many.test MX 50 m6.many.test' 'm6.many.test A 127.0.0.6' \
		'many.test MX 60 m7.many.test' 'm7.many.test A 127.0.0.7'
	run -111 --separate-stderr in_world smtp-send bob@example.org someone@many.test <"$BATS_TEST_TMPDIR/message"
	assert_output --regexp '^someone@many\.test deferred 421 4\.4\.1 ".*m6\.many\.test\[127\.0\.0\.6\]:25: Connection refused" host=m6\.many\.test\[127\.0\.0\.6\] tls=none$'
	refute_output --partial m7.many.test
	assert_stderr_line 'smtp-send: domain=many\.test: 1 more addresses not tried: addresses tried 5'
}

@test "MX: at most 2 sessions that got a greeting (Postfix's smtp_mx_session_limit)" {
	world_zone 'three.test MX 10 m2.three.test' 'm2.three.test A 127.0.0.2' \
		'three.test MX 20 m3.three.test' 'm3.three.test A 127.0.0.3' \
		'three.test MX 30 m4.three.test' 'm4.three.test A 127.0.0.4'
	local n
	for n in 2 3 4; do
		world_peer $n PEER_LOG="$WORLD_DIR/rec$n" -- "$PYTHON" "$TESTLIB/smtp_peer.py" ehlo421
	done
	run -111 --separate-stderr in_world smtp-send bob@example.org someone@three.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'someone@three.test deferred 421 4.3.2 "m2.three.test[127.0.0.2] said: 421 peer.test shutting down; m3.three.test[127.0.0.3] said: 421 peer.test shutting down" host=m3.three.test[127.0.0.3] tls=none'
	assert_stderr_line 'smtp-send: domain=three\.test: 1 more addresses not tried: sessions held 2'
	# m4 saw only world_peer's probe.
	run -0 grep -c CONNECT "$WORLD_DIR/rec4"
	assert_output 1
}

@test "MX: the attempt's deadline (-T attempt=) cuts a slow host short, and no more are tried" {
	world_peer 2 PEER_LOG="$WORLD_DIR/rec2" -- "$PYTHON" "$TESTLIB/smtp_peer.py" silent
	world_peer 3 PEER_LOG="$WORLD_DIR/rec3" -- "$PYTHON" "$TESTLIB/smtp_peer.py" silent
	run -111 --separate-stderr in_world smtp-send -T greeting=600,attempt=1 bob@example.org \
		alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'alice@example.test deferred 421 4.4.2 "timeout with mx2.example.test[127.0.0.2] while waiting for the greeting; the delivery attempt'"'"'s time limit was reached" host=mx2.example.test[127.0.0.2] tls=none'
	run -0 grep -c CONNECT "$WORLD_DIR/rec3"
	assert_output 1
}

@test "MX: a session that ended after deciding every recipient: no next MX is contacted" {
	world_peer 2 PEER_DATA='250 2.0.0 thanks' -- "$PYTHON" "$TESTLIB/smtp_peer.py" smtp
	world_peer 3 PEER_LOG="$WORLD_DIR/rec3" -- "$PYTHON" "$TESTLIB/smtp_peer.py" smtp
	run -111 --separate-stderr in_world smtp-send bob@example.org alice@example.test <"$BATS_TEST_TMPDIR/message"
	assert_output 'alice@example.test deferred 451 4.5.0 "mx2.example.test[127.0.0.2] sent an unexpected reply to DATA: 250 thanks" host=mx2.example.test[127.0.0.2] tls=none'
	# mx3 saw only world_peer's probe.
	run -0 grep -c CONNECT "$WORLD_DIR/rec3"
	assert_output 1
}
