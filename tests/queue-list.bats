#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-list: both forms, states from the records, filters, held, active and invalid files,
# bad and unknown ids, exit codes.

load lib/common
load lib/queue_tools

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
