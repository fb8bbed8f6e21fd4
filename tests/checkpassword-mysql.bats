#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# checkpassword-mysql: the checkpassword interface (fd 3 in, PROG run with USER, HOME, MAILDIR
# in the mailbox), every password scheme Dovecot and PostfixAdmin store, the exit codes, the
# log line, and MySQL (-m) first with the CDB as the fallback, against a real MariaDB server.

load lib/common
load lib/smtp
load lib/mariadb

# The password hashes, made by other programs than ours (openssl passwd, perl's crypt), for
# one mailbox per scheme: "local password hash".
schemes() {
	local blf yes
	blf=$(perl -e 'print crypt("pw-blf", "\$2y\$05\$abcdefghijklmnopqrstuu")')
	yes=$(perl -e 'print crypt("pw-yes", "\$y\$j9T\$abcdefghijklmnop\$")')
	cat <<EOF2
sha512 pw-sha512 {SHA512-CRYPT}$(openssl passwd -6 -salt saltsalt pw-sha512)
sha256 pw-sha256 {SHA256-CRYPT}$(openssl passwd -5 -salt saltsalt pw-sha256)
md5 pw-md5 {MD5-CRYPT}$(openssl passwd -1 -salt saltsalt pw-md5)
blf pw-blf {BLF-CRYPT}$blf
crypt pw-crypt {CRYPT}$(openssl passwd -6 -salt saltsalt pw-crypt)
lower pw-lower {sha512-crypt}$(openssl passwd -6 -salt saltsalt pw-lower)
bare6 pw-bare6 $(openssl passwd -6 -salt saltsalt pw-bare6)
bare5 pw-bare5 $(openssl passwd -5 -salt saltsalt pw-bare5)
bare2y pw-bare2y $(perl -e 'print crypt("pw-bare2y", "\$2y\$05\$abcdefghijklmnopqrstuu")')
yescrypt pw-yes $yes
EOF2
}

setup_file() {
	mariadb_setup
	export SCHEMES=$BATS_FILE_TMPDIR/schemes
	schemes >"$SCHEMES"
	# The same mailboxes in MySQL (through userdb-admin, then the hash set as the scheme needs)
	# and in a text file.
	userdb-admin -m "$MDB_ADMIN_CNF" -c '' domain-add example.test
	local txt=$BATS_FILE_TMPDIR/users.txt
	local local pw hash
	printf 'domain example.test\n' >"$txt"
	while read -r local pw hash; do
		printf 'x\n' | userdb-admin -m "$MDB_ADMIN_CNF" -c '' mailbox-add "$local@example.test"
		mdb_sql "UPDATE mailbox SET password = '$hash' WHERE username = '$local@example.test'"
		printf 'mailbox %s@example.test %s example.test/%s/\n' "$local" "$hash" "$local" >>"$txt"
	done <"$SCHEMES"
	printf 'x\n' | userdb-admin -m "$MDB_ADMIN_CNF" -c '' mailbox-add plain@example.test
	mdb_sql "UPDATE mailbox SET password = '{PLAIN}pw-plain' WHERE username = 'plain@example.test'"
	printf 'mailbox plain@example.test {PLAIN}pw-plain example.test/plain/\n' >>"$txt"
	printf 'x\n' | userdb-admin -m "$MDB_ADMIN_CNF" -c '' mailbox-add ssha@example.test
	mdb_sql "UPDATE mailbox SET password = '{SSHA}c2VjcmV0c2FsdA==' WHERE username = 'ssha@example.test'"
	printf 'mailbox ssha@example.test {SSHA}c2VjcmV0c2FsdA== example.test/ssha/\n' >>"$txt"
	printf 'pw-gone\n' | userdb-admin -m "$MDB_ADMIN_CNF" -c '' mailbox-add gone@example.test
	userdb-admin -m "$MDB_ADMIN_CNF" -c '' mailbox-active gone@example.test no
	userdb-compile -m "$MDB_READER_CNF" "$BATS_FILE_TMPDIR/mysql.cdb"
	userdb-compile -f "$txt" "$BATS_FILE_TMPDIR/text.cdb"
}

teardown_file() {
	mariadb_teardown
}

setup() {
	export USERDB=$BATS_FILE_TMPDIR/text.cdb
	export MAILROOT=$BATS_TEST_TMPDIR/mail
	export ENVOUT=$BATS_TEST_TMPDIR/env.out
	export TCPREMOTEIP=192.0.2.9
	mkdir -p "$MAILROOT"
}

# auth USER PASSWORD [OPTION...]: checkpassword-mysql OPTION... with "USER\0PASSWORD\0stamp\0"
# on fd 3; PROG writes USER, HOME, MAILDIR and its working directory to $ENVOUT.
auth() {
	local user=$1 pass=$2
	shift 2
	printf '%s\0%s\0%s\0' "$user" "$pass" 1700000000 |
		checkpassword-mysql -d 0 "$@" \
			sh -c 'printf "%s\n" "$USER" "$HOME" "$MAILDIR" "$(pwd)" >"$ENVOUT"' \
			3<&0 </dev/null
}

# assert_ran LOCAL: PROG ran for LOCAL@example.test, in its mailbox.
assert_ran() {
	local dir=$MAILROOT/example.test/$1
	[ -f "$ENVOUT" ] || fail "PROG did not run for $1"
	run cat "$ENVOUT"
	assert_equal "${lines[0]}" "$1@example.test"
	assert_equal "${lines[1]}" "$dir"
	assert_equal "${lines[2]}" "$dir"
	assert_equal "${lines[3]}" "$dir"
	[ -d "$dir/new" ] && [ -d "$dir/cur" ] && [ -d "$dir/tmp" ] || fail "no Maildir made in $dir"
	rm -f "$ENVOUT"
}

refute_ran() {
	[ ! -e "$ENVOUT" ] || fail "PROG ran: $(cat "$ENVOUT")"
}

# every_scheme OPTION...: right password -> PROG runs; wrong password -> 1, for each scheme.
every_scheme() {
	local local pw hash
	while read -r local pw hash; do
		run --separate-stderr auth "$local@example.test" "$pw" "$@"
		[ "$status" -eq 0 ] || fail "$local ($hash): exit $status, stderr: $stderr"
		assert_ran "$local"
		run --separate-stderr auth "$local@example.test" "$pw-wrong" "$@"
		[ "$status" -eq 1 ] || fail "$local with a wrong password: exit $status"
		refute_ran
	done <"$SCHEMES"
}

@test "CDB: every scheme, right password runs PROG with USER, HOME, MAILDIR in the mailbox; wrong gives 1" {
	every_scheme
}

@test "-m: every scheme, from MySQL" {
	every_scheme -m "$MDB_READER_CNF"
}

@test "user names are compared without regard to case; USER is lower-cased" {
	run --separate-stderr -0 auth SHA512@Example.TEST pw-sha512
	assert_ran sha512
}

@test "-m: only the address itself matches, not what the server's collation finds equal" {
	run --separate-stderr -1 auth 'sha512@example.test ' pw-sha512 -m "$MDB_READER_CNF"
	run --separate-stderr -1 auth 'sha512@exämple.test' pw-sha512 -m "$MDB_READER_CNF"
	assert_stderr_line '.*: unknown user'
	refute_ran
	run --separate-stderr -0 auth 'sha512@example.test' pw-sha512 -m "$MDB_READER_CNF"
	assert_ran sha512
}

@test "a relative MAILROOT: HOME and MAILDIR are absolute all the same" {
	cd "$BATS_TEST_TMPDIR"
	MAILROOT=mail run --separate-stderr -0 auth sha512@example.test pw-sha512
	assert_ran sha512
}

@test "{PLAIN} only with -p; an unsupported scheme ({SSHA}) is refused" {
	run --separate-stderr -1 auth plain@example.test pw-plain
	refute_ran
	assert_stderr_line 'checkpassword-mysql: refused user "plain@example.test" from 192.0.2.9: .*PLAIN.*'
	run --separate-stderr -0 auth plain@example.test pw-plain -p
	assert_ran plain
	run --separate-stderr -1 auth plain@example.test wrong -p
	run --separate-stderr -1 auth ssha@example.test secret -p
	refute_ran
}

@test "unknown user: 1; the log line names user and client, never the password" {
	run --separate-stderr -1 auth nobody@example.test sekrit-guess
	refute_ran
	assert_one_stderr_line checkpassword-mysql
	assert_equal "$stderr" 'checkpassword-mysql: refused user "nobody@example.test" from 192.0.2.9: unknown user'
	run --separate-stderr -1 auth sha512@example.test sekrit-guess
	assert_equal "$stderr" 'checkpassword-mysql: refused user "sha512@example.test" from 192.0.2.9: wrong password'
	[[ $stderr != *sekrit* ]] || fail "the password is in the log"
}

@test "inactive mailbox: 1, in CDB mode (not compiled in) and with -m (active = 0 in MySQL)" {
	export USERDB=$BATS_FILE_TMPDIR/mysql.cdb
	run --separate-stderr -1 auth gone@example.test pw-gone
	assert_stderr_line '.*: unknown user'
	run --separate-stderr -1 auth gone@example.test pw-gone -m "$MDB_READER_CNF"
	assert_stderr_line '.*: mailbox or domain inactive'
	refute_ran
}

@test "inactive domain with -m: 1" {
	printf 'pw-x\n' | userdb-admin -m "$MDB_ADMIN_CNF" -c '' mailbox-add x@example.test
	run --separate-stderr -0 auth x@example.test pw-x -m "$MDB_READER_CNF"
	userdb-admin -m "$MDB_ADMIN_CNF" -c '' domain-active example.test no
	run --separate-stderr auth x@example.test pw-x -m "$MDB_READER_CNF"
	userdb-admin -m "$MDB_ADMIN_CNF" -c '' domain-active example.test yes
	userdb-admin -m "$MDB_ADMIN_CNF" -c '' mailbox-del x@example.test
	[ "$status" -eq 1 ] || fail "exit $status"
	assert_stderr_line '.*: mailbox or domain inactive'
}

@test "malformed fd 3: no NULs, one NUL, more than 512 bytes, nothing on fd 3: exit 2" {
	run --separate-stderr -2 sh -c 'printf "alice@example.test" | checkpassword-mysql -d 0 true 3<&0'
	run --separate-stderr -2 sh -c 'printf "alice@example.test\0pw" | checkpassword-mysql -d 0 true 3<&0'
	run --separate-stderr -2 sh -c 'head -c 513 /dev/zero | checkpassword-mysql -d 0 true 3<&0'
	run --separate-stderr -2 sh -c 'checkpassword-mysql -d 0 true 3<&-'
	assert_one_stderr_line checkpassword-mysql
	# 512 bytes exactly is allowed: a long password.
	local long
	long=$(head -c 480 /dev/zero | tr '\0' x)
	run --separate-stderr -1 auth sha512@example.test "$long"
}

@test "the CDB missing or USERDB unset: 111" {
	export USERDB=$BATS_TEST_TMPDIR/none.cdb
	run --separate-stderr -111 auth sha512@example.test pw-sha512
	assert_one_stderr_line checkpassword-mysql
	refute_ran
	unset USERDB
	run --separate-stderr -111 auth sha512@example.test pw-sha512
	refute_ran
}

@test "a failure waits -d seconds before exit 1" {
	local start end
	start=$(date +%s%N)
	printf 'sha512@example.test\0wrong\0' | checkpassword-mysql -d 1 true 3<&0 </dev/null || true
	end=$(date +%s%N)
	[ $(((end - start) / 1000000)) -ge 1000 ] || fail "refused after $(((end - start) / 1000000)) ms"
}

@test "password changed in MySQL: at once with -m, in CDB mode after the next recompile" {
	export USERDB=$BATS_TEST_TMPDIR/users.cdb
	printf 'old-pw\n' | userdb-admin -m "$MDB_ADMIN_CNF" -c "$USERDB" mailbox-add change@example.test
	run --separate-stderr -0 auth change@example.test old-pw
	printf 'new-pw\n' | userdb-admin -m "$MDB_ADMIN_CNF" -c '' password change@example.test
	# MySQL knows at once; the CDB is not compiled yet.
	run --separate-stderr -0 auth change@example.test new-pw -m "$MDB_READER_CNF"
	assert_stderr_line '.*authenticated change@example.test from 192.0.2.9 \(mysql\)'
	run --separate-stderr -1 auth change@example.test old-pw -m "$MDB_READER_CNF"
	run --separate-stderr -1 auth change@example.test new-pw
	run --separate-stderr -0 auth change@example.test old-pw
	userdb-compile -m "$MDB_READER_CNF" "$USERDB"
	run --separate-stderr -0 auth change@example.test new-pw
	run --separate-stderr -1 auth change@example.test old-pw
	userdb-admin -m "$MDB_ADMIN_CNF" -c '' mailbox-del change@example.test
}

@test "-m with an option file that cannot be read: 111, not the CDB" {
	run --separate-stderr -111 auth sha512@example.test pw-sha512 -m "$BATS_TEST_TMPDIR/none.cnf"
	assert_one_stderr_line checkpassword-mysql
	refute_ran
}

@test "-m with MySQL down: the CDB answers, with a log line saying so" {
	export USERDB=$BATS_FILE_TMPDIR/mysql.cdb
	mariadb_down
	run --separate-stderr auth sha512@example.test pw-sha512 -m "$MDB_READER_CNF"
	local st=$status
	mariadb_up
	[ "$st" -eq 0 ] || fail "exit $st: $stderr"
	assert_stderr_line 'checkpassword-mysql: unable to connect to MySQL: .*; asking USERDB instead'
	assert_stderr_line '.*authenticated sha512@example.test from 192.0.2.9 \(cdb\)'
	assert_ran sha512
}

@test "userdb-admin: new passwords are {SHA512-CRYPT}, or \$y\$ with -y, and check out" {
	export USERDB=$BATS_TEST_TMPDIR/users.cdb
	printf 'pw-a\n' | userdb-admin -m "$MDB_ADMIN_CNF" -c "$USERDB" mailbox-add a@example.test
	printf 'pw-b\r\n' | userdb-admin -m "$MDB_ADMIN_CNF" -c "$USERDB" -y mailbox-add b@example.test
	run mdb_sql "SELECT password FROM mailbox WHERE username IN ('a@example.test', 'b@example.test') ORDER BY username"
	assert_line --index 0 --regexp '^\{SHA512-CRYPT\}\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$'
	assert_line --index 1 --regexp '^\$y\$[^$]+\$[^$]+\$[./0-9A-Za-z]+$'
	run --separate-stderr -0 auth a@example.test pw-a
	run --separate-stderr -0 auth b@example.test pw-b -m "$MDB_READER_CNF"
	run --separate-stderr -0 auth b@example.test pw-b
	userdb-admin -m "$MDB_ADMIN_CNF" -c '' mailbox-del a@example.test
	userdb-admin -m "$MDB_ADMIN_CNF" -c '' mailbox-del b@example.test
}
