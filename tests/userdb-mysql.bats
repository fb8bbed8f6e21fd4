#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# users.cdb from MySQL, against a real MariaDB server holding PostfixAdmin's tables:
# userdb-compile -m (the same lookups as the text form), its sync mode -w, and mail that keeps
# flowing while MySQL is down. (userdb-admin has its own file; it fills the database here.)

load lib/common
load lib/smtp
load lib/mariadb

ADDRESSES=(
	alice@example.test bob@example.test carol@example.test ALICE@Example.TEST
	alice+lists@example.test postmaster@example.test team@example.test all@example.test
	loop1@example.test loop2@example.test nobody@example.test nobody+x@example.test
	anyone@other.test bob@other.test
	alice@alias.test alice+x@alias.test team@alias.test nobody@alias.test
	someone@remote.test
)

# The hashes are set by hand after userdb-admin made the mailboxes, so that text and MySQL
# hold the same bytes.
HASH_ALICE='{SHA512-CRYPT}$6$saltsalt$aliceHASH'
HASH_BOB='{SHA512-CRYPT}$6$saltsalt$bobHASH'
HASH_CAROL='$y$j9T$saltsalt$carolHASH'

admin() {
	userdb-admin -m "$MDB_ADMIN_CNF" -c '' "$@"
}

# fill_mysql: the text fixture (users_txt) written into MySQL with userdb-admin, plus an alias
# domain alias.test -> example.test.
fill_mysql() {
	admin domain-add example.test 'the test domain'
	admin domain-add other.test
	local u
	for u in alice bob carol; do
		printf 'initial-%s\n' "$u" | admin mailbox-add "$u@example.test" \
			$([ "$u" = carol ] && echo 2000)
	done
	mdb_sql "UPDATE mailbox SET password = '$HASH_ALICE' WHERE username = 'alice@example.test';
		UPDATE mailbox SET password = '$HASH_BOB' WHERE username = 'bob@example.test';
		UPDATE mailbox SET password = '$HASH_CAROL' WHERE username = 'carol@example.test'"
	admin alias-set postmaster@example.test alice@example.test
	admin alias-set team@example.test alice@example.test,bob@example.test
	admin alias-set all@example.test team@example.test,carol@example.test
	admin alias-set loop1@example.test loop2@example.test
	admin alias-set loop2@example.test loop1@example.test
	admin alias-set @other.test bob@example.test
	admin alias-domain-add alias.test example.test
}

setup_file() {
	mariadb_setup
	fill_mysql
}

teardown_file() {
	mariadb_teardown
}

setup() {
	OUT=$BATS_TEST_TMPDIR/users.cdb
}

# text_twin FILE: the same data in the text form, with PostfixAdmin's own alias row for each
# mailbox, as userdb-admin writes it.
text_twin() {
	{
		users_txt
		printf 'alias %s@example.test %s@example.test\n' alice alice bob bob carol carol
		printf 'domain alias.test\nalias-domain alias.test example.test\n'
	} >"$1"
}

dump_sorted() {
	"$PYTHON" "$TESTLIB/cdbdump.py" "$1" | grep -v '^C' | LC_ALL=C sort
}

lookups() {
	USERDB=$1 userdb-lookup "${ADDRESSES[@]}"
}

@test "text and MySQL: the same records and the same lookups for every address of the fixture" {
	text_twin "$BATS_TEST_TMPDIR/users.txt"
	run --separate-stderr -0 userdb-compile -f "$BATS_TEST_TMPDIR/users.txt" "$BATS_TEST_TMPDIR/text.cdb"
	run --separate-stderr -0 userdb-compile -m "$MDB_READER_CNF" "$OUT"
	[ -z "$output$stderr" ] || fail "output: $output$stderr"
	diff <(dump_sorted "$BATS_TEST_TMPDIR/text.cdb") <(dump_sorted "$OUT") || fail "records differ"
	local text mysql
	text=$(lookups "$BATS_TEST_TMPDIR/text.cdb") || fail "userdb-lookup failed"
	mysql=$(lookups "$OUT") || fail "userdb-lookup failed"
	assert_equal "$mysql" "$text"
	# And the lookups are the ones userdb(5) promises.
	run -0 lookups "$OUT"
	assert_line "alice@example.test	mailbox	alice@example.test	example.test/alice/	0"
	assert_line "carol@example.test	mailbox	carol@example.test	example.test/carol/	2000"
	assert_line "alice+lists@example.test	mailbox	alice@example.test	example.test/alice/	0"
	assert_line "all@example.test	mailbox	bob@example.test	example.test/bob/	0"
	assert_line "loop1@example.test	failed	loop1@example.test	5.4.6 alias loop"
	assert_line "nobody@example.test	failed	nobody@example.test	5.1.1 unknown user"
	assert_line "anyone@other.test	mailbox	bob@example.test	example.test/bob/	0"
	assert_line "alice@alias.test	mailbox	alice@example.test	example.test/alice/	0"
	assert_line "alice+x@alias.test	mailbox	alice@example.test	example.test/alice/	0"
	assert_line "team@alias.test	mailbox	bob@example.test	example.test/bob/	0"
	assert_line "nobody@alias.test	failed	nobody@alias.test	5.1.1 unknown user"
	assert_line "someone@remote.test	remote	someone@remote.test"
	# The stamp is in the MySQL one only.
	"$PYTHON" "$TESTLIB/cdbdump.py" "$OUT" | grep -q '^C	' || fail "no stamp record"
}

@test "inactive rows do not exist for mail: mailbox, alias, domain, alias domain" {
	admin domain-add off.test
	printf 'pw\n' | admin mailbox-add on@off.test
	admin domain-active off.test no
	printf 'pw\n' | admin mailbox-add dave@example.test
	admin mailbox-active dave@example.test no
	admin alias-set sleepy@example.test alice@example.test
	mdb_sql "UPDATE alias SET active = 0 WHERE address = 'sleepy@example.test'"
	admin domain-add alias2.test
	admin alias-domain-add alias2.test example.test
	mdb_sql "UPDATE alias_domain SET active = 0 WHERE alias_domain = 'alias2.test'"
	run --separate-stderr -0 userdb-compile -m "$MDB_READER_CNF" "$OUT"
	run -0 env USERDB="$OUT" userdb-lookup on@off.test dave@example.test sleepy@example.test \
		alice@alias2.test
	assert_line "on@off.test	remote	on@off.test"
	assert_line "dave@example.test	failed	dave@example.test	5.1.1 unknown user"
	assert_line "sleepy@example.test	failed	sleepy@example.test	5.1.1 unknown user"
	assert_line "alice@alias2.test	failed	alice@alias2.test	5.1.1 unknown user"
	admin domain-del off.test
	admin mailbox-del dave@example.test
	admin alias-del sleepy@example.test
	admin domain-del alias2.test
}

@test "a bad row is skipped with a log line; the rest compiles" {
	mdb_sql "INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain, created, modified, active)
		VALUES ('evil@example.test', 'x', '', '../../etc/', 0, 'evil', 'example.test', NOW(), NOW(), 1);
		INSERT INTO alias (address, goto, domain, created, modified, active)
		VALUES ('broken@example.test', 'not an address', 'example.test', NOW(), NOW(), 1)"
	run --separate-stderr -0 userdb-compile -m "$MDB_READER_CNF" "$OUT"
	mdb_sql "DELETE FROM mailbox WHERE username = 'evil@example.test';
		DELETE FROM alias WHERE address = 'broken@example.test'"
	assert_stderr_line 'userdb-compile: skipping a row: evil@example.test: maildir must be relative to MAILROOT, without \.\.: \.\./\.\./etc/'
	assert_stderr_line 'userdb-compile: skipping a row: broken@example.test: bad alias target: not an address'
	assert_stderr_line "userdb-compile: compiled $OUT with 2 bad rows skipped"
	run -0 env USERDB="$OUT" userdb-lookup evil@example.test alice@example.test
	assert_line "evil@example.test	failed	evil@example.test	5.1.1 unknown user"
	assert_line "alice@example.test	mailbox	alice@example.test	example.test/alice/	0"
}

@test "-q replaces the queries: another schema" {
	mdb_sql "CREATE TABLE accounts (email VARCHAR(255) PRIMARY KEY, pw VARCHAR(255), dir VARCHAR(255));
		INSERT INTO accounts VALUES ('zed@example.test', 'zedHASH', 'z/zed/')"
	cat >"$BATS_TEST_TMPDIR/queries" <<'EOF2'
# only example.test, and mailboxes from another table
domains = SELECT domain FROM domain
# a comment and a blank line inside a query leave it whole

	WHERE domain = 'example.test' -- an SQL comment ends with its line
	AND active = 1
mailboxes = SELECT email, pw, dir, 0 FROM accounts
aliases = SELECT address, goto FROM alias WHERE 1 = 0
EOF2
	run --separate-stderr -0 userdb-compile -m "$MDB_READER_CNF" -q "$BATS_TEST_TMPDIR/queries" "$OUT"
	mdb_sql "DROP TABLE accounts"
	run -0 env USERDB="$OUT" userdb-lookup zed@example.test alice@example.test x@other.test
	assert_line "zed@example.test	mailbox	zed@example.test	z/zed/	0"
	assert_line "alice@example.test	failed	alice@example.test	5.1.1 unknown user"
	assert_line "x@other.test	remote	x@other.test"
}

@test "an alias domain of an alias domain: skipped with a log line, a plain domain; userdb-admin refuses to make one" {
	admin domain-add chain.test
	mdb_sql "INSERT INTO alias_domain (alias_domain, target_domain, created, modified, active)
		VALUES ('chain.test', 'alias.test', NOW(), NOW(), 1)"
	run --separate-stderr -0 userdb-compile -m "$MDB_READER_CNF" "$OUT"
	mdb_sql "DELETE FROM alias_domain WHERE alias_domain = 'chain.test'"
	assert_stderr_line 'userdb-compile: skipping a row: alias domain chain\.test: .*'
	run -0 env USERDB="$OUT" userdb-lookup alice@chain.test alice@alias.test
	assert_line "alice@chain.test	failed	alice@chain.test	5.1.1 unknown user"
	assert_line "alice@alias.test	mailbox	alice@example.test	example.test/alice/	0"
	run --separate-stderr -100 admin alias-domain-add chain.test alias.test
	assert_equal "$stderr" "userdb-admin: fatal: alias.test is itself an alias domain"
	run --separate-stderr -100 admin alias-domain-add example.test chain.test
	assert_equal "$stderr" "userdb-admin: fatal: example.test is the target of an alias domain"
	run --separate-stderr -100 admin alias-domain-add chain.test chain.test
	admin domain-del chain.test
}

@test "errors: MySQL down -> 111 and OUT unchanged; bad option file -> 111; bad query -> 100" {
	userdb-compile -m "$MDB_READER_CNF" "$OUT"
	cp "$OUT" "$OUT.saved"
	run --separate-stderr -111 userdb-compile -m "$BATS_TEST_TMPDIR/none.cnf" "$OUT"
	assert_one_stderr_line userdb-compile
	printf 'domains = SELECT nosuchcolumn FROM domain\n' >"$BATS_TEST_TMPDIR/q"
	run --separate-stderr -100 userdb-compile -m "$MDB_READER_CNF" -q "$BATS_TEST_TMPDIR/q" "$OUT"
	assert_one_stderr_line userdb-compile
	printf 'nonsense here\n' >"$BATS_TEST_TMPDIR/q"
	run --separate-stderr -100 userdb-compile -m "$MDB_READER_CNF" -q "$BATS_TEST_TMPDIR/q" "$OUT"
	assert_stderr_line "userdb-compile: fatal: $BATS_TEST_TMPDIR/q line 1: expected: name = SQL"
	mariadb_down
	run --separate-stderr userdb-compile -m "$MDB_READER_CNF" "$OUT"
	local st=$status err=$stderr
	mariadb_up
	[ "$st" -eq 111 ] || fail "exit $st: $err"
	stderr=$err
	assert_one_stderr_line userdb-compile
	assert_stderr_line 'userdb-compile: fatal: unable to connect to MySQL: .*'
	cmp "$OUT" "$OUT.saved" || fail "OUT changed"
	local -a tmps=("$OUT".tmp.*)
	[ ! -e "${tmps[0]}" ] || fail "temporary file left: ${tmps[*]}"
}

compiled_lines() {
	grep -c '^userdb-compile: compiled ' "$SYNC_LOG" || true
}

# start_sync: userdb-compile -m ... -w 1 $OUT in the background, logging to $SYNC_LOG; waits
# for its first compile.
start_sync() {
	SYNC_LOG=$BATS_TEST_TMPDIR/sync.log
	start_group "$SYNC_LOG" userdb-compile -m "$MDB_READER_CNF" -w 1 "$OUT"
	SYNC_PID=$BG_PID
	wait_until 100 test -e "$OUT" || fail "no first compile: $(cat "$SYNC_LOG")"
}

@test "sync: compiles once, then only when MySQL's data changed; SIGHUP forces; SIGTERM stops" {
	start_sync
	wait_until 50 grep -q compiled "$SYNC_LOG"
	sleep 3
	assert_equal "$(compiled_lines)" 1
	grep -q '^userdb-compile: compiled .*: 3 domains, 3 mailboxes, 9 aliases, 0 bad rows skipped$' "$SYNC_LOG" ||
		fail "$(cat "$SYNC_LOG")"
	admin alias-set sync@example.test bob@example.test
	wait_until 50 sh -c 'USERDB=$0 userdb-lookup sync@example.test | grep -q mailbox' "$OUT" ||
		fail "the new alias did not arrive: $(cat "$SYNC_LOG")"
	admin alias-del sync@example.test
	wait_until 50 sh -c '[ "$(grep -c compiled "$1")" -eq 3 ]' _ "$SYNC_LOG" || fail "$(cat "$SYNC_LOG")"
	kill -HUP "$SYNC_PID"
	wait_until 50 sh -c '[ "$(grep -c compiled "$1")" -eq 4 ]' _ "$SYNC_LOG" || fail "$(cat "$SYNC_LOG")"
	kill -TERM "$SYNC_PID"
	wait "$SYNC_PID"
	grep -qx 'userdb-compile: stopped' "$SYNC_LOG" || fail "$(cat "$SYNC_LOG")"
	# A restart finds the stamp in the CDB: nothing to compile.
	start_sync
	sleep 2
	assert_equal "$(compiled_lines)" 0
}

@test "sync: a stamp query the server refuses is logged once and nothing else happens; a CDB without a stamp is compiled even when the stamp is empty" {
	printf 'stamp = SELECT nosuchcolumn FROM domain\n' >"$BATS_TEST_TMPDIR/bad"
	SYNC_LOG=$BATS_TEST_TMPDIR/sync.log
	start_group "$SYNC_LOG" userdb-compile -m "$MDB_READER_CNF" -q "$BATS_TEST_TMPDIR/bad" -w 1 "$OUT"
	wait_until 50 grep -q nosuchcolumn "$SYNC_LOG" || fail "$(cat "$SYNC_LOG")"
	sleep 2.5
	assert_equal "$(grep -c . "$SYNC_LOG")" 2	# started, and the one failure
	kill_group "$BG_PID" TERM
	printf 'stamp = SELECT 1 FROM domain WHERE 1 = 0\n' >"$BATS_TEST_TMPDIR/empty"
	start_group "$SYNC_LOG" userdb-compile -m "$MDB_READER_CNF" -q "$BATS_TEST_TMPDIR/empty" -w 1 "$OUT"
	wait_until 50 test -e "$OUT" || fail "no compile with an empty stamp: $(cat "$SYNC_LOG")"
}

@test "MySQL down: mail flows on the last CDB; sync logs once and keeps it; back up, a new mailbox is live within the interval" {
	make_queue
	export MAILROOT=$BATS_TEST_TMPDIR/mail USERDB=$OUT
	printf 'login-pw\n' | admin mailbox-add login@example.test
	start_sync
	mariadb_down
	wait_until 50 grep -q 'keeping' "$SYNC_LOG" || fail "no log line: $(cat "$SYNC_LOG")"
	sleep 2
	assert_equal "$(grep -c 'keeping' "$SYNC_LOG")" 1
	grep -Eq "^userdb-compile: (unable to connect to MySQL|query failed): .*; keeping $OUT as it is, retrying$" "$SYNC_LOG" ||
		fail "$(cat "$SYNC_LOG")"
	# smtp-recv validates recipients from the CDB.
	run --separate-stderr -0 smtp_session SMTP_HOSTNAME=mx.example.test <<'EOF2'
EHLO client.example.org
MAIL FROM:<someone@remote.test>
RCPT TO:<nobody@example.test>
RCPT TO:<alice@alias.test>
DATA
Subject: while MySQL is down

hello
.
QUIT
EOF2
	assert_line --regexp '^550 5\.1\.1 '
	assert_line --regexp '^250 2\.0\.0 .*'
	# queue-run delivers.
	run --separate-stderr -0 queue-run -1
	assert_equal "$(msg_count "$MAILROOT/example.test/alice")" 1
	# checkpassword-mysql in CDB mode authenticates.
	run --separate-stderr -0 sh -c 'printf "login@example.test\0login-pw\0" |
		checkpassword-mysql -d 0 sh -c "echo \$USER" 3<&0 </dev/null'
	assert_output login@example.test
	# MySQL returns; a mailbox added there is accepted within the sync interval.
	mariadb_up
	printf 'pw\n' | admin mailbox-add newbie@example.test
	wait_until 50 grep -q 'MySQL is reachable again' "$SYNC_LOG" || fail "$(cat "$SYNC_LOG")"
	wait_until 30 sh -c 'USERDB=$0 userdb-lookup newbie@example.test | grep -q mailbox' "$OUT" ||
		fail "newbie did not arrive: $(cat "$SYNC_LOG")"
	run --separate-stderr -0 smtp_session SMTP_HOSTNAME=mx.example.test <<'EOF2'
EHLO client.example.org
MAIL FROM:<someone@remote.test>
RCPT TO:<newbie@example.test>
QUIT
EOF2
	assert_line --regexp '^250 2\.1\.5 .*'
	admin mailbox-del newbie@example.test
	admin mailbox-del login@example.test
}
