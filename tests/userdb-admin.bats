#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# userdb-admin against a real MariaDB server holding PostfixAdmin's tables: the rows each command
# writes, its refusals (exit 100, one line), and the recompile of users.cdb after a change.

load lib/common
load lib/smtp
load lib/mariadb

admin() {
	userdb-admin -m "$MDB_ADMIN_CNF" -c '' "$@"
}

setup_file() {
	mariadb_setup
	admin domain-add example.test 'the test domain'
	admin alias-domain-add alias.test example.test
}

teardown_file() {
	mariadb_teardown
}

setup() {
	OUT=$BATS_TEST_TMPDIR/users.cdb
}

@test "userdb-admin: PostfixAdmin's rows; mistakes exit 100 with one line" {
	printf 'pw\n' | admin mailbox-add New.User@Example.Test 5000
	run -0 mdb_sql "SELECT username, name, maildir, quota, local_part, domain, active FROM mailbox WHERE username = 'new.user@example.test'"
	assert_output "new.user@example.test		example.test/new.user/	5000	new.user	example.test	1"
	run -0 mdb_sql "SELECT address, goto, domain, active FROM alias WHERE address = 'new.user@example.test'"
	assert_output "new.user@example.test	new.user@example.test	example.test	1"
	run --separate-stderr -100 admin mailbox-add new.user@example.test </dev/null
	assert_equal "$stderr" "userdb-admin: fatal: new.user@example.test exists already"
	run --separate-stderr -100 admin mailbox-add x@nowhere.test </dev/null
	assert_equal "$stderr" "userdb-admin: fatal: no such domain: nowhere.test"
	run --separate-stderr -100 admin mailbox-add x@example.test </dev/null
	assert_stderr_line 'userdb-admin: fatal: empty password.*'
	run --separate-stderr -100 admin alias-set x@example.test 'not an address'
	run --separate-stderr -100 admin frobnicate
	run --separate-stderr -100 admin mailbox-del nobody@example.test
	run --separate-stderr -100 admin alias-del new.user@example.test
	run -0 mdb_sql "SELECT COUNT(*) FROM mailbox WHERE username = 'x@example.test'"
	assert_output 0
	admin alias-set @example.test x@y.test
	run -0 admin list example.test
	admin alias-del @example.test
	assert_line "mailbox	new.user@example.test	1	5000	example.test/new.user/"
	assert_line "alias	@example.test	1	x@y.test"
	admin mailbox-del new.user@example.test
	run -0 mdb_sql "SELECT COUNT(*) FROM alias WHERE address = 'new.user@example.test'"
	assert_output 0
	run -0 admin list
	assert_line "alias.test	1	example.test"
	assert_line "example.test	1	"
}

@test "userdb-admin compiles USERDB (or -c) after a change" {
	export USERDB=$OUT
	userdb-compile -m "$MDB_READER_CNF" "$OUT"
	printf 'pw\n' | userdb-admin -m "$MDB_ADMIN_CNF" mailbox-add fresh@example.test
	run -0 userdb-lookup fresh@example.test
	assert_output "fresh@example.test	mailbox	fresh@example.test	example.test/fresh/	0"
	userdb-admin -m "$MDB_ADMIN_CNF" -c "$OUT" mailbox-del fresh@example.test
	run -0 userdb-lookup fresh@example.test
	assert_output "fresh@example.test	failed	fresh@example.test	5.1.1 unknown user"
}

@test "userdb-admin: domain-add, domain-active, domain-del with everything in it" {
	admin domain-add gone.test 'going'
	run -0 mdb_sql "SELECT domain, description, transport, active FROM domain WHERE domain = 'gone.test'"
	assert_output "gone.test	going	virtual	1"
	run --separate-stderr -100 admin domain-add Gone.Test
	assert_equal "$stderr" "userdb-admin: fatal: domain gone.test exists already"
	admin domain-active gone.test no
	run -0 mdb_sql "SELECT active FROM domain WHERE domain = 'gone.test'"
	assert_output 0
	run --separate-stderr -100 admin domain-active gone.test maybe
	printf 'pw\n' | admin mailbox-add u@gone.test
	admin alias-set @gone.test u@gone.test
	admin domain-del gone.test
	run -0 mdb_sql "SELECT (SELECT COUNT(*) FROM domain WHERE domain = 'gone.test') +
		(SELECT COUNT(*) FROM mailbox WHERE domain = 'gone.test') +
		(SELECT COUNT(*) FROM alias WHERE domain = 'gone.test')"
	assert_output 0
	run --separate-stderr -100 admin domain-del gone.test
	assert_equal "$stderr" "userdb-admin: fatal: no such domain: gone.test"
}

@test "userdb-admin: a bad option file is 111; no command or no -m is a usage error (100)" {
	run --separate-stderr -111 userdb-admin -m "$BATS_TEST_TMPDIR/none.cnf" list
	assert_one_stderr_line userdb-admin
	run --separate-stderr -100 userdb-admin -m "$MDB_ADMIN_CNF"
	assert_one_stderr_line userdb-admin
	run --separate-stderr -100 userdb-admin list
	assert_one_stderr_line userdb-admin
}

@test "userdb-admin: a bad queries file stops it before the change (100), not after" {
	printf 'nonsense\n' >"$BATS_TEST_TMPDIR/q"
	run --separate-stderr -100 userdb-admin -m "$MDB_ADMIN_CNF" -c "$OUT" -q "$BATS_TEST_TMPDIR/q" \
		domain-add early.test
	assert_equal "$stderr" "userdb-admin: fatal: $BATS_TEST_TMPDIR/q line 1: expected: name = SQL"
	run -0 mdb_sql "SELECT COUNT(*) FROM domain WHERE domain = 'early.test'"
	assert_output 0
}

@test "userdb-admin: the read-only user may not write; nothing is half done" {
	run --separate-stderr userdb-admin -m "$MDB_READER_CNF" -c '' domain-add ro.test
	[ "$status" -ne 0 ] || fail "a read-only user wrote"
	assert_one_stderr_line userdb-admin
	run -0 mdb_sql "SELECT COUNT(*) FROM domain WHERE domain = 'ro.test'"
	assert_output 0
}
