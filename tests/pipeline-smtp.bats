#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# smtp-recv under tcpserver on a free loopback port, fed by real clients (python3 smtplib,
# swaks), then queue-run -1 into the Maildirs: in-process queueing, QMAILQUEUE=queue-inject, and
# a QMAILQUEUE filter that says no.

# Loaded here, not in setup, so that the teardown below replaces the one lib/common defines.
load lib/common
load lib/smtp
load lib/world

setup() {
	make_queue
	make_userdb
	unset RELAYCLIENT QMAILQUEUE DATABYTES MAXRCPT MAXERRORS
	odd_message "$BATS_TEST_TMPDIR/message"
	# What swaks --no-data-fixup sends: the wire form, to which it adds the last CRLF.
	{ smtp_wire "$BATS_TEST_TMPDIR/message"; printf '.'; } >"$BATS_TEST_TMPDIR/wire"
}

teardown() {
	stop_tcpserver
	world_teardown
}

# swaks_send FROM TO [SWAKS-OPTION...]: the odd message through swaks to the server.
swaks_send() {
	local from=$1 to=$2
	shift 2
	swaks --server "127.0.0.1:$SMTP_PORT" --helo client.example.org --timeout 10 \
		--from "$from" --to "$to" --no-data-fixup --data "@$BATS_TEST_TMPDIR/wire" "$@"
}

# check_delivered USER SENDER RCPT-IN-FOR ID: the one message in USER's Maildir has smtp-recv's
# Received header with queue id ID, Return-Path, X-Original-To (RCPT-IN-FOR) and Delivered-To, and the odd message byte for
# byte after them.
check_delivered() {
	local user=$1 sender=$2 rcpt=$3 id=$4
	assert_count 1 msg_count "$(mailbox "$user")"
	local file=$(maildir_files "$(mailbox "$user")")
	run -0 head -n 7 "$file"
	assert_line -n 0 "Return-Path: <$sender>"
	assert_line -n 1 "X-Original-To: $rcpt"
	assert_line -n 2 "Delivered-To: $user@example.test"
	assert_line -n 3 'Received: from client.example.org ([127.0.0.1])'
	assert_line -n 4 "	by mx.example.test (postroom) with ESMTP id $id"
	assert_line -n 5 "	for <$rcpt>;"
	assert_line -n 6 --regexp $'^\t(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} [+-][0-9]{4}$'
	strip_added "$file" >"$BATS_TEST_TMPDIR/delivered"
	cmp "$BATS_TEST_TMPDIR/message" "$BATS_TEST_TMPDIR/delivered"
}

# deliver: queue-run -1, and the queue is empty afterwards.
deliver() {
	run -0 --separate-stderr queue-run -1
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
}

# A filter for QMAILQUEUE: reads the message and the envelope, then says CODE with TEXT on fd 6.
make_filter() {
	local code=$1 text=${2:-}
	cat >"$BATS_TEST_TMPDIR/filter" <<EOF
#!/bin/sh
cat >/dev/null
cat <&1 >/dev/null
printf '%s' '$text' >&6
exit $code
EOF
	chmod 755 "$BATS_TEST_TMPDIR/filter"
}

@test "python smtplib: a message to alice lands in her Maildir, byte-identical under the added headers" {
	start_tcpserver
	run -0 py_send "$SMTP_PORT" bob@example.org alice@example.test "$BATS_TEST_TMPDIR/message"
	assert_line -n 0 'EHLO 250'
	assert_line -n 1 'MAIL 250 2.1.0 sender ok'
	assert_line -n 2 'RCPT 250 2.1.5 recipient ok'
	assert_line -n 3 --regexp '^DATA 250 2\.0\.0 ok: queued as [0-9]+-[0-9]{6}-[0-9]+$'
	local id=${lines[3]##* }
	[ -f "$QUEUEDIR/msg/$id" ]
	assert_log "smtp-recv: [0-9]+ $(re_escape "$id") accepted from=<bob@example\.org> to=<alice@example\.test> nrcpt=1 size=[0-9]+ client=127\.0\.0\.1" "$SMTP_LOG"
	assert_log 'smtp-recv: [0-9]+ connect client=127\.0\.0\.1 local=127\.0\.0\.1' "$SMTP_LOG"
	assert_log 'smtp-recv: [0-9]+ disconnect client=127\.0\.0\.1 messages=1 reply="221 2\.0\.0 bye" exit=0' "$SMTP_LOG"
	deliver
	check_delivered alice bob@example.org alice@example.test "$id"
}

@test "swaks: a message to an alias lands in the mailbox behind it, byte-identical" {
	start_tcpserver
	run -0 swaks_send bob@example.org postmaster@example.test
	assert_line --regexp '^ *<-  250 2\.0\.0 ok: queued as [0-9]+-[0-9]{6}-[0-9]+$'
	local id=$(grep -Eo 'queued as [0-9-]+' <<<"$output" | cut -d' ' -f3)
	deliver
	check_delivered alice bob@example.org postmaster@example.test "$id"
	assert_count 0 msg_count "$(mailbox bob)"
}

@test "unknown user over the socket: 550 5.1.1 to smtplib and swaks, nothing queued" {
	start_tcpserver
	run -0 py_send "$SMTP_PORT" bob@example.org nobody@example.test "$BATS_TEST_TMPDIR/message"
	assert_line -n 2 'RCPT 550 5.1.1 no such user here'
	refute_line --partial 'DATA'
	run swaks_send bob@example.org nobody@example.test
	assert_failure
	assert_line --regexp '^ *<\*\* 550 5\.1\.1 no such user here$'
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_log 'smtp-recv: [0-9]+ reject client=127\.0\.0\.1 to=<nobody@example\.test> reply="550 5\.1\.1 no such user here"' "$SMTP_LOG"
}

@test "relaying without RELAYCLIENT: 554 5.7.1, nothing queued" {
	start_tcpserver
	run -0 py_send "$SMTP_PORT" bob@example.org someone@remote.example "$BATS_TEST_TMPDIR/message"
	assert_line -n 2 'RCPT 554 5.7.1 relay access denied'
	run swaks_send bob@example.org someone@remote.example
	assert_failure
	assert_line --regexp '^ *<\*\* 554 5\.7\.1 relay access denied$'
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "relaying with RELAYCLIENT from tcprules: 250, and the message stays in msg/ for remote delivery" {
	start_tcpserver relay
	run -0 py_send "$SMTP_PORT" bob@example.org someone@remote.example "$BATS_TEST_TMPDIR/message"
	assert_line -n 2 'RCPT 250 2.1.5 recipient ok'
	assert_line -n 3 --regexp '^DATA 250 2\.0\.0 ok: queued as '
	local id=${lines[3]##* }
	# The remote domain's MX refuses connections, in a world of its own (no query leaves).
	world_start 'remote.example MX 10 mx.remote.example' 'mx.remote.example A 127.0.0.2'
	run -0 --separate-stderr in_world queue-run -1
	assert_regex "$stderr" "queue-run: $(re_escape "$id") from=<bob@example\.org> to=<someone@remote\.example> result=deferred .*reason=\"mx\.remote\.example\[127\.0\.0\.2\] 421 4\.4\.1 connect to .*: Connection refused tls=none\""
	assert_count 1 file_count "$QUEUEDIR/msg"
	[ -f "$QUEUEDIR/msg/$id" ]
	run -0 queue_envelope "$id"
	assert_output $'Fbob@example.org\nTsomeone@remote.example'
	# The relay rule does not let an unknown local user through.
	run -0 py_send "$SMTP_PORT" bob@example.org nobody@example.test "$BATS_TEST_TMPDIR/message"
	assert_line -n 2 'RCPT 550 5.1.1 no such user here'
}

@test "QMAILQUEUE=queue-inject: the same deliveries from smtplib and swaks" {
	start_tcpserver QMAILQUEUE="$(command -v queue-inject)"
	run -0 py_send "$SMTP_PORT" bob@example.org alice@example.test "$BATS_TEST_TMPDIR/message"
	assert_line -n 3 --regexp '^DATA 250 2\.0\.0 ok: queued as [0-9]+-[0-9]{6}-[0-9]+$'
	local id1=${lines[3]##* }
	run -0 swaks_send carol@example.org bob+tag@example.test
	local id2=$(grep -Eo 'queued as [0-9-]+' <<<"$output" | cut -d' ' -f3)
	[ -n "$id2" ]
	assert_count 2 file_count "$QUEUEDIR/msg"
	deliver
	check_delivered alice bob@example.org alice@example.test "$id1"
	check_delivered bob carol@example.org bob+tag@example.test "$id2"
}

@test "QMAILQUEUE filter exits 82 with 'Dno thanks' on fd 6: 554 5.3.0 no thanks, nothing queued" {
	make_filter 82 'Dno thanks'
	start_tcpserver QMAILQUEUE="$BATS_TEST_TMPDIR/filter"
	run -0 py_send "$SMTP_PORT" bob@example.org alice@example.test "$BATS_TEST_TMPDIR/message"
	assert_line -n 2 'RCPT 250 2.1.5 recipient ok'
	assert_line -n 3 'DATA 554 5.3.0 no thanks'
	run swaks_send bob@example.org alice@example.test
	assert_failure
	assert_line --regexp '^ *<\*\* 554 5\.3\.0 no thanks$'
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
	assert_log 'smtp-recv: [0-9]+ refused client=127\.0\.0\.1 reason="no thanks"' "$SMTP_LOG"
	refute_log '.* accepted .*' "$SMTP_LOG"
}

@test "QMAILQUEUE filter exits 82 with 'Z' text: 451 with that text" {
	make_filter 82 'Z4.7.1 greylisted, try again later'
	start_tcpserver QMAILQUEUE="$BATS_TEST_TMPDIR/filter"
	run -0 py_send "$SMTP_PORT" bob@example.org alice@example.test "$BATS_TEST_TMPDIR/message"
	assert_line -n 3 'DATA 451 4.7.1 greylisted, try again later'
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "QMAILQUEUE filter exits 71: 451 4.3.0, nothing queued" {
	make_filter 71
	start_tcpserver QMAILQUEUE="$BATS_TEST_TMPDIR/filter"
	run -0 py_send "$SMTP_PORT" bob@example.org alice@example.test "$BATS_TEST_TMPDIR/message"
	assert_line -n 3 --regexp '^DATA 451 4\.3\.0 '
	run swaks_send bob@example.org alice@example.test
	assert_failure
	assert_line --regexp '^ *<\*\* 451 4\.3\.0 '
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
}

@test "QMAILQUEUE filter exits 31: 554 5.3.0" {
	make_filter 31
	start_tcpserver QMAILQUEUE="$BATS_TEST_TMPDIR/filter"
	run -0 py_send "$SMTP_PORT" bob@example.org alice@example.test "$BATS_TEST_TMPDIR/message"
	assert_line -n 3 --regexp '^DATA 554 5\.3\.0 '
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "a filter that refuses without reading a 300 kB message: 554 with its text, and the session goes on" {
	cat >"$BATS_TEST_TMPDIR/filter" <<'EOF'
#!/bin/sh
printf 'Dnot reading that' >&6
exit 82
EOF
	chmod 755 "$BATS_TEST_TMPDIR/filter"
	make_message "$BATS_TEST_TMPDIR/big" big 300000
	start_tcpserver QMAILQUEUE="$BATS_TEST_TMPDIR/filter"
	# py_send exits 0 only if QUIT is answered too: the session survived the refusal.
	run -0 py_send "$SMTP_PORT" bob@example.org alice@example.test "$BATS_TEST_TMPDIR/big"
	assert_line -n 3 'DATA 554 5.3.0 not reading that'
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "a QMAILQUEUE program that cannot be run: 451, nothing queued" {
	start_tcpserver QMAILQUEUE="$BATS_TEST_TMPDIR/no-such-program"
	run -0 py_send "$SMTP_PORT" bob@example.org alice@example.test "$BATS_TEST_TMPDIR/message"
	assert_line -n 3 --regexp '^DATA 451 4\.3\.0 '
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "several clients at once: every message is delivered once" {
	start_tcpserver
	local i pids=()
	for i in 1 2 3 4 5 6; do
		make_message "$BATS_TEST_TMPDIR/m$i" "m$i" 2000
		py_send "$SMTP_PORT" "s$i@example.org" team@example.test "$BATS_TEST_TMPDIR/m$i" \
			>"$BATS_TEST_TMPDIR/out$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	for i in 1 2 3 4 5 6; do
		grep -Eq '^DATA 250 2\.0\.0 ok: queued as ' "$BATS_TEST_TMPDIR/out$i"
	done
	assert_count 6 file_count "$QUEUEDIR/msg"
	deliver
	assert_count 6 msg_count "$(mailbox alice)"
	assert_count 6 msg_count "$(mailbox bob)"
}

@test "slow-drip clients get 421 4.4.2 by the line's and DATA's total deadlines; under tcpserver -c 2 a third is served" {
	# Each read may wait 10 s, but a line may take only 2 s, as may DATA (plus 1 s per 8 kB).
	start_tcpserver SMTP_TIMEOUT=10 SMTP_COMMAND_TIMEOUT=2 SMTP_DATA_TIMEOUT=2 -c2
	drip "$SMTP_PORT" command >"$BATS_TEST_TMPDIR/drip1" &
	local p1=$!
	drip "$SMTP_PORT" data >"$BATS_TEST_TMPDIR/drip2" &
	local p2=$!
	wait_until 100 grep -q greeted "$BATS_TEST_TMPDIR/drip1" || fail "the first one was not greeted"
	wait_until 100 grep -q greeted "$BATS_TEST_TMPDIR/drip2" || fail "the second one was not greeted"
	# Both slots are taken: this one is served only once a slow client is gone.
	run -0 py_send "$SMTP_PORT" bob@example.org alice@example.test "$BATS_TEST_TMPDIR/message"
	assert_line -n 3 --regexp '^DATA 250 2\.0\.0 ok: queued as '
	wait "$p1" || fail "the first slow client was not cut off: $(cat "$BATS_TEST_TMPDIR/drip1")"
	wait "$p2" || fail "the second slow client was not cut off: $(cat "$BATS_TEST_TMPDIR/drip2")"
	run -0 cat "$BATS_TEST_TMPDIR/drip1"
	assert_line -n 1 '421 4.4.2 command not completed in time, closing connection'
	# Cut off by the deadline (2 s), long before a read could time out (10 s).
	assert_line -n 2 --regexp '^closed after [0-9] s$'
	run -0 cat "$BATS_TEST_TMPDIR/drip2"
	assert_line -n 1 '421 4.4.2 timeout in DATA, closing connection'
	assert_line -n 2 --regexp '^closed after [0-9] s$'
	assert_log 'smtp-recv: [0-9]+ disconnect client=127\.0\.0\.1 messages=0 reply="421 4\.4\.2 command not completed in time, closing connection" exit=0' "$SMTP_LOG"
	assert_count 1 file_count "$QUEUEDIR/msg"
}
