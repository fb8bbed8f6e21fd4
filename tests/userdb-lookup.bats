#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# userdb-lookup ADDRESS...: one line per final target, as queue-run would deliver, from the
# fixture's users.cdb; its exit codes.

load lib/common
load lib/smtp
load lib/aliases

setup() {
	make_userdb 'alias fwd@example.test alice@example.test,friend@elsewhere.test' \
		'alias dup@example.test alice@example.test,team@example.test'
}

@test "one line per final target: mailbox with maildir and quota, remote, failed with the reason" {
	run --separate-stderr -0 userdb-lookup carol@example.test fwd@example.test x@elsewhere.test \
		loop1@example.test nobody@example.test 'bad address'
	[ -z "$stderr" ] || fail "stderr: $stderr"
	assert_equal "${#lines[@]}" 7
	assert_line -n 0 'carol@example.test	mailbox	carol@example.test	example.test/carol/	2000'
	assert_line -n 1 'fwd@example.test	mailbox	alice@example.test	example.test/alice/	0'
	assert_line -n 2 'fwd@example.test	remote	friend@elsewhere.test'
	assert_line -n 3 'x@elsewhere.test	remote	x@elsewhere.test'
	assert_line -n 4 'loop1@example.test	failed	loop1@example.test	5.4.6 alias loop'
	assert_line -n 5 'nobody@example.test	failed	nobody@example.test	5.1.1 unknown user'
	assert_line -n 6 'bad address	failed	bad address	5.1.3 bad address syntax'
}

@test "an alias reaching a mailbox twice gives one line; the catch-all of another domain" {
	run -0 userdb-lookup dup@example.test someone@other.test
	assert_output "$(printf '%s\n' \
		'dup@example.test	mailbox	alice@example.test	example.test/alice/	0' \
		'dup@example.test	mailbox	bob@example.test	example.test/bob/	0' \
		'someone@other.test	mailbox	bob@example.test	example.test/bob/	0')"
}

@test "RECIPIENT_DELIMITER: + by default, another character, or none" {
	run -0 userdb-lookup alice+news@example.test
	assert_output 'alice+news@example.test	mailbox	alice@example.test	example.test/alice/	0'
	RECIPIENT_DELIMITER=- run -0 userdb-lookup alice-news@example.test alice+news@example.test
	assert_line -n 0 'alice-news@example.test	mailbox	alice@example.test	example.test/alice/	0'
	assert_line -n 1 'alice+news@example.test	failed	alice+news@example.test	5.1.1 unknown user'
	RECIPIENT_DELIMITER= run -0 userdb-lookup alice+news@example.test
	assert_output 'alice+news@example.test	failed	alice+news@example.test	5.1.1 unknown user'
}

@test "a loop beside a mailbox: a -> b,a (or a,b) and b -> a give a's mailbox and no failure" {
	for targets in b@example.test,a@example.test a@example.test,b@example.test; do
		make_userdb 'mailbox a@example.test x example.test/a/' \
			"alias a@example.test $targets" 'alias b@example.test a@example.test'
		run --separate-stderr -0 userdb-lookup a@example.test b@example.test
		assert_output "$(printf '%s\n' \
			'a@example.test	mailbox	a@example.test	example.test/a/	0' \
			'b@example.test	mailbox	a@example.test	example.test/a/	0')"
	done
}

@test "a loop: nothing where another way reaches a target; 5.4.6 for a recipient it leaves nowhere" {
	make_userdb 'alias some@example.test loop1@example.test,alice@example.test' \
		'alias none@example.test loop1@example.test,nobody@example.test' \
		'alias far@example.test loop1@example.test,friend@elsewhere.test'
	run --separate-stderr -0 userdb-lookup some@example.test none@example.test far@example.test \
		loop2@example.test
	assert_output "$(printf '%s\n' \
		'some@example.test	mailbox	alice@example.test	example.test/alice/	0' \
		'none@example.test	failed	nobody@example.test	5.1.1 unknown user' \
		'none@example.test	failed	none@example.test	5.4.6 alias loop' \
		'far@example.test	remote	friend@elsewhere.test' \
		'loop2@example.test	failed	loop2@example.test	5.4.6 alias loop')"
}

@test "a recipient already reached by an earlier one still counts as reaching it (no loop failure)" {
	# one lookup with two recipients shares the output, which keeps one copy of alice
	make_userdb 'alias back@example.test loop1@example.test,alice@example.test'
	run --separate-stderr -0 userdb-lookup alice@example.test back@example.test
	assert_output "$(printf '%s\n' \
		'alice@example.test	mailbox	alice@example.test	example.test/alice/	0' \
		'back@example.test	mailbox	alice@example.test	example.test/alice/	0')"
}

@test "a chain of 10 aliases each naming the next 6 (or 10) times: one mailbox, each alias expanded once" {
	# issue 11's layout (10 aliases naming the next 6 times), and 10 times: without the memo
	# 6^10 paths take seconds, 10^10 hours
	for k in 6 10; do
		mapfile -t users < <(chain 10 "$k")
		make_userdb "${users[@]}"
		run --separate-stderr -0 timeout 10 userdb-lookup c1@example.test c5@example.test
		assert_output "$(printf '%s\n' \
			'c1@example.test	mailbox	alice@example.test	example.test/alice/	0' \
			'c5@example.test	mailbox	alice@example.test	example.test/alice/	0')"
	done
}

@test "1000 final targets are shown; 1001 are a single failure, 5.4.6 alias expansion too large" {
	mapfile -t users < <(wide 40 25)
	make_userdb "${users[@]}"
	run --separate-stderr -0 userdb-lookup wide@example.test
	assert_equal "${#lines[@]}" 1000
	assert_line -n 0 'wide@example.test	remote	r1.1@remote.test'
	assert_line -n 999 'wide@example.test	remote	r40.25@remote.test'
	# the same with a 41st alias of one more target: wide@'s first line lists w1 ... w41
	users[0]=$(alias_of wide@example.test 41 'w#@example.test')
	make_userdb "${users[@]}" 'alias w41@example.test one@more.test'
	run --separate-stderr -0 userdb-lookup alice@example.test wide@example.test bob@example.test
	assert_output "$(printf '%s\n' \
		'alice@example.test	mailbox	alice@example.test	example.test/alice/	0' \
		'wide@example.test	failed	wide@example.test	5.4.6 alias expansion too large' \
		'bob@example.test	mailbox	bob@example.test	example.test/bob/	0')"
}

@test "over 20000 lookups is a single failure too, even for a single target" {
	mapfile -t users < <(repeat 150 150)
	make_userdb "${users[@]}"
	run --separate-stderr -0 userdb-lookup rep@example.test
	assert_output 'rep@example.test	failed	rep@example.test	5.4.6 alias expansion too large'
	mapfile -t users < <(repeat 100 100)
	make_userdb "${users[@]}"
	run --separate-stderr -0 userdb-lookup rep@example.test
	assert_output 'rep@example.test	mailbox	alice@example.test	example.test/alice/	0'
}

@test "no address or an option: usage, 100; USERDB unset or missing: 111; one stderr line" {
	run --separate-stderr -100 userdb-lookup
	assert_one_stderr_line userdb-lookup
	run --separate-stderr -100 userdb-lookup -x alice@example.test
	assert_one_stderr_line userdb-lookup
	USERDB= run --separate-stderr -111 userdb-lookup alice@example.test
	assert_one_stderr_line userdb-lookup
	USERDB=$BATS_TEST_TMPDIR/none.cdb run --separate-stderr -111 userdb-lookup alice@example.test
	assert_one_stderr_line userdb-lookup
	assert_output ''
}

# RFC 5321 section 4.5.1: postmaster@ every domain of ours must be deliverable.
@test "postmaster@ a domain without one: POSTMASTER, else postmaster@ the first domain" {
	make_userdb 'domain third.test' 'mailbox x@third.test h example.test/x/'
	run -0 userdb-lookup postmaster@third.test PostMaster@Third.TEST
	assert_output "$(printf '%s\n' \
		'postmaster@third.test	mailbox	alice@example.test	example.test/alice/	0' \
		'PostMaster@Third.TEST	mailbox	alice@example.test	example.test/alice/	0')"
	POSTMASTER=carol@example.test run -0 userdb-lookup postmaster@third.test
	assert_output 'postmaster@third.test	mailbox	carol@example.test	example.test/carol/	2000'
	POSTMASTER=admin@elsewhere.test run -0 userdb-lookup postmaster@third.test
	assert_output 'postmaster@third.test	remote	admin@elsewhere.test'
	# A domain's own postmaster alias or catch-all comes first; other local parts do not fall back.
	POSTMASTER=carol@example.test run -0 userdb-lookup postmaster@example.test postmaster@other.test \
		postmaster2@third.test
	assert_output "$(printf '%s\n' \
		'postmaster@example.test	mailbox	alice@example.test	example.test/alice/	0' \
		'postmaster@other.test	mailbox	bob@example.test	example.test/bob/	0' \
		'postmaster2@third.test	failed	postmaster2@third.test	5.1.1 unknown user')"
}

@test "postmaster fallback that leads nowhere: unknown user, no loop" {
	printf 'domain first.test\nmailbox a@first.test h first.test/a/\n' >"$BATS_TEST_TMPDIR/u.txt"
	userdb-compile -f "$BATS_TEST_TMPDIR/u.txt" "$BATS_TEST_TMPDIR/u.cdb"
	USERDB=$BATS_TEST_TMPDIR/u.cdb run -0 userdb-lookup postmaster@first.test
	assert_output 'postmaster@first.test	failed	postmaster@first.test	5.1.1 unknown user'
	USERDB=$BATS_TEST_TMPDIR/u.cdb POSTMASTER=postmaster@first.test run -0 userdb-lookup \
		postmaster@first.test
	assert_output 'postmaster@first.test	failed	postmaster@first.test	5.1.1 unknown user'
}

@test "an alias naming the postmaster of two domains without one: one mailbox, no failure" {
	make_userdb 'domain third.test' 'domain fourth.test' \
		'alias both@example.test postmaster@third.test,postmaster@fourth.test'
	run -0 userdb-lookup both@example.test
	assert_output 'both@example.test	mailbox	alice@example.test	example.test/alice/	0'
}
