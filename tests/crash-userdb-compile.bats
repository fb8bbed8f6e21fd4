#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# userdb-compile under power cuts (issue 19), on crashfs (tests/tools/crashfs.c): a new text
# users file compiled to users.cdb on the mount, over an old users.cdb or where there was none,
# the power cut at each sync point in turn, then the disk mounted again. The promise of
# userdb-compile(8): a reader sees the old database or the new one, never a mix, and after exit
# 0 the new one survives a crash; so after any cut users.cdb is the old one or the new one,
# whole (byte for byte, and userdb-lookup resolves an address of each right), never absent if
# there was one, never truncated. A leftover users.cdb.tmp.PID is garbage a cut may leave.

load lib/common
load lib/crashfs

setup() {
	crashfs_require
	DISK=$BATS_TEST_TMPDIR/disk
	MNT=$BATS_TEST_TMPDIR/mnt
	REF=$BATS_TEST_TMPDIR/ref
	mkdir -p "$REF"
	# The old database: the fixture. The new one: the fixture less carol, plus dave, so each
	# has an address that the other does not know.
	users_txt >"$REF/old.txt"
	users_txt 'mailbox dave@example.test {SHA512-CRYPT}$6$saltsalt$daveHASH example.test/dave/' |
		grep -v '^mailbox carol@' | sed 's/,carol@example.test//' >"$REF/new.txt"
	userdb-compile -f "$REF/old.txt" "$REF/old.cdb" || fail "userdb-compile of the old file failed"
	userdb-compile -f "$REF/new.txt" "$REF/new.cdb" || fail "userdb-compile of the new file failed"
	# The same text makes the same bytes, or the byte comparisons below mean nothing.
	userdb-compile -f "$REF/new.txt" "$REF/again.cdb" || fail "userdb-compile of the new file failed"
	cmp -s "$REF/new.cdb" "$REF/again.cdb" || fail "two compiles of one file differ"
	! cmp -s "$REF/old.cdb" "$REF/new.cdb" || fail "the old and new databases are the same"
}

teardown() {
	crashfs_teardown
	common_teardown
}

# fresh_disk old|none: the disk holds the new text file and the old users.cdb, or no users.cdb.
fresh_disk() {
	rm -rf "$DISK"
	mkdir -p "$DISK/etc"
	cp "$REF/new.txt" "$DISK/etc/users.txt"
	[ "$1" = none ] || cp -p "$REF/old.cdb" "$DISK/etc/users.cdb"
}

# compile_on_mount: userdb-compile of the new text into users.cdb on the mount, bounded.
compile_on_mount() {
	run --separate-stderr timeout 60 userdb-compile -f "$MNT/etc/users.txt" "$MNT/etc/users.cdb"
	[ "$status" -ne 124 ] || fail "userdb-compile did not end within 60 s"
}

# which_db FILE: "old" or "new" when FILE is one of them byte for byte and userdb-lookup reads
# it so (alice a mailbox in both; carol in the old one only, dave in the new one only).
which_db() {
	local f=$1 kind
	if cmp -s "$f" "$REF/old.cdb"; then kind=old; elif cmp -s "$f" "$REF/new.cdb"; then kind=new; else
		echo "neither the old nor the new database ($(stat -c %s "$f") bytes)"
		return 1
	fi
	local out
	out=$(USERDB=$f userdb-lookup alice@example.test carol@example.test dave@example.test 2>&1) || {
		echo "userdb-lookup failed on the $kind database: $out"
		return 1
	}
	local alice='alice@example.test	mailbox	alice@example.test	example.test/alice/	0'
	local carol='carol@example.test	mailbox	carol@example.test	example.test/carol/	2000'
	local dave='dave@example.test	mailbox	dave@example.test	example.test/dave/	0'
	local want
	if [ "$kind" = old ]; then
		want=$(printf '%s\n%s\n%s' "$alice" "$carol" 'dave@example.test	failed	dave@example.test	5.1.1 unknown user')
	else
		want=$(printf '%s\n%s\n%s' "$alice" 'carol@example.test	failed	carol@example.test	5.1.1 unknown user' "$dave")
	fi
	[ "$out" = "$want" ] || {
		echo "userdb-lookup reads the $kind database as: $out"
		return 1
	}
	echo "$kind"
}

# assert_db WHAT BEFORE [new]: users.cdb on the disk, mounted again as after a reboot, is the
# old or the new database, whole; absent only if BEFORE is none; with "new", the new one.
assert_db() {
	local what=$1 before=$2 must=${3:-} got
	crashfs_mount "$DISK" "$MNT"
	if [ ! -e "$MNT/etc/users.cdb" ]; then
		[ "$before" = none ] && [ -z "$must" ] || fail "$what: users.cdb is gone: $(tree_state "$DISK")"
	else
		got=$(which_db "$MNT/etc/users.cdb") || fail "$what: users.cdb is $got"
		[ -z "$must" ] || [ "$got" = "$must" ] || fail "$what: users.cdb is the $got one, expected the $must one"
		[ "$(stat -c %a "$MNT/etc/users.cdb")" = 640 ] ||
			fail "$what: users.cdb has mode $(stat -c %a "$MNT/etc/users.cdb")"
	fi
	crashfs_umount "$MNT"
}

# crash_each_sync_point old|none
crash_each_sync_point() {
	local before=$1 syncs n what
	fresh_disk "$before"
	crashfs_mount "$DISK" "$MNT"
	compile_on_mount
	[ "$status" -eq 0 ] || fail "userdb-compile exited $status: $stderr"
	syncs=$(crashfs_syncs "$MNT")
	crashfs_umount "$MNT"
	[ "$syncs" -ge 1 ] || fail "userdb-compile made $syncs sync points"
	for ((n = 0; n <= syncs; n++)); do
		what="users.cdb $before before, cut after $n of $syncs sync points"
		fresh_disk "$before"
		crashfs_mount "$DISK" "$MNT"
		crashfs_cut_after "$MNT" "$n"
		compile_on_mount
		if [ "$n" -lt "$syncs" ]; then
			[ "$status" -eq 111 ] || fail "$what: userdb-compile exited $status, not 111: $stderr"
			crashfs_umount "$MNT"
			assert_db "$what" "$before"
		else
			[ "$status" -eq 0 ] || fail "$what: userdb-compile exited $status: $stderr"
			crashfs_cut "$MNT"
			crashfs_umount "$MNT"
			assert_db "$what, after exit 0" "$before" new
		fi
	done
}

@test "userdb-compile over an old users.cdb, the power cut after each sync point: the old or the new database, whole, never absent; the new one after exit 0" {
	crash_each_sync_point old
}

@test "userdb-compile with no users.cdb before, the power cut after each sync point: none or the new database, whole; the new one after exit 0" {
	crash_each_sync_point none
}
