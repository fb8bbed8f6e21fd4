#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# userdb-lookup ADDRESS...: one line per final target, as queue-run would deliver, from the
# fixture's users.cdb; its exit codes.

load lib/common
load lib/smtp

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
