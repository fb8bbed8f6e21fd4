#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-hold: msg/ to hold/, hold/ made when missing, waiting for a lock holder.

load lib/common
load lib/queue_tools

@test "queue-hold: msg/ -> hold/ unchanged, hold/ made with mode 0750 when missing; again: already" {
	new_message "$FROM" alice@example.test
	add_records "$ID" "Lalice@example.test${T}4.2.2 over quota"
	cp "$QUEUEDIR/msg/$ID" "$BATS_TEST_TMPDIR/before"
	rmdir "$QUEUEDIR/hold" 2>/dev/null || true
	umask 077
	run --separate-stderr -0 queue-hold "$ID"
	assert_output "$ID: held"
	[ -z "$stderr" ]
	assert_equal "$(stat -c %a "$QUEUEDIR/hold")" 750
	[ ! -e "$QUEUEDIR/msg/$ID" ]
	cmp "$BATS_TEST_TMPDIR/before" "$QUEUEDIR/hold/$ID"
	run --separate-stderr -0 queue-hold "$ID"
	assert_output "$ID: already on hold"
}

@test "queue-hold waits for the lock holder; a message finished meanwhile is not in the queue" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.test
	id2=$ID
	# the older queue-run's end: a message with failures moved to bounce/
	hold_lock "$QUEUEDIR/msg/$id1" 'mv "$4" "${4%/msg/*}/bounce/"'
	start_tool queue-hold "$id1"
	tool_waits
	release_lock
	tool_wait
	assert_equal "$STATUS" 100
	assert_equal "$(cat "$ERR")" "queue-hold: $id1: not in the queue (delivered meanwhile?)"
	[ -f "$QUEUEDIR/bounce/$id1" ] && [ ! -e "$QUEUEDIR/hold/$id1" ]
	# and one that stays is held once the holder lets go
	hold_lock "$QUEUEDIR/msg/$id2"
	start_tool queue-hold "$id2"
	tool_waits
	[ -f "$QUEUEDIR/msg/$id2" ] || fail "moved while locked"
	release_lock
	tool_wait
	assert_equal "$STATUS" 0
	[ -f "$QUEUEDIR/hold/$id2" ] && [ ! -e "$QUEUEDIR/msg/$id2" ]
}

@test "queue-hold: a hold that is not a directory is a system error (111), the message stays" {
	new_message "$FROM" alice@example.test
	rmdir "$QUEUEDIR/hold" 2>/dev/null || true
	echo file >"$QUEUEDIR/hold"
	run --separate-stderr -111 queue-hold "$ID"
	assert_one_stderr_line queue-hold
	assert_equal "$stderr" "queue-hold: $ID: unable to create hold/: Not a directory"
	[ -f "$QUEUEDIR/msg/$ID" ]
}
