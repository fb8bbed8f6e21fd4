# postroom: ISC license, see LICENSE.
# Loaded by every tests/*.bats with `load lib/common`: bin/ first on PATH, bats-assert, and the
# fixtures (a queue, a user database, an injector speaking the qmail-queue protocol, Maildir
# helpers, a private directory that the nobody user can reach).
# Nothing exported here points outside the test's own $BATS_TEST_TMPDIR.

bats_require_minimum_version 1.5.0

load /usr/lib/bats/bats-support/load.bash
load /usr/lib/bats/bats-assert/load.bash

REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
BIN=${POSTROOM_BIN:-$REPO/bin}
PATH=$BIN:$PATH
TESTLIB=$REPO/tests/lib

# Nothing from the caller's environment may point the programs at a real queue, user database
# or mail store, or change how they resolve and deliver: each test sets what it needs.
unset QUEUEDIR USERDB MAILROOT LOCALDELIVERY RECIPIENT_DELIMITER POSTMASTER OVERQUOTA QUOTA SENDER RECIPIENT \
	ORIGINAL_RECIPIENT \
	QMAILQUEUE RELAYCLIENT CHECKPASSWORD SMTP_AUTH_PLAINTEXT SMTP_AUTH_REQUIRED SMTP_AUTH_MAXFAIL \
	SMTP_AUTH_TIMEOUT SMTP_SENDER_LOGIN UCSPITLS SSLCTLFD SSLREADFD SSLWRITEFD SSL_PROTOCOL \
	SSL_CIPHER SSL_TLS_SNI_SERVERNAME CERTFILE KEYFILE TLS_UID TLS_GID \
	MAILDIR IMAPLOGINTAG IMAPLOGINPENDING IMAP_AUTH_PLAINTEXT IMAP_LOGIN_TIMEOUT IMAP_TIMEOUT \
	IMAP_AUTH_FAILURES IMAP_APPENDLIMIT IMAP_BAD_COMMANDS IMAP_LOGIN_USER

# A fast Python (a pyenv shim takes ~0.4 s to start).
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

NOBODY_UID=65534
NOBODY_GID=65534

# Background processes and private directories to clean up in teardown.
_bg_pids=()
_bg_groups=()
_private_dirs=()

# --- queue and user database ------------------------------------------------------------------

# make_queue: a fresh queue in $BATS_TEST_TMPDIR/queue; exports QUEUEDIR.
make_queue() {
	queue-init "$BATS_TEST_TMPDIR/queue" || fail "queue-init $BATS_TEST_TMPDIR/queue failed"
	export QUEUEDIR=$BATS_TEST_TMPDIR/queue
}

# users_txt [EXTRA-LINE...]: the user database fixture in the userdb(5) text format, on stdout.
users_txt() {
	cat <<'EOF'
# postroom test users (userdb(5))
domain example.test

mailbox alice@example.test {SHA512-CRYPT}$6$saltsalt$aliceHASH example.test/alice/
mailbox bob@example.test   {SHA512-CRYPT}$6$saltsalt$bobHASH   example.test/bob/
mailbox carol@example.test $y$j9T$saltsalt$carolHASH example.test/carol/ 2000	# small quota

alias postmaster@example.test alice@example.test
alias team@example.test alice@example.test,bob@example.test
alias all@example.test team@example.test,carol@example.test
alias loop1@example.test loop2@example.test
alias loop2@example.test loop1@example.test

# a second domain: everything goes to bob
domain other.test
alias @other.test bob@example.test
EOF
	[ $# -eq 0 ] || printf '%s\n' "$@"
}

# make_userdb [EXTRA-LINE...]: writes $BATS_TEST_TMPDIR/users.txt (the fixture plus any extra
# lines), compiles it to $BATS_TEST_TMPDIR/users.cdb; exports USERDB and MAILROOT.
make_userdb() {
	users_txt "$@" >"$BATS_TEST_TMPDIR/users.txt"
	userdb-compile -f "$BATS_TEST_TMPDIR/users.txt" "$BATS_TEST_TMPDIR/users.cdb" ||
		fail "userdb-compile of the fixture failed"
	export USERDB=$BATS_TEST_TMPDIR/users.cdb
	export MAILROOT=$BATS_TEST_TMPDIR/mail
}

# --- injecting -------------------------------------------------------------------------------

# inject FROM TO... < message: queue-inject with the envelope F<from>\0 T<to>\0... \0 on fd 1,
# opened for reading, as qmail-queue's protocol has it.
inject() {
	local from=$1
	shift
	queue-inject 1< <(
		printf 'F%s\0' "$from"
		local to
		for to in "$@"; do printf 'T%s\0' "$to"; done
		printf '\0'
	)
}

# inject_envfile FILE < message: queue-inject with the raw envelope bytes of FILE on fd 1.
inject_envfile() {
	queue-inject 1<"$1"
}

# make_message FILE ID [BODY-BYTES]: a small RFC 5322 message with Message-Id <ID@test>, and
# a body of about BODY-BYTES bytes (default a few lines); its last line is "end of ID".
make_message() {
	local file=$1 id=$2 size=${3:-0}
	{
		printf 'From: Sender <sender@remote.test>\n'
		printf 'To: someone@example.test\n'
		printf 'Subject: test message %s\n' "$id"
		printf 'Message-Id: <%s@test>\n' "$id"
		printf '\n'
		printf 'Hello,\nthis is message %s.\n' "$id"
		if [ "$size" -gt 0 ]; then
			printf '%063d\n' $(seq 0 $((size / 64)))
		fi
		printf 'end of %s\n' "$id"
	} >"$file"
}

# make_messages DIR N [BODY-BYTES]: N messages DIR/1 ... DIR/N, made as make_message does
# with ids 1 ... N (the file name is the id, as check_maildirs expects).
make_messages() {
	local dir=$1 n=$2 size=${3:-0} i body=''
	mkdir -p "$dir"
	if [ "$size" -gt 0 ]; then body=$(printf '%063d\n' $(seq 0 $((size / 64)))); fi
	for ((i = 1; i <= n; i++)); do
		{
			printf 'From: Sender <sender@remote.test>\nTo: someone@example.test\n'
			printf 'Subject: test message %s\nMessage-Id: <%s@test>\n\n' "$i" "$i"
			printf 'Hello,\nthis is message %s.\n' "$i"
			[ -z "$body" ] || printf '%s\n' "$body"
			printf 'end of %s\n' "$i"
		} >"$dir/$i"
	done
}

# check_maildirs ORIGDIR SENDER MAILDIR...: see lib/check_maildirs.py; prints
# "messages=N distinct=N missing=N duplicated=N bad=N unknown=N".
check_maildirs() {
	"$PYTHON" "$TESTLIB/check_maildirs.py" "$@"
}

# assert_maildirs PATTERN ORIGDIR SENDER MAILDIR...: check_maildirs's summary line matches the
# glob PATTERN; on failure shows the problems it found.
assert_maildirs() {
	local pat=$1 out err=$BATS_TEST_TMPDIR/check_maildirs.err
	shift
	out=$(check_maildirs "$@" 2>"$err") || fail "check_maildirs failed: $(cat "$err")"
	# shellcheck disable=SC2053
	[[ $out == $pat ]] ||
		fail "$(printf 'Maildirs: %s\nexpected: %s\n%s' "$out" "$pat" "$(head -20 "$err")")"
}

# --- Maildirs and directories ----------------------------------------------------------------

# mailbox USER: the Maildir of USER@example.test under $MAILROOT.
mailbox() {
	printf '%s/example.test/%s\n' "$MAILROOT" "$1"
}

# maildir_files DIR: the files in the Maildir DIR's new/, full paths, sorted, one per line.
maildir_files() {
	[ -d "$1/new" ] || return 0
	find "$1/new" -mindepth 1 -maxdepth 1 -type f | LC_ALL=C sort
}

# msg_count DIR: the number of messages in the Maildir DIR's new/ (0 if it does not exist).
msg_count() {
	if [ -d "$1/new" ]; then file_count "$1/new"; else echo 0; fi
}

# file_count DIR: the number of entries in the plain directory DIR (e.g. $QUEUEDIR/msg).
file_count() {
	local n
	_count_entries n "$1"
	echo "$n"
}

# _count_entries VAR DIR: sets VAR to the number of entries in DIR, without a subshell.
_count_entries() {
	local -n _ce_out=$1
	local -a _ce_entries
	local _ce_ng=0 _ce_dg=0
	if shopt -q nullglob; then _ce_ng=1; fi
	if shopt -q dotglob; then _ce_dg=1; fi
	shopt -s nullglob dotglob
	_ce_entries=("$2"/*)
	[ "$_ce_ng" = 1 ] || shopt -u nullglob
	[ "$_ce_dg" = 1 ] || shopt -u dotglob
	_ce_out=${#_ce_entries[@]}
}

# queue_files SUBDIR: the files in $QUEUEDIR/SUBDIR, full paths, sorted.
queue_files() {
	find "$QUEUEDIR/$1" -mindepth 1 -maxdepth 1 -type f | LC_ALL=C sort
}

# assert_count EXPECTED COMMAND...: the number printed by COMMAND equals EXPECTED.
# (file_count and msg_count are counted in this shell: a fork costs ~20 ms here.)
assert_count() {
	local want=$1 got
	shift
	case $1 in
	file_count) _count_entries got "$2" ;;
	msg_count) if [ -d "$2/new" ]; then _count_entries got "$2/new"; else got=0; fi ;;
	*) got=$("$@") ;;
	esac
	[ "$got" = "$want" ] || fail "$(printf '%s: expected %s, got %s' "$*" "$want" "$got")"
}

# assert_delivered FILE SENDER RECIPIENT ORIGINAL [ORIGINAL-TO]: the Maildir file FILE is
# "Return-Path: <SENDER>", "X-Original-To: ORIGINAL-TO", "Delivered-To: RECIPIENT", then ORIGINAL
# byte for byte. Without ORIGINAL-TO there must be no X-Original-To line (maildir-deliver
# without ORIGINAL_RECIPIENT); queue-run's deliveries always name the envelope recipient.
assert_delivered() {
	local file=$1 sender=$2 rcpt=$3 orig=$4 l1 l2 l3 skip=3
	[ -f "$file" ] || fail "no delivered file $file"
	{
		IFS= read -r l1 || true
		IFS= read -r l2 || true
		IFS= read -r l3 || true
	} <"$file"
	[ "$l1" = "Return-Path: <$sender>" ] ||
		fail "$file: line 1 is '$l1', expected 'Return-Path: <$sender>'"
	if [ $# -ge 5 ]; then
		[ "$l2" = "X-Original-To: $5" ] ||
			fail "$file: line 2 is '$l2', expected 'X-Original-To: $5'"
		l2=$l3
		skip=4
	fi
	[ "$l2" = "Delivered-To: $rcpt" ] ||
		fail "$file: the line after Return-Path (and X-Original-To) is '$l2', expected 'Delivered-To: $rcpt'"
	tail -n +"$skip" "$file" | cmp -s - "$orig" ||
		fail "$file: the message after the added lines differs from $orig"
}

# assert_log REGEX FILE: some whole line of FILE matches the extended REGEX.
assert_log() {
	grep -Eqx -- "$1" "$2" ||
		fail "$(printf 'no line of %s matches\n  %s\n--- %s:\n%s' "$2" "$1" "$2" "$(cat "$2")")"
}

# refute_log REGEX FILE: no whole line of FILE matches the extended REGEX.
refute_log() {
	! grep -Eqx -- "$1" "$2" ||
		fail "$(printf 'a line of %s matches\n  %s\n--- %s:\n%s' "$2" "$1" "$2" "$(cat "$2")")"
}

# assert_one_stderr_line PROG: $stderr (from run --separate-stderr) is exactly one line,
# starting with "PROG:".
assert_one_stderr_line() {
	[ "${#stderr_lines[@]}" -eq 1 ] ||
		fail "$(printf 'expected one stderr line, got %d:\n%s' "${#stderr_lines[@]}" "$stderr")"
	[[ ${stderr_lines[0]} == "$1:"* ]] ||
		fail "stderr line does not start with '$1:': ${stderr_lines[0]}"
}

# re_escape STRING: STRING with the ERE metacharacters escaped.
re_escape() {
	printf '%s' "$1" | sed -e 's/[][\.*^$+?(){}|/]/\\&/g'
}

# wait_until MAX-TENTHS COMMAND...: runs COMMAND every 0.1 s until it succeeds, at most
# MAX-TENTHS times; returns 1 if it never did.
wait_until() {
	local n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# drip_fifo FIFO BYTES COUNT SECONDS: opens FIFO for writing and writes BYTES (printf's escapes
# allowed) COUNT times, SECONDS apart, stopping quietly once the reader has gone: a client
# that keeps a server busy without ever finishing what it should.
drip_fifo() {
	"$PYTHON" -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
data = sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
try:
    for i in range(int(sys.argv[3])):
        os.write(fd, data)
        time.sleep(float(sys.argv[4]))
except OSError:
    pass' "$@"
}

# --- background processes --------------------------------------------------------------------

# track_pid PID: kill PID in teardown.
track_pid() {
	_bg_pids+=("$1")
}

# start_group LOGFILE COMMAND...: starts COMMAND in the background in its own session and
# process group (so a kill -9 of the group kills its workers too, as a crash would), stderr to
# LOGFILE. Sets BG_PID (= its process group id); the group is killed in teardown.
start_group() {
	local log=$1
	shift
	setsid "$@" </dev/null >/dev/null 2>"$log" 3>&- &
	BG_PID=$!
	_bg_groups+=("$BG_PID")
}

# kill_group PID [SIGNAL]: kills the process group PID (default KILL) and reaps its leader.
kill_group() {
	kill -"${2:-KILL}" -- -"$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# --- the nobody user -------------------------------------------------------------------------

# as_nobody COMMAND...: runs COMMAND as uid/gid 65534 with no supplementary groups.
as_nobody() {
	setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups -- "$@"
}

# make_private_dir: a directory under /tmp (made with mktemp, removed in teardown), mode 0755,
# on a path nobody can traverse (the bats temporary directories may be 0700), with copies of
# the programs in its bin/. Sets PRIVATE_DIR.
make_private_dir() {
	PRIVATE_DIR=$(mktemp -d /tmp/postroom-test.XXXXXXXX) || fail "mktemp failed"
	_private_dirs+=("$PRIVATE_DIR")
	chmod 0755 "$PRIVATE_DIR"
	mkdir -m 0755 "$PRIVATE_DIR/bin"
	local prog
	for prog in queue-init queue-inject queue-run maildir-deliver userdb-compile tls-wrap; do
		[ -x "$BIN/$prog" ] && cp "$BIN/$prog" "$PRIVATE_DIR/bin/$prog"
	done
	chmod -R a+rX "$PRIVATE_DIR/bin"
}

common_teardown() {
	local pid
	for pid in "${_bg_groups[@]}"; do
		kill -KILL -- -"$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	for pid in "${_bg_pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	local dir
	for dir in "${_private_dirs[@]}"; do
		case $dir in /tmp/postroom-test.*) rm -rf -- "$dir" ;; esac
	done
	return 0
}

teardown() {
	common_teardown
}
