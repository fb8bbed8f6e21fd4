#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# tls-wrap under tcpserver, with real TLS clients (python3 ssl, openssl s_client): the handshake,
# what the program sees, SNI, the protocol floor, privileges, bad keys, timeouts, the log line.

load lib/common
load lib/smtp
load lib/tls

setup() {
	unset CERTFILE KEYFILE TLS_UID TLS_GID UCSPITLS SSLCTLFD SSLREADFD SSLWRITEFD
	T=$BATS_TEST_TMPDIR
	make_cert mx.example.test "$T/cert.pem" "$T/key.pem"
	chmod 600 "$T/key.pem"
	# The program: who it runs as and what tls-wrap told it.
	cat >"$T/show" <<'SH'
#!/bin/sh
echo "uid=$(id -u) gid=$(id -g)"
env | grep -E '^(SSL_|SSLCTLFD|SSLREADFD|SSLWRITEFD|UCSPITLS)' | sort
echo end
SH
	chmod 755 "$T/show"
	# The same where nobody can run it.
	make_private_dir
	cp "$T/show" "$PRIVATE_DIR/show"
}

teardown() {
	stop_server
	common_teardown
}

@test "implicit TLS: TLS 1.3 by default, the program sees the protocol and cipher, one log line" {
	start_server CERTFILE="$T/cert.pem" KEYFILE="$T/key.pem" TCPREMOTEIP=x -- tls-wrap "$T/show"
	run -0 tls_read "$SERVER_PORT"
	assert_line 'SSL_PROTOCOL=TLSv1.3'
	assert_line --regexp '^SSL_CIPHER=TLS_(AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256|AES_128_GCM_SHA256)$'
	refute_line --partial SSLCTLFD
	refute_line --partial SSL_TLS_SNI_SERVERNAME
	assert_line --regexp '^TLS TLSv1.3 .* subject=CN = mx.example.test$'
	# One line for the session (start_server's probe, which hung up at once, has its own).
	wait_until 20 grep -q 'result="ok"' "$SERVER_LOG"
	run -0 grep 'result="ok"' "$SERVER_LOG"
	assert_equal "${#lines[@]}" 1
	assert_regex "$output" '^tls-wrap: [0-9]+ client=127\.0\.0\.1 sni=- protocol=TLSv1\.3 cipher=TLS_[A-Z0-9_]+ in=0 out=[1-9][0-9]* result="ok" exit=0$'
}

@test "TLS 1.2 is accepted with a forward-secret AEAD cipher only; TLS 1.1 is refused" {
	start_server CERTFILE="$T/cert.pem" KEYFILE="$T/key.pem" -- tls-wrap "$T/show"
	run -0 tls_read "$SERVER_PORT" "" TLSv1_2
	assert_line --regexp '^TLS TLSv1.2 ECDHE-ECDSA-(AES256-GCM-SHA384|AES128-GCM-SHA256|CHACHA20-POLY1305) '
	# CBC with SHA-1, which OpenSSL's own defaults still allow in TLS 1.2: no shared cipher.
	run openssl s_client -connect "127.0.0.1:$SERVER_PORT" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA </dev/null
	assert_failure
	refute_output --partial 'SSL_PROTOCOL'
	run openssl s_client -connect "127.0.0.1:$SERVER_PORT" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null
	assert_failure
	refute_output --partial 'SSL_PROTOCOL'
	wait_until 20 grep -q 'result="handshake failed' "$SERVER_LOG"
	run -0 grep 'result="handshake failed' "$SERVER_LOG"
	assert_regex "$output" 'protocol=- cipher=- in=0 out=0 result="handshake failed: [^"]+" exit=111$'
}

@test "SNI from a certbot-style directory and from CERTFILE:name: each name gets its own certificate" {
	mkdir -p "$T/live/a" "$T/live/b"
	make_cert a.example.test "$T/live/a/fullchain.pem" "$T/live/a/privkey.pem"
	make_cert b.example.test "$T/live/b/fullchain.pem" "$T/live/b/privkey.pem"
	make_cert c.example.test "$T/c.pem" "$T/c.key"
	start_server CERTFILE="$T/cert.pem" KEYFILE="$T/key.pem" \
		"CERTFILE:c.example.test=$T/c.pem" "KEYFILE:c.example.test=$T/c.key" \
		-- tls-wrap -s "$T/live" "$T/show"
	local name
	for name in a b c a; do
		run -0 tls_read "$SERVER_PORT" "$name.example.test"
		assert_line "SSL_TLS_SNI_SERVERNAME=$name.example.test"
		assert_line --regexp "^TLS TLSv1.3 .* subject=CN = $name.example.test\$"
	done
	# A name nobody has, and none at all: the default pair.
	run -0 tls_read "$SERVER_PORT" unknown.example.test
	assert_line --regexp '^TLS .* subject=CN = mx.example.test$'
	run -0 tls_read "$SERVER_PORT"
	assert_line --regexp '^TLS .* subject=CN = mx.example.test$'
	# openssl s_client agrees.
	run -0 bash -c "openssl s_client -connect 127.0.0.1:$SERVER_PORT -servername b.example.test </dev/null 2>/dev/null"
	assert_line --regexp '^subject=CN ?= ?b.example.test$'
	wait_until 20 grep -q 'sni=b.example.test' "$SERVER_LOG"
}

@test "privileges: the key is read as root, then tls-wrap and the program run as the given user" {
	[ "$(id -u)" = 0 ] || fail "this test needs root"
	start_server CERTFILE="$T/cert.pem" KEYFILE="$T/key.pem" -- tls-wrap -u nobody "$PRIVATE_DIR/show"
	run -0 tls_read "$SERVER_PORT"
	assert_line "uid=$NOBODY_UID gid=$(getent passwd nobody | cut -d: -f4)"
	assert_line 'SSL_PROTOCOL=TLSv1.3'
	stop_server
	# By number, from the environment, as s6-tlsd takes them.
	start_server CERTFILE="$T/cert.pem" KEYFILE="$T/key.pem" TLS_UID=4242 TLS_GID=4343 \
		-- tls-wrap "$PRIVATE_DIR/show"
	run -0 tls_read "$SERVER_PORT"
	assert_line 'uid=4242 gid=4343'
}

@test "privileges: tls-wrap itself cannot be traced by the program, though it is the same user" {
	[ "$(id -u)" = 0 ] || fail "this test needs root"
	# tls-wrap started as nobody, so no change of user makes it undumpable: only its own
	# prctl does. The program, also nobody, tries to read its parent's (tls-wrap's) memory
	# details; the same read of its own must work.
	cat >"$PRIVATE_DIR/peek" <<'SH'
#!/bin/sh
echo "uid=$(id -u) parent=$(stat -c %u /proc/$PPID/status)"
if cat /proc/$PPID/environ >/dev/null 2>&1; then echo parent-readable; else echo parent-closed; fi
if cat /proc/$$/environ >/dev/null 2>&1; then echo self-readable; else echo self-closed; fi
SH
	chmod 755 "$PRIVATE_DIR/peek"
	cp "$T/cert.pem" "$T/key.pem" "$PRIVATE_DIR/"
	chown "$NOBODY_UID:$NOBODY_GID" "$PRIVATE_DIR/key.pem"
	start_server CERTFILE="$PRIVATE_DIR/cert.pem" KEYFILE="$PRIVATE_DIR/key.pem" \
		-- setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
		"$BIN/tls-wrap" "$PRIVATE_DIR/peek"
	run -0 tls_read "$SERVER_PORT"
	# /proc shows an undumpable process as root's.
	assert_line "uid=$NOBODY_UID parent=0"
	assert_line parent-closed
	assert_line self-readable
}

@test "a missing, unreadable, malformed or mismatched certificate or key: one line, exit 111" {
	printf 'not a certificate\n' >"$T/junk.pem"
	make_cert other.example.test "$T/other.pem" "$T/other.key"
	run -111 --separate-stderr tls-wrap -c "$T/nonexistent.pem" -k "$T/key.pem" true </dev/null
	assert_equal "$stderr" "tls-wrap: fatal: unable to read certificate $T/nonexistent.pem: No such file or directory"
	run -111 --separate-stderr tls-wrap -c "$T/junk.pem" -k "$T/key.pem" true </dev/null
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" "^tls-wrap: fatal: unable to load certificate $T/junk.pem: .+"
	run -111 --separate-stderr tls-wrap -c "$T/cert.pem" -k "$T/junk.pem" true </dev/null
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" "^tls-wrap: fatal: unable to load key $T/junk.pem: .+"
	run -111 --separate-stderr env CERTFILE="$T/cert.pem" KEYFILE="$T/other.key" tls-wrap true </dev/null
	assert_equal "$stderr" "tls-wrap: fatal: unable to load key $T/other.key: key values mismatch"
	# An encrypted key: refused at once, not a passphrase prompt on a terminal.
	openssl pkey -in "$T/key.pem" -aes256 -passout pass:secret -out "$T/encrypted.key"
	run -111 --separate-stderr tls-wrap -c "$T/cert.pem" -k "$T/encrypted.key" true </dev/null
	assert_equal "${#stderr_lines[@]}" 1
	assert_regex "$stderr" "^tls-wrap: fatal: unable to load key $T/encrypted.key: .+"
	run -111 --separate-stderr tls-wrap -c "$T/cert.pem" -k "$T/key.pem" -s "$T/nonexistent" true </dev/null
	assert_equal "$stderr" "tls-wrap: fatal: unable to open the SNI directory $T/nonexistent: No such file or directory"
	if [ "$(id -u)" = 0 ]; then
		cp "$T/cert.pem" "$T/key.pem" "$PRIVATE_DIR/"
		chmod 644 "$PRIVATE_DIR/cert.pem"
		chmod 600 "$PRIVATE_DIR/key.pem"
		run -111 --separate-stderr as_nobody "$PRIVATE_DIR/bin/tls-wrap" -c "$PRIVATE_DIR/cert.pem" \
			-k "$PRIVATE_DIR/key.pem" true </dev/null
		assert_equal "$stderr" "tls-wrap: fatal: unable to read key $PRIVATE_DIR/key.pem: Permission denied"
	fi
	assert_equal "$output" ''
}

@test "usage errors: no program, no certificate, a bad timeout: one line, exit 100" {
	run -100 --separate-stderr tls-wrap -c "$T/cert.pem"
	assert_regex "$stderr" '^tls-wrap: usage: tls-wrap '
	run -100 --separate-stderr tls-wrap true
	assert_equal "$stderr" 'tls-wrap: fatal: no certificate: set CERTFILE or give -c'
	run -100 --separate-stderr tls-wrap -c "$T/cert.pem" -k "$T/key.pem" -t 0 true
	assert_equal "$stderr" 'tls-wrap: fatal: timeouts are seconds, from 1 to 86400: 0'
	run -100 --separate-stderr tls-wrap -c "$T/cert.pem" -k "$T/key.pem" -u 4242 true
	assert_equal "$stderr" 'tls-wrap: fatal: a numeric user needs a group too (-g or TLS_GID)'
	# A group alone would leave the program running as root.
	run -100 --separate-stderr tls-wrap -c "$T/cert.pem" -k "$T/key.pem" -g nogroup true
	assert_equal "$stderr" 'tls-wrap: fatal: a group needs a user too (-u or TLS_UID)'
}

@test "a client that never starts the handshake is cut off after -t seconds" {
	start_server CERTFILE="$T/cert.pem" KEYFILE="$T/key.pem" -- tls-wrap -t 1 "$T/show"
	run -0 "$PYTHON" - "$SERVER_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
start = time.monotonic()
data = s.recv(100)
print("closed after %.1f s with %r" % (time.monotonic() - start, data))
PY
	assert_output --regexp "^closed after [12]\.[0-9] s with b''\$"
	wait_until 20 grep -q 'handshake timed out' "$SERVER_LOG"
	run -0 grep '^tls-wrap:' "$SERVER_LOG"
	assert_regex "$output" 'result="handshake timed out after 1s" exit=111$'
}

@test "-n: the program starts in cleartext with the UCSPI-TLS descriptors; no TLS asked, none logged" {
	start_server CERTFILE="$T/cert.pem" KEYFILE="$T/key.pem" -- tls-wrap -n "$T/show"
	run -0 tls_read "$SERVER_PORT" -
	assert_line --regexp '^SSLCTLFD=[0-9]+$'
	assert_line --regexp '^SSLREADFD=[0-9]+$'
	assert_line --regexp '^SSLWRITEFD=[0-9]+$'
	assert_line 'UCSPITLS='
	refute_line --partial SSL_PROTOCOL
	wait_until 20 grep -q 'exit=0$' "$SERVER_LOG"
	run -0 grep 'exit=0$' "$SERVER_LOG"
	assert_regex "$output" '^tls-wrap: [0-9]+ client=127\.0\.0\.1 tls=none exit=0$'
}

@test "the program's exit code is tls-wrap's; a program that cannot run: one line, 127" {
	run -127 --separate-stderr bash -c "CERTFILE=$T/cert.pem KEYFILE=$T/key.pem tls-wrap -n $T/nonexistent </dev/null"
	assert_regex "$stderr" "tls-wrap: fatal: unable to run $T/nonexistent: No such file or directory"
	run -7 bash -c "CERTFILE=$T/cert.pem KEYFILE=$T/key.pem tls-wrap -n sh -c 'exit 7' </dev/null 2>/dev/null"
}
