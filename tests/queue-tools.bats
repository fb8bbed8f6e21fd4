#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# The administrator's queue tools: queue-list (both forms, states from the records, filters, held,
# active, invalid files), queue-flush (times and the trigger's 'F'), queue-remove, queue-hold and
# queue-release (semantics, waiting for a lock holder, a message finished or moved meanwhile),
# bad and unknown ids, exit codes. Real queues made by queue-init and queue-inject.

load lib/common

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

@test "queue-list: an empty queue says so; -t prints nothing; exit 0" {
	run --separate-stderr -0 queue-list
	assert_output "queue is empty"
	[ -z "$stderr" ]
	run --separate-stderr -0 queue-list -t
	assert_output ""
}

@test "queue-list: one aligned line per message and recipient, a heading and a count" {
	new_message "$FROM" alice@example.test carol@example.org
	id1=$ID
	new_message "" bob@example.test
	id2=$ID
	run --separate-stderr -0 queue-list
	[ -z "$stderr" ] || fail "stderr: $stderr"
	[ "${#lines[@]}" -eq 5 ] || fail "expected 5 lines: $output"
	[[ ${lines[0]} =~ ^QUEUE\ ID\ +AGE\ +SIZE\ +SENDER\ +RECIPIENT\ +STATE\ +NEXT\ +LAST\ ERROR$ ]] ||
		fail "heading: ${lines[0]}"
	[[ ${lines[1]} =~ ^$id1\ +[0-9]+s\ +$SIZE\ +sender@remote\.test\ +alice@example\.test\ +deferred\ +now\ +-$ ]] ||
		fail "line 1: ${lines[1]}"
	[[ ${lines[2]} =~ ^$id1\ +[0-9]+s\ +$SIZE\ +sender@remote\.test\ +carol@example\.org\ +deferred\ +now\ +-$ ]] ||
		fail "line 2: ${lines[2]}"
	# the null sender shows as <>
	[[ ${lines[3]} =~ ^$id2\ +[0-9]+s\ +$SIZE\ +\<\>\ +bob@example\.test\ +deferred\ +now\ +-$ ]] ||
		fail "line 3: ${lines[3]}"
	assert_equal "${lines[4]}" "2 messages, 3 recipients"
	# aligned: each column starts where its heading does
	local col rcpt pre rest word
	for col in SENDER RECIPIENT STATE NEXT; do
		pre=${lines[0]%%"$col"*}
		for i in 1 2 3; do
			case $col in
			STATE) word=deferred ;;
			NEXT) word=now ;;
			SENDER) [ "$i" = 3 ] && word='<>' || word=$FROM ;;
			RECIPIENT) rcpt=(x alice@example.test carol@example.org bob@example.test); word=${rcpt[$i]} ;;
			esac
			rest=${lines[$i]:${#pre}}
			[[ $rest == "$word "* ]] || fail "column $col of line $i is not aligned: ${lines[$i]}"
		done
	done
}

@test "queue-list: one message with one recipient is counted in the singular" {
	new_message "$FROM" alice@example.test
	run -0 queue-list
	assert_equal "${lines[-1]}" "1 message, 1 recipient"
}

@test "queue-list -t: id, queued, size, sender, recipient, state, next attempt, last error" {
	new_message "$FROM" alice@example.test carol@example.org
	due_in "$ID" 3600
	queued=${ID%%-*}
	next=$(mtime "$ID")
	run --separate-stderr -0 queue-list -t
	[ -z "$stderr" ]
	assert_equal "${#lines[@]}" 2
	assert_equal "${lines[0]}" "$ID$T$queued$T$SIZE$T$FROM${T}alice@example.test${T}deferred$T$next$T-"
	assert_equal "${lines[1]}" "$ID$T$queued$T$SIZE$T$FROM${T}carol@example.org${T}deferred$T$next$T-"
}

@test "queue-list -t: the null sender is an empty field" {
	new_message "" alice@example.test
	run -0 queue-list -t
	assert_equal "$(cut -f 4 <<<"$output")" ""
	assert_equal "$(cut -f 5 <<<"$output")" alice@example.test
}

@test "queue-list: ages and next attempts in s/m/h/d; an older id form gives its queueing time" {
	new_message "$FROM" alice@example.test
	old=1700000000.000001.4821
	mv "$QUEUEDIR/msg/$ID" "$QUEUEDIR/msg/$old"
	due_in "$old" 7300
	run -0 queue-list
	[[ ${lines[1]} =~ ^1700000000\.000001\.4821\ +[0-9]+d\ +$SIZE\ +.*\ deferred\ +in\ 2h\ +-$ ]] ||
		fail "line: ${lines[1]}"
	due_in "$old" 600
	run -0 queue-list
	[[ ${lines[1]} =~ \ deferred\ +in\ (9|10)m\ +-$ ]] || fail "line: ${lines[1]}"
	run -0 queue-list -t
	assert_equal "$(cut -f 2 <<<"$output")" 1700000000
}

@test "queue-list: an id that does not tell its time has no age" {
	new_message "$FROM" alice@example.test
	mv "$QUEUEDIR/msg/$ID" "$QUEUEDIR/msg/handmade"
	run -0 queue-list
	[[ ${lines[1]} =~ ^handmade\ +-\ +$SIZE\ +sender@remote\.test\  ]] || fail "line: ${lines[1]}"
	run -0 queue-list -t
	assert_equal "$(cut -f 2 <<<"$output")" -
}

@test "queue-list: states and last errors come from the records" {
	new_message "$FROM" alice@example.test bob@example.test carol@example.org dave@example.org \
		erin@example.net Frank@Example.TEST
	add_records "$ID" \
		"Dalice@example.test" \
		"Xbob@example.test${T}5.2.2 mailbox full" \
		"Lcarol@example.org${T}4.4.1 first try" \
		"Ldave@example.org${T}4.4.1 dave's" \
		"Lcarol@example.org${T}4.4.1 second try" \
		"Jerin@example.net${T}550 5.1.1 no such user" \
		"Sfrank@example.test${T}250 ok"
	run --separate-stderr -0 queue-list -t
	assert_equal "${#lines[@]}" 6
	assert_equal "$(cut -f 5,6,8 <<<"${lines[0]}")" "alice@example.test${T}delivered$T-"
	assert_equal "$(cut -f 5,6,8 <<<"${lines[1]}")" "bob@example.test${T}failed${T}5.2.2 mailbox full"
	# the latest L of the address counts
	assert_equal "$(cut -f 5,6,8 <<<"${lines[2]}")" "carol@example.org${T}deferred${T}4.4.1 second try"
	assert_equal "$(cut -f 5,6,8 <<<"${lines[3]}")" "dave@example.org${T}deferred${T}4.4.1 dave's"
	assert_equal "$(cut -f 5,6,8 <<<"${lines[4]}")" "erin@example.net${T}failed${T}550 5.1.1 no such user"
	# records name addresses lower-cased; the envelope keeps the sender's spelling
	assert_equal "$(cut -f 5,6,8 <<<"${lines[5]}")" "Frank@Example.TEST${T}delivered$T-"
}

@test "queue-list: a recipient without an L of its own shows the message's latest L of a target not done" {
	new_message "$FROM" team@example.test
	add_records "$ID" \
		"Lbob@example.test${T}4.2.2 over quota" \
		"Lalice@example.test${T}4.3.0 disk trouble" \
		"Dalice@example.test"
	run -0 queue-list -t
	assert_equal "$(cut -f 5,6,8 <<<"$output")" "team@example.test${T}deferred${T}4.2.2 over quota"
	run -0 queue-list
	[[ ${lines[1]} =~ \ team@example\.test\ +deferred\ +now\ +4\.2\.2\ over\ quota$ ]] || fail "line: ${lines[1]}"
}

@test "queue-list -t: no tab or line end can come from the file; UTF-8 stays" {
	new_message 'jörg@example.org' '"odd user"@example.test'
	add_records "$ID" "L\"odd user\"@example.test${T}4.0.0 one${T}two"$'\n'"three\\"
	run -0 queue-list -t
	assert_equal "${#lines[@]}" 1
	assert_equal "$(awk -F '\t' '{ print NF }' <<<"$output")" 8
	assert_equal "$(cut -f 4 <<<"$output")" 'jörg@example.org'
	assert_equal "$(cut -f 5 <<<"$output")" '\x22odd user\x22@example.test'
	assert_equal "$(cut -f 8 <<<"$output")" '4.0.0 one\x09two\x0athree\x5c'
}

@test "queue-list -d DOMAIN: only recipients in that domain, ignoring case" {
	new_message "$FROM" alice@example.test carol@example.org
	id1=$ID
	new_message "$FROM" bob@Example.TEST
	id2=$ID
	new_message "$FROM" dave@example.org
	run -0 queue-list -t -d EXAMPLE.test
	assert_equal "${#lines[@]}" 2
	assert_equal "$(cut -f 1,5 <<<"${lines[0]}")" "$id1${T}alice@example.test"
	assert_equal "$(cut -f 1,5 <<<"${lines[1]}")" "$id2${T}bob@Example.TEST"
	run -0 queue-list -d example.test
	assert_equal "${lines[-1]}" "2 messages, 2 recipients"
	# a subdomain is another domain
	run -0 queue-list -d test
	assert_output "0 messages, 0 recipients"
}

@test "queue-list ID...: only those messages, in the order given" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.test
	id2=$ID
	new_message "$FROM" carol@example.test
	run -0 queue-list -t "$id2" "$id1"
	assert_equal "${#lines[@]}" 2
	assert_equal "$(cut -f 1 <<<"${lines[0]}")" "$id2"
	assert_equal "$(cut -f 1 <<<"${lines[1]}")" "$id1"
}

@test "queue-list: an unknown or invalid id is reported, the others listed; exit 100" {
	new_message "$FROM" alice@example.test
	run --separate-stderr -100 queue-list -t 1795437612-000000-1 "$ID" ../msg/x
	assert_equal "$(cut -f 1 <<<"$output")" "$ID"
	assert_equal "${#stderr_lines[@]}" 2
	assert_equal "${stderr_lines[0]}" "queue-list: 1795437612-000000-1: not in the queue"
	assert_equal "${stderr_lines[1]}" "queue-list: ../msg/x: not a valid queue id"
}

@test "queue-list: a held message is listed as held, with no next attempt" {
	new_message "$FROM" alice@example.test
	run -0 queue-hold "$ID"
	run -0 queue-list -t
	assert_equal "$(cut -f 1,6,7 <<<"$output")" "$ID${T}held$T-"
	run -0 queue-list
	[[ ${lines[1]} =~ ^$ID\ +[0-9]+s\ +$SIZE\ +sender@remote\.test\ +alice@example\.test\ +held\ +-\ +-$ ]] || fail "line: ${lines[1]}"
	# with the others, in the order of the ids
	new_message "$FROM" bob@example.test
	run -0 queue-list -t
	assert_equal "$(cut -f 5,6 <<<"$output")" "alice@example.test${T}held"$'\n'"bob@example.test${T}deferred"
}

@test "queue-list: a message whose lock is held is active, and listing it does not wait or disturb" {
	new_message "$FROM" alice@example.test bob@example.test
	add_records "$ID" "Dalice@example.test"
	hold_lock "$QUEUEDIR/msg/$ID"
	run -0 queue-list -t
	assert_equal "$(cut -f 5,6 <<<"$output")" "alice@example.test${T}delivered"$'\n'"bob@example.test${T}active"
	# the holder still has it: nobody else can take it
	run -1 flock -n "$QUEUEDIR/msg/$ID" true
	release_lock
	run -0 queue-list -t
	assert_equal "$(cut -f 6 <<<"${lines[1]}")" deferred
}

@test "queue-list: a file that is not a queue file is listed as invalid, not fatal" {
	new_message "$FROM" alice@example.test
	echo junk >"$QUEUEDIR/msg/1700000000-000000-1"
	: >"$QUEUEDIR/msg/1700000000-000000-2"
	run --separate-stderr -0 queue-list
	[ -z "$stderr" ] || fail "stderr: $stderr"
	[[ ${lines[1]} =~ ^1700000000-000000-1\ +[0-9]+d\ +-\ +-\ +-\ +invalid\ +now\ +not\ a\ queue\ file$ ]] ||
		fail "line: ${lines[1]}"
	assert_equal "${lines[-1]}" "1 message, 1 recipient, 2 invalid files"
	run -0 queue-list -t
	assert_equal "$(cut -f 1,3,4,5,6,8 <<<"${lines[0]}")" "1700000000-000000-1$T-$T-$T-${T}invalid${T}not a queue file"
	# it has no recipient in any domain
	run -0 queue-list -t -d example.test
	assert_equal "${#lines[@]}" 1
}

@test "queue-list: a queue without hold/ (made before it existed) is listed" {
	new_message "$FROM" alice@example.test
	rmdir "$QUEUEDIR/hold" 2>/dev/null || true
	run -0 queue-list -t
	assert_equal "$(cut -f 1 <<<"$output")" "$ID"
	[ ! -e "$QUEUEDIR/hold" ] || fail "queue-list created hold/"
}

@test "queue-list: usage errors exit 100 with one stderr line" {
	run --separate-stderr -100 queue-list -x
	assert_one_stderr_line queue-list
	run --separate-stderr -100 queue-list -d ''
	assert_one_stderr_line queue-list
	run --separate-stderr -100 queue-list -d user@example.test
	assert_one_stderr_line queue-list
}

@test "queue-list: no QUEUEDIR, a missing queue, or one it may not read: exit 111" {
	unset QUEUEDIR
	run --separate-stderr -111 queue-list
	assert_one_stderr_line queue-list
	QUEUEDIR=$BATS_TEST_TMPDIR/nonexistent run --separate-stderr -111 queue-list
	assert_one_stderr_line queue-list
	make_private_dir
	queue-init "$PRIVATE_DIR/queue"
	chmod 0700 "$PRIVATE_DIR/queue"
	QUEUEDIR=$PRIVATE_DIR/queue run --separate-stderr -111 as_nobody "$BIN/queue-list"
	assert_one_stderr_line queue-list
	[[ $stderr == "queue-list: fatal: "*"Permission denied" ]] || fail "stderr: $stderr"
}

# --- queue-flush -------------------------------------------------------------------------------

@test "queue-flush: every message in msg/ due now, one line each, and 'F' on the trigger" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.org
	id2=$ID
	due_in "$id1" 3600
	due_in "$id2" 7200
	open_trigger
	t0=$(date +%s)
	run --separate-stderr -0 queue-flush
	t1=$(date +%s)
	[ -z "$stderr" ]
	assert_equal "$(sort <<<"$output")" "$(printf '%s: due now\n' "$id1" "$id2" | sort)"
	assert_mtime_between "$id1" "$t0" "$t1"
	assert_mtime_between "$id2" "$t0" "$t1"
	assert_equal "$(trigger_bytes)" 46
}

@test "queue-flush: nobody reading the trigger is fine" {
	new_message "$FROM" alice@example.test
	due_in "$ID" 3600
	run --separate-stderr -0 queue-flush
	assert_output "$ID: due now"
}

@test "queue-flush on an empty queue: nothing to say, still 'F'" {
	open_trigger
	run --separate-stderr -0 queue-flush
	assert_output ""
	assert_equal "$(trigger_bytes)" 46
}

@test "queue-flush -d DOMAIN: messages with a recipient or a deferred target there" {
	new_message "$FROM" alice@example.test
	local_id=$ID
	new_message "$FROM" carol@example.org
	org_id=$ID
	new_message "$FROM" team@example.test
	alias_id=$ID
	add_records "$alias_id" "Lfriend@Example.ORG${T}4.4.1 connection refused"
	for id in "$local_id" "$org_id" "$alias_id"; do due_in "$id" 3600; done
	before=$(mtime "$local_id")
	open_trigger
	t0=$(date +%s)
	run --separate-stderr -0 queue-flush -d example.ORG
	t1=$(date +%s)
	assert_equal "$(sort <<<"$output")" "$(printf '%s: due now\n' "$org_id" "$alias_id" | sort)"
	assert_mtime_between "$org_id" "$t0" "$t1"
	assert_mtime_between "$alias_id" "$t0" "$t1"
	assert_equal "$(mtime "$local_id")" "$before"
	assert_equal "$(trigger_bytes)" 46
}

@test "queue-flush ID...: only those; an unknown, held or invalid id is an error, exit 100" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.test
	id2=$ID
	new_message "$FROM" carol@example.test
	id3=$ID
	for id in "$id1" "$id2" "$id3"; do due_in "$id" 3600; done
	before=$(mtime "$id2")
	run -0 queue-hold "$id3"
	open_trigger
	run --separate-stderr -100 queue-flush "$id1" 1795437612-000000-1 "$id3" .hidden
	assert_output "$id1: due now"
	assert_equal "${#stderr_lines[@]}" 3
	assert_equal "${stderr_lines[0]}" "queue-flush: 1795437612-000000-1: not in the queue"
	assert_equal "${stderr_lines[1]}" "queue-flush: $id3: on hold: release it first"
	assert_equal "${stderr_lines[2]}" "queue-flush: .hidden: not a valid queue id"
	assert_equal "$(mtime "$id2")" "$before"
	[ -f "$QUEUEDIR/hold/$id3" ]
	assert_equal "$(trigger_bytes)" 46
}

@test "queue-flush: usage errors exit 100; no queue exits 111" {
	run --separate-stderr -100 queue-flush -x
	assert_one_stderr_line queue-flush
	run --separate-stderr -100 queue-flush -d @example.test
	assert_one_stderr_line queue-flush
	QUEUEDIR=$BATS_TEST_TMPDIR/nonexistent run --separate-stderr -111 queue-flush
	assert_one_stderr_line queue-flush
}

# --- queue-remove, queue-hold, queue-release ---------------------------------------------------

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

@test "queue-hold: msg/ -> hold/ unchanged, hold/ made with mode 0750 when missing; again: already" {
	new_message "$FROM" alice@example.test
	add_records "$ID" "Lalice@example.test${T}4.2.2 over quota"
	cp "$QUEUEDIR/msg/$ID" "$BATS_TEST_TMPDIR/before"
	rmdir "$QUEUEDIR/hold" 2>/dev/null || true
	umask 077
	run --separate-stderr -0 queue-hold "$ID"
	assert_output "$ID: held"
	[ -z "$stderr" ]
	assert_equal "$(stat -c %a "$QUEUEDIR/hold")" 750
	[ ! -e "$QUEUEDIR/msg/$ID" ]
	cmp "$BATS_TEST_TMPDIR/before" "$QUEUEDIR/hold/$ID"
	run --separate-stderr -0 queue-hold "$ID"
	assert_output "$ID: already on hold"
}

@test "queue-hold waits for the lock holder; a message finished meanwhile is not in the queue" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.test
	id2=$ID
	# the older queue-run's end: a message with failures moved to bounce/
	hold_lock "$QUEUEDIR/msg/$id1" 'mv "$4" "${4%/msg/*}/bounce/"'
	start_tool queue-hold "$id1"
	tool_waits
	release_lock
	tool_wait
	assert_equal "$STATUS" 100
	assert_equal "$(cat "$ERR")" "queue-hold: $id1: not in the queue (delivered meanwhile?)"
	[ -f "$QUEUEDIR/bounce/$id1" ] && [ ! -e "$QUEUEDIR/hold/$id1" ]
	# and one that stays is held once the holder lets go
	hold_lock "$QUEUEDIR/msg/$id2"
	start_tool queue-hold "$id2"
	tool_waits
	[ -f "$QUEUEDIR/msg/$id2" ] || fail "moved while locked"
	release_lock
	tool_wait
	assert_equal "$STATUS" 0
	[ -f "$QUEUEDIR/hold/$id2" ] && [ ! -e "$QUEUEDIR/msg/$id2" ]
}

@test "queue-hold: a hold that is not a directory is a system error (111), the message stays" {
	new_message "$FROM" alice@example.test
	rmdir "$QUEUEDIR/hold" 2>/dev/null || true
	echo file >"$QUEUEDIR/hold"
	run --separate-stderr -111 queue-hold "$ID"
	assert_one_stderr_line queue-hold
	assert_equal "$stderr" "queue-hold: $ID: unable to create hold/: Not a directory"
	[ -f "$QUEUEDIR/msg/$ID" ]
}

@test "queue-release: hold/ -> msg/, due now, a plain byte on the trigger; not held: said so" {
	new_message "$FROM" alice@example.test
	id1=$ID
	new_message "$FROM" bob@example.test
	id2=$ID
	run -0 queue-hold "$id1"
	due_in "$id1" 3600 hold
	cp "$QUEUEDIR/hold/$id1" "$BATS_TEST_TMPDIR/before"
	open_trigger
	t0=$(date +%s)
	run --separate-stderr -0 queue-release "$id1" "$id2"
	t1=$(date +%s)
	assert_equal "$output" "$id1: released"$'\n'"$id2: not on hold"
	[ -z "$stderr" ]
	[ ! -e "$QUEUEDIR/hold/$id1" ]
	cmp "$BATS_TEST_TMPDIR/before" "$QUEUEDIR/msg/$id1"
	assert_mtime_between "$id1" "$t0" "$t1"
	assert_equal "$(trigger_bytes)" 00
	run -0 queue-list -t
	assert_equal "$(cut -f 6 <<<"$output")" "deferred"$'\n'"deferred"
}

@test "queue-release: an unknown id is reported; exit 100; nothing on the trigger" {
	open_trigger
	run --separate-stderr -100 queue-release 1795437612-000000-1
	assert_output ""
	assert_equal "$stderr" "queue-release: 1795437612-000000-1: not in the queue"
	assert_equal "$(trigger_bytes)" ""
}

@test "queue-run delivers nothing held; the released message is delivered" {
	make_userdb
	new_message "$FROM" alice@example.test
	run -0 queue-hold "$ID"
	run -0 queue-run -1
	assert_count 0 msg_count "$(mailbox alice)"
	[ -f "$QUEUEDIR/hold/$ID" ]
	run -0 queue-release "$ID"
	run -0 queue-run -1
	assert_count 1 msg_count "$(mailbox alice)"
	run -0 queue-list
	assert_output "queue is empty"
}
