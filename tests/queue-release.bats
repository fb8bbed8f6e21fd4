#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-release: hold/ back to msg/, due now, the trigger; queue-run delivers nothing held.

load lib/common
load lib/queue_tools

@test "queue-release: hold/ -> msg/, due now, a plain byte on the trigger; not held: said so" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.test
	id2=$ID
	run -0 queue-hold "$id1"
	due_in "$id1" 3600 hold
	cp "$QUEUEDIR/hold/$id1" "$BATS_TEST_TMPDIR/before"
	open_trigger
	t0=$(date +%s)
	run --separate-stderr -0 queue-release "$id1" "$id2"
	t1=$(date +%s)
	assert_equal "$output" "$id1: released"$'\n'"$id2: not on hold"
	[ -z "$stderr" ]
	[ ! -e "$QUEUEDIR/hold/$id1" ]
	cmp "$BATS_TEST_TMPDIR/before" "$QUEUEDIR/msg/$id1"
	assert_mtime_between "$id1" "$t0" "$t1"
	assert_equal "$(trigger_bytes)" 00
	run -0 queue-list -t
	assert_equal "$(cut -f 6 <<<"$output")" "deferred"$'\n'"deferred"
}

@test "queue-release: an unknown id is reported; exit 100; nothing on the trigger" {
	open_trigger
	run --separate-stderr -100 queue-release 1795437612-000000-1
	assert_output ""
	assert_equal "$stderr" "queue-release: 1795437612-000000-1: not in the queue"
	assert_equal "$(trigger_bytes)" ""
}

@test "queue-run delivers nothing held; the released message is delivered" {
	make_userdb
	new_message "$FROM" alice@example.test
	run -0 queue-hold "$ID"
	run -0 queue-run -1
	assert_count 0 msg_count "$(mailbox alice)"
	[ -f "$QUEUEDIR/hold/$ID" ]
	run -0 queue-release "$ID"
	run -0 queue-run -1
	assert_count 1 msg_count "$(mailbox alice)"
	run -0 queue-list
	assert_output "queue is empty"
}
