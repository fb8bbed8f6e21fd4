# postroom: ISC license, see LICENSE.
# IMAP helpers for the bats suite, loaded after lib/common and lib/smtp with `load lib/imap`:
#   imap_users                the demo users (alice/alice-demo, bob/bob-demo) in users.cdb;
#                             exports USERDB, MAILROOT, and CHECKPW: the checkpassword program
#                             and its arguments as imap-serve runs them (no delay on refusal)
#   imap_session [VAR=V...]   an LF heredoc on stdin, sent as CRLF to the pre-login imap-serve
#                             (plaintext logins allowed unless VAR=V says otherwise), replies
#                             with their CR taken off; the exit code is imap-serve's, its
#                             stderr (and its children's) goes to $IMAP_LOG
#   imap_raw [VAR=V...]       the same, stdin sent byte for byte
#   imap_preauth DIR [VAR=V...]
#                             "imap-serve -A" by hand in the Maildir DIR (PREAUTH), as
#                             imap_session
#   alice_maildir             the path of alice's Maildir under MAILROOT
#   imap_py                   python3 with tests/lib on its path: imap_py - ARGS <<'PY'

imap_users() {
	userdb-compile -f "$REPO/etc/demo/users.txt" "$BATS_TEST_TMPDIR/users.cdb" ||
		fail "userdb-compile of the demo users failed"
	export USERDB=$BATS_TEST_TMPDIR/users.cdb MAILROOT=$BATS_TEST_TMPDIR/mail
	mkdir -p "$MAILROOT"
	CHECKPW="$BIN/checkpassword-mysql -d 0 $BIN/imap-serve -A"
	IMAP_LOG=$BATS_TEST_TMPDIR/imap.log
}

imap_session() {
	(
		set -o pipefail
		crlf | env IMAP_AUTH_PLAINTEXT=1 "$@" imap-serve $CHECKPW 2>>"$IMAP_LOG" | sed 's/\r$//'
	)
}

imap_raw() {
	(
		set -o pipefail
		env IMAP_AUTH_PLAINTEXT=1 "$@" imap-serve $CHECKPW 2>>"$IMAP_LOG" | sed 's/\r$//'
	)
}

imap_preauth() {
	local dir=$1
	shift
	(
		set -o pipefail
		cd "$dir" && crlf | env MAILDIR="$dir" "$@" imap-serve -A 2>>"$IMAP_LOG" | sed 's/\r$//'
	)
}

alice_maildir() {
	printf '%s\n' "$MAILROOT/example.test/alice"
}

imap_py() {
	PYTHONPATH=$TESTLIB "$PYTHON" "$@"
}
