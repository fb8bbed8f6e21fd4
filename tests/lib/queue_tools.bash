# postroom: ISC license, see LICENSE.
# Loaded by the queue tools' test files (queue-list, queue-flush, queue-remove, queue-hold,
# queue-release) after lib/common: a queue of their own with one message file to queue, and
# helpers for records, times, the trigger and lock holders. Real queues made by queue-init and
# queue-inject.

FROM=sender@remote.test
T=$'\t'

setup() {
	make_queue
	MSG=$BATS_TEST_TMPDIR/message
	make_message "$MSG" qt-1
	SIZE=$(stat -c %s "$MSG")
}

# new_message FROM TO...: queues $MSG with that envelope; sets ID to its queue id.
new_message() {
	local before f
	before=" $(ls "$QUEUEDIR/msg" | tr '\n' ' ') "
	inject "$@" <"$MSG" || fail "queue-inject failed"
	ID=
	for f in $(ls "$QUEUEDIR/msg"); do
		[[ $before == *" $f "* ]] || ID=$f
	done
	[ -n "$ID" ] || fail "no new file in msg/"
}

# add_records ID RECORD...: appends each RECORD and its NUL to msg/ID, as queue-run writes them.
add_records() {
	local id=$1
	shift
	printf '%s\0' "$@" >>"$QUEUEDIR/msg/$id"
}

# mtime ID [DIR]: the file's modification time, Unix seconds.
mtime() {
	stat -c %Y "$QUEUEDIR/${2:-msg}/$1"
}

# due_in ID SECONDS [DIR]: sets the next attempt of the message.
due_in() {
	touch -m -d "@$(($(date +%s) + $2))" "$QUEUEDIR/${3:-msg}/$1"
}

# assert_mtime_between ID LOW HIGH [DIR]
assert_mtime_between() {
	local t
	t=$(mtime "$1" "${4:-msg}")
	[ "$t" -ge "$2" ] && [ "$t" -le "$3" ] || fail "mtime of ${4:-msg}/$1 is $t, not in [$2, $3]"
}

# open_trigger: a reader of the trigger on fd 5 (opened read-write, so that the open does not wait
# and the FIFO keeps what is written), opened after the injections so it holds only what follows.
open_trigger() {
	exec 5<>"$QUEUEDIR/trigger"
}

# trigger_bytes: what waits in the trigger, in hex, without waiting.
trigger_bytes() {
	"$PYTHON" -c '
import os
os.set_blocking(5, False)
try:
    print(os.read(5, 4096).hex())
except BlockingIOError:
    print("")'
}

# hold_lock FILE [COMMAND]: a background process takes FILE's flock(2) lock, as queue-run holds it
# while it delivers, and keeps it until release_lock; then it runs the shell COMMAND (with the
# file as $4) before it lets go, as a delivery that finishes the message would.
hold_lock() {
	GATE=$BATS_TEST_TMPDIR/gate
	READY=$BATS_TEST_TMPDIR/ready
	rm -f "$GATE" "$READY"
	mkfifo "$GATE"
	start_group "$BATS_TEST_TMPDIR/locker.log" flock "$1" \
		sh -c ': >"$1"; read x <"$2"; eval "$3"' sh "$READY" "$GATE" "${2:-:}" "$1"
	LOCKER=$BG_PID
	wait_until 100 test -e "$READY" || fail "the locker did not take the lock"
}

release_lock() {
	echo go >"$GATE"
	wait "$LOCKER" || fail "the locker failed: $(cat "$BATS_TEST_TMPDIR/locker.log")"
}

# blocked_on_lock PID: PID waits for an flock lock (/proc/locks shows its request after "->").
blocked_on_lock() {
	grep -Eq "^[0-9]+: -> FLOCK +ADVISORY +WRITE +$1 " /proc/locks
}

# start_tool COMMAND...: runs COMMAND in the background, output in $OUT and $ERR; sets TOOL.
start_tool() {
	OUT=$BATS_TEST_TMPDIR/tool.out
	ERR=$BATS_TEST_TMPDIR/tool.err
	"$@" >"$OUT" 2>"$ERR" 3>&- &
	TOOL=$!
	track_pid "$TOOL"
}

# tool_waits: TOOL is blocked on the lock, and still running.
tool_waits() {
	wait_until 100 blocked_on_lock "$TOOL" || fail "the tool is not waiting for the lock: $(cat "$ERR")"
	kill -0 "$TOOL" || fail "the tool exited"
}

# tool_wait: waits for TOOL to exit; sets STATUS to its exit code.
tool_wait() {
	STATUS=0
	wait "$TOOL" || STATUS=$?
}

# --- queue-list --------------------------------------------------------------------------------
