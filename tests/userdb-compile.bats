#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# userdb-compile -f USERS.TXT OUT.cdb: the text format of userdb(5), the CDB layout, errors with
# line numbers, and the atomic replacement of OUT.cdb. (That queue-run uses the compiled CDB is
# covered by queue-run.bats, whose fixture is compiled by this program.)

load lib/common

setup() {
	TXT=$BATS_TEST_TMPDIR/users.txt
	OUT=$BATS_TEST_TMPDIR/out.cdb
}

# dump: the records of $OUT, one "key<TAB>value" line each (NUL shown as \0).
dump() {
	"$PYTHON" "$TESTLIB/cdbdump.py" "$OUT"
}

# compile_good: compiles the fixture into $OUT and keeps a copy in $OUT.saved.
compile_good() {
	users_txt >"$TXT"
	run --separate-stderr -0 userdb-compile -f "$TXT" "$OUT"
	cp "$OUT" "$OUT.saved"
}

# assert_bad_line LINE-NUMBER LINE...: a file made of the good fixture's first part (domains
# and two mailboxes, so that line numbers are predictable) followed by LINE... fails with exit
# 100 and one stderr line naming FILE line LINE-NUMBER, and leaves $OUT byte-identical.
assert_bad_line() {
	local n=$1
	shift
	compile_good
	{
		printf 'domain example.test\n'
		printf '# a comment\n'
		printf '\n'
		printf 'mailbox alice@example.test {SHA512-CRYPT}$6$s$h example.test/alice/\n'
		printf 'mailbox bob@example.test $y$j9T$s$h example.test/bob/ 1000\n'
		printf '%s\n' "$@"
	} >"$TXT"
	run --separate-stderr -100 userdb-compile -f "$TXT" "$OUT"
	assert_one_stderr_line userdb-compile
	[[ $stderr == "userdb-compile: fatal: $TXT line $n: "* ]] ||
		fail "$(printf 'stderr does not name %s line %s:\n%s' "$TXT" "$n" "$stderr")"
	cmp "$OUT.saved" "$OUT" || fail "OUT.cdb changed"
	local -a tmps=("$OUT".tmp.*)
	[ ! -e "${tmps[0]}" ] || fail "temporary file left: ${tmps[*]}"
}

@test "the fixture compiles: exit 0, no output, the CDB has the records of userdb(5)" {
	users_txt >"$TXT"
	run --separate-stderr -0 userdb-compile -f "$TXT" "$OUT"
	[ -z "$output$stderr" ] || fail "output: $output$stderr"
	run -0 dump
	assert_line 'V	1'
	assert_line 'Dexample.test	'
	assert_line 'Dother.test	'
	assert_line --regexp '^Malice@example\.test	\{SHA512-CRYPT\}\$6\$saltsalt\$aliceHASH\\0example\.test/alice/\\00?$'
	assert_line --regexp '^Mbob@example\.test	\{SHA512-CRYPT\}\$6\$saltsalt\$bobHASH\\0example\.test/bob/\\00?$'
	assert_line 'Mcarol@example.test	$y$j9T$saltsalt$carolHASH\0example.test/carol/\02000'
	assert_line 'Apostmaster@example.test	alice@example.test\0'
	assert_line 'Ateam@example.test	alice@example.test\0bob@example.test\0'
	assert_line 'Aall@example.test	team@example.test\0carol@example.test\0'
	assert_line 'Aloop1@example.test	loop2@example.test\0'
	assert_line 'Aloop2@example.test	loop1@example.test\0'
	assert_line 'A@other.test	bob@example.test\0'
	assert_equal "${#lines[@]}" 12
}

@test "a mailbox without a quota has quota 0 or empty (unlimited)" {
	printf 'domain example.test\nmailbox alice@example.test x example.test/alice/\n' >"$TXT"
	run -0 userdb-compile -f "$TXT" "$OUT"
	run -0 dump
	assert_line --regexp '^Malice@example\.test	x\\0example\.test/alice/\\00?$'
}

@test "names are stored lower-cased; domain order does not matter; comments and blanks ignored" {
	cat >"$TXT" <<'EOF'

   # leading comment
mailbox Alice@Example.TEST x example.test/Alice/ 0   # trailing comment
alias Team@EXAMPLE.test Alice@Example.Test,Remote@Elsewhere.ORG
	alias	@Example.Test	alice@example.test
domain Example.TEST
EOF
	run --separate-stderr -0 userdb-compile -f "$TXT" "$OUT"
	run -0 dump
	assert_line 'Dexample.test	'
	assert_line --regexp '^Malice@example\.test	x\\0example\.test/Alice/\\00?$'
	# targets are addresses too: compared case-insensitively when resolved (queue-run.bats)
	re=$'(^|\n)Ateam@example\\.test\talice@example\\.test\\\\0remote@elsewhere\\.org\\\\0(\n|$)'
	shopt -s nocasematch
	[[ $output =~ $re ]] || fail "no team@ record: $output"
	shopt -u nocasematch
	assert_line 'A@example.test	alice@example.test\0'
}

@test "a # inside a field is not a comment; after white space it is" {
	printf '%s\n' 'domain example.test' \
		'mailbox x@example.test pa#ss example.test/x/ # the rest is a comment' >"$TXT"
	run --separate-stderr -0 userdb-compile -f "$TXT" "$OUT"
	run -0 dump
	assert_line --regexp '^Mx@example\.test	pa#ss\\0example\.test/x/\\00?$'
}

@test "the CDB is used by queue-run: a compiled change takes effect" {
	make_queue
	make_userdb
	make_message "$BATS_TEST_TMPDIR/msg" ud-1
	run -0 inject sender@remote.test newbie@example.test <"$BATS_TEST_TMPDIR/msg"
	make_userdb 'mailbox newbie@example.test x example.test/newbie/'
	run --separate-stderr -0 queue-run -1
	assert_count 1 msg_count "$MAILROOT/example.test/newbie"
	assert_count 0 file_count "$QUEUEDIR/bounce"
}

@test "recompiling replaces OUT.cdb; no temporary file is left" {
	compile_good
	printf 'domain example.test\nmailbox zed@example.test x example.test/zed/\n' >"$TXT"
	run --separate-stderr -0 userdb-compile -f "$TXT" "$OUT"
	run -0 dump
	assert_line --regexp '^Mzed@example\.test	'
	refute_line --regexp '^Malice@'
	local -a tmps=("$OUT".tmp.*)
	[ ! -e "${tmps[0]}" ] || fail "temporary file left: ${tmps[*]}"
}

@test "alias-domain: a D record naming the target; its addresses resolve in the target domain" {
	users_txt 'alias-domain alias.test example.test' 'alias info@alias.test carol@example.test' \
		'domain alias.test' >"$TXT"
	run --separate-stderr -0 userdb-compile -f "$TXT" "$OUT"
	run -0 dump
	assert_line 'Dalias.test	example.test'
	assert_line 'Dexample.test	'
	run -0 env USERDB="$OUT" userdb-lookup alice@alias.test bob+x@alias.test team@alias.test \
		info@alias.test nobody@alias.test
	assert_line 'alice@alias.test	mailbox	alice@example.test	example.test/alice/	0'
	assert_line 'bob+x@alias.test	mailbox	bob@example.test	example.test/bob/	0'
	assert_line 'team@alias.test	mailbox	bob@example.test	example.test/bob/	0'
	# The alias domain's own alias comes first.
	assert_line 'info@alias.test	mailbox	carol@example.test	example.test/carol/	2000'
	assert_line 'nobody@alias.test	failed	nobody@alias.test	5.1.1 unknown user'
}

@test "alias-domain: catch-alls, the alias domain's own before the target's" {
	users_txt 'alias-domain a1.test example.test' 'alias-domain a2.test example.test' \
		'alias @a1.test carol@example.test' 'alias @example.test bob@example.test' >"$TXT"
	run --separate-stderr -0 userdb-compile -f "$TXT" "$OUT"
	run -0 env USERDB="$OUT" userdb-lookup x@a1.test x@a2.test alice@a1.test
	assert_line 'x@a1.test	mailbox	carol@example.test	example.test/carol/	2000'
	assert_line 'x@a2.test	mailbox	bob@example.test	example.test/bob/	0'
	assert_line 'alice@a1.test	mailbox	alice@example.test	example.test/alice/	0'
}

@test "bad line: alias-domain to an undeclared domain, to an alias domain, twice -> 100" {
	assert_bad_line 6 'alias-domain a.test nowhere.test'
	assert_bad_line 7 'alias-domain a.test example.test' 'alias-domain b.test a.test'
	assert_bad_line 7 'alias-domain a.test example.test' 'alias-domain a.test other.test'
	assert_bad_line 6 'alias-domain a.test'
}

@test "bad line: unknown directive -> 100, names the line, OUT.cdb untouched" {
	assert_bad_line 6 'frobnicate alice@example.test'
}

@test "bad line: mailbox in an undeclared domain -> 100" {
	assert_bad_line 7 'alias x@example.test alice@example.test' 'mailbox eve@undeclared.test x undeclared.test/eve/'
}

@test "bad line: alias in an undeclared domain -> 100" {
	assert_bad_line 6 'alias eve@undeclared.test alice@example.test'
}

@test "bad line: catch-all for an undeclared domain -> 100" {
	assert_bad_line 6 'alias @undeclared.test alice@example.test'
}

@test "bad line: quota not a number -> 100" {
	assert_bad_line 6 'mailbox carol@example.test x example.test/carol/ 12abc'
}

@test "bad line: negative quota -> 100" {
	assert_bad_line 6 'mailbox carol@example.test x example.test/carol/ -5'
}

@test "bad line: maildir with a .. component -> 100" {
	assert_bad_line 6 'mailbox carol@example.test x example.test/../carol/'
}

@test "bad line: maildir that is just .. -> 100" {
	assert_bad_line 6 'mailbox carol@example.test x ..'
}

@test "bad line: maildir with a leading / -> 100" {
	assert_bad_line 6 'mailbox carol@example.test x /var/mail/carol/'
}

@test "bad line: duplicate mailbox -> 100, names the second line" {
	assert_bad_line 6 'mailbox alice@example.test x example.test/alice2/'
}

@test "bad line: duplicate mailbox differing only in case -> 100" {
	assert_bad_line 6 'mailbox ALICE@example.test x example.test/alice2/'
}

@test "bad line: duplicate alias -> 100" {
	assert_bad_line 7 'alias team@example.test alice@example.test' 'alias team@example.test bob@example.test'
}

@test "bad line: mailbox with too few fields -> 100" {
	assert_bad_line 6 'mailbox carol@example.test x'
}

@test "bad line: mailbox with too many fields -> 100" {
	assert_bad_line 6 'mailbox carol@example.test x example.test/carol/ 100 extra'
}

@test "bad line: address without @ -> 100" {
	assert_bad_line 6 'mailbox carol x example.test/carol/'
}

@test "bad line: domain without a name -> 100" {
	assert_bad_line 6 'domain'
}

@test "bad line: alias without targets -> 100" {
	assert_bad_line 6 'alias carol@example.test'
}

@test "usage: no arguments -> 100, one stderr line" {
	run --separate-stderr -100 userdb-compile
	assert_one_stderr_line userdb-compile
}

@test "usage: -f without OUT.cdb -> 100" {
	users_txt >"$TXT"
	run --separate-stderr -100 userdb-compile -f "$TXT"
	assert_one_stderr_line userdb-compile
}

@test "usage: an unknown option -> 100, one stderr line" {
	users_txt >"$TXT"
	run --separate-stderr -100 userdb-compile -x -f "$TXT" "$OUT"
	assert_one_stderr_line userdb-compile
	[ ! -e "$OUT" ]
}

@test "a missing input file -> 111, OUT.cdb untouched" {
	compile_good
	run --separate-stderr -111 userdb-compile -f "$BATS_TEST_TMPDIR/no-such-file" "$OUT"
	assert_one_stderr_line userdb-compile
	cmp "$OUT.saved" "$OUT"
}

@test "an output directory that does not exist -> 111" {
	users_txt >"$TXT"
	run --separate-stderr -111 userdb-compile -f "$TXT" "$BATS_TEST_TMPDIR/no-such-dir/out.cdb"
	assert_one_stderr_line userdb-compile
}

# The CDB holds every password hash: never readable by all, and a recompile keeps what the
# admin set on the file.
@test "a new users.cdb is 0640 whatever the umask: the hashes are not readable by all" {
	users_txt >"$TXT"
	run -0 bash -c 'umask 000 && userdb-compile -f "$1" "$2"' - "$TXT" "$OUT"
	run -0 stat -c %a "$OUT"
	assert_output 640
}

@test "a recompile keeps the old file's mode, owner and group, less any access for others" {
	users_txt >"$TXT"
	run -0 userdb-compile -f "$TXT" "$OUT"
	chown "$NOBODY_UID:$NOBODY_GID" "$OUT"
	chmod 0600 "$OUT"
	run -0 userdb-compile -f "$TXT" "$OUT"
	run -0 stat -c '%a %u %g' "$OUT"
	assert_output "600 $NOBODY_UID $NOBODY_GID"
	chmod 0644 "$OUT"
	run -0 userdb-compile -f "$TXT" "$OUT"
	run -0 stat -c %a "$OUT"
	assert_output 640
}

@test "as a user other than root: a new file 0640 of that user; a replacement keeps its mode" {
	make_private_dir
	local dir=$PRIVATE_DIR/db
	mkdir "$dir"
	users_txt >"$dir/users.txt"
	chown -R "$NOBODY_UID:$NOBODY_GID" "$dir"
	run -0 as_nobody "$PRIVATE_DIR/bin/userdb-compile" -f "$dir/users.txt" "$dir/out.cdb"
	run -0 stat -c '%a %u %g' "$dir/out.cdb"
	assert_output "640 $NOBODY_UID $NOBODY_GID"
	chmod 0600 "$dir/out.cdb"
	run -0 as_nobody "$PRIVATE_DIR/bin/userdb-compile" -f "$dir/users.txt" "$dir/out.cdb"
	run -0 stat -c '%a %u %g' "$dir/out.cdb"
	assert_output "600 $NOBODY_UID $NOBODY_GID"
}

@test "a replacement whose group the compiling user cannot set is readable by its owner alone" {
	make_private_dir
	local dir=$PRIVATE_DIR/db
	mkdir "$dir"
	users_txt >"$dir/users.txt"
	chown -R "$NOBODY_UID:$NOBODY_GID" "$dir"
	run -0 as_nobody "$PRIVATE_DIR/bin/userdb-compile" -f "$dir/users.txt" "$dir/out.cdb"
	chgrp 0 "$dir/out.cdb"	# a group nobody is not in
	chmod 0640 "$dir/out.cdb"
	run -0 as_nobody "$PRIVATE_DIR/bin/userdb-compile" -f "$dir/users.txt" "$dir/out.cdb"
	run -0 stat -c '%a %u %g' "$dir/out.cdb"
	assert_output "600 $NOBODY_UID $NOBODY_GID"
}
