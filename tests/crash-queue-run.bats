#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-run's local delivery under power cuts (issue 19), on crashfs (tests/tools/crashfs.c):
# the queue and the mail root on one mount, a queued message delivered by queue-run -1 through
# maildir-deliver (-d, as tests/queue-run.bats runs it) or in-process, the power cut at each sync
# point in turn, then the disk mounted again and queue-run -1 run once more, as a start-up would.
# The promise of queue(5), CRASH SAFETY: after any cut the message is still queued whole or
# delivered, never lost; a delivery may repeat (a cut between the delivery and its record or
# the queue file's removal), never once the removal or the record is durable; the Maildir's
# new/ and cur/ hold only whole messages; the records are whole and name only what is durable.

load lib/common
load lib/crashfs

FROM=sender@remote.test

setup() {
	crashfs_require
	DISK=$BATS_TEST_TMPDIR/disk
	MNT=$BATS_TEST_TMPDIR/mnt
	MSG=$BATS_TEST_TMPDIR/message
	ENV=$BATS_TEST_TMPDIR/envelope
	# Over carol's quota of 2000 bytes (the fixture): her delivery is deferred.
	make_message "$MSG" qrc-1 3000
	make_userdb
	DELIVER=$(command -v maildir-deliver)
}

teardown() {
	crashfs_teardown
	common_teardown
}

# run_on_mount MODE: queue-run -1 on the mount, through maildir-deliver (MODE program) or
# in-process (MODE inprocess), bounded in time; its status and stderr in $status and $stderr.
run_on_mount() {
	local -a opt=()
	[ "$1" = inprocess ] || opt=(-d "$DELIVER")
	run --separate-stderr timeout 60 env QUEUEDIR="$MNT/queue" MAILROOT="$MNT/mail" \
		queue-run -1 "${opt[@]}"
	[ "$status" -ne 124 ] || fail "queue-run -1 did not end within 60 s: $stderr"
}

# count_sync_points MODE RCPT...: sets SYNCS to the sync points of one queue-run -1 delivering
# the message, which must exit 0.
count_sync_points() {
	local mode=$1
	shift
	crash_fresh_queue "$@"
	crashfs_mount "$DISK" "$MNT"
	run_on_mount "$mode"
	[ "$status" -eq 0 ] || fail "queue-run -1 exited $status: $stderr"
	SYNCS=$(crashfs_syncs "$MNT")
	crashfs_umount "$MNT"
}

# copies USER: sets COPIES to the number of files in USER's Maildir's new/ and cur/ on the
# mount, after checking that each is the whole message as queue-run delivers it.
copies() {
	local user=$1 f
	COPIES=0
	for f in "$MNT/mail/example.test/$user"/{new,cur}/*; do
		[ -e "$f" ] || continue
		assert_delivered "$f" "$FROM" "$user@example.test" "$MSG" "$user@example.test"
		COPIES=$((COPIES + 1))
	done
}

# queue_state: on the mount, checks that msg/ holds at most the one queue file, whole, and that
# nothing is in hold/ or bounce/. Sets QUEUED (0 or 1) and RECORDS (its records, one a line).
queue_state() {
	local -a msgs=("$MNT"/queue/msg/*)
	[ -e "${msgs[0]}" ] || msgs=()
	QUEUED=${#msgs[@]}
	RECORDS=
	[ "$QUEUED" -le 1 ] || fail "$WHAT: msg/ holds $QUEUED files"
	if [ "$QUEUED" = 1 ]; then
		RECORDS=$("$PYTHON" "$TESTLIB/queue_records.py" "${msgs[0]}" "$MSG" "$ENV" 2>&1) ||
			fail "$WHAT: ${msgs[0]##*/}: $RECORDS"
		[[ $RECORDS != *torn* ]] || fail "$WHAT: a torn record survived a cut: $RECORDS"
	fi
	assert_count 0 file_count "$MNT/queue/hold"
	assert_count 0 file_count "$MNT/queue/bounce"
	run --separate-stderr -0 env QUEUEDIR="$MNT/queue" queue-list -t
	[[ $output != *invalid* ]] || fail "$WHAT: queue-list sees a file that is not a queue file: $output"
}

# has_record LETTER ADDRESS: RECORDS names it.
has_record() {
	grep -qx "$1 $2" <<<"$RECORDS"
}

# crash_each_sync_point MODE RCPT...: for each N from 0 to the sync points of one delivery,
# the power cut after N of them, then mounted again; calls check_after_cut, runs queue-run -1
# again (the recovery), which must exit 0, and calls check_after_recovery, with N in $N,
# the count in $SYNCS and a description in $WHAT.
crash_each_sync_point() {
	local mode=$1
	shift
	count_sync_points "$mode" "$@"
	[ "$SYNCS" -ge 1 ] || fail "queue-run made $SYNCS sync points"
	for ((N = 0; N <= SYNCS; N++)); do
		WHAT="$mode, cut after $N of $SYNCS sync points"
		crash_fresh_queue "$@"
		crashfs_mount "$DISK" "$MNT"
		crashfs_cut_after "$MNT" "$N"
		run_on_mount "$mode"
		if [ "$N" -eq "$SYNCS" ]; then
			[ "$status" -eq 0 ] || fail "$WHAT: queue-run -1 exited $status: $stderr"
			[ "$(crashfs_power "$MNT")" = on ] || fail "$WHAT: the power went off"
			crashfs_cut "$MNT"
		else
			[ "$(crashfs_power "$MNT")" = off ] || fail "$WHAT: the power is still on"
		fi
		crashfs_umount "$MNT"

		crashfs_mount "$DISK" "$MNT"
		check_after_cut
		run_on_mount "$mode"
		[ "$status" -eq 0 ] || fail "$WHAT: the recovery's queue-run -1 exited $status: $stderr"
		check_after_recovery
		crashfs_umount "$MNT"
	done
}

# One recipient: delivered, then the queue file removed (all targets final): no record.
one_recipient() {
	check_after_cut() {
		queue_state
		copies alice
		BEFORE=$COPIES WASQUEUED=$QUEUED
		[ -z "$RECORDS" ] || fail "$WHAT: records in the queue file: $RECORDS"
		[ "$QUEUED" = 1 ] || [ "$COPIES" = 1 ] ||
			fail "$WHAT: the message is neither queued nor delivered: lost ($COPIES copies)"
		[ "$COPIES" -le 1 ] || fail "$WHAT: $COPIES copies before the recovery"
		if [ "$N" -eq "$SYNCS" ]; then
			[ "$QUEUED" = 0 ] || fail "$WHAT: after the removal's sync the message is queued again"
		fi
	}
	check_after_recovery() {
		queue_state
		[ "$QUEUED" = 0 ] || fail "$WHAT: still queued after the recovery"
		copies alice
		if [ "$WASQUEUED" = 0 ]; then
			[ "$COPIES" = 1 ] || fail "$WHAT: $COPIES copies after the recovery, none was queued"
		else
			# Queued still: delivered (again, if the cut undid only its removal).
			[ "$COPIES" = $((BEFORE + 1)) ] ||
				fail "$WHAT: $COPIES copies after the recovery, $BEFORE before it"
		fi
	}
	crash_each_sync_point "$1" alice@example.test
}

@test "queue-run through maildir-deliver, the power cut after each sync point: queued whole or delivered, never lost, never twice after the removal is durable" {
	one_recipient program
}

@test "queue-run delivering in-process, the power cut after each sync point: queued whole or delivered, never lost, never twice after the removal is durable" {
	one_recipient inprocess
}

# Two recipients, alice delivered and carol deferred (over quota): the attempt appends the
# records D alice and L carol to the queue file and flushes it; the message stays queued.
delivered_and_deferred() {
	check_after_cut() {
		queue_state
		[ "$QUEUED" = 1 ] || fail "$WHAT: the message left the queue with carol pending"
		copies alice
		BEFORE=$COPIES HADRECORD=no
		[ "$COPIES" -le 1 ] || fail "$WHAT: $COPIES copies to alice before the recovery"
		if has_record D alice@example.test; then
			HADRECORD=yes
			[ "$COPIES" = 1 ] || fail "$WHAT: a D record for alice, and $COPIES copies in her Maildir"
		fi
		! has_record D carol@example.test || fail "$WHAT: a D record for carol, who is over quota"
		[ "$(grep -cv '^[DL] ' <<<"$RECORDS")" = 0 ] || [ -z "$RECORDS" ] ||
			fail "$WHAT: records other than D and L: $RECORDS"
		if [ "$N" -eq "$SYNCS" ]; then
			[ "$HADRECORD" = yes ] && has_record L carol@example.test ||
				fail "$WHAT: after every sync point the records are '$RECORDS'"
		fi
		copies carol
		[ "$COPIES" = 0 ] || fail "$WHAT: carol, over quota, has $COPIES copies"
	}
	check_after_recovery() {
		queue_state
		[ "$QUEUED" = 1 ] || fail "$WHAT: the message left the queue after the recovery, carol pending"
		has_record D alice@example.test || fail "$WHAT: no D record for alice after the recovery: $RECORDS"
		[ "$(grep -c '^D alice@example.test$' <<<"$RECORDS")" = 1 ] ||
			fail "$WHAT: alice's D record is there more than once: $RECORDS"
		has_record L carol@example.test || fail "$WHAT: no L record for carol after the recovery: $RECORDS"
		copies alice
		if [ "$HADRECORD" = yes ]; then
			[ "$COPIES" = 1 ] || fail "$WHAT: delivered again to alice though her D record was durable ($COPIES copies)"
		else
			[ "$COPIES" = $((BEFORE + 1)) ] ||
				fail "$WHAT: $COPIES copies to alice after the recovery, $BEFORE before it"
		fi
		copies carol
		[ "$COPIES" = 0 ] || fail "$WHAT: carol, over quota, has $COPIES copies"
	}
	crash_each_sync_point "$1" alice@example.test carol@example.test
}

@test "queue-run through maildir-deliver, one target delivered and one deferred, cut after each sync point: the D record only after a durable delivery, never a second delivery after it" {
	delivered_and_deferred program
}

@test "queue-run in-process, one target delivered and one deferred, cut after each sync point: the D record only after a durable delivery, never a second delivery after it" {
	delivered_and_deferred inprocess
}
