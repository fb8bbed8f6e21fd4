# postroom: ISC license, see LICENSE.
# POP3 helpers for the bats suite, loaded after lib/common, lib/smtp, lib/tls and lib/imap with
# `load lib/pop3`:
#   pop3_users                the demo users (alice/alice-demo, bob/bob-demo) in users.cdb;
#                             exports USERDB and MAILROOT, sets CHECKPW: the checkpassword
#                             program and its arguments as pop3-serve runs them (no delay on
#                             refusal), and POP3_LOG
#   pop3_session [VAR=V...]   an LF heredoc on stdin, sent as CRLF to the pre-login pop3-serve
#                             (plaintext logins allowed unless VAR=V says otherwise), replies
#                             with their CR taken off; the exit code is pop3-serve's, its
#                             stderr (and its children's) goes to $POP3_LOG
#   pop3_raw [VAR=V...]       the same, stdin sent byte for byte
#   pop3_preauth DIR [VAR=V...]
#                             "pop3-serve -A" by hand in the Maildir DIR, as pop3_session
#   pop3_py                   python3 with tests/lib on its path: pop3_py - ARGS <<'PY'
#   pop3_script [ARGS...] <<'PY'
#                             a python3 script with pop3_client's names imported, and PORT
#                             ($SERVER_PORT), MAILDIR (alice's), BOBDIR, CA (the test CA or
#                             certificate, $POP3_CA) and ARGS in its globals; it must exit 0,
#                             else the test fails with what it printed
#   pop3_stls [VAR=V...]      the 110 service (tls-server -n, UCSPITLS='!') on $SERVER_PORT
#   pop3s [VAR=V...]          the 995 service (tls-server, implicit TLS) on $SERVER_PORT
#                             (both with $POP3_CERT and $POP3_KEY, made by pop3_cert)
#   pop3_cert                 a test CA and a certificate it signs for 127.0.0.1 (DNS and IP
#                             names, as fetchmail and getmail check them): POP3_CA, POP3_CERT,
#                             POP3_KEY
#   deliver_corpus            imap_client's four messages through smtp-recv and queue-run -1
#                             into alice's Maildir (m4 to bob's too)

pop3_users() {
	userdb-compile -f "$REPO/etc/demo/users.txt" "$BATS_TEST_TMPDIR/users.cdb" ||
		fail "userdb-compile of the demo users failed"
	export USERDB=$BATS_TEST_TMPDIR/users.cdb MAILROOT=$BATS_TEST_TMPDIR/mail
	mkdir -p "$MAILROOT"
	CHECKPW="$BIN/checkpassword-mysql -d 0 $BIN/pop3-serve -A"
	POP3_LOG=$BATS_TEST_TMPDIR/pop3.log
}

pop3_session() {
	(
		set -o pipefail
		crlf | env POP3_AUTH_PLAINTEXT=1 "$@" pop3-serve $CHECKPW 2>>"$POP3_LOG" | sed 's/\r$//'
	)
}

pop3_raw() {
	(
		set -o pipefail
		env POP3_AUTH_PLAINTEXT=1 "$@" pop3-serve $CHECKPW 2>>"$POP3_LOG" | sed 's/\r$//'
	)
}

pop3_preauth() {
	local dir=$1
	shift
	(
		set -o pipefail
		cd "$dir" && crlf | env MAILDIR="$dir" "$@" pop3-serve -A 2>>"$POP3_LOG" | sed 's/\r$//'
	)
}

pop3_py() {
	PYTHONPATH=$TESTLIB "$PYTHON" "$@"
}

pop3_script() {
	run pop3_py - "$@" < <(
		printf 'import sys\nfrom pop3_client import *\n'
		printf 'PORT = %s\nMAILDIR = %s\nBOBDIR = %s\nCA = %s\nARGS = sys.argv[1:]\n' \
			"'${SERVER_PORT:-}'" "'$MAILROOT/example.test/alice'" "'$MAILROOT/example.test/bob'" \
			"'${POP3_CA:-}'"
		cat
	)
	[ "$status" -eq 0 ] || fail "$(printf 'the script failed (exit %s):\n%s' "$status" "$output")"
}

pop3_cert() {
	make_ca
	POP3_CA=$BATS_TEST_TMPDIR/ca.pem
	POP3_CERT=$BATS_TEST_TMPDIR/cert.pem
	POP3_KEY=$BATS_TEST_TMPDIR/key.pem
	make_leaf 127.0.0.1 DNS:127.0.0.1,IP:127.0.0.1 "$POP3_CERT" "$POP3_KEY"
	chmod 600 "$POP3_KEY"
}

pop3_stls() {
	start_tls_server CERTFILE="$POP3_CERT" KEYFILE="$POP3_KEY" USERDB="$USERDB" MAILROOT="$MAILROOT" \
		UCSPITLS='!' "$@" -n -- "$BIN/pop3-serve" $CHECKPW
}

pop3s() {
	start_tls_server CERTFILE="$POP3_CERT" KEYFILE="$POP3_KEY" USERDB="$USERDB" MAILROOT="$MAILROOT" \
		"$@" -- "$BIN/pop3-serve" $CHECKPW
}

deliver_corpus() {
	make_queue
	run -0 --separate-stderr smtp_session SMTP_HOSTNAME=mx.example.test \
		< <(PYTHONPATH=$TESTLIB "$PYTHON" "$TESTLIB/imap_client.py" smtp)
	[ "$(grep -c '^250 2\.0\.0 ok: queued as ' <<<"$output")" -eq 4 ] || fail "not queued: $output"
	run -0 --separate-stderr queue-run -1
	assert_count 4 msg_count "$MAILROOT/example.test/alice"
	assert_count 1 msg_count "$MAILROOT/example.test/bob"
}
