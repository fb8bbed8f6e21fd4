#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-flush: due times, filters by domain and id, the trigger's 'F', exit codes.

load lib/common
load lib/queue_tools

@test "queue-flush: every message in msg/ due now, one line each, and 'F' on the trigger" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.org
	id2=$ID
	due_in "$id1" 3600
	due_in "$id2" 7200
	open_trigger
	t0=$(date +%s)
	run --separate-stderr -0 queue-flush
	t1=$(date +%s)
	[ -z "$stderr" ]
	assert_equal "$(sort <<<"$output")" "$(printf '%s: due now\n' "$id1" "$id2" | sort)"
	assert_mtime_between "$id1" "$t0" "$t1"
	assert_mtime_between "$id2" "$t0" "$t1"
	assert_equal "$(trigger_bytes)" 46
}

@test "queue-flush: nobody reading the trigger is fine" {
	new_message "$FROM" alice@example.test
	due_in "$ID" 3600
	run --separate-stderr -0 queue-flush
	assert_output "$ID: due now"
}

@test "queue-flush on an empty queue: nothing to say, still 'F'" {
	open_trigger
	run --separate-stderr -0 queue-flush
	assert_output ""
	assert_equal "$(trigger_bytes)" 46
}

@test "queue-flush -d DOMAIN: messages with a recipient or a deferred target there" {
	new_message "$FROM" alice@example.test
	local_id=$ID
	new_message "$FROM" carol@example.org
	org_id=$ID
	new_message "$FROM" team@example.test
	alias_id=$ID
	add_records "$alias_id" "Lfriend@Example.ORG${T}4.4.1 connection refused"
	for id in "$local_id" "$org_id" "$alias_id"; do due_in "$id" 3600; done
	before=$(mtime "$local_id")
	open_trigger
	t0=$(date +%s)
	run --separate-stderr -0 queue-flush -d example.ORG
	t1=$(date +%s)
	assert_equal "$(sort <<<"$output")" "$(printf '%s: due now\n' "$org_id" "$alias_id" | sort)"
	assert_mtime_between "$org_id" "$t0" "$t1"
	assert_mtime_between "$alias_id" "$t0" "$t1"
	assert_equal "$(mtime "$local_id")" "$before"
	assert_equal "$(trigger_bytes)" 46
}

@test "queue-flush ID...: only those; an unknown, held or invalid id is an error, exit 100" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.test
	id2=$ID
	new_message "$FROM" carol@example.test
	id3=$ID
	for id in "$id1" "$id2" "$id3"; do due_in "$id" 3600; done
	before=$(mtime "$id2")
	run -0 queue-hold "$id3"
	open_trigger
	run --separate-stderr -100 queue-flush "$id1" 1795437612-000000-1 "$id3" .hidden
	assert_output "$id1: due now"
	assert_equal "${#stderr_lines[@]}" 3
	assert_equal "${stderr_lines[0]}" "queue-flush: 1795437612-000000-1: not in the queue"
	assert_equal "${stderr_lines[1]}" "queue-flush: $id3: on hold: release it first"
	assert_equal "${stderr_lines[2]}" "queue-flush: .hidden: not a valid queue id"
	assert_equal "$(mtime "$id2")" "$before"
	[ -f "$QUEUEDIR/hold/$id3" ]
	assert_equal "$(trigger_bytes)" 46
}

@test "queue-flush: usage errors exit 100; no queue exits 111" {
	run --separate-stderr -100 queue-flush -x
	assert_one_stderr_line queue-flush
	run --separate-stderr -100 queue-flush -d @example.test
	assert_one_stderr_line queue-flush
	QUEUEDIR=$BATS_TEST_TMPDIR/nonexistent run --separate-stderr -111 queue-flush
	assert_one_stderr_line queue-flush
}

# --- queue-remove, queue-hold, queue-release ---------------------------------------------------
