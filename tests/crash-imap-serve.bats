#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# imap-serve's UIDs, flags and modseqs under power cuts (issue 19), on crashfs
# (tests/tools/crashfs.c): "imap-serve -A" by hand in a Maildir on the mount, one session that
# APPENDs two messages, SELECTs with CONDSTORE and STOREs a flag, the power cut at each of its
# sync points in turn, then the disk mounted again and a new session (the recovery: it reads
# the folder as any start-up does) that fetches everything and APPENDs once more
# (tests/lib/imap_crash.py). The promises: dovecot-uidlist parses and never gives a UID twice;
# an APPEND answered OK [APPENDUID v u] means the message is there, whole, as UID u of
# UIDVALIDITY v; no message is in the folder twice nor in part; HIGHESTMODSEQ never goes below
# a modseq a client was told (postroom-modseq(5): the file is flushed before a modseq is told).

load lib/common
load lib/crashfs

setup() {
	crashfs_require
	DISK=$BATS_TEST_TMPDIR/disk
	MNT=$BATS_TEST_TMPDIR/mnt
	TOLD=$BATS_TEST_TMPDIR/told.json
	SAVED=$BATS_TEST_TMPDIR/saved
}

teardown() {
	crashfs_teardown
	common_teardown
}

# imap_crash STEP ARG...: tests/lib/imap_crash.py
imap_crash() {
	"$PYTHON" "$TESTLIB/imap_crash.py" "$@"
}

# make_folder existing|bloated|fresh: the Maildir alice as it is before the session, made once
# in $SAVED (off the mount) and copied to the disk for each cut. existing: m0 appended and
# marked \Seen by a session, so dovecot-uidlist and postroom-modseq exist; bloated: the same,
# with postroom-modseq grown past its limit (postroom-modseq(5)), so the session's first new
# modseq writes it anew through a rename; fresh: m0 put in new/ by a delivery, no UID or modseq
# file yet.
make_folder() {
	local kind=$1 i hi
	rm -rf "$SAVED"
	mkdir -p "$SAVED/alice/"{tmp,new,cur}
	if [ "$kind" = fresh ]; then
		"$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1]); import imap_crash
open(sys.argv[2], "wb").write(imap_crash.message(0))' "$TESTLIB" "$SAVED/alice/new/1796650000.M1P1.crash" ||
			fail "unable to write m0"
		return
	fi
	imap_crash pre "$SAVED/alice" || fail "the setup session failed"
	if [ "$kind" = bloated ]; then
		hi=$(awk 'NR > 1 && $2 > m { m = $2 } END { print m }' "$SAVED/alice/postroom-modseq")
		for ((i = 1; i <= 1100; i++)); do
			printf '1 %d :%s\n' $((hi + i)) "$( ((i % 2)) && echo || echo S)"
		done >>"$SAVED/alice/postroom-modseq"
		printf '1 %d :S\n' $((hi + 1101)) >>"$SAVED/alice/postroom-modseq"
	fi
}

fresh_disk() {
	rm -rf "$DISK"
	mkdir -p "$DISK"
	cp -a "$SAVED/alice" "$DISK/alice"
}

# session_on_mount: the session, its answers in $TOLD.
session_on_mount() {
	run --separate-stderr imap_crash run "$MNT/alice" "$TOLD"
	[ "$status" -eq 0 ] || fail "$WHAT: the session's driver failed: $output $stderr"
}

crash_each_sync_point() {
	local kind=$1 syncs n
	make_folder "$kind"
	fresh_disk
	crashfs_mount "$DISK" "$MNT"
	WHAT="$kind folder, no cut"
	session_on_mount
	syncs=$(crashfs_syncs "$MNT")
	grep -q '"appended": {"m1": [0-9]*, "m2": [0-9]*}' "$TOLD" || fail "without a cut the APPENDs failed: $(cat "$TOLD")"
	crashfs_umount "$MNT"
	[ "$syncs" -ge 2 ] || fail "the session made $syncs sync points"
	for ((n = 0; n <= syncs; n++)); do
		WHAT="$kind folder, cut after $n of $syncs sync points"
		fresh_disk
		crashfs_mount "$DISK" "$MNT"
		crashfs_cut_after "$MNT" "$n"
		session_on_mount
		if [ "$n" -eq "$syncs" ]; then
			[ "$(crashfs_power "$MNT")" = on ] || fail "$WHAT: the power went off"
			crashfs_cut "$MNT"
		else
			[ "$(crashfs_power "$MNT")" = off ] || fail "$WHAT: the power is still on"
		fi
		crashfs_umount "$MNT"
		crashfs_mount "$DISK" "$MNT"
		run --separate-stderr imap_crash check "$MNT/alice" "$TOLD"
		[ "$status" -eq 0 ] || fail "$(printf '%s:\n%s\n%s' "$WHAT" "$output" "$stderr")"
		crashfs_umount "$MNT"
	done
}

@test "imap-serve APPEND and STORE in a folder with its UID and modseq files, cut after each sync point: UIDs kept and never given twice, APPEND OK means there whole, HIGHESTMODSEQ never below a modseq told" {
	crash_each_sync_point existing
}

@test "imap-serve, the same when the session's first modseq writes postroom-modseq anew (grown past its limit): HIGHESTMODSEQ never below a modseq told" {
	crash_each_sync_point bloated
}

@test "imap-serve, the same in a folder whose dovecot-uidlist the session makes: an APPEND answered OK keeps its UID and UIDVALIDITY" {
	crash_each_sync_point fresh
}
