#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# maildir-deliver under power cuts (issue 19), on crashfs (tests/tools/crashfs.c): a message on
# standard input delivered into a Maildir on the mount, the power cut at each sync point in
# turn, then the disk mounted again. The promise of maildir-deliver(8): exit 0 means the
# message is on disk; after any cut the Maildir's new/ and cur/ hold the whole message or
# nothing (tmp/ may keep a partial file: the Maildir format lets tmp/ hold garbage); after a cut
# that came once it had exited 0, new/ holds it whole. Into an existing Maildir, and into one
# it creates (and its parent directories).

load lib/common
load lib/crashfs

FROM=sender@remote.test
RCPT=alice@example.test

setup() {
	crashfs_require
	DISK=$BATS_TEST_TMPDIR/disk
	MNT=$BATS_TEST_TMPDIR/mnt
	MSG=$BATS_TEST_TMPDIR/message
	# Bigger than a pipe and maildir-deliver's buffer: several writes.
	make_message "$MSG" md-1 200000
}

teardown() {
	crashfs_teardown
	common_teardown
}

# fresh_disk existing|missing: the disk holds the Maildir example.test/alice (tmp, new, cur),
# or nothing at all; durable as everything there at mount.
fresh_disk() {
	rm -rf "$DISK"
	mkdir -p "$DISK"
	[ "$1" = missing ] || mkdir -p "$DISK/example.test/alice/"{tmp,new,cur}
}

# deliver_on_mount: maildir-deliver of the message into the Maildir on the mount, bounded.
deliver_on_mount() {
	run --separate-stderr timeout 60 env SENDER="$FROM" RECIPIENT="$RCPT" \
		maildir-deliver "$MNT/example.test/alice/" <"$MSG"
	[ "$status" -ne 124 ] || fail "maildir-deliver did not end within 60 s"
}

# assert_whole_or_none WHAT [whole]: the Maildir on the disk, mounted again as after a reboot,
# holds in new/ and cur/ the whole message once or nothing; with "whole", once in new/.
assert_whole_or_none() {
	local what=$1 must=${2:-} f n=0 innew=0
	crashfs_mount "$DISK" "$MNT"
	for f in "$MNT/example.test/alice"/{new,cur}/*; do
		[ -e "$f" ] || continue
		[ -f "$f" ] || fail "$what: ${f#"$MNT"/} is not a file"
		assert_delivered "$f" "$FROM" "$RCPT" "$MSG"
		n=$((n + 1))
		[[ $f != */new/* ]] || innew=$((innew + 1))
	done
	[ "$n" -le 1 ] || fail "$what: $n messages in new/ and cur/"
	if [ "$must" = whole ]; then
		[ "$innew" = 1 ] || fail "$what: maildir-deliver exited 0 and new/ is empty: $(tree_state "$DISK")"
	fi
	crashfs_umount "$MNT"
}

# crash_each_sync_point existing|missing
crash_each_sync_point() {
	local kind=$1 syncs n what
	fresh_disk "$kind"
	crashfs_mount "$DISK" "$MNT"
	deliver_on_mount
	[ "$status" -eq 0 ] || fail "maildir-deliver exited $status: $stderr"
	syncs=$(crashfs_syncs "$MNT")
	crashfs_umount "$MNT"
	[ "$syncs" -ge 1 ] || fail "maildir-deliver made $syncs sync points"
	for ((n = 0; n <= syncs; n++)); do
		what="$kind Maildir, cut after $n of $syncs sync points"
		fresh_disk "$kind"
		crashfs_mount "$DISK" "$MNT"
		crashfs_cut_after "$MNT" "$n"
		deliver_on_mount
		if [ "$n" -lt "$syncs" ]; then
			[ "$status" -ne 0 ] || fail "$what: maildir-deliver exited 0 though sync point $((n + 1)) failed"
			[ "$status" -eq 111 ] || fail "$what: maildir-deliver exited $status, not 111: $stderr"
			crashfs_umount "$MNT"
			assert_whole_or_none "$what"
		else
			[ "$status" -eq 0 ] || fail "$what: maildir-deliver exited $status: $stderr"
			crashfs_cut "$MNT"
			crashfs_umount "$MNT"
			assert_whole_or_none "$what, after exit 0" whole
		fi
	done
}

@test "maildir-deliver into an existing Maildir, the power cut after each sync point: new/ holds the whole message or nothing, and holds it after exit 0" {
	crash_each_sync_point existing
}

@test "maildir-deliver into a Maildir it creates, the power cut after each sync point: new/ holds the whole message or nothing, and holds it after exit 0" {
	crash_each_sync_point missing
}

@test "maildir-deliver into an existing Maildir makes the 2 sync points of maildir-deliver(8): fsync of the file in tmp/, fsync of new/" {
	fresh_disk existing
	crashfs_mount "$DISK" "$MNT"
	deliver_on_mount
	[ "$status" -eq 0 ] || fail "maildir-deliver exited $status: $stderr"
	[ "$(crashfs_syncs "$MNT")" = 2 ] || fail "maildir-deliver made $(crashfs_syncs "$MNT") sync points"
}
