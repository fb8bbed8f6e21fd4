# postroom: ISC license, see LICENSE.
# crashfs (tests/tools/crashfs.c, its model at the top) for the crash tests: mount a directory
# through it, count the sync points of a program, cut the power, unmount. Loaded after
# lib/common; a test file that loads it calls crashfs_teardown in its teardown.

CRASHFS=$REPO/tests/tools/crashfs

# The mounts made, each with its crashfs process: the teardown unmounts what is left.
declare -gA _crashfs_pids=()

# crashfs_require: fails, never skips (a skip counts as a failure), when crashfs cannot run here.
crashfs_require() {
	[ -x "$CRASHFS" ] || fail "no $CRASHFS: 'make tools' builds it (it needs libfuse3-dev)"
	[ -c /dev/fuse ] ||
		fail "no /dev/fuse: the crash tests need FUSE (modprobe fuse; a container needs --device /dev/fuse)"
	command -v fusermount3 >/dev/null || fail "no fusermount3: the crash tests need Debian's fuse3"
	[ "$(id -u)" = 0 ] || fail "the crash tests run as root (crashfs mounts with allow_other)"
}

# crashfs_mount DISK MOUNTPOINT: mounts the directory DISK through crashfs at MOUNTPOINT (made if
# missing), with a fresh shadow directory; returns once the mount is there (at most 5 s).
# crashfs's stderr goes to $BATS_TEST_TMPDIR/crashfs.log.
crashfs_mount() {
	local disk=$1 mnt=$2 shadow pid n
	shadow=$(mktemp -d "$BATS_TEST_TMPDIR/shadow.XXXXXX") || fail "mktemp failed"
	mkdir -p "$mnt"
	"$CRASHFS" "$disk" "$shadow" "$mnt" </dev/null >/dev/null 2>>"$BATS_TEST_TMPDIR/crashfs.log" 3>&- &
	pid=$!
	_crashfs_pids[$mnt]=$pid
	for ((n = 50; n > 0; n--)); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	fail "crashfs did not mount $disk on $mnt: $(cat "$BATS_TEST_TMPDIR/crashfs.log")"
}

# crashfs_umount MOUNTPOINT: unmounts it; returns once its crashfs has ended (at most 30 s: on
# a loaded machine (2 cores, a make check beside) crashfs may take more than 5 s to end).
crashfs_umount() {
	local mnt=$1 pid=${_crashfs_pids[$1]} n
	fusermount3 -u "$mnt" || fail "unable to unmount $mnt"
	for ((n = 300; n > 0; n--)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "crashfs on $mnt did not end after its unmount"
	wait "$pid" || fail "crashfs on $mnt ended with $?: $(cat "$BATS_TEST_TMPDIR/crashfs.log")"
	unset "_crashfs_pids[$mnt]"
}

# crashfs_syncs MOUNTPOINT: the number of sync points so far.
crashfs_syncs() {
	local word n
	read -r word n <"$1/.crashfs" || fail "unable to read $1/.crashfs"
	[ "$word" = syncs ] || fail "$1/.crashfs begins with '$word $n'"
	echo "$n"
}

# crashfs_cut_after MOUNTPOINT N: the N next sync points happen; the power fails at the one after.
crashfs_cut_after() {
	echo "cut-after $2" >"$1/.crashfs" || fail "unable to arm the cut on $1"
}

# crashfs_cut MOUNTPOINT: cuts the power now.
crashfs_cut() {
	echo cut >"$1/.crashfs" || fail "unable to cut the power of $1"
}

# crashfs_power MOUNTPOINT: "on", or "off" once the power is cut.
crashfs_power() {
	local line
	while read -r line; do
		case $line in "power "*) echo "${line#power }" ;; esac
	done <"$1/.crashfs"
}

# tree_state DIR: every entry under DIR, sorted, one line each: its path, type, size, link
# count and mode, and a file's checksum; two states are the same if their lines are.
tree_state() {
	local path
	(
		cd "$1" || exit 1
		find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r path; do
			printf '%s %s\n' "$path" "$(stat -c '%F %s %h %a' "$path")"
			[ ! -f "$path" ] || md5sum <"$path"
		done
	)
}

# crashfs_teardown: unmounts whatever is still mounted, even a mount whose crashfs died, and
# ends the crashfs processes; never fails.
crashfs_teardown() {
	local mnt pid n
	for mnt in "${!_crashfs_pids[@]}"; do
		pid=${_crashfs_pids[$mnt]}
		fusermount3 -u -q "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
		for ((n = 50; n > 0; n--)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	_crashfs_pids=()
	return 0
}

# crash_fresh_queue RCPT...: a new backing disk $DISK with mail/ and a queue holding the message
# $MSG from $FROM to the RCPTs (its envelope written to $ENV), made before any mount.
crash_fresh_queue() {
	local r
	rm -rf "$DISK"
	mkdir -p "$DISK/mail"
	queue-init "$DISK/queue" || fail "queue-init $DISK/queue failed"
	{
		printf 'F%s\0' "$FROM"
		for r in "$@"; do printf 'T%s\0' "$r"; done
		printf '\0'
	} >"$ENV"
	QUEUEDIR=$DISK/queue inject_envfile "$ENV" <"$MSG" || fail "queue-inject failed"
}
