#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-run's remote delivery in the DNS test world (tests/lib/world.bash): instance A (this
# test's queue, users of example.test) sends to peers on 127.0.0.2-9 (smtp-recv, with a queue-run
# of their own where a Maildir must receive, or the scripted tests/lib/smtp_peer.py). Retries,
# destination memory, per-destination limits, connection reuse, notices (RFC 3464) and DSN
# (RFC 3461), and kill -9.

load lib/common
load lib/world

setup() {
	world_start \
		'remote.test MX 10 mx2.remote.test' \
		'mx2.remote.test A 127.0.0.2' \
		'refuse.test MX 10 mx3.refuse.test' \
		'mx3.refuse.test A 127.0.0.3'
	A_DIR=$BATS_TEST_TMPDIR/a
	mkdir -p "$A_DIR"
	queue-init "$A_DIR/queue"
	users_txt >"$A_DIR/users.txt"
	userdb-compile -f "$A_DIR/users.txt" "$A_DIR/users.cdb"
	export QUEUEDIR=$A_DIR/queue USERDB=$A_DIR/users.cdb MAILROOT=$A_DIR/mail
	A_LOG=$A_DIR/log
	: >"$A_LOG"
	MSG=$BATS_TEST_TMPDIR/message
	make_message "$MSG" rd-1
	# Short everything: retries each second, steps of ten.
	export SMTP_SEND_TIMEOUTS=connect=10,greeting=10,helo=10,mail=10,rcpt=10,data=10,block=10,dot=10
	export SMTP_HOSTNAME=mx.example.test RETRY_MIN=1 RETRY_MAX=2
}

teardown() {
	world_teardown
}

# start_a [OPTION...]: A's queue-run, inside the world, logging to $A_LOG; A_PID.
start_a() {
	start_group "$A_LOG" nsenter -t "$WORLD_PID" -n -m -- queue-run "$@"
	A_PID=$BG_PID
}

# remote_peer N DOMAIN [VAR=V...]: smtp-recv for DOMAIN (mailbox bob@DOMAIN) on 127.0.0.N:25,
# with a queue-run delivering its queue to its Maildirs (log: $PEER_DIR/run.log).
remote_peer() {
	local n=$1 domain=$2
	shift 2
	mkdir -p "$WORLD_DIR/peer$n"
	printf 'domain %s\nmailbox bob@%s {SHA512-CRYPT}$6$saltsalt$bobHASH %s/bob/\n' \
		"$domain" "$domain" "$domain" >"$WORLD_DIR/peer$n/users.txt"
	world_peer "$n" "$@"
	start_group "$PEER_DIR/run.log" nsenter -t "$WORLD_PID" -n -m -- env QUEUEDIR="$PEER_QUEUE" USERDB="$PEER_USERDB" \
		MAILROOT="$PEER_MAILROOT" queue-run
}

# a_idle: nothing left in A's queue.
a_idle() {
	[ "$(file_count "$QUEUEDIR/msg")" = 0 ]
}

# count_lines REGEX FILE: how many whole lines of FILE match.
count_lines() {
	grep -Ecx -- "$1" "$2" || true
}

# notices USER: the Maildir files of USER@example.test in A.
notices() {
	maildir_files "$MAILROOT/example.test/$1"
}

# dsn FILE: tests/lib/dsn_check.py's key=value lines for the notice FILE, in $output.
dsn() {
	run -0 "$PYTHON" "$TESTLIB/dsn_check.py" "$1"
}

@test "remote: A's user to bob@remote.test lands in B's Maildir; A's log names B's queue id" {
	remote_peer 2 remote.test
	run -0 inject alice@example.test bob@remote.test <"$MSG"
	start_a
	wait_until 100 eval '[ "$(msg_count "$PEER_MAILROOT/remote.test/bob")" = 1 ]' ||
		fail "not delivered: $(cat "$A_LOG")"
	wait_until 50 a_idle
	local bid
	bid=$(sed -n 's/^queue-run: \([0-9-]*\) done$/\1/p' "$PEER_DIR/run.log")
	[ -n "$bid" ] || fail "B's queue-run did not finish: $(cat "$PEER_DIR/run.log")"
	assert_log "queue-run: [0-9-]+ from=<alice@example\.test> to=<bob@remote\.test> result=sent delay=[0-9.]+s reason=\"mx2\.remote\.test\[127\.0\.0\.2\] 250 2\.0\.0 ok: queued as $bid tls=none\"" "$A_LOG"
	assert_log "queue-run: [0-9-]+ done" "$A_LOG"
}

@test "remote: B answers 451: A tries again on the short schedule, each try logged, and delivers when B recovers" {
	world_peer 2 PEER_RCPT='451 4.3.0 try again later' -- "$PYTHON" "$TESTLIB/smtp_peer.py" smtp
	local first=$PEER_PID
	run -0 inject alice@example.test bob@remote.test <"$MSG"
	start_a
	local deferred='queue-run: [0-9-]+ from=<alice@example\.test> to=<bob@remote\.test> result=deferred .*451 4\.3\.0 try again later.*'
	wait_until 100 eval '[ "$(count_lines "$deferred" "$A_LOG")" -ge 3 ]' ||
		fail "not tried three times: $(cat "$A_LOG")"
	# A reply from a host: the destination is up; only the message waits.
	refute_log '.*destination remote\.test took no mail.*' "$A_LOG"
	_world_kill "$first"
	remote_peer 2 remote.test
	wait_until 100 eval '[ "$(msg_count "$PEER_MAILROOT/remote.test/bob")" = 1 ]' ||
		fail "not delivered after B recovered: $(cat "$A_LOG")"
	wait_until 50 a_idle
	assert_log 'queue-run: [0-9-]+ from=<alice@example\.test> to=<bob@remote\.test> result=sent .*' "$A_LOG"
	# No notice: nothing failed, and the message was not late.
	assert_count 0 msg_count "$MAILROOT/example.test/alice"
}

@test "remote: B answers 550: the sender gets an RFC 3464 notice; no retry ever" {
	remote_peer 2 remote.test
	run -0 inject alice@example.test nobody@remote.test <"$MSG"
	start_a
	wait_until 100 eval '[ "$(msg_count "$MAILROOT/example.test/alice")" = 1 ]' ||
		fail "no notice: $(cat "$A_LOG")"
	wait_until 50 a_idle
	dsn "$(notices alice)"
	assert_line 'content_type=multipart/report'
	assert_line 'report_type=delivery-status'
	assert_line 'rcpt.0.final_recipient=rfc822;nobody@remote.test'
	assert_line 'rcpt.0.action=failed'
	assert_line 'rcpt.0.status=5.1.1'
	assert_line --regexp '^rcpt\.0\.remote_mta=dns; ?mx2\.remote\.test$'
	assert_line --regexp '^rcpt\.0\.diagnostic_code=smtp; ?550 5\.1\.1 .*'
	assert_line 'returned_subject=test message rd-1'
	# The notice came from <>.
	run -0 head -n 1 "$(notices alice)"
	assert_output 'Return-Path: <>'
	assert_equal "$(count_lines '.*to=<nobody@remote\.test> result=failed.*' "$A_LOG")" 1
	refute_log '.*to=<nobody@remote\.test> result=deferred.*' "$A_LOG"
}

@test "remote: B down past the queue lifetime: a notice with the last error" {
	run -0 inject alice@example.test bob@remote.test <"$MSG"
	QUEUE_LIFETIME=3 start_a
	wait_until 150 eval '[ "$(msg_count "$MAILROOT/example.test/alice")" = 1 ]' ||
		fail "no notice: $(cat "$A_LOG")"
	wait_until 50 a_idle
	dsn "$(notices alice)"
	assert_line 'rcpt.0.final_recipient=rfc822;bob@remote.test'
	assert_line 'rcpt.0.action=failed'
	assert_line 'rcpt.0.status=4.4.1'
	assert_line --regexp '^rcpt\.0\.diagnostic_code=.*Connection refused.*'
	assert_log '.*destination remote\.test took no mail.*' "$A_LOG"
	assert_log '.*to=<bob@remote\.test> result=failed .*reason="expired after 3 s in the queue; last: .*Connection refused.*' "$A_LOG"
}

@test "remote: B down past the delay warning: one 'delayed' notice, then delivery when B returns" {
	run -0 inject alice@example.test bob@remote.test <"$MSG"
	DELAY_WARNING=2 start_a
	wait_until 150 eval '[ "$(msg_count "$MAILROOT/example.test/alice")" = 1 ]' ||
		fail "no warning: $(cat "$A_LOG")"
	dsn "$(notices alice)"
	assert_line 'rcpt.0.action=delayed'
	assert_line 'rcpt.0.final_recipient=rfc822;bob@remote.test'
	assert_line --regexp '^subject=.*[Dd]elayed.*'
	remote_peer 2 remote.test
	wait_until 100 eval '[ "$(msg_count "$PEER_MAILROOT/remote.test/bob")" = 1 ]' ||
		fail "not delivered after B returned: $(cat "$A_LOG")"
	wait_until 50 a_idle
	# Still the one warning.
	assert_count 1 msg_count "$MAILROOT/example.test/alice"
}

@test "remote: a notice the sender's domain refuses goes to the postmaster once; nothing loops" {
	world_peer 3 PEER_RCPT='550 5.7.1 we take nothing' -- "$PYTHON" "$TESTLIB/smtp_peer.py" smtp
	# An unknown local user: the notice goes back to x@refuse.test, which refuses it.
	run -0 inject x@refuse.test nosuchuser@example.test <"$MSG"
	start_a
	# The postmaster (alice, by the fixture's alias) gets the notice about the notice.
	wait_until 100 eval '[ "$(msg_count "$MAILROOT/example.test/alice")" = 1 ]' ||
		fail "the postmaster got nothing: $(cat "$A_LOG")"
	wait_until 50 a_idle
	dsn "$(notices alice)"
	assert_line 'rcpt.0.final_recipient=rfc822;x@refuse.test'
	assert_line 'rcpt.0.action=failed'
	assert_line 'rcpt.0.status=5.7.1'
	run -0 head -n 1 "$(notices alice)"
	assert_output 'Return-Path: <>'
	# Exactly two notices were queued (to x@, then to the postmaster), and the queue is empty.
	assert_equal "$(count_lines 'queue-run: [0-9-]+ notice .*' "$A_LOG")" 2
}

# sink_peer N: the scripted peer (tests/lib/smtp_peer.py smtp) on 127.0.0.N, taking every
# message; it records each connection, each read and each message in $WORLD_DIR/peerN/sessions.log.
sink_peer() {
	mkdir -p "$WORLD_DIR/peer$1"
	world_peer "$1" PEER_LOG="$WORLD_DIR/peer$1/sessions.log" ${PEER_DELAY:+PEER_DELAY=$PEER_DELAY} -- \
		"$PYTHON" "$TESTLIB/smtp_peer.py" smtp
}

# taken_at N: the messages peer N took.
taken_at() {
	grep -c '^MSG ' "$WORLD_DIR/peer$1/sessions.log" 2>/dev/null || echo 0
}

# max_sessions N: the most SMTP sessions peer N had open at once. A session counts from its EHLO
# (world_peer's check that the port answers connects and says nothing) until its QUIT arrived:
# the peer records the QUIT before it answers, and queue-run frees the slot only after the
# answer, so the count cannot run ahead of the truth.
max_sessions() {
	awk '/^READ b.EHLO / { n++; if (n > max) max = n } /^READ .*QUIT\\r\\n/ { n-- }
	     END { print max + 0 }' "$WORLD_DIR/peer$1/sessions.log"
}

# connections N: the SMTP sessions peer N had.
connections() {
	grep -c '^READ b.EHLO ' "$WORLD_DIR/peer$1/sessions.log" || true
}

@test "remote: 200 messages to five domains, one down: the four get theirs at once, within the limit; the fifth is probed, not hammered, and catches up" {
	local n d
	for n in 4 5 6 7 8; do
		world_zone "d$n.test MX 10 mx$n.d$n.test" "mx$n.d$n.test A 127.0.0.$n"
	done
	for n in 4 5 6 7; do sink_peer "$n"; done
	for ((i = 1; i <= 40; i++)); do
		for n in 4 5 6 7 8; do
			inject alice@example.test "bob@d$n.test" <"$MSG" || fail "inject $i to d$n.test"
		done
	done
	local started=$SECONDS
	start_a -c 20 -p 3
	for n in 4 5 6 7; do
		wait_until 300 eval '[ "$(taken_at '"$n"')" = 40 ]' ||
			fail "d$n.test got $(taken_at "$n") of 40: $(tail -n 20 "$A_LOG")"
	done
	for n in 4 5 6 7; do
		[ "$(max_sessions "$n")" -le 3 ] || fail "d$n.test had $(max_sessions "$n") sessions at once"
	done
	# d8.test: tried by the first three messages at once (its limit), then probed by one
	# message at a time, at most once a second (RETRY_MIN), not by each of its 40.
	local tries elapsed=$((SECONDS - started + 1))
	tries=$(grep -c 'connect to mx8\.d8\.test\[127\.0\.0\.8\]:25: Connection refused$' "$A_LOG" || true)
	[ "$tries" -ge 1 ] && [ "$tries" -le $((3 + elapsed)) ] ||
		fail "d8.test was tried $tries times in $elapsed s"
	assert_log '.*destination d8\.test took no mail.*' "$A_LOG"
	sink_peer 8
	wait_until 100 eval '[ "$(taken_at 8)" = 40 ]' ||
		fail "d8.test got $(taken_at 8) of 40 after it came back: $(tail -n 20 "$A_LOG")"
	wait_until 50 a_idle
	[ "$(max_sessions 8)" -le 3 ] || fail "d8.test had $(max_sessions 8) sessions at once"
}

@test "remote: 50 messages to one domain in a burst take far fewer connections than messages" {
	sink_peer 2
	for ((i = 1; i <= 50; i++)); do
		inject alice@example.test bob@remote.test <"$MSG" || fail "inject $i"
	done
	start_a -p 4
	wait_until 300 eval '[ "$(taken_at 2)" = 50 ]' || fail "remote.test got $(taken_at 2) of 50"
	wait_until 50 a_idle
	local c
	c=$(connections 2)
	[ "$c" -le 8 ] || fail "$c connections for 50 messages"
	[ "$(max_sessions 2)" -le 4 ] || fail "$(max_sessions 2) sessions at once"
}

@test "remote: kill -9 of queue-run during remote deliveries, then a restart: every recipient delivered, none lost" {
	# A slow peer (each message's 250 after a moment), so that the kill finds sessions open.
	PEER_DELAY=0.2 sink_peer 2
	for ((i = 1; i <= 60; i++)); do
		make_message "$BATS_TEST_TMPDIR/m$i" "kill-$i"
		inject alice@example.test bob@remote.test <"$BATS_TEST_TMPDIR/m$i" || fail "inject $i"
	done
	start_a -c 10 -p 10
	wait_until 300 eval '[ "$(taken_at 2)" -ge 10 ]' || fail "nothing arrived: $(cat "$A_LOG")"
	kill_group "$A_PID"
	local before
	before=$(taken_at 2)
	start_a -c 10 -p 10
	wait_until 300 a_idle || fail "A's queue not empty: $(file_count "$QUEUEDIR/msg") left"
	# Every message at least once at B (a repeat is allowed, a loss is not).
	local missing=0
	for ((i = 1; i <= 60; i++)); do
		grep -q "^MSG .*Message-Id: <kill-$i@test>" "$WORLD_DIR/peer2/sessions.log" ||
			missing=$((missing + 1))
	done
	[ "$before" -lt 60 ] || fail "every message was sent before the kill: nothing was interrupted"
	[ "$missing" = 0 ] || fail "$missing messages lost (B had $before before the kill)"
}

# inject_dsn FROM [E<envid>] [H<ret>] -- T<rcpt> [N<notify>] [O<orcpt>]...: queue-inject with
# these envelope items (queue(5)) after F<FROM>, the message from $MSG.
inject_dsn() {
	local from=$1 item
	shift
	queue-inject <"$MSG" 1< <(
		printf 'F%s\0' "$from"
		for item in "$@"; do printf '%s\0' "$item"; done
		printf '\0'
	)
}

@test "DSN: NOTIFY=SUCCESS on a local delivery: a success notice, with ENVID and ORCPT back" {
	run -0 inject_dsn alice@example.test 'Eenv+2B1' 'Tbob@example.test' 'NSUCCESS' \
		'Orfc822;Bob+2Btag@example.test'
	start_a
	wait_until 100 eval '[ "$(msg_count "$MAILROOT/example.test/alice")" = 1 ]' ||
		fail "no notice: $(cat "$A_LOG")"
	wait_until 50 a_idle
	assert_count 1 msg_count "$MAILROOT/example.test/bob"
	dsn "$(notices alice)"
	assert_line 'rcpt.0.action=delivered'
	assert_line 'rcpt.0.status=2.0.0'
	assert_line 'rcpt.0.final_recipient=rfc822;bob@example.test'
	assert_line 'rcpt.0.original_recipient=rfc822;Bob+tag@example.test'
	assert_line 'envid=env+1'
}

@test "DSN: NOTIFY=NEVER with a 550: no notice at all" {
	remote_peer 2 remote.test
	run -0 inject_dsn alice@example.test 'Tnobody@remote.test' 'NNEVER'
	start_a
	wait_until 100 a_idle || fail "still queued: $(cat "$A_LOG")"
	assert_log '.*to=<nobody@remote\.test> result=failed .*550 5\.1\.1.*' "$A_LOG"
	refute_log '.* notice .*' "$A_LOG"
	assert_count 0 msg_count "$MAILROOT/example.test/alice"
}

@test "DSN: RET=HDRS with a 550: the notice returns the header only" {
	remote_peer 2 remote.test
	run -0 inject_dsn alice@example.test 'HHDRS' 'Tnobody@remote.test'
	start_a
	wait_until 100 eval '[ "$(msg_count "$MAILROOT/example.test/alice")" = 1 ]' ||
		fail "no notice: $(cat "$A_LOG")"
	dsn "$(notices alice)"
	assert_line 'returned_type=text/rfc822-headers'
	assert_line 'returned_subject=test message rd-1'
	assert_line 'returned_has_body=0'
}

@test "DSN: NOTIFY=SUCCESS to a peer without DSN: 'relayed'; to a peer with DSN: passed on, no notice from us" {
	sink_peer 3
	world_zone 'plain.test MX 10 mx3.refuse.test'
	# B: smtp-recv alone, so that what it queued can be read.
	mkdir -p "$WORLD_DIR/peer2"
	printf 'domain remote.test\nmailbox bob@remote.test x remote.test/bob/\n' \
		>"$WORLD_DIR/peer2/users.txt"
	world_peer 2
	run -0 inject_dsn alice@example.test 'Ebatch+207' 'Tbob@plain.test' 'NSUCCESS,FAILURE' \
		'Tbob@remote.test' 'NSUCCESS' 'Orfc822;bob@remote.test'
	start_a
	wait_until 100 eval '[ "$(msg_count "$MAILROOT/example.test/alice")" = 1 ]' ||
		fail "no notice: $(cat "$A_LOG")"
	wait_until 50 a_idle
	dsn "$(notices alice)"
	assert_line 'rcpts=1'
	assert_line 'rcpt.0.final_recipient=rfc822;bob@plain.test'
	assert_line 'rcpt.0.action=relayed'
	assert_line 'envid=batch 7'
	# B took the parameters (its queue file's envelope), and so the duty to report.
	assert_log '.*to=<bob@remote\.test> result=sent .*' "$A_LOG"
	local f=("$PEER_QUEUE"/msg/*)
	[ "${#f[@]}" = 1 ] || fail "B queued ${#f[@]} files"
	local len
	len=$(head -n 1 "${f[0]}" | awk '{ print $2 + 0 }')
	assert_equal "$(tail -c +$((26 + len + 1)) "${f[0]}" | tr '\0' '|')" \
		'Falice@example.test|Ebatch+207|Tbob@remote.test|NSUCCESS|Orfc822;bob@remote.test||'
}

# the_id: the id of the one message in A's queue.
the_id() {
	local f=("$QUEUEDIR"/msg/*)
	[ "${#f[@]}" = 1 ] && [ -f "${f[0]}" ] || fail "expected one message in A's queue"
	echo "${f[0]##*/}"
}

@test "queue tools: queue-list shows the deferred message and its last error; queue-flush sends it at once" {
	run -0 inject alice@example.test bob@remote.test <"$MSG"
	local id
	id=$(the_id)
	# Retries an hour apart: only the flush can make it go now.
	RETRY_MIN=1h RETRY_MAX=1h start_a
	wait_until 100 grep -q 'result=deferred' "$A_LOG" || fail "no attempt: $(cat "$A_LOG")"
	run -0 queue-list -t
	assert_line --regexp "^$id	[0-9]+	[0-9]+	alice@example\.test	bob@remote\.test	deferred	[0-9]+	mx2\.remote\.test\[127\.0\.0\.2\] 421 4\.4\.1 connect to .*Connection refused$"
	remote_peer 2 remote.test
	run -0 queue-flush
	wait_until 50 eval '[ "$(msg_count "$PEER_MAILROOT/remote.test/bob")" = 1 ]' ||
		fail "not sent after the flush: $(cat "$A_LOG")"
	wait_until 50 a_idle
	run -0 queue-list
	assert_output 'queue is empty'
}

@test "queue tools: queue-remove makes a message gone and never delivered; queue-hold keeps one until queue-release" {
	run -0 inject alice@example.test bob@remote.test <"$MSG"
	local gone kept
	gone=$(the_id)
	RETRY_MIN=1h RETRY_MAX=1h start_a
	wait_until 100 grep -q "^queue-run: $gone .*result=deferred" "$A_LOG" || fail "no attempt"
	run -0 queue-remove "$gone"
	run -0 inject alice@example.test bob@remote.test <"$MSG"
	wait_until 100 eval '[ "$(grep -c "result=deferred" "$A_LOG")" -ge 2 ]' || fail "no attempt"
	kept=$(the_id)
	run -0 queue-hold "$kept"
	[ -f "$QUEUEDIR/hold/$kept" ] || fail "not in hold/"
	remote_peer 2 remote.test
	run -0 queue-flush
	# The flush reaches queue-run; a message queued after it is delivered, so the queue has been
	# looked at since; nothing went to B: one message is gone, the other held.
	wait_until 50 grep -q 'flush: every destination' "$A_LOG" || fail "the flush did not arrive"
	run -0 inject alice@example.test carol@example.test <"$MSG"
	wait_until 50 eval '[ "$(msg_count "$MAILROOT/example.test/carol")" = 1 ]' ||
		fail "carol's message was not delivered: $(cat "$A_LOG")"
	run -0 queue-list -t
	assert_output --regexp "^$kept	.*	held	-	.*"
	assert_count 0 msg_count "$PEER_MAILROOT/remote.test/bob"
	run -0 queue-release "$kept"
	wait_until 50 eval '[ "$(msg_count "$PEER_MAILROOT/remote.test/bob")" = 1 ]' ||
		fail "not sent after the release: $(cat "$A_LOG")"
	wait_until 50 a_idle
	# Only the released one arrived, and nothing ever mentioned the removed one again.
	assert_count 1 msg_count "$PEER_MAILROOT/remote.test/bob"
	assert_equal "$(grep -c "^queue-run: $gone " "$A_LOG")" 2
}

@test "REMOTEDELIVERY=smtp-send: the same deliveries and the same notice as in-process" {
	remote_peer 2 remote.test
	run -0 inject alice@example.test bob@remote.test nobody@remote.test <"$MSG"
	# smtp-send, behind a wrapper that notes how it was called.
	printf '#!/bin/sh\necho "$*" >>%s/calls\nexec %s "$@"\n' "$BATS_TEST_TMPDIR" \
		"$(command -v smtp-send)" >"$BATS_TEST_TMPDIR/send"
	chmod +x "$BATS_TEST_TMPDIR/send"
	REMOTEDELIVERY=$BATS_TEST_TMPDIR/send start_a
	wait_until 100 eval '[ "$(msg_count "$MAILROOT/example.test/alice")" = 1 ]' ||
		fail "no notice: $(cat "$A_LOG")"
	wait_until 50 a_idle
	wait_until 50 eval '[ "$(msg_count "$PEER_MAILROOT/remote.test/bob")" = 1 ]' ||
		fail "bob got nothing: $(cat "$A_LOG")"
	assert_log 'queue-run: [0-9-]+ from=<alice@example\.test> to=<bob@remote\.test> result=sent delay=[0-9.]+s reason="mx2\.remote\.test\[127\.0\.0\.2\] 250 2\.0\.0 ok: queued as [0-9-]+ tls=none"' "$A_LOG"
	dsn "$(notices alice)"
	assert_line 'rcpts=1'
	assert_line 'rcpt.0.final_recipient=rfc822;nobody@remote.test'
	assert_line 'rcpt.0.action=failed'
	assert_line 'rcpt.0.status=5.1.1'
	assert_line --regexp '^rcpt\.0\.remote_mta=dns; ?mx2\.remote\.test$'
	assert_line --regexp '^rcpt\.0\.diagnostic_code=smtp; ?550 5\.1\.1 .*'
	# One run for the destination, with both recipients.
	run -0 cat "$BATS_TEST_TMPDIR/calls"
	assert_output '-t may -h mx.example.test -- alice@example.test bob@remote.test nobody@remote.test'
}

@test "remote: kill -9 of the scheduler alone: its workers finish and record their deliveries; nothing is sent twice" {
	PEER_DELAY=0.2 sink_peer 2
	for ((i = 1; i <= 40; i++)); do
		make_message "$BATS_TEST_TMPDIR/m$i" "sched-$i"
		inject alice@example.test bob@remote.test <"$BATS_TEST_TMPDIR/m$i" || fail "inject $i"
	done
	start_a -c 10 -p 10
	wait_until 300 eval '[ "$(taken_at 2)" -ge 5 ]' || fail "nothing arrived: $(cat "$A_LOG")"
	# The scheduler only (as s6-svc -k would), not its workers.
	kill -KILL "$A_PID"
	start_a -c 10 -p 10
	wait_until 300 a_idle || fail "A's queue not empty: $(file_count "$QUEUEDIR/msg") left"
	local i n dup=0 missing=0
	for ((i = 1; i <= 40; i++)); do
		n=$(grep -c "^MSG .*Message-Id: <sched-$i@test>" "$WORLD_DIR/peer2/sessions.log" || true)
		[ "$n" -ge 1 ] || missing=$((missing + 1))
		[ "$n" -le 1 ] || dup=$((dup + 1))
	done
	[ "$missing" = 0 ] || fail "$missing messages lost"
	[ "$dup" = 0 ] || fail "$dup messages sent twice"
}

@test "remote: a notice to the postmaster that fails too is dropped with a log line; nothing loops" {
	world_peer 3 PEER_RCPT='550 5.7.1 we take nothing' -- "$PYTHON" "$TESTLIB/smtp_peer.py" smtp
	run -0 inject x@refuse.test nosuchuser@example.test <"$MSG"
	POSTMASTER=pm@refuse.test start_a
	wait_until 100 grep -q 'no notice: this was the notice to the postmaster; dropped' "$A_LOG" ||
		fail "not dropped: $(cat "$A_LOG")"
	wait_until 50 a_idle
	assert_equal "$(count_lines 'queue-run: [0-9-]+ notice .*' "$A_LOG")" 2
	assert_log 'queue-run: [0-9-]+ from=<> to=<pm@refuse\.test> result=failed .*550 5\.7\.1.*' "$A_LOG"
}

@test "remote: a message that finds its destination's one slot held by an idle kept session goes over it at once" {
	sink_peer 2
	run -0 inject alice@example.test bob@remote.test <"$MSG"
	CONNECTION_CACHE_TIME=60 start_a -p 1
	wait_until 100 eval '[ "$(taken_at 2)" = 1 ]' || fail "the first did not arrive"
	wait_until 50 a_idle
	run -0 inject alice@example.test bob@remote.test <"$MSG"
	run -0 inject alice@example.test bob@remote.test <"$MSG"
	# Within seconds, not after the kept session's 60 s, and over the one connection.
	wait_until 100 eval '[ "$(taken_at 2)" = 3 ]' || fail "parked behind the kept session"
	assert_equal "$(connections 2)" 1
}
