#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-inject under power cuts (issue 19), on crashfs (tests/tools/crashfs.c): the power is cut
# at each of its sync points in turn. The promise of queue(5), CRASH SAFETY: after a cut at any
# point the queue holds the whole message or nothing, never a partial or unreadable queue file;
# after a cut past the last sync point, when queue-inject has exited 0, it holds it whole.

load lib/common
load lib/crashfs

setup() {
	crashfs_require
	DISK=$BATS_TEST_TMPDIR/disk
	MNT=$BATS_TEST_TMPDIR/mnt
	MSG=$BATS_TEST_TMPDIR/message
	ENV=$BATS_TEST_TMPDIR/envelope
	# Bigger than queue-inject's buffer, so the queue file takes several writes.
	make_message "$MSG" crash-1 100000
	printf 'Fsender@remote.test\0Talice@example.test\0Tbob@example.test\0\0' >"$ENV"
}

teardown() {
	crashfs_teardown
	common_teardown
}

# fresh_queue: the disk holds an empty queue, durable as everything there at mount.
fresh_queue() {
	rm -rf "$DISK"
	queue-init "$DISK" || fail "queue-init $DISK failed"
}

# inject_on_mount: queue-inject of the message into the queue on the mount.
inject_on_mount() {
	QUEUEDIR=$MNT inject_envfile "$ENV" <"$MSG"
}

# count_sync_points: sets SYNCS to the sync points of one queue-inject into an empty queue,
# which must exit 0.
count_sync_points() {
	fresh_queue
	crashfs_mount "$DISK" "$MNT"
	run --separate-stderr -0 inject_on_mount
	SYNCS=$(crashfs_syncs "$MNT")
	crashfs_umount "$MNT"
}

# assert_whole_or_nothing WHAT [whole]: the queue, mounted again as after a reboot, holds the
# message whole in msg/ or holds nothing; with "whole", it must hold it. WHAT names the case.
assert_whole_or_nothing() {
	local what=$1 must=${2:-} f
	crashfs_mount "$DISK" "$MNT"
	run --separate-stderr -0 env QUEUEDIR="$MNT" queue-list -t
	[[ $output != *invalid* ]] || fail "$what: queue-list sees a file that is not a queue file: $output"
	local -a msgs=("$MNT"/msg/*)
	[ -e "${msgs[0]}" ] || msgs=()
	case ${#msgs[@]}:$must in
	0:whole) fail "$what: msg/ is empty, the message is lost" ;;
	0:*) ;;
	1:*)
		f=${msgs[0]}
		cmp -s "$f" <(printf 'PRQ1 %020d\n' "$(stat -c %s "$MSG")"; cat "$MSG" "$ENV") ||
			fail "$what: ${f##*/} in msg/ is not the whole message ($(stat -c %s "$f") bytes)"
		;;
	*) fail "$what: msg/ holds ${#msgs[@]} files" ;;
	esac
	assert_count 0 file_count "$MNT/hold"
	assert_count 0 file_count "$MNT/bounce"
	crashfs_umount "$MNT"
}

@test "queue-inject, the power cut after each of its sync points: the whole message or nothing, and whole after the last" {
	local syncs n
	count_sync_points
	syncs=$SYNCS
	[ "$syncs" -ge 1 ] || fail "queue-inject made $syncs sync points"
	for ((n = 0; n <= syncs; n++)); do
		fresh_queue
		crashfs_mount "$DISK" "$MNT"
		crashfs_cut_after "$MNT" "$n"
		run --separate-stderr inject_on_mount
		if [ "$n" -lt "$syncs" ]; then
			[ "$status" -ne 0 ] ||
				fail "cut after $n of $syncs: queue-inject exited 0 though sync point $((n + 1)) failed"
			crashfs_umount "$MNT"
			assert_whole_or_nothing "cut after $n of $syncs sync points"
		else
			[ "$status" -eq 0 ] || fail "no cut: queue-inject exited $status: $stderr"
			crashfs_cut "$MNT"
			crashfs_umount "$MNT"
			assert_whole_or_nothing "cut after queue-inject exited 0 ($syncs sync points)" whole
		fi
	done
}

@test "queue-inject makes the 2 sync points of queue(5): fdatasync of the file, fsync of msg/" {
	count_sync_points
	[ "$SYNCS" = 2 ] || fail "queue-inject made $SYNCS sync points"
}
