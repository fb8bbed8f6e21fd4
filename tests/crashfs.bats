#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# crashfs (tests/tools/crashfs.c), the file system of the crash tests: what a power cut leaves
# under its model (unsynced data and unsynced names are lost, removed names come back), the
# count of sync points, and a cut armed after N of them.

load lib/common
load lib/crashfs

setup() {
	crashfs_require
	DISK=$BATS_TEST_TMPDIR/disk
	MNT=$BATS_TEST_TMPDIR/mnt
	make_disk "$DISK"
	crashfs_mount "$DISK" "$MNT"
}

teardown() {
	crashfs_teardown
	common_teardown
}

# make_disk DIR: what the disk holds at mount, durable: the file old, the directories a and b.
make_disk() {
	mkdir -p "$1/a" "$1/b"
	echo old >"$1/old"
}

# writer STEP...: tests/lib/sync_writer.py, run in the mount.
writer() {
	"$PYTHON" "$TESTLIB/sync_writer.py" -C "$MNT" "$@"
}

# cut_and_unmount: the power fails now; the disk is then what a crash left.
cut_and_unmount() {
	crashfs_cut "$MNT"
	crashfs_umount "$MNT"
}

# assert_file PATH TEXT: the disk's PATH holds exactly TEXT.
assert_file() {
	[ -f "$DISK/$1" ] || fail "$1 is not on the disk: $(tree_state "$DISK")"
	[ "$(cat "$DISK/$1")" = "$2" ] || fail "$1 holds '$(cat "$DISK/$1")', expected '$2'"
}

# assert_gone PATH: the disk has no PATH.
assert_gone() {
	[ ! -e "$DISK/$1" ] || fail "$1 is on the disk: $(tree_state "$DISK")"
}

@test "a file written and never synced is gone after a cut; if only its name was synced, it is empty" {
	run -0 writer write named data fsync . write unnamed data
	cut_and_unmount
	assert_file named ''
	assert_gone unnamed
	assert_file old old
}

@test "a synced file whose directory was not synced has no name after a cut, unless its entry was synced" {
	run -0 writer write a/f one fsync a/f write b/g two fsync b/g fsync b
	cut_and_unmount
	assert_gone a/f
	assert_file b/g two
}

@test "a rename without an fsync of its directory is undone, over an existing name too; with it, it holds" {
	run -0 writer rename old new write a/x x fsync a/x fsync a rename a/x a/y fsync a \
		write b/n n fsync b/n write b/o o fsync b/o fsync b rename b/n b/o
	cut_and_unmount
	assert_file old old
	assert_gone new
	assert_file a/y x
	assert_gone a/x
	assert_file b/n n
	assert_file b/o o
}

@test "a rename between directories is two operations, each durable by its own directory's fsync" {
	# x goes from a to b, y from b to a; only b is synced: b holds x and lost y, a did not
	# change, so x has both names (one inode) and y has none.
	run -0 writer write a/x x fsync a/x write b/y y fsync b/y fsync a fsync b \
		rename a/x b/x rename b/y a/y fsync b
	cut_and_unmount
	assert_file a/x x
	assert_file b/x x
	[ "$(stat -c %i "$DISK/a/x")" = "$(stat -c %i "$DISK/b/x")" ] || fail "a/x and b/x are two files"
	assert_gone a/y
	assert_gone b/y
}

@test "data written after the last fsync is lost, data written before it is kept" {
	run -0 writer write f one fsync f fsync . append f two append old more
	cut_and_unmount
	assert_file f one
	assert_file old old
}

@test "a name removed without an fsync of its directory comes back with the file's synced contents" {
	run -0 writer write g gone fsync g fsync . unlink g fsync . \
		write f one fsync f fsync . write f changed unlink f unlink old
	cut_and_unmount
	assert_file f one
	assert_file old old
	assert_gone g
}

@test "the sync points of a program with 3 of them (fsync, directory fsync, fdatasync) count 3" {
	[ "$(crashfs_syncs "$MNT")" = 0 ] || fail "syncs before: $(crashfs_syncs "$MNT")"
	run -0 writer write f one fsync f mkdir d fsync . append f two fdatasync f
	[ "$(crashfs_syncs "$MNT")" = 3 ] || fail "syncs after: $(crashfs_syncs "$MNT")"
	# Each write on an O_SYNC descriptor is one more.
	run -0 writer osync g data
	[ "$(crashfs_syncs "$MNT")" = 4 ] || fail "syncs after an O_SYNC write: $(crashfs_syncs "$MNT")"
}

# The program of the next test: 6 sync points. d/g is there only after the last: its data, its
# name in d and d's name in the root each need their own.
PROGRAM=(write f one fsync . fsync f append f two fsync f mkdir d write d/g three fsync d/g fsync d
	fsync .)

@test "a cut after N sync points leaves exactly the state after the Nth, and every operation after it fails" {
	# Each N against the same program stopped after N sync points and cut by hand.
	local -a want=(
		''	# N=0: nothing of the program
		'f='	# N=1: f's name, not its data
		'f=one'
		'f=onetwo'
		'f=onetwo'	# N=4: d/g's data, no name
		'f=onetwo'	# N=5: d/g's name in d, but no d
		'f=onetwo d/g=three'
	)
	local n state
	crashfs_umount "$MNT"
	for n in 0 1 2 3 4 5 6; do
		rm -rf "$DISK" && make_disk "$DISK"
		crashfs_mount "$DISK" "$MNT"
		crashfs_cut_after "$MNT" "$n"
		if [ "$n" -lt 6 ]; then
			run -1 writer "${PROGRAM[@]}"
			[[ $output == *"Input/output error"* ]] || fail "N=$n: the program did not fail with EIO: $output"
			[ "$(crashfs_power "$MNT")" = off ] || fail "N=$n: the power is still on"
			run ls "$MNT"
			[[ $status -ne 0 && $output == *"Input/output error"* ]] || fail "N=$n: ls after the cut: $output"
		else
			run -0 writer "${PROGRAM[@]}"
			[ "$(crashfs_power "$MNT")" = on ] || fail "N=$n: the power is off"
			crashfs_cut "$MNT"
		fi
		crashfs_umount "$MNT"
		state=$(tree_state "$DISK")

		rm -rf "$DISK" && make_disk "$DISK"
		crashfs_mount "$DISK" "$MNT"
		run -0 writer -n "$n" "${PROGRAM[@]}"
		cut_and_unmount
		[ "$state" = "$(tree_state "$DISK")" ] ||
			fail "$(printf 'N=%d: cut-after gave\n%s\nstopping after N and cutting gave\n%s' "$n" "$state" "$(tree_state "$DISK")")"

		assert_file old old
		local got='' p
		for p in f d/g; do
			[ ! -f "$DISK/$p" ] || got="$got${got:+ }$p=$(cat "$DISK/$p")"
		done
		[ "$got" = "${want[n]}" ] || fail "N=$n: the disk holds '$got', expected '${want[n]}'"
	done
}

@test "an unmount without a cut leaves the disk as the programs left it, and the control file is hidden" {
	run -0 writer write f unsynced rename old new mkdir a/d
	run -0 ls -A "$MNT"
	[[ $output != *.crashfs* ]] || fail "the control file is listed: $output"
	crashfs_umount "$MNT"
	assert_file f unsynced
	assert_file new old
	assert_gone old
	[ -d "$DISK/a/d" ] || fail "a/d is gone"
	assert_gone .crashfs
}
