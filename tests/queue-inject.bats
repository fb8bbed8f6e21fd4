#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-inject: qmail-queue's protocol (message on fd 0, envelope read from fd 1), its exit
# codes, the queue file format of queue(5), and crash safety under kill -9.

load lib/common

setup() {
	make_queue
	MSG=$BATS_TEST_TMPDIR/message
	make_message "$MSG" inject-1
}

# envelope FILE FORMAT [ARG...]: writes printf FORMAT ARG... (with \0s) to FILE.
envelope() {
	local file=$1
	shift
	# shellcheck disable=SC2059
	printf "$@" >"$file"
}

# assert_rejected_envelope FORMAT [ARG...]: that envelope makes queue-inject exit 91 with one
# stderr line, and nothing is queued.
assert_rejected_envelope() {
	envelope "$BATS_TEST_TMPDIR/env" "$@"
	run --separate-stderr -91 inject_envfile "$BATS_TEST_TMPDIR/env" <"$MSG"
	assert_one_stderr_line queue-inject
	assert_count 0 file_count "$QUEUEDIR/msg"
}

# assert_queue_file FILE MESSAGE ENVELOPE: FILE is "PRQ1 <20-digit length>\n", MESSAGE, ENVELOPE,
# and nothing else (queue(5), before any delivery record).
assert_queue_file() {
	local file=$1 msg=$2 env=$3 len
	len=$(stat -c %s "$msg")
	cmp -s "$file" <(printf 'PRQ1 %020d\n' "$len"; cat "$msg" "$env") ||
		fail "$(printf 'queue file %s differs from header+message+envelope:\n%s' "$file" "$(od -c "$file" | head -20)")"
}

@test "a good message lands as exactly one file in msg/, tmp/ is empty, nothing on stderr" {
	run --separate-stderr -0 inject sender@remote.test alice@example.test <"$MSG"
	[ -z "$stderr" ] || fail "stderr not empty: $stderr"
	assert_count 1 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
	assert_count 0 file_count "$QUEUEDIR/bounce"
}

@test "the queue file is named by a queue id and holds header, message and envelope exactly" {
	printf 'Fsender@remote.test\0Talice@example.test\0Tbob@example.test\0\0' >"$BATS_TEST_TMPDIR/env"
	run --separate-stderr -0 inject_envfile "$BATS_TEST_TMPDIR/env" <"$MSG"
	f=$(queue_files msg)
	[[ $(basename "$f") =~ ^[0-9]+-[0-9]{6}-[0-9]+$ ]] || fail "bad queue id: $(basename "$f")"
	assert_queue_file "$f" "$MSG" "$BATS_TEST_TMPDIR/env"
	# the id's seconds are now, give or take a minute
	sec=${f##*/}
	sec=${sec%%-*}
	now=$(date +%s)
	[ $((now - sec)) -ge -60 ] && [ $((now - sec)) -le 60 ] || fail "queue id time $sec, now $now"
}

@test "the message is stored byte for byte: binary bytes, no final newline, CRs" {
	printf 'Subject: bin\n\n\001\002\377 \r\nno final newline' >"$BATS_TEST_TMPDIR/bin"
	printf 'F\0Talice@example.test\0\0' >"$BATS_TEST_TMPDIR/env"
	run -0 inject_envfile "$BATS_TEST_TMPDIR/env" <"$BATS_TEST_TMPDIR/bin"
	assert_queue_file "$(queue_files msg)" "$BATS_TEST_TMPDIR/bin" "$BATS_TEST_TMPDIR/env"
}

@test "an empty message and the null sender are accepted" {
	: >"$BATS_TEST_TMPDIR/empty"
	printf 'F\0Talice@example.test\0\0' >"$BATS_TEST_TMPDIR/env"
	run --separate-stderr -0 inject_envfile "$BATS_TEST_TMPDIR/env" <"$BATS_TEST_TMPDIR/empty"
	assert_queue_file "$(queue_files msg)" "$BATS_TEST_TMPDIR/empty" "$BATS_TEST_TMPDIR/env"
}

@test "two injections give two files with distinct ids" {
	run -0 inject a@remote.test alice@example.test <"$MSG"
	run -0 inject a@remote.test bob@example.test <"$MSG"
	assert_count 2 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/tmp"
}

@test "each commit writes one byte to the trigger FIFO" {
	exec 5<>"$QUEUEDIR/trigger"
	run -0 inject a@remote.test alice@example.test <"$MSG"
	run -0 inject a@remote.test bob@example.test <"$MSG"
	n=$(timeout 5 "$PYTHON" -c '
import fcntl, os
fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_NONBLOCK)
try:
    print(len(os.read(0, 100)))
except BlockingIOError:
    print(0)' <&5)
	exec 5<&-
	assert_equal "$n" 2
}

@test "malformed envelope: no F record first -> 91" {
	assert_rejected_envelope 'Talice@example.test\0\0'
}

@test "malformed envelope: empty -> 91" {
	assert_rejected_envelope ''
}

@test "malformed envelope: no T record -> 91" {
	assert_rejected_envelope 'Fsender@remote.test\0\0'
}

@test "malformed envelope: missing final NUL -> 91" {
	assert_rejected_envelope 'Fsender@remote.test\0Talice@example.test\0'
}

@test "malformed envelope: unterminated last record -> 91" {
	assert_rejected_envelope 'Fsender@remote.test\0Talice@example.test'
}

@test "malformed envelope: unterminated sender -> 91" {
	assert_rejected_envelope 'Fsender@remote.test'
}

@test "malformed envelope: garbage after the final NUL -> 91" {
	assert_rejected_envelope 'Fsender@remote.test\0Talice@example.test\0\0garbage'
}

@test "malformed envelope: an extra NUL after the final NUL -> 91" {
	assert_rejected_envelope 'Fsender@remote.test\0Talice@example.test\0\0\0'
}

@test "malformed envelope: a record of unknown type -> 91" {
	assert_rejected_envelope 'Fsender@remote.test\0Xalice@example.test\0\0'
}

@test "malformed envelope: control character in a recipient -> 91" {
	assert_rejected_envelope 'Fsender@remote.test\0Tal\001ice@example.test\0\0'
}

@test "malformed envelope: newline in a recipient -> 91" {
	assert_rejected_envelope 'Fsender@remote.test\0Talice@example.test\nRCPT\0\0'
}

@test "malformed envelope: control character in the sender -> 91" {
	assert_rejected_envelope 'Fsen\033der@remote.test\0Talice@example.test\0\0'
}

@test "a rejected envelope leaves nothing behind in tmp/" {
	printf 'Fsender@remote.test\0Talice@example.test\0\0junk' >"$BATS_TEST_TMPDIR/env"
	run -91 inject_envfile "$BATS_TEST_TMPDIR/env" <"$MSG"
	assert_count 0 file_count "$QUEUEDIR/tmp"
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "a recipient of 1004 bytes -> 11; 1003 bytes is accepted" {
	long=$(printf '%0991d@example.test' 0)
	assert_equal "${#long}" 1004
	run --separate-stderr -11 inject sender@remote.test "$long" <"$MSG"
	assert_one_stderr_line queue-inject
	assert_count 0 file_count "$QUEUEDIR/msg"
	ok=$(printf '%0990d@example.test' 0)
	assert_equal "${#ok}" 1003
	run --separate-stderr -0 inject sender@remote.test "$ok" <"$MSG"
	assert_count 1 file_count "$QUEUEDIR/msg"
}

@test "a sender of 1004 bytes -> 11" {
	long=$(printf '%0991d@example.test' 0)
	run --separate-stderr -11 inject "$long" alice@example.test <"$MSG"
	assert_one_stderr_line queue-inject
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "a huge recipient (100 kB) -> 11, no crash" {
	long=$(head -c 100000 /dev/zero | tr '\0' a)@example.test
	run --separate-stderr -11 inject sender@remote.test alice@example.test "$long" <"$MSG"
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "QUEUEDIR unset -> 62, one stderr line" {
	unset QUEUEDIR
	run --separate-stderr -62 inject sender@remote.test alice@example.test <"$MSG"
	assert_one_stderr_line queue-inject
}

@test "QUEUEDIR names a missing directory -> 62, one stderr line" {
	QUEUEDIR=$BATS_TEST_TMPDIR/no-such-queue
	run --separate-stderr -62 inject sender@remote.test alice@example.test <"$MSG"
	assert_one_stderr_line queue-inject
	[ ! -e "$BATS_TEST_TMPDIR/no-such-queue" ]
}

@test "a queue without msg/ -> 62" {
	rmdir "$QUEUEDIR/msg"
	run --separate-stderr -62 inject sender@remote.test alice@example.test <"$MSG"
	assert_one_stderr_line queue-inject
}

# nobody_inject QUEUE ENVFILE < message: queue-inject run as nobody.
nobody_inject() {
	as_nobody env QUEUEDIR="$1" "$PRIVATE_DIR/bin/queue-inject" 1<"$2"
}

@test "an unwritable queue (queue-inject as nobody) -> temporary exit (41..99), nothing queued" {
	make_private_dir
	q=$PRIVATE_DIR/queue
	run -0 queue-init "$q"
	chmod -R a+rX,go-w "$q"
	chmod 0622 "$q/trigger"
	printf 'Fsender@remote.test\0Talice@example.test\0\0' >"$BATS_TEST_TMPDIR/env"
	# the binary is reachable and runs as nobody
	run -100 as_nobody "$PRIVATE_DIR/bin/queue-inject" -x
	run --separate-stderr nobody_inject "$q" "$BATS_TEST_TMPDIR/env" <"$MSG"
	[ "$status" -ge 41 ] && [ "$status" -le 99 ] ||
		fail "exit $status, expected a temporary code 41..99 (stderr: $stderr)"
	assert_one_stderr_line queue-inject
	assert_count 0 file_count "$q/msg"
	assert_count 0 file_count "$q/tmp"
}

@test "the envelope cannot be read (fd 1 closed) -> 54" {
	closed_inject() { queue-inject 1>&-; }
	run --separate-stderr -54 closed_inject <"$MSG"
	assert_one_stderr_line queue-inject
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "the message cannot be read (fd 0 closed) -> 54" {
	printf 'Fsender@remote.test\0Talice@example.test\0\0' >"$BATS_TEST_TMPDIR/env"
	closed_inject() { queue-inject 0<&- 1<"$BATS_TEST_TMPDIR/env"; }
	run --separate-stderr -54 closed_inject
	assert_one_stderr_line queue-inject
	assert_count 0 file_count "$QUEUEDIR/msg"
}

@test "an argument: usage, exit 100, one stderr line, nothing queued" {
	printf 'Fsender@remote.test\0Talice@example.test\0\0' >"$BATS_TEST_TMPDIR/env"
	argv_inject() { queue-inject extra 1<"$BATS_TEST_TMPDIR/env"; }
	run --separate-stderr -100 argv_inject <"$MSG"
	assert_one_stderr_line queue-inject
	assert_count 0 file_count "$QUEUEDIR/msg"
}

# slow_write FILE: writes FILE to stdout 20 lines at a time with a short pause in between.
slow_write() {
	local line k=0
	while IFS= read -r line; do
		printf '%s\n' "$line"
		k=$((k + 1))
		[ $((k % 20)) -ne 0 ] || sleep 0.002
	done <"$1"
}

@test "kill -9 at random instants (50 runs) never leaves a partial message" {
	make_userdb
	orig=$BATS_TEST_TMPDIR/orig
	make_message "$orig" crash-inject 8000
	env=$BATS_TEST_TMPDIR/env
	printf 'Fsender@remote.test\0Talice@example.test\0\0' >"$env"
	alice=$(mailbox alice)
	killed=0 committed=0
	for i in $(seq 1 50); do
		fifo=$BATS_TEST_TMPDIR/fifo.$i
		mkfifo "$fifo"
		if [ $((i % 2)) -eq 0 ]; then
			slow_write "$orig" >"$fifo" 2>/dev/null 3>&- &
		else
			cat "$orig" >"$fifo" 2>/dev/null 3>&- &
		fi
		wpid=$!
		track_pid "$wpid"
		queue-inject <"$fifo" 1<"$env" 2>/dev/null 3>&- &
		qpid=$!
		track_pid "$qpid"
		printf -v pause '0.%03d' $((RANDOM % 31))
		sleep "$pause"
		kill -KILL "$qpid" 2>/dev/null || true
		rc=0
		wait "$qpid" 2>/dev/null || rc=$?
		kill -KILL "$wpid" 2>/dev/null || true
		wait "$wpid" 2>/dev/null || true
		rm -f "$fifo"
		_count_entries n "$QUEUEDIR/msg"
		[ "$n" -le 1 ] || fail "run $i: $n files in msg/"
		if [ "$rc" -eq 0 ]; then
			[ "$n" -eq 1 ] || fail "run $i: queue-inject exited 0 but msg/ has $n files"
		elif [ "$rc" -ne 137 ]; then
			fail "run $i: queue-inject exited $rc, neither 0 nor killed"
		fi
		if [ "$n" -eq 1 ]; then
			committed=$((committed + 1))
			assert_queue_file "$(queue_files msg)" "$orig" "$env"
			run -0 queue-run -1
			assert_count 0 file_count "$QUEUEDIR/msg"
			assert_count 1 msg_count "$alice"
			f=$(maildir_files "$alice")
			assert_delivered "$f" sender@remote.test alice@example.test "$orig" alice@example.test
			rm -f "$f"
		else
			killed=$((killed + 1))
		fi
		assert_count 0 file_count "$QUEUEDIR/bounce"
	done
	echo "# $committed committed, $killed killed before the commit" >&3
	[ "$committed" -ge 1 ] || fail "no run committed a message: the test exercised nothing"
	[ "$killed" -ge 1 ] || fail "no run was killed before its commit: the test exercised nothing"
}
