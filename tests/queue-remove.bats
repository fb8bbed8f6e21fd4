#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-remove: from msg/ and hold/, waiting for a lock holder, a message finished or moved
# meanwhile; and the id checks and usage it shares with queue-hold and queue-release.

load lib/common
load lib/queue_tools

@test "queue-remove: removes from msg/ and hold/, one line each" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.test
	id2=$ID
	new_message "$FROM" carol@example.test
	id3=$ID
	run -0 queue-hold "$id2"
	run --separate-stderr -0 queue-remove "$id1" "$id2"
	assert_equal "$output" "$id1: removed"$'\n'"$id2: removed"
	[ -z "$stderr" ]
	[ ! -e "$QUEUEDIR/msg/$id1" ] && [ ! -e "$QUEUEDIR/hold/$id2" ]
	[ -f "$QUEUEDIR/msg/$id3" ]
	run -0 queue-list -t
	assert_equal "$(cut -f 1 <<<"$output")" "$id3"
}

@test "queue-remove: an unknown id is reported and the others removed; exit 100" {
	new_message "$FROM" alice@example.test
	run --separate-stderr -100 queue-remove 1795437612-000000-1 "$ID"
	assert_output "$ID: removed"
	assert_one_stderr_line queue-remove
	assert_equal "$stderr" "queue-remove: 1795437612-000000-1: not in the queue"
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "queue-remove, queue-hold, queue-release: invalid ids are refused, nothing touched" {
	new_message "$FROM" alice@example.test
	echo other >"$QUEUEDIR/other"
	long=$(printf '1%.0s' $(seq 48))
	for tool in queue-remove queue-hold queue-release; do
		run --separate-stderr -100 "$tool" ../other msg/"$ID" .hidden '' "$long"
		assert_output ""
		assert_equal "${#stderr_lines[@]}" 5
		for line in "${stderr_lines[@]}"; do
			[[ $line == "$tool: "*": not a valid queue id" ]] || fail "$tool: $line"
		done
	done
	[ -f "$QUEUEDIR/other" ] && [ -f "$QUEUEDIR/msg/$ID" ]
}

@test "queue-remove, queue-hold, queue-release: no id is a usage error (100); no queue is 111" {
	for tool in queue-remove queue-hold queue-release; do
		run --separate-stderr -100 "$tool"
		assert_one_stderr_line "$tool"
		run --separate-stderr -100 "$tool" -x 1795437612-000000-1
		assert_one_stderr_line "$tool"
		QUEUEDIR=$BATS_TEST_TMPDIR/nonexistent run --separate-stderr -111 "$tool" 1795437612-000000-1
		assert_one_stderr_line "$tool"
	done
}

@test "queue-remove: a file it may not open is a system error (111), the other ids still done" {
	make_private_dir
	export QUEUEDIR=$PRIVATE_DIR/queue
	queue-init "$QUEUEDIR"
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.test
	id2=$ID
	chmod 0777 "$QUEUEDIR" "$QUEUEDIR/msg"
	chmod 0600 "$QUEUEDIR/msg/$id1"
	chmod 0644 "$QUEUEDIR/msg/$id2"
	run --separate-stderr -111 as_nobody "$BIN/queue-remove" "$id1" "$id2"
	assert_output "$id2: removed"
	assert_one_stderr_line queue-remove
	assert_equal "$stderr" "queue-remove: $id1: unable to open it: Permission denied"
	[ -f "$QUEUEDIR/msg/$id1" ]
}

@test "queue-remove waits for the lock holder (a delivery in progress), then removes" {
	new_message "$FROM" alice@example.test
	hold_lock "$QUEUEDIR/msg/$ID"
	start_tool queue-remove "$ID"
	tool_waits
	[ -f "$QUEUEDIR/msg/$ID" ] || fail "removed while locked"
	release_lock
	tool_wait
	assert_equal "$STATUS" 0
	assert_equal "$(cat "$OUT")" "$ID: removed"
	[ ! -e "$QUEUEDIR/msg/$ID" ]
}

@test "queue-remove: a message delivered while it waited is reported, the others removed; exit 100" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.test
	id2=$ID
	hold_lock "$QUEUEDIR/msg/$id1" 'rm -f "$4"'
	start_tool queue-remove "$id1" "$id2"
	tool_waits
	release_lock
	tool_wait
	assert_equal "$STATUS" 100
	assert_equal "$(cat "$ERR")" "queue-remove: $id1: not in the queue (delivered meanwhile?)"
	assert_equal "$(cat "$OUT")" "$id2: removed"
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "queue-remove: a message moved to hold/ while it waited is found there and removed" {
	new_message "$FROM" alice@example.test
	mkdir -p "$QUEUEDIR/hold"
	hold_lock "$QUEUEDIR/msg/$ID" 'mv "$4" "${4%/msg/*}/hold/"'
	start_tool queue-remove "$ID"
	tool_waits
	release_lock
	tool_wait
	assert_equal "$STATUS" 0
	assert_equal "$(cat "$OUT")" "$ID: removed"
	[ ! -e "$QUEUEDIR/hold/$ID" ] && [ ! -e "$QUEUEDIR/msg/$ID" ]
}
