#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# queue-run: address resolution (mailboxes, aliases, loops, catch-all, +tag), Maildir delivery
# in-process and through an external program, results (done, bounce, deferred), the log lines,
# concurrency with queue-inject, and crash safety under kill -9.

load lib/common
load lib/aliases
load lib/world

FROM=sender@remote.test
DELAY='delay=[0-9]+\.[0-9]{3}s'

setup() {
	# Remote addresses resolve in a world of their own, to a host that refuses connections: a
	# remote target waits (421 4.4.1), and no query leaves the machine.
	world_start 'remote.test MX 10 mx.remote.test' 'mx.remote.test A 127.0.0.2' \
		'other.test MX 10 mx.remote.test'
	make_queue
	make_userdb
	MSG=$BATS_TEST_TMPDIR/message
	make_message "$MSG" qr-1
	LOG=$BATS_TEST_TMPDIR/queue-run.log
}

teardown() {
	world_teardown
}

# run_queue [OPTION...]: queue-run -1 in the world, which must exit 0; its stderr goes to $LOG.
run_queue() {
	run --separate-stderr -0 in_world queue-run -1 "$@"
	printf '%s\n' "$stderr" >"$LOG"
}

# queued_id: the id of the one message in msg/.
queued_id() {
	local -a f=("$QUEUEDIR"/msg/*)
	[ "${#f[@]}" -eq 1 ] && [ -f "${f[0]}" ] || fail "expected one message in msg/, got ${#f[@]}"
	echo "${f[0]##*/}"
}

# assert_only_in USER...: alice, bob and carol each have one message if named, none if not.
assert_only_in() {
	local u want
	for u in alice bob carol; do
		want=0
		case " $* " in *" $u "*) want=1 ;; esac
		assert_count "$want" msg_count "$MAILROOT/example.test/$u"
	done
}

# assert_noticed ID: message ID finished with failures: it left the queue, and the one file in
# msg/ is the notice to $FROM that says so (from <>, not yet sent: -1 looked at msg/ before).
assert_noticed() {
	local idre f
	idre=$(re_escape "$1")
	[ ! -e "$QUEUEDIR/msg/$1" ] || fail "msg/$1 is still there"
	assert_count 0 file_count "$QUEUEDIR/bounce"
	f=("$QUEUEDIR"/msg/*)
	[ "${#f[@]}" -eq 1 ] && [ -f "${f[0]}" ] || fail "expected the notice alone in msg/, got ${#f[@]}"
	assert_log "queue-run: $idre notice id=${f[0]##*/} to=<sender@remote\.test> recipients=[0-9]+ action=failed" "$LOG"
	assert_log "queue-run: $idre done with failures" "$LOG"
	# Its envelope: from <>, to the sender.
	local len
	len=$(head -n 1 "${f[0]}" | awk '{ print $2 + 0 }')
	[ "$(tail -c +$((26 + len + 1)) "${f[0]}" | tr '\0' '|')" = "F|Tsender@remote.test||" ] ||
		fail "the notice's envelope is $(tail -c +$((26 + len + 1)) "${f[0]}" | tr '\0' '|')"
}

# assert_finished: msg/ and bounce/ are empty.
assert_finished() {
	assert_count 0 file_count "$QUEUEDIR/msg"
	assert_count 0 file_count "$QUEUEDIR/bounce"
}

@test "mailbox: delivered to alice's Maildir with Return-Path and Delivered-To; removed from the queue" {
	run -0 inject "$FROM" alice@example.test <"$MSG"
	run_queue
	assert_only_in alice
	assert_delivered "$(maildir_files "$(mailbox alice)")" "$FROM" alice@example.test "$MSG" alice@example.test
	assert_finished
}

@test "log lines: queue id, from=, to=, result=delivered, delay=, then done" {
	run -0 inject "$FROM" alice@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	idre=$(re_escape "$id")
	assert_log "queue-run: $idre from=<sender@remote\.test> to=<alice@example\.test> result=delivered $DELAY" "$LOG"
	assert_log "queue-run: $idre done" "$LOG"
	refute_log ".*result=(failed|deferred).*" "$LOG"
}

@test "log lines: an alias delivery names the target and orig_to=" {
	run -0 inject "$FROM" postmaster@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	assert_log "queue-run: $(re_escape "$id") from=<sender@remote\.test> to=<alice@example\.test> orig_to=<postmaster@example\.test> result=delivered $DELAY" "$LOG"
}

@test "log lines: the null sender shows as from=<>" {
	run -0 inject "" alice@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	assert_log "queue-run: $(re_escape "$id") from=<> to=<alice@example\.test> result=delivered $DELAY" "$LOG"
	assert_delivered "$(maildir_files "$(mailbox alice)")" "" alice@example.test "$MSG" alice@example.test
}

@test "alias: postmaster@ goes to alice, Delivered-To is the mailbox address" {
	run -0 inject "$FROM" postmaster@example.test <"$MSG"
	run_queue
	assert_only_in alice
	assert_delivered "$(maildir_files "$(mailbox alice)")" "$FROM" alice@example.test "$MSG" postmaster@example.test
	assert_finished
}

@test "alias with two targets: team@ goes to alice and bob" {
	run -0 inject "$FROM" team@example.test <"$MSG"
	run_queue
	assert_only_in alice bob
	assert_delivered "$(maildir_files "$(mailbox alice)")" "$FROM" alice@example.test "$MSG" team@example.test
	assert_delivered "$(maildir_files "$(mailbox bob)")" "$FROM" bob@example.test "$MSG" team@example.test
	assert_finished
}

@test "recursive alias: all@ -> team@,carol@ -> alice, bob, carol" {
	run -0 inject "$FROM" all@example.test <"$MSG"
	run_queue
	assert_only_in alice bob carol
	assert_delivered "$(maildir_files "$(mailbox carol)")" "$FROM" carol@example.test "$MSG" all@example.test
	assert_delivered "$(maildir_files "$(mailbox bob)")" "$FROM" bob@example.test "$MSG" all@example.test
	assert_finished
}

@test "alias loop: loop1@ fails permanently (5.4.6), alice still delivered, the sender gets a notice" {
	run -0 inject "$FROM" loop1@example.test alice@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	assert_only_in alice
	assert_noticed "$id"
	idre=$(re_escape "$id")
	assert_log "queue-run: $idre from=<sender@remote\.test> to=<loop1@example\.test> result=failed $DELAY reason=\"5\.4\.6 alias loop\"" "$LOG"
	assert_log "queue-run: $idre from=<sender@remote\.test> to=<alice@example\.test> result=delivered $DELAY" "$LOG"
	refute_log "queue-run: $idre done" "$LOG"
}

@test "alias loop alone: loop2@ fails, a notice, nothing delivered" {
	run -0 inject "$FROM" loop2@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	assert_only_in
	assert_noticed "$id"
	assert_log ".* result=failed .*reason=\"5\.4\.6 alias loop\"" "$LOG"
}

# ab_layout TARGETS: the lost-mail layout of issue 11: a keeps a copy and forwards to b, which
# leads back to a; TARGETS is a's alias targets, b and a in either order.
ab_layout() {
	make_userdb 'mailbox a@example.test x example.test/a/' \
		"alias a@example.test $1" 'alias b@example.test a@example.test'
}

@test "a loop beside a mailbox: a -> b,a and b -> a delivers to a's mailbox, in either order" {
	for targets in b@example.test,a@example.test a@example.test,b@example.test; do
		ab_layout "$targets"
		rm -rf "$(mailbox a)"
		run -0 inject "$FROM" a@example.test <"$MSG"
		run_queue
		assert_count 1 msg_count "$(mailbox a)"
		assert_delivered "$(maildir_files "$(mailbox a)")" "$FROM" a@example.test "$MSG" a@example.test
		refute_log ".*result=failed.*" "$LOG"
		assert_finished
	done
	# b, which reaches a's mailbox through a, is delivered there too
	run -0 inject "$FROM" b@example.test <"$MSG"
	run_queue
	assert_count 2 msg_count "$(mailbox a)"
	assert_finished
}

@test "an alias whose only way out is a loop still fails 5.4.6 and bounces" {
	make_userdb 'alias x@example.test loop1@example.test'
	run -0 inject "$FROM" x@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	assert_only_in
	assert_noticed "$id"
	assert_log "queue-run: $(re_escape "$id") from=<sender@remote\.test> to=<x@example\.test> result=failed $DELAY reason=\"5\.4\.6 alias loop\"" "$LOG"
}

@test "a chain of 10 aliases each naming the next many times is expanded once: one delivery, in time" {
	mapfile -t users < <(chain 10 10)
	make_userdb "${users[@]}"
	run -0 inject "$FROM" c1@example.test bob@example.test <"$MSG"
	# 10^10 paths: without expanding each alias once this would not end for hours
	run --separate-stderr -0 in_world timeout 10 queue-run -1
	printf '%s\n' "$stderr" >"$LOG"
	assert_only_in alice bob
	assert_log ".* to=<alice@example\.test> orig_to=<c1@example\.test> result=delivered .*" "$LOG"
	assert_finished
}

@test "an expansion over 1000 targets fails as a whole (5.4.6 too large), leaving no target behind" {
	mapfile -t users < <(wide 40 26)
	make_userdb "${users[@]}"
	run -0 inject "$FROM" wide@example.test alice@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	assert_only_in alice
	assert_noticed "$id"
	assert_log "queue-run: $(re_escape "$id") from=<sender@remote\.test> to=<wide@example\.test> result=failed $DELAY reason=\"5\.4\.6 alias expansion too large\"" "$LOG"
	refute_log ".*result=deferred.*" "$LOG"
}

@test "catch-all: anything@other.test goes to bob, Delivered-To bob@example.test" {
	run -0 inject "$FROM" anything@other.test <"$MSG"
	run_queue
	assert_only_in bob
	assert_delivered "$(maildir_files "$(mailbox bob)")" "$FROM" bob@example.test "$MSG" anything@other.test
	assert_finished
}

@test "catch-all is case-insensitive: Someone.Else@OTHER.Test goes to bob" {
	run -0 inject "$FROM" Someone.Else@OTHER.Test <"$MSG"
	run_queue
	assert_only_in bob
	assert_finished
}

@test "+tag: alice+news@example.test goes to alice, Delivered-To alice@example.test" {
	run -0 inject "$FROM" alice+news@example.test <"$MSG"
	run_queue
	assert_only_in alice
	assert_delivered "$(maildir_files "$(mailbox alice)")" "$FROM" alice@example.test "$MSG" alice+news@example.test
	assert_finished
}

@test "+tag on an alias: team+x@example.test goes to alice and bob" {
	run -0 inject "$FROM" team+x@example.test <"$MSG"
	run_queue
	assert_only_in alice bob
	assert_finished
}

@test "+tag: the base is the part before the first +: alice+a+b@ goes to alice" {
	run -0 inject "$FROM" alice+a+b@example.test <"$MSG"
	run_queue
	assert_only_in alice
	assert_finished
}

@test "an exact alias wins over the +tag base: bob+lists@ (an alias to carol) goes to carol" {
	make_userdb 'alias bob+lists@example.test carol@example.test'
	run -0 inject "$FROM" bob+lists@example.test bob+other@example.test <"$MSG"
	run_queue
	assert_count 1 msg_count "$(mailbox carol)"
	assert_count 1 msg_count "$(mailbox bob)"
	assert_delivered "$(maildir_files "$(mailbox carol)")" "$FROM" carol@example.test "$MSG" bob+lists@example.test
	assert_finished
}

@test "a catch-all applies only to unknown users, after the +tag base" {
	make_userdb 'alias @example.test carol@example.test'
	run -0 inject "$FROM" alice@example.test alice+x@example.test postmaster@example.test <"$MSG"
	run_queue
	assert_only_in alice
	rm -f "$(mailbox alice)"/new/*
	run -0 inject "$FROM" stranger@example.test <"$MSG"
	run_queue
	assert_only_in carol
	assert_finished
}

@test "an alias chain deeper than the depth limit (15 hops) fails permanently" {
	chain=()
	for i in $(seq 1 15); do chain+=("alias d$i@example.test d$((i + 1))@example.test"); done
	chain+=("alias d16@example.test alice@example.test")
	make_userdb "${chain[@]}"
	run -0 inject "$FROM" d1@example.test bob@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	assert_only_in bob
	assert_noticed "$id"
	# (the line may name the address where expansion stopped, with orig_to=<d1@...>)
	assert_log ".* (to=<d1@example\.test>|orig_to=<d1@example\.test>) result=failed .*" "$LOG"
}

@test "-c 2: at most two messages are delivered at once" {
	slow=$BATS_TEST_TMPDIR/slow
	running=$BATS_TEST_TMPDIR/running
	mkdir "$running"
	{
		echo '#!/bin/sh'
		echo "touch '$running'/\$\$"
		echo "ls '$running' | wc -l >>'$BATS_TEST_TMPDIR/counts'"
		echo 'sleep 0.3'
		echo "rm -f '$running'/\$\$"
		echo "exec '$(command -v maildir-deliver)' \"\$@\""
	} >"$slow"
	chmod +x "$slow"
	for i in 1 2 3 4 5 6; do
		run -0 inject "$FROM" alice@example.test <"$MSG"
	done
	run_queue -c 2 -d "$slow"
	assert_count 6 msg_count "$(mailbox alice)"
	max=$(sort -n "$BATS_TEST_TMPDIR/counts" | tail -n 1)
	[ "$max" -le 2 ] || fail "$max deliveries ran at once with -c 2"
	[ "$max" -eq 2 ] || fail "deliveries never ran in parallel with -c 2 (max $max)"
}

@test "RECIPIENT_DELIMITER=- : alice-news@ goes to alice" {
	run -0 inject "$FROM" alice-news@example.test <"$MSG"
	RECIPIENT_DELIMITER=- run_queue
	assert_only_in alice
	assert_finished
}

@test "RECIPIENT_DELIMITER empty disables +tags: alice+news@ is unknown" {
	run -0 inject "$FROM" alice+news@example.test <"$MSG"
	id=$(queued_id)
	RECIPIENT_DELIMITER= run_queue
	assert_only_in
	assert_noticed "$id"
	assert_log ".* to=<alice\+news@example\.test> result=failed .*reason=\"5\.1\.1 unknown user\"" "$LOG"
}

@test "addresses are case-insensitive: ALICE@Example.TEST goes to alice" {
	run -0 inject "$FROM" ALICE@Example.TEST <"$MSG"
	run_queue
	assert_only_in alice
	assert_delivered "$(maildir_files "$(mailbox alice)")" "$FROM" alice@example.test "$MSG" ALICE@Example.TEST
}

@test "alias targets are resolved case-insensitively: upper@ -> Alice@Example.TEST" {
	make_userdb 'alias upper@example.test Alice@Example.TEST,BOB@example.test'
	run -0 inject "$FROM" upper@example.test <"$MSG"
	run_queue
	assert_only_in alice bob
	assert_delivered "$(maildir_files "$(mailbox alice)")" "$FROM" alice@example.test "$MSG" upper@example.test
	assert_finished
}

@test "unknown user: result=failed 5.1.1, a notice to the sender, nothing delivered" {
	run -0 inject "$FROM" nosuchuser@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	assert_only_in
	assert_noticed "$id"
	idre=$(re_escape "$id")
	assert_log "queue-run: $idre from=<sender@remote\.test> to=<nosuchuser@example\.test> result=failed $DELAY reason=\"5\.1\.1 unknown user\"" "$LOG"
}

@test "a failed message is not tried again: the next pass tries the notice only" {
	run -0 inject "$FROM" nosuchuser@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	run_queue
	refute_log ".*to=<nosuchuser@example\.test>.*" "$LOG"
	assert_log "queue-run: [0-9-]+ from=<> to=<sender@remote\.test> result=deferred .*Connection refused.*" "$LOG"
}

@test "queue-run takes over what an earlier version left in bounce/: the sender gets its notice" {
	run -0 inject "$FROM" nosuchuser@example.test <"$MSG"
	id=$(queued_id)
	printf 'Rnosuchuser@example.test\t5.1.1 unknown user\0' >>"$QUEUEDIR/msg/$id"
	mv "$QUEUEDIR/msg/$id" "$QUEUEDIR/bounce/$id"
	run_queue
	assert_log "queue-run: $(re_escape "$id") moved from bounce/ to msg/: its notice is sent from there" "$LOG"
	assert_noticed "$id"
	refute_log ".*result=.*" "$LOG"
}

@test "a mailbox reached twice gets one copy: alice and team@" {
	run -0 inject "$FROM" alice@example.test team@example.test <"$MSG"
	run_queue
	assert_only_in alice bob
	assert_finished
}

@test "a mailbox reached three ways gets one copy: alice, postmaster@, all@, alice again" {
	run -0 inject "$FROM" alice@example.test postmaster@example.test all@example.test alice@example.test <"$MSG"
	run_queue
	assert_only_in alice bob carol
	assert_finished
}

@test "self-alias (forward and keep a copy): dave@ -> dave@,bob@" {
	make_userdb 'mailbox dave@example.test x example.test/dave/' \
		'alias dave@example.test dave@example.test,bob@example.test'
	run -0 inject "$FROM" dave@example.test <"$MSG"
	run_queue
	assert_count 1 msg_count "$(mailbox dave)"
	assert_only_in bob
	assert_delivered "$(maildir_files "$(mailbox dave)")" "$FROM" dave@example.test "$MSG" dave@example.test
	assert_finished
}

@test "an alias chain of five hops is followed" {
	make_userdb 'alias h1@example.test h2@example.test' 'alias h2@example.test h3@example.test' \
		'alias h3@example.test h4@example.test' 'alias h4@example.test h5@example.test' \
		'alias h5@example.test carol@example.test'
	run -0 inject "$FROM" h1@example.test <"$MSG"
	run_queue
	assert_only_in carol
	assert_finished
}

@test "remote recipient stays queued (deferred), the local co-recipient is delivered" {
	run -0 inject "$FROM" someone@remote.test alice@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	assert_only_in alice
	[ -f "$QUEUEDIR/msg/$id" ] || fail "msg/$id is gone"
	assert_count 0 file_count "$QUEUEDIR/bounce"
	idre=$(re_escape "$id")
	assert_log "queue-run: $idre from=<sender@remote\.test> to=<someone@remote\.test> result=deferred $DELAY reason=\"mx\.remote\.test\[127\.0\.0\.2\] 421 4\.4\.1 connect to mx\.remote\.test\[127\.0\.0\.2\]:25: Connection refused tls=none\"" "$LOG"
	assert_log "queue-run: $idre from=<sender@remote\.test> to=<alice@example\.test> result=delivered $DELAY" "$LOG"
	refute_log "queue-run: $idre (done|bounce)" "$LOG"
}

@test "a second pass does not deliver the recorded local recipient again" {
	run -0 inject "$FROM" someone@remote.test alice@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	run_queue
	assert_only_in alice
	[ -f "$QUEUEDIR/msg/$id" ] || fail "msg/$id is gone"
	refute_log ".*to=<alice@example\.test>.*" "$LOG"
	assert_log ".*to=<someone@remote\.test> result=deferred .*" "$LOG"
}

@test "a torn delivery record at the end of the queue file is ignored" {
	run -0 inject "$FROM" someone@remote.test alice@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	printf 'Dbob@exa' >>"$QUEUEDIR/msg/$id"
	run_queue
	run_queue
	assert_only_in alice
	[ -f "$QUEUEDIR/msg/$id" ] || fail "msg/$id is gone"
	refute_log ".*result=failed.*" "$LOG"
}

# records ID ENVELOPE-BYTES: the delivery records of msg/ID (what follows the message and the
# envelope of ENVELOPE-BYTES bytes), NULs shown as \0 and tabs as \t; without the L (last
# temporary failure) and N (notice sent) records, which tests/queue-remote.bats looks at.
records() {
	local f=$QUEUEDIR/msg/$1
	tail -c +$((26 + $(stat -c %s "$MSG") + $2 + 1)) "$f" |
		"$PYTHON" -c 'import sys
recs = sys.stdin.buffer.read().decode("latin-1").split("\0")
out = "".join(r + "\0" for r in recs[:-1] if r[:1] not in ("L", "N")) + recs[-1]
print(out.replace("\\", "\\\\").replace("\0", "\\0").replace("\t", "\\t"))'
}

@test "delivery records: a delivered target is recorded as D<target>\\0 in the queue file" {
	run -0 inject "$FROM" someone@remote.test team@example.test <"$MSG"
	id=$(queued_id)
	envlen=$(printf 'F%s\0Tsomeone@remote.test\0Tteam@example.test\0\0' "$FROM" | wc -c)
	run_queue
	run -0 records "$id" "$envlen"
	[[ $output == 'Dalice@example.test\0Dbob@example.test\0' ||
		$output == 'Dbob@example.test\0Dalice@example.test\0' ]] || fail "records: $output"
}

@test "delivery records: a recipient that does not resolve is recorded as R<address>\\t<reason>\\0" {
	run -0 inject "$FROM" someone@remote.test nosuchuser@example.test <"$MSG"
	id=$(queued_id)
	envlen=$(printf 'F%s\0Tsomeone@remote.test\0Tnosuchuser@example.test\0\0' "$FROM" | wc -c)
	run_queue
	[ -f "$QUEUEDIR/msg/$id" ] || fail "msg/$id is gone (the remote target is pending)"
	run -0 records "$id" "$envlen"
	[[ $output == 'Rnosuchuser@example.test\t5.1.1 unknown user\0' ]] || fail "records: $output"
	# the failed recipient is not tried again
	run_queue
	refute_log ".*nosuchuser.*" "$LOG"
}

@test "delivery records: a mailbox's permanent failure is recorded as X<mailbox>\\t<reason>\\0" {
	make_userdb 'mailbox tiny@example.test x example.test/tiny/ 10'
	run -0 inject "$FROM" someone@remote.test tiny@example.test <"$MSG"
	id=$(queued_id)
	envlen=$(printf 'F%s\0Tsomeone@remote.test\0Ttiny@example.test\0\0' "$FROM" | wc -c)
	OVERQUOTA=bounce run_queue
	run -0 records "$id" "$envlen"
	[[ $output == 'Xtiny@example.test\t'*'\0' ]] || fail "records: $output"
	# final: not tried again
	OVERQUOTA=bounce run_queue
	refute_log ".*tiny.*" "$LOG"
}

@test "a failure record never hides a mailbox: R<address> from before the mailbox existed" {
	run -0 inject "$FROM" someone@remote.test dave@example.test <"$MSG"
	id=$(queued_id)
	run_queue
	assert_log ".* to=<dave@example\.test> result=failed .*reason=\"5\.1\.1 unknown user\"" "$LOG"
	# the administrator adds the mailbox while the message waits for its remote recipient
	make_userdb 'mailbox dave@example.test x example.test/dave/'
	run_queue
	assert_count 1 msg_count "$(mailbox dave)"
	assert_delivered "$(maildir_files "$(mailbox dave)")" "$FROM" dave@example.test "$MSG" dave@example.test
	[ -f "$QUEUEDIR/msg/$id" ] || fail "msg/$id is gone (the remote target is pending)"
}

@test "an old queue file's P record for an address that is now a mailbox does not skip it" {
	# Versions before R and X wrote P for both kinds of failure: in the a/b layout of the
	# lost-mail test, "Pa@example.test<TAB>5.4.6 alias loop".
	make_userdb 'mailbox a@example.test x example.test/a/' \
		'alias a@example.test b@example.test,a@example.test' 'alias b@example.test a@example.test'
	run -0 inject "$FROM" someone@remote.test a@example.test <"$MSG"
	id=$(queued_id)
	printf 'Pa@example.test\t5.4.6 alias loop\0' >>"$QUEUEDIR/msg/$id"
	run_queue
	assert_count 1 msg_count "$(mailbox a)"
	assert_log ".* to=<a@example\.test> result=delivered .*" "$LOG"
	refute_log ".*result=failed.*" "$LOG"
	# and a P for a recipient that still fails still counts as its failure: not logged again
	run -0 inject "$FROM" someone@remote.test nosuchuser@example.test <"$MSG"
	rm -f "$QUEUEDIR/msg/$id"
	id=$(queued_id)
	printf 'Pnosuchuser@example.test\t5.1.1 unknown user\0' >>"$QUEUEDIR/msg/$id"
	run_queue
	refute_log ".*nosuchuser.*" "$LOG"
}

@test "a torn record at the end is truncated before the next append" {
	flaky=$BATS_TEST_TMPDIR/flaky
	{
		echo '#!/bin/sh'
		echo "if [ \"\$RECIPIENT\" = bob@example.test ] && [ ! -e '$BATS_TEST_TMPDIR/flag' ]; then"
		echo '	cat >/dev/null'
		echo '	exit 111'
		echo 'fi'
		echo "exec '$(command -v maildir-deliver)' \"\$@\""
	} >"$flaky"
	chmod +x "$flaky"
	run -0 inject "$FROM" someone@remote.test alice@example.test bob@example.test <"$MSG"
	id=$(queued_id)
	envlen=$(printf 'F%s\0Tsomeone@remote.test\0Talice@example.test\0Tbob@example.test\0\0' "$FROM" | wc -c)
	run_queue -d "$flaky"
	assert_only_in alice
	run -0 records "$id" "$envlen"
	assert_output 'Dalice@example.test\0'
	printf 'Dcarol@exa' >>"$QUEUEDIR/msg/$id"
	touch "$BATS_TEST_TMPDIR/flag"
	run_queue -d "$flaky"
	assert_only_in alice bob
	[ -f "$QUEUEDIR/msg/$id" ] || fail "msg/$id is gone (the remote target is pending)"
	run -0 records "$id" "$envlen"
	assert_output 'Dalice@example.test\0Dbob@example.test\0'
}

@test "a message locked by another process (flock) is skipped, then delivered once unlocked" {
	run -0 inject "$FROM" alice@example.test <"$MSG"
	id=$(queued_id)
	exec 7<"$QUEUEDIR/msg/$id"
	flock -x 7
	run_queue
	assert_only_in
	[ -f "$QUEUEDIR/msg/$id" ] || fail "msg/$id is gone"
	exec 7<&-
	run_queue
	assert_only_in alice
	assert_finished
}

@test "after a temporary failure the queue file's mtime is the next attempt, >= 300 s ahead" {
	run -0 inject "$FROM" someone@remote.test <"$MSG"
	id=$(queued_id)
	run_queue
	now=$(date +%s)
	mtime=$(stat -c %Y "$QUEUEDIR/msg/$id")
	[ $((mtime - now)) -ge 290 ] && [ $((mtime - now)) -le 310 ] ||
		fail "next attempt in $((mtime - now)) s, expected 300"
}

@test "an alias to a remote address stays queued" {
	make_userdb 'alias fwd@example.test someone@remote.test,bob@example.test'
	run -0 inject "$FROM" fwd@example.test <"$MSG"
	run_queue
	assert_only_in bob
	assert_count 1 file_count "$QUEUEDIR/msg"
	assert_log ".* to=<someone@remote\.test> .*result=deferred .*" "$LOG"
}

@test "over quota: carol (quota 2000) and a 5000-byte message -> deferred, stays in msg/" {
	make_message "$BATS_TEST_TMPDIR/big" big-1 5000
	[ "$(stat -c %s "$BATS_TEST_TMPDIR/big")" -gt 5000 ]
	run -0 inject "$FROM" carol@example.test <"$BATS_TEST_TMPDIR/big"
	id=$(queued_id)
	run_queue
	assert_only_in
	[ -f "$QUEUEDIR/msg/$id" ] || fail "msg/$id is gone"
	assert_count 0 file_count "$QUEUEDIR/bounce"
	assert_log "queue-run: $(re_escape "$id") from=<sender@remote\.test> to=<carol@example\.test> result=deferred $DELAY reason=.*" "$LOG"
}

@test "over quota with OVERQUOTA=bounce -> failed, a notice to the sender" {
	make_message "$BATS_TEST_TMPDIR/big" big-1 5000
	run -0 inject "$FROM" carol@example.test alice@example.test <"$BATS_TEST_TMPDIR/big"
	id=$(queued_id)
	OVERQUOTA=bounce run_queue
	assert_only_in alice
	assert_noticed "$id"
	assert_log ".* to=<carol@example\.test> result=failed .*" "$LOG"
}

@test "under quota: a small message to carol is delivered" {
	run -0 inject "$FROM" carol@example.test <"$MSG"
	run_queue
	assert_only_in carol
	assert_finished
}

# deliver_both_ways: a message to alice, team@, a catch-all, a +tag and carol, from one queue
# file delivered in-process into $MAILROOT and through WRAPPER (logging its arguments and
# environment to $CALLS) into $BATS_TEST_TMPDIR/mail2; every mailbox's file compared with cmp.
make_wrapper() {
	WRAPPER=$BATS_TEST_TMPDIR/deliver-wrapper
	CALLS=$BATS_TEST_TMPDIR/calls
	cat >"$WRAPPER" <<EOF
#!/bin/sh
printf '%s|%s|%s|%s\n' "\$1" "\$SENDER" "\$RECIPIENT" "\${QUOTA-unset}" >>"$CALLS"
exec "$(command -v maildir-deliver)" "\$@"
EOF
	chmod +x "$WRAPPER"
}

assert_same_deliveries() {
	local other=$1 u a b
	for u in alice bob carol; do
		a=$(maildir_files "$MAILROOT/example.test/$u")
		b=$(maildir_files "$other/example.test/$u")
		[ -n "$a" ] || fail "nothing delivered in-process to $u"
		[ -n "$b" ] || fail "nothing delivered through the program to $u"
		[ "$(wc -l <<<"$a")" -eq 1 ] && [ "$(wc -l <<<"$b")" -eq 1 ] ||
			fail "$u: more than one file: $a $b"
		cmp "$a" "$b" || fail "$u: in-process and external deliveries differ"
	done
}

@test "external delivery (-d) lands byte-identical to in-process delivery" {
	make_wrapper
	run -0 inject "$FROM" alice@example.test team@example.test anything@other.test carol+x@example.test <"$MSG"
	cp -a "$QUEUEDIR" "$BATS_TEST_TMPDIR/queue2"
	run_queue
	assert_finished
	QUEUEDIR=$BATS_TEST_TMPDIR/queue2 MAILROOT=$BATS_TEST_TMPDIR/mail2 run_queue -d "$WRAPPER"
	assert_count 0 file_count "$BATS_TEST_TMPDIR/queue2/msg"
	assert_same_deliveries "$BATS_TEST_TMPDIR/mail2"
	# the program ran once per mailbox with MAILDIR, SENDER, RECIPIENT and QUOTA
	m2=$BATS_TEST_TMPDIR/mail2
	run -0 sort "$CALLS"
	assert_output "$(printf '%s\n' \
		"$m2/example.test/alice/|$FROM|alice@example.test|unset" \
		"$m2/example.test/bob/|$FROM|bob@example.test|unset" \
		"$m2/example.test/carol/|$FROM|carol@example.test|2000")"
}

@test "external delivery via LOCALDELIVERY lands byte-identical to in-process delivery" {
	run -0 inject "$FROM" alice@example.test team@example.test anything@other.test carol+x@example.test <"$MSG"
	cp -a "$QUEUEDIR" "$BATS_TEST_TMPDIR/queue2"
	run_queue
	QUEUEDIR=$BATS_TEST_TMPDIR/queue2 MAILROOT=$BATS_TEST_TMPDIR/mail2 \
		LOCALDELIVERY=$(command -v maildir-deliver) run_queue
	assert_count 0 file_count "$BATS_TEST_TMPDIR/queue2/msg"
	assert_same_deliveries "$BATS_TEST_TMPDIR/mail2"
}

@test "-d overrides LOCALDELIVERY" {
	make_wrapper
	run -0 inject "$FROM" alice@example.test <"$MSG"
	LOCALDELIVERY=/bin/false run_queue -d "$WRAPPER"
	assert_only_in alice
	assert_finished
	assert_count 1 wc -l <"$CALLS"
}

@test "external delivery over quota: maildir-deliver exits 111 -> deferred, stays queued" {
	make_message "$BATS_TEST_TMPDIR/big" big-1 5000
	run -0 inject "$FROM" carol@example.test <"$BATS_TEST_TMPDIR/big"
	run_queue -d "$(command -v maildir-deliver)"
	assert_only_in
	assert_count 1 file_count "$QUEUEDIR/msg"
	assert_log ".* to=<carol@example\.test> result=deferred .*" "$LOG"
}

@test "delivery program exit 100 -> failed, a notice; exit 111 or 75 -> deferred, queued" {
	printf '#!/bin/sh\ncat >/dev/null\nexit 100\n' >"$BATS_TEST_TMPDIR/perm"
	printf '#!/bin/sh\ncat >/dev/null\nexit 111\n' >"$BATS_TEST_TMPDIR/temp"
	printf '#!/bin/sh\ncat >/dev/null\nexit 75\n' >"$BATS_TEST_TMPDIR/other"
	chmod +x "$BATS_TEST_TMPDIR/perm" "$BATS_TEST_TMPDIR/temp" "$BATS_TEST_TMPDIR/other"
	run -0 inject "$FROM" alice@example.test <"$MSG"
	id=$(queued_id)
	run_queue -d "$BATS_TEST_TMPDIR/temp"
	[ -f "$QUEUEDIR/msg/$id" ] || fail "exit 111: msg/$id is gone"
	assert_log ".* to=<alice@example\.test> result=deferred .*" "$LOG"
	run_queue -d "$BATS_TEST_TMPDIR/other"
	[ -f "$QUEUEDIR/msg/$id" ] || fail "exit 75: msg/$id is gone"
	assert_log ".* to=<alice@example\.test> result=deferred .*" "$LOG"
	run_queue -d "$BATS_TEST_TMPDIR/perm"
	assert_noticed "$id"
	assert_log ".* to=<alice@example\.test> result=failed .*" "$LOG"
	assert_only_in
}

@test "queue-run -1 on an empty queue exits 0" {
	run_queue
	assert_finished
}

@test "a running queue-run removes files in tmp/ older than 36 hours, keeps newer ones" {
	echo old >"$QUEUEDIR/tmp/1795000000.000001.1"
	echo new >"$QUEUEDIR/tmp/1795000000.000002.2"
	touch -d '-37 hours' "$QUEUEDIR/tmp/1795000000.000001.1"
	touch -d '-35 hours' "$QUEUEDIR/tmp/1795000000.000002.2"
	start_group "$LOG" nsenter -t "$WORLD_PID" -n -m -- queue-run
	old_gone() { [ ! -e "$QUEUEDIR/tmp/1795000000.000001.1" ]; }
	wait_until 30 old_gone || fail "the 37-hour-old tmp file is still there after 3 s"
	[ -e "$QUEUEDIR/tmp/1795000000.000002.2" ] || fail "the 35-hour-old tmp file was removed"
	kill_group "$BG_PID" TERM
}

@test "a file in msg/ that is not a queue file is left alone; other messages are delivered" {
	echo 'not a queue file' >"$QUEUEDIR/msg/1795000000.000001.1"
	run -0 inject "$FROM" alice@example.test <"$MSG"
	run_queue
	assert_only_in alice
	assert_equal "$(cat "$QUEUEDIR/msg/1795000000.000001.1")" 'not a queue file'
	assert_count 1 file_count "$QUEUEDIR/msg"
}

@test "200 messages injected while queue-run runs are all delivered exactly once" {
	origs=$BATS_TEST_TMPDIR/origs
	make_messages "$origs" 200
	start_group "$LOG" nsenter -t "$WORLD_PID" -n -m -- queue-run -c 4
	qr=$BG_PID
	wait_until 50 grep -q '^queue-run: start' "$LOG" || fail "no start line: $(cat "$LOG")"
	assert_log "queue-run: start concurrency=4 per_destination=20" "$LOG"
	for i in $(seq 1 200); do
		if [ $((i % 2)) -eq 0 ]; then to=alice@example.test; else to=bob@example.test; fi
		inject "$FROM" "$to" <"$origs/$i" || fail "queue-inject of message $i failed"
	done
	all_in() {
		[ $(($(msg_count "$(mailbox alice)") + $(msg_count "$(mailbox bob)"))) -ge 200 ] &&
			[ "$(file_count "$QUEUEDIR/msg")" -eq 0 ]
	}
	wait_until 300 all_in || fail "not all delivered in 30 s: alice $(msg_count "$(mailbox alice)"), bob $(msg_count "$(mailbox bob)"), msg/ $(file_count "$QUEUEDIR/msg")"
	sleep 0.2 # a duplicate would show up now
	kill_group "$qr" TERM
	assert_maildirs "messages=200 distinct=200 missing=0 duplicated=0 bad=0 unknown=0" \
		"$origs" "$FROM" "$(mailbox alice)" "$(mailbox bob)"
	assert_count 100 msg_count "$(mailbox alice)"
	assert_count 100 msg_count "$(mailbox bob)"
	assert_finished
	assert_count 200 grep -c ' result=delivered ' "$LOG"
	assert_count 200 grep -c ' done$' "$LOG"
}

@test "new mail is picked up by a running queue-run within a second" {
	start_group "$LOG" nsenter -t "$WORLD_PID" -n -m -- queue-run
	wait_until 50 grep -q '^queue-run: start' "$LOG" || fail "no start line"
	assert_log "queue-run: start concurrency=100 per_destination=20" "$LOG"
	sleep 0.3 # queue-run is idle, waiting on the trigger
	run -0 inject "$FROM" alice@example.test <"$MSG"
	alice_has_one() { [ "$(msg_count "$(mailbox alice)")" -eq 1 ]; }
	wait_until 10 alice_has_one ||
		fail "not delivered within 1 s: $(cat "$LOG")"
	kill_group "$BG_PID" TERM
}

@test "two queue-run -1 at once deliver each message exactly once" {
	origs=$BATS_TEST_TMPDIR/origs
	make_messages "$origs" 100
	for i in $(seq 1 100); do
		inject "$FROM" alice@example.test <"$origs/$i" || fail "queue-inject $i failed"
	done
	start_group "$BATS_TEST_TMPDIR/log1" nsenter -t "$WORLD_PID" -n -m -- queue-run -1 -c 5
	p1=$BG_PID
	start_group "$BATS_TEST_TMPDIR/log2" nsenter -t "$WORLD_PID" -n -m -- queue-run -1 -c 5
	p2=$BG_PID
	done1() { ! kill -0 "$p1" 2>/dev/null && ! kill -0 "$p2" 2>/dev/null; }
	# reap them as they end
	wait_until 300 done1 || { wait "$p1" "$p2" 2>/dev/null || true; }
	wait "$p1" || fail "first queue-run -1 failed"
	wait "$p2" || fail "second queue-run -1 failed"
	assert_maildirs "messages=100 distinct=100 missing=0 duplicated=0 bad=0 unknown=0" \
		"$origs" "$FROM" "$(mailbox alice)"
	assert_finished
}

@test "kill -9 of queue-run during deliveries, then a restart: every message delivered, msg/ empty" {
	origs=$BATS_TEST_TMPDIR/origs
	make_messages "$origs" 300 2000
	for i in $(seq 1 300); do
		if [ $((i % 3)) -eq 0 ]; then to=team@example.test; else to=alice@example.test; fi
		inject "$FROM" "$to" <"$origs/$i" || fail "queue-inject $i failed"
	done
	interrupted=0
	for round in 1 2 3; do
		start_group "$BATS_TEST_TMPDIR/log.$round" nsenter -t "$WORLD_PID" -n -m -- queue-run -c 4
		qr=$BG_PID
		base=$(msg_count "$(mailbox alice)")
		# wait for some deliveries of this round, then crash
		for ((n = 0; n < 1000; n++)); do
			[ "$(msg_count "$(mailbox alice)")" -lt $((base + 10 + RANDOM % 20)) ] || break
			[ "$(file_count "$QUEUEDIR/msg")" -gt 0 ] || break
			sleep 0.005
		done
		kill_group "$qr" KILL
		[ "$(file_count "$QUEUEDIR/msg")" -eq 0 ] || interrupted=$((interrupted + 1))
	done
	[ "$interrupted" -ge 1 ] || fail "queue-run finished before every kill: nothing was interrupted"
	run_queue
	assert_finished
	# a delivery interrupted before its record may be repeated, never skipped
	assert_maildirs "messages=* distinct=300 missing=0 duplicated=* bad=0 unknown=0" \
		"$origs" "$FROM" "$(mailbox alice)"
	# bob gets every third message (team@)
	origs3=$BATS_TEST_TMPDIR/origs3
	mkdir "$origs3"
	for i in $(seq 3 3 300); do ln "$origs/$i" "$origs3/$i"; done
	assert_maildirs "messages=* distinct=100 missing=0 duplicated=* bad=0 unknown=0" \
		"$origs3" "$FROM" "$(mailbox bob)"
}

@test "usage error: exit 100, one stderr line starting queue-run:" {
	run --separate-stderr -100 queue-run -x
	assert_one_stderr_line queue-run
	assert_equal "$stderr" "queue-run: usage: queue-run [-1] [-c concurrency] [-p per-destination] [-d program]"
}

@test "usage error: -c without a number, or a bad number -> 100" {
	run --separate-stderr -100 queue-run -1 -c
	assert_one_stderr_line queue-run
	run --separate-stderr -100 queue-run -1 -c abc
	assert_one_stderr_line queue-run
	run --separate-stderr -100 queue-run -1 -c 0
	assert_one_stderr_line queue-run
}

@test "usage error: an operand -> 100" {
	run --separate-stderr -100 queue-run -1 extra
	assert_one_stderr_line queue-run
}

@test "missing QUEUEDIR, USERDB or MAILROOT -> 111, one stderr line" {
	run --separate-stderr -111 env -u QUEUEDIR queue-run -1
	assert_one_stderr_line queue-run
	run --separate-stderr -111 env -u USERDB queue-run -1
	assert_one_stderr_line queue-run
	run --separate-stderr -111 env -u MAILROOT queue-run -1
	assert_one_stderr_line queue-run
}

@test "a missing queue directory -> 111" {
	QUEUEDIR=$BATS_TEST_TMPDIR/no-such-queue run --separate-stderr -111 queue-run -1
	assert_one_stderr_line queue-run
}

@test "queue-run -1 on a queue whose msg/ cannot be read exits 111" {
	rmdir "$QUEUEDIR/msg"
	run --separate-stderr -111 queue-run -1
	assert_regex "$stderr" 'queue-run: trouble: unable to read .*/msg'
}

@test "a delivery program that fills stderr before reading its stdin does not stall the worker" {
	# 200 kB on stderr is more than a pipe holds: the worker must drain it while it feeds stdin.
	cat >"$BATS_TEST_TMPDIR/chatty" <<'SH'
#!/bin/sh
head -c 200000 /dev/zero | tr '\0' x >&2
echo >&2
mkdir -p "$1"
cat >"$1/../chatty-got"
echo "chatty: fatal: said my piece" >&2
exit 0
SH
	chmod +x "$BATS_TEST_TMPDIR/chatty"
	make_message "$MSG" big-1 300000
	run -0 inject "$FROM" alice@example.test <"$MSG"
	run --separate-stderr -0 in_world timeout 60 queue-run -1 -d "$BATS_TEST_TMPDIR/chatty"
	printf '%s\n' "$stderr" >"$LOG"
	assert_finished
	cmp "$MSG" "$MAILROOT/example.test/chatty-got"
	assert_log ".* to=<alice@example\.test> result=delivered .*" "$LOG"
}
