#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-run's remote-delivery bookkeeping under power cuts (issue 19), on crashfs
# (tests/tools/crashfs.c): the queue on the mount, its message sent by queue-run -1 over SMTP to
# a scripted peer (tests/lib/smtp_peer.py, in the network of tests/lib/world.bash, reached as
# SMARTHOST by address, so queue-run needs the world's network only and sees the mount), the
# power cut at each sync point in turn, then the disk mounted again and queue-run -1 run once
# more, as a start-up would. What queue(5) promises (CRASH SAFETY) is at-least-once, the SMTP
# norm: a recipient the peer accepted is sent again after a cut that came before its S record
# (or the queue file's removal) was durable, and never after; a recipient is never lost; the
# queue file stays whole, its records name what the peer took.

load lib/common
load lib/crashfs
load lib/world

FROM=sender@example.test

setup() {
	crashfs_require
	world_start
	DISK=$BATS_TEST_TMPDIR/disk
	MNT=$BATS_TEST_TMPDIR/mnt
	MSG=$BATS_TEST_TMPDIR/message
	ENV=$BATS_TEST_TMPDIR/envelope
	SESSIONS=$BATS_TEST_TMPDIR/sessions.log
	# Over carol's quota of 2000 bytes (the fixture): her local delivery is deferred.
	make_message "$MSG" rc-1 3000
	make_userdb
	export SMARTHOST=127.0.0.2:25 SMTP_TLS=none RETRY_MIN=1 RETRY_MAX=2 CONNECTION_CACHE_TIME=0
	export SMTP_SEND_TIMEOUTS=connect=10,greeting=10,helo=10,mail=10,rcpt=10,data=10,block=10,dot=10
	export SMTP_HOSTNAME=mx.example.test
	world_peer 2 PEER_LOG="$SESSIONS" -- "$PYTHON" "$TESTLIB/smtp_peer.py" smtp
}

teardown() {
	crashfs_teardown
	world_teardown
}

# run_on_mount: queue-run -1 on the mount, in the world's network, bounded in time.
run_on_mount() {
	run --separate-stderr timeout 60 nsenter -t "$WORLD_PID" -n -- \
		env QUEUEDIR="$MNT/queue" MAILROOT="$MNT/mail" queue-run -1
	[ "$status" -ne 124 ] || fail "$WHAT: queue-run -1 did not end within 60 s: $stderr"
}

# sent_to ADDRESS: how many transactions the peer completed whose first RCPT was ADDRESS, from
# its log.
sent_to() {
	"$PYTHON" - "$SESSIONS" "$1" <<'PY'
import ast, re, sys
data = b""
n = 0
for line in open(sys.argv[1], "rb"):
    tag, _, rest = line.rstrip(b"\n").partition(b" ")
    if tag == b"READ":
        data += ast.literal_eval(rest.decode())
    elif tag == b"CONNECT":
        data += b"\nCONNECT\n"
first = None
for cmd in data.split(b"\n"):
    cmd = cmd.rstrip(b"\r")
    u = cmd.upper()
    if u.startswith(b"MAIL FROM:") or cmd == b"CONNECT" or u == b"RSET":
        first = None
    elif u.startswith(b"RCPT TO:") and first is None:
        first = re.match(rb"RCPT TO:<([^>]*)>", cmd, re.I).group(1).decode()
    elif cmd == b"." and first is not None:
        n += first.lower() == sys.argv[2]
        first = None
print(n)
PY
}

# queue_state: on the mount, msg/ holds at most the queue file, whole (tests/lib/queue_records.py):
# sets QUEUED (0 or 1) and RECORDS.
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
}

has_record() {
	grep -qx "$1 $2" <<<"$RECORDS"
}

# crash_each_sync_point RCPT...: as in crash-queue-run.bats: count, then for each N cut, mount
# again, check_after_cut, queue-run -1 (the recovery), check_after_recovery; the peer's count of
# transactions for the first recipient before the cut's run in $SENT0.
crash_each_sync_point() {
	crash_fresh_queue "$@"
	crashfs_mount "$DISK" "$MNT"
	WHAT="no cut"
	run_on_mount
	[ "$status" -eq 0 ] || fail "queue-run -1 exited $status: $stderr"
	SYNCS=$(crashfs_syncs "$MNT")
	crashfs_umount "$MNT"
	[ "$SYNCS" -ge 1 ] || fail "queue-run made $SYNCS sync points"
	for ((N = 0; N <= SYNCS; N++)); do
		WHAT="cut after $N of $SYNCS sync points"
		crash_fresh_queue "$@"
		: >"$SESSIONS"
		crashfs_mount "$DISK" "$MNT"
		crashfs_cut_after "$MNT" "$N"
		run_on_mount
		if [ "$N" -eq "$SYNCS" ]; then
			[ "$status" -eq 0 ] || fail "$WHAT: queue-run -1 exited $status: $stderr"
			[ "$(crashfs_power "$MNT")" = on ] || fail "$WHAT: the power went off"
			crashfs_cut "$MNT"
		else
			[ "$(crashfs_power "$MNT")" = off ] || fail "$WHAT: the power is still on"
		fi
		crashfs_umount "$MNT"
		[ "$(sent_to bob@remote.test)" = 1 ] ||
			fail "$WHAT: the peer took bob's message $(sent_to bob@remote.test) times before the cut"
		crashfs_mount "$DISK" "$MNT"
		check_after_cut
		run_on_mount
		[ "$status" -eq 0 ] || fail "$WHAT: the recovery's queue-run -1 exited $status: $stderr"
		check_after_recovery
		crashfs_umount "$MNT"
	done
}

@test "queue-run sending to one remote recipient, the power cut after each sync point: sent again only while the queue file's removal was not durable, never lost" {
	check_after_cut() {
		queue_state
		WASQUEUED=$QUEUED
		[ -z "$RECORDS" ] || fail "$WHAT: records in the queue file: $RECORDS"
		if [ "$N" -eq "$SYNCS" ]; then
			[ "$QUEUED" = 0 ] || fail "$WHAT: after the removal's sync the message is queued again"
		fi
	}
	check_after_recovery() {
		queue_state
		[ "$QUEUED" = 0 ] || fail "$WHAT: still queued after the recovery"
		local want=1
		# Still queued: at-least-once, the peer gets it again.
		[ "$WASQUEUED" = 0 ] || want=2
		[ "$(sent_to bob@remote.test)" = "$want" ] ||
			fail "$WHAT: the peer took bob's message $(sent_to bob@remote.test) times, expected $want"
	}
	crash_each_sync_point bob@remote.test
}

@test "queue-run, one remote recipient accepted and a local one deferred (over quota), the power cut after each sync point: the accepted one is never sent again once its S record is durable; the deferred one stays pending" {
	check_after_cut() {
		queue_state
		[ "$QUEUED" = 1 ] || fail "$WHAT: the message left the queue with carol pending"
		HADRECORD=no
		if has_record S bob@remote.test; then HADRECORD=yes; fi
		! has_record S carol@example.test || fail "$WHAT: an S record for carol, who is over quota"
		if [ "$N" -eq "$SYNCS" ]; then
			[ "$HADRECORD" = yes ] && has_record L carol@example.test ||
				fail "$WHAT: after every sync point the records are '$RECORDS'"
		fi
	}
	check_after_recovery() {
		queue_state
		[ "$QUEUED" = 1 ] || fail "$WHAT: the message left the queue after the recovery, carol pending"
		has_record S bob@remote.test || fail "$WHAT: no S record for bob after the recovery: $RECORDS"
		[ "$(grep -c '^S bob@remote.test$' <<<"$RECORDS")" = 1 ] || fail "$WHAT: bob's S record twice: $RECORDS"
		has_record L carol@example.test || fail "$WHAT: no L record for carol after the recovery: $RECORDS"
		local want=1
		[ "$HADRECORD" = yes ] || want=2
		[ "$(sent_to bob@remote.test)" = "$want" ] ||
			fail "$WHAT: the peer took bob's message $(sent_to bob@remote.test) times, S record durable: $HADRECORD"
	}
	crash_each_sync_point bob@remote.test carol@example.test
}
