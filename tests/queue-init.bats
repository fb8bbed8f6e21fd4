#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-init DIR: creates the queue layout of queue(5), idempotently.

load lib/common

@test "queue-init creates DIR with tmp/ msg/ bounce/ hold/ and the FIFO trigger (mode 0622)" {
	q=$BATS_TEST_TMPDIR/q
	umask 022
	run --separate-stderr -0 queue-init "$q"
	[ -z "$output" ] && [ -z "$stderr" ] || fail "queue-init printed something: $output$stderr"
	for d in tmp msg bounce hold; do
		[ -d "$q/$d" ] || fail "$q/$d is not a directory"
		assert_count 0 file_count "$q/$d"
	done
	[ -p "$q/trigger" ] || fail "$q/trigger is not a FIFO"
	assert_equal "$(stat -c %a "$q/trigger")" 622
}

@test "queue-init is idempotent and leaves queued messages alone" {
	q=$BATS_TEST_TMPDIR/q
	umask 022
	run -0 queue-init "$q"
	echo queued >"$q/msg/1795437612.004512.4821"
	run --separate-stderr -0 queue-init "$q"
	assert_equal "$(cat "$q/msg/1795437612.004512.4821")" queued
	[ -p "$q/trigger" ]
	assert_equal "$(stat -c %a "$q/trigger")" 622
	run -0 queue-init "$q"
}

@test "queue-init completes a partly created queue" {
	q=$BATS_TEST_TMPDIR/q
	mkdir -p "$q/msg"
	run -0 queue-init "$q"
	[ -d "$q/tmp" ]
	[ -d "$q/bounce" ]
	[ -d "$q/hold" ]
	[ -p "$q/trigger" ]
}

@test "queue-init without an argument: usage, exit 100, one stderr line" {
	run --separate-stderr -100 queue-init
	assert_one_stderr_line queue-init
}

@test "queue-init with two arguments: usage, exit 100, one stderr line" {
	run --separate-stderr -100 queue-init "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
	assert_one_stderr_line queue-init
	[ ! -e "$BATS_TEST_TMPDIR/a" ]
	[ ! -e "$BATS_TEST_TMPDIR/b" ]
}

@test "queue-init on a path it cannot create: exit 111, one stderr line" {
	echo file >"$BATS_TEST_TMPDIR/file"
	run --separate-stderr -111 queue-init "$BATS_TEST_TMPDIR/file/q"
	assert_one_stderr_line queue-init
	[[ $stderr == "queue-init: fatal: "* ]] || fail "not a fatal line: $stderr"
}

@test "queue-init where trigger is a regular file: exit 111" {
	q=$BATS_TEST_TMPDIR/q
	mkdir -p "$q/tmp" "$q/msg" "$q/bounce"
	echo x >"$q/trigger"
	run --separate-stderr -111 queue-init "$q"
	assert_one_stderr_line queue-init
}
