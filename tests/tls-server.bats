#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# tls-server with real clients (python3 smtplib, ssl, sockets from several loopback addresses):
# workers that keep one program for many sessions, and what must never carry over from one
# session to the next (the environment, RELAYCLIENT, AUTH, pipelined input); tcprules; -c, -m;
# a program that dies; SIGTERM; privileges; usage. The program is smtp-recv, or
# tests/lib/pool-show.py, which shows what it was given.

load lib/common
load lib/smtp
load lib/tls

setup() {
	unset CERTFILE KEYFILE TLS_UID TLS_GID UCSPITLS SSLCTLFD SSLREADFD SSLWRITEFD POOLFD
	T=$BATS_TEST_TMPDIR
	make_cert mx.example.test "$T/cert.pem" "$T/key.pem"
	chmod 600 "$T/key.pem"
	export CERTFILE=$T/cert.pem KEYFILE=$T/key.pem
	make_queue
	userdb-compile -f "$REPO/etc/demo/users.txt" "$T/users.cdb" || fail "userdb-compile"
	export USERDB=$T/users.cdb MAILROOT=$T/mail SMTP_HOSTNAME=mx.example.test
	SHOW=$TESTLIB/pool-show.py
}

teardown() {
	stop_server
	common_teardown
}

# rules LINE...: tcprules' CDB of the lines, in $T/rules.cdb.
rules() {
	printf '%s\n' "$@" >"$T/rules.txt"
	tcprules "$T/rules.cdb" "$T/rules.tmp" <"$T/rules.txt" || fail "tcprules"
}

# recv_pids: the pid of each smtp-recv session in the log, in order.
recv_pids() {
	sed -n 's/^smtp-recv: \([0-9]*\) connect .*/\1/p' "$SERVER_LOG"
}

@test "-n: cleartext, then STARTTLS, served by one smtp-recv; each session its own log line" {
	start_tls_server -n -c1 -- "$BIN/smtp-recv"
	printf 'Subject: one\n\nfirst\n' >"$T/msg"
	run -0 py_send "$SERVER_PORT" bob@example.org alice@example.test "$T/msg"
	assert_line --regexp '^DATA 250 2\.0\.0 ok: queued as '
	run -0 tls_chat "$SERVER_PORT" starttls <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.test>
QUIT
EOF
	assert_line '220 2.0.0 ready to start TLS'
	assert_line '250 2.1.5 recipient ok'
	assert_line --regexp '^TLS TLSv1\.3 '
	assert_equal "$(queue_ids | wc -l)" 1
	wait_until 50 grep -q 'result="ok"' "$SERVER_LOG"
	# The probe of start_tls_server, the message, the STARTTLS session: one smtp-recv.
	run -0 recv_pids
	assert_equal "${#lines[@]}" 3
	assert_equal "$(printf '%s\n' "${lines[@]}" | sort -u | wc -l)" 1
	assert_log "smtp-recv: ${lines[0]} starttls client=127\.0\.0\.1 protocol=TLSv1\.3 .*" "$SERVER_LOG"
	run -0 grep -c '^tls-server: [0-9]* client=127\.0\.0\.1 tls=none exit=0$' "$SERVER_LOG"
	assert_output 2
	assert_log 'tls-server: [0-9]+ client=127\.0\.0\.1 sni=- protocol=TLSv1\.3 cipher=TLS_[A-Z0-9_]+ in=[1-9][0-9]* out=[1-9][0-9]* result="ok" exit=0' "$SERVER_LOG"
}

@test "each session gets its own environment: TCP variables, tcprules' variables, nothing of the one before" {
	rules '127.0.0.2:allow,RELAYCLIENT="",X_TWO="two"' '127.0.0.3:allow,X_THREE="3"' ':allow'
	start_tls_server X_BASE=kept -n -c1 "-x$T/rules.cdb" -- "$SHOW"
	run -0 from_read 127.0.0.2 "$SERVER_PORT"
	assert_line --regexp '^pid=[0-9]+ uid=0 fds=5 '
	local pid=${lines[0]%% *}
	assert_line 'RELAYCLIENT='
	assert_line 'X_TWO=two'
	assert_line 'X_BASE=kept'
	assert_line 'TCPREMOTEIP=127.0.0.2'
	assert_line 'TCPLOCALIP=127.0.0.1'
	assert_line "TCPLOCALPORT=$SERVER_PORT"
	assert_line --regexp '^TCPREMOTEPORT=[0-9]+$'
	assert_line 'PROTO=TCP'
	assert_line 'UCSPITLS='
	run -0 from_read 127.0.0.3 "$SERVER_PORT"
	assert_line "$pid uid=0 fds=5 parent-readable"
	assert_line 'TCPREMOTEIP=127.0.0.3'
	assert_line 'X_THREE=3'
	assert_line 'X_BASE=kept'
	refute_line --partial RELAYCLIENT
	refute_line --partial X_TWO
}

@test "RELAYCLIENT and AUTH do not outlive their session in a smtp-recv that serves the next" {
	rules '127.0.0.2:allow,RELAYCLIENT=""' ':allow'
	start_tls_server SMTP_AUTH_PLAINTEXT=1 CHECKPASSWORD="$BIN/checkpassword-mysql -d 0 true" \
		-n -c1 "-x$T/rules.cdb" -- "$BIN/smtp-recv"
	run -0 from_chat 127.0.0.2 "$SERVER_PORT" <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<someone@remote.example>
QUIT
EOF
	assert_line '250 2.1.5 recipient ok'
	run -0 from_chat 127.0.0.1 "$SERVER_PORT" <<EOF
EHLO client.example.org
AUTH PLAIN $(printf '\0alice@example.test\0alice-demo' | base64 -w0)
MAIL FROM:<alice@example.test>
RCPT TO:<someone@remote.example>
QUIT
EOF
	assert_line '235 2.7.0 authentication successful'
	assert_line '250 2.1.5 recipient ok'
	run -0 from_chat 127.0.0.1 "$SERVER_PORT" <<'EOF'
EHLO client.example.org
MAIL FROM:<alice@example.test>
RCPT TO:<someone@remote.example>
QUIT
EOF
	assert_line '554 5.7.1 relay access denied'
	run -0 recv_pids
	assert_equal "$(printf '%s\n' "${lines[@]}" | sort -u | wc -l)" 1
}

@test "UCSPITLS from a rule is that client's: TLS required from 127.0.0.2, not from the next client" {
	rules '127.0.0.2:allow,UCSPITLS="!"' ':allow'
	start_tls_server -n -c1 "-x$T/rules.cdb" -- "$BIN/smtp-recv"
	run -0 from_chat 127.0.0.2 "$SERVER_PORT" <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
QUIT
EOF
	assert_line '530 5.7.0 must issue a STARTTLS command first'
	run -0 from_chat 127.0.0.1 "$SERVER_PORT" <<'EOF'
EHLO client.example.org
MAIL FROM:<bob@example.org>
QUIT
EOF
	assert_line '250 2.1.0 sender ok'
	run -0 recv_pids
	assert_equal "$(printf '%s\n' "${lines[@]}" | sort -u | wc -l)" 1
}

@test "STARTTLS injection: what was pipelined after STARTTLS is thrown away, in a reused smtp-recv too" {
	start_tls_server -n -c1 -- "$BIN/smtp-recv"
	local i
	for i in 1 2; do
		run -0 "$PYTHON" - "$SERVER_PORT" <<'PY'
import socket, ssl, sys
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = raw.makefile("rb")
def reply(f):
    while True:
        line = f.readline().decode().rstrip("\r\n")
        if line[3:4] != "-":
            return line
reply(f)
raw.sendall(b"EHLO c.example.org\r\n")
reply(f)
raw.sendall(b"STARTTLS\r\nRSET\r\n")
print(reply(f))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(raw)
f = s.makefile("rb")
s.sendall(b"NOOP\r\n")
print(reply(f))
s.sendall(b"QUIT\r\n")
print(reply(f))
PY
		assert_equal "$output" "$(printf '220 2.0.0 ready to start TLS\n250 2.0.0 ok\n221 2.0.0 bye')"
	done
	run -0 grep -c 'discarded 6 bytes sent after STARTTLS before the handshake client=127\.0\.0\.1' "$SERVER_LOG"
	assert_output 2
}

@test "implicit TLS: the program reads cleartext on pipes, with the session's TLS details" {
	start_tls_server -c1 -- "$SHOW"
	run -0 tls_read "$SERVER_PORT" mx.example.test
	assert_line --regexp '^pid=[0-9]+ uid=0 fds=2 '
	assert_line 'SSL_PROTOCOL=TLSv1.3'
	assert_line 'SSL_TLS_SNI_SERVERNAME=mx.example.test'
	refute_line --partial SSLCTLFD
	refute_line --partial UCSPITLS
	# The next session has no SNI: no name left over from the one before.
	run -0 tls_read "$SERVER_PORT"
	assert_line 'SSL_PROTOCOL=TLSv1.3'
	refute_line --partial SSL_TLS_SNI_SERVERNAME
}

@test "tcprules: a denied client is closed before any greeting, and logged" {
	rules '127.0.0.3:deny' ':allow'
	start_tls_server -n "-x$T/rules.cdb" -- "$BIN/smtp-recv"
	run -0 from_chat 127.0.0.3 "$SERVER_PORT" </dev/null
	assert_output EOF
	assert_log 'tls-server: [0-9]+ client=127\.0\.0\.3 denied' "$SERVER_LOG"
	run -0 from_chat 127.0.0.2 "$SERVER_PORT" </dev/null
	assert_output '220 mx.example.test ESMTP postroom'
}

@test "-m 2: a worker and its program serve two sessions, then new ones take over" {
	start_tls_server -n -c1 -m2 -- "$SHOW"
	local i pids=()
	for i in 1 2 3 4; do
		run -0 from_read 127.0.0.1 "$SERVER_PORT"
		pids+=("${lines[0]%% *}")
	done
	# The probe of start_tls_server was the first worker's first session.
	[ "${pids[0]}" != "${pids[1]}" ] || fail "the first worker served three sessions"
	assert_equal "${pids[1]}" "${pids[2]}"
	[ "${pids[2]}" != "${pids[3]}" ] || fail "the second worker served three sessions"
}

@test "-c 2: a third client waits for a free worker, then is served" {
	start_tls_server -n -c2 -- "$BIN/smtp-recv"
	"$PYTHON" - "$SERVER_PORT" "$T" <<'PY' &
import socket, sys, time, os
port, t = int(sys.argv[1]), sys.argv[2]
held = []
for _ in range(2):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert s.makefile("rb").readline().startswith(b"220 ")
    held.append(s)
open(os.path.join(t, "held"), "w").close()
# Both held until the test says so.
while not os.path.exists(os.path.join(t, "release")):
    time.sleep(0.05)
held[0].sendall(b"QUIT\r\n")
held[0].recv(100)
held[0].close()
PY
	local holder=$!
	track_pid "$holder"
	wait_until 100 test -e "$T/held" || fail "two sessions were not greeted"
	"$PYTHON" - "$SERVER_PORT" "$T" >"$T/third" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.settimeout(1)
try:
    print("early", s.recv(100))
except socket.timeout:
    print("waiting", flush=True)
s.settimeout(20)
print(s.makefile("rb").readline().decode().strip(), flush=True)
PY
	local third=$!
	track_pid "$third"
	wait_until 100 grep -q . "$T/third" || fail "the third client saw nothing"
	run -0 cat "$T/third"
	assert_output waiting
	touch "$T/release"
	wait "$third"
	run -0 cat "$T/third"
	assert_output "$(printf 'waiting\n220 mx.example.test ESMTP postroom')"
}

@test "a program that died between sessions is started again: the next client does not notice" {
	start_tls_server -n -c1 -- "$SHOW"
	run -0 from_read 127.0.0.1 "$SERVER_PORT"
	local pid=${lines[0]%% *}
	pid=${pid#pid=}
	kill -KILL "$pid"
	# Dead (a zombie until the worker reaps it): its end of the pool socket is closed.
	wait_until 50 grep -q '^State:.*zombie' "/proc/$pid/status" || fail "$pid did not die"
	run -0 from_read 127.0.0.1 "$SERVER_PORT"
	assert_line --regexp '^pid=[0-9]+ uid=0 fds=5 '
	[ "${lines[0]%% *}" != "pid=$pid" ] || fail "the dead program answered"
	assert_log "tls-server: trouble: unable to hand a session to $(re_escape "$SHOW"): Broken pipe; starting it again" "$SERVER_LOG"
}

@test "SIGTERM: the master is gone with its idle workers and their programs, and the port is closed" {
	start_tls_server -n -- "$BIN/smtp-recv"
	run -0 from_chat 127.0.0.1 "$SERVER_PORT" </dev/null
	local workers programs
	workers=$(pgrep -P "$SERVER_PID")
	programs=$(for w in $workers; do pgrep -P "$w"; done)
	[ -n "$workers" ] && [ -n "$programs" ] || fail "no worker or no program"
	kill -TERM "$SERVER_PID"
	wait "$SERVER_PID" || fail "tls-server exited $?"
	SERVER_PID=
	# Gone by the time the master is: it waits for its idle workers, each for its program.
	local p
	for p in $workers $programs; do
		! kill -0 "$p" 2>/dev/null || fail "process $p outlived the master"
	done
	run -1 port_answers "$SERVER_PORT"
}

@test "privileges: the keys are read as root; workers and programs run as the user, and the program cannot read the worker" {
	[ "$(id -u)" = 0 ] || fail "this test needs root"
	make_private_dir
	cp "$SHOW" "$PRIVATE_DIR/bin/pool-show.py"
	start_tls_server -n -unobody -- "$PRIVATE_DIR/bin/pool-show.py"
	run -0 from_read 127.0.0.1 "$SERVER_PORT"
	assert_line --regexp "^pid=[0-9]+ uid=$NOBODY_UID fds=5 parent-closed$"
	run -0 ps -o user= -p "$(pgrep -P "$SERVER_PID" | head -n 1)"
	assert_output nobody
}

@test "usage and setup errors: one line, 100 or 111" {
	run -100 --separate-stderr tls-server
	assert_regex "$stderr" '^tls-server: usage: tls-server '
	run -100 --separate-stderr tls-server 127.0.0.1 2525
	assert_regex "$stderr" '^tls-server: usage: '
	run -100 --separate-stderr tls-server -c 0 127.0.0.1 2525 true
	assert_equal "$stderr" 'tls-server: fatal: -c: a number from 1 to 100000: 0'
	run -100 --separate-stderr tls-server mail.example.test 2525 true
	assert_regex "$stderr" '^tls-server: fatal: unable to listen on mail\.example\.test port 2525: '
	run -100 --separate-stderr env -u CERTFILE tls-server 127.0.0.1 2525 true
	assert_equal "$stderr" 'tls-server: fatal: no certificate: set CERTFILE'
	run -111 --separate-stderr env CERTFILE="$T/none.pem" tls-server 127.0.0.1 2525 true
	assert_equal "$stderr" "tls-server: fatal: unable to read certificate $T/none.pem: No such file or directory"
	# A port that is taken.
	start_tls_server -- "$SHOW"
	run -111 --separate-stderr tls-server 127.0.0.1 "$SERVER_PORT" true
	assert_equal "$stderr" "tls-server: fatal: unable to bind 127.0.0.1 port $SERVER_PORT: Address already in use"
}

@test "smtp-recv with a POOLFD that is no descriptor: one line, exit 100" {
	run -100 --separate-stderr env POOLFD=77 smtp-recv </dev/null
	assert_equal "$stderr" 'smtp-recv: fatal: POOLFD names no open descriptor'
}

@test "IPv6: tls-server listens on ::1, and the program sees IPv6 addresses" {
	local port
	port=$(free_port)
	"$BIN/tls-server" -n ::1 "$port" "$SHOW" </dev/null >/dev/null 2>"$T/v6.log" 3>&- &
	SERVER_PID=$!	# stop_server stops it, its workers and their programs
	read6() {
		"$PYTHON" - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("::1", int(sys.argv[1])), timeout=10)
sys.stdout.write(s.makefile().read())
PY
	}
	wait_until 50 read6 >/dev/null || fail "nothing answers on [::1]:$port: $(cat "$T/v6.log")"
	run -0 read6
	assert_line 'TCPREMOTEIP=::1'
	assert_line 'TCPLOCALIP=::1'
	assert_line "TCPLOCALPORT=$port"
}

# The AUTH exchange's secrets where a session ends in the middle of it (the last refusal allowed
# ends the session from deep inside AUTH), and credentials that came as an unknown command
# (after AUTH was refused): nothing of them left in the smtp-recv that serves the next session.
@test "a session ended inside AUTH, or credentials sent after a refused AUTH, leave no trace in the smtp-recv that stays" {
	start_tls_server SMTP_AUTH_PLAINTEXT=1 SMTP_AUTH_MAXFAIL=1 \
		CHECKPASSWORD="$BIN/checkpassword-mysql -d 0 true" -n -c1 -- "$BIN/smtp-recv"
	local worker recv
	worker=$(pgrep -P "$SERVER_PID")
	recv=$(pgrep -P "$worker")
	[ -n "$recv" ] || fail "no smtp-recv"
	TESTLIB=$TESTLIB run -0 "$PYTHON" - "$SERVER_PORT" "$recv" <<'PY'
import base64, os, socket, sys
port, pid = int(sys.argv[1]), int(sys.argv[2])
password = b"TopSecretPW42"
plain = base64.b64encode(b"\0alice@example.test\0" + password)
login = base64.b64encode(password)
password2 = b"AnotherSecret77"
plain2 = base64.b64encode(b"\0bob@example.test\0" + password2)
def session(lines):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    out = []
    def reply():
        while True:
            line = f.readline()
            out.append(line.decode().strip())
            if not line or line[3:4] != b"-":
                return
    reply()
    for l in lines:
        s.sendall(l + b"\r\n")
        reply()
    # Until smtp-recv closes: the session is over.
    out += [l.strip() for l in f.read().decode().splitlines()]
    s.close()
    return out
print(session([b"EHLO c.example.org", b"AUTH PLAIN " + plain])[-1])
print(session([b"EHLO c.example.org", b"AUTH LOGIN " + base64.b64encode(b"alice@example.test"),
               login])[-1])
# AUTH refused in a transaction, and the credentials sent anyway: an unknown command to us.
print(session([b"EHLO c.example.org", b"MAIL FROM:<a@example.org>", b"AUTH PLAIN",
               plain2, b"QUIT"])[-1])
# Both sessions are over (smtp-recv closed them); a third is served by the same smtp-recv.
print(session([b"QUIT"])[-1])
traces = [password, password2] + [t[i:i + 8] for t in (plain[24:], login, plain2[20:])
                                  for i in range(len(t) - 7)]
sys.path.insert(0, os.environ["TESTLIB"])
from memscan import scan
for line in scan(pid, traces):
    print(line)
print("scanned")
PY
	assert_output "$(printf '421 4.7.0 too many failed authentications, closing connection\n421 4.7.0 too many failed authentications, closing connection\n221 2.0.0 bye\n221 2.0.0 bye\nscanned')"
	run -0 recv_pids
	assert_equal "$(printf '%s\n' "${lines[@]}" | sort -u)" "$recv"
}

@test "smtp-recv refuses a session that brings more descriptors than any has: exit 111" {
	run -111 --separate-stderr "$PYTHON" - "$BIN/smtp-recv" <<'PY'
import os, socket, subprocess, sys
ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
p = subprocess.Popen([sys.argv[1]], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL,
                     env=dict(os.environ, POOLFD=str(theirs.fileno())))
theirs.close()
null = [os.open("/dev/null", os.O_RDWR) for _ in range(6)]
socket.send_fds(ours, [b"X_ONE=1\0"], null)
try:
    sys.exit(p.wait(timeout=10))
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit("smtp-recv took the session")
PY
	assert_equal "$stderr" 'smtp-recv: fatal: unable to receive a session: Protocol error'
}

@test "a session quiet for longer than the relay's rest (2 s) goes on: what it sends after comes through whole" {
	start_tls_server -c1 -- "$BIN/smtp-recv"
	"$PYTHON" -c 'import sys
for i in range(3000): sys.stdout.write("line %05d of a message longer than both relay buffers\n" % i)' >"$T/msg"
	# The quiet spell is what is tested, not a wait for something: the relay rests (gives its
	# buffers' pages back) after 2 s without traffic, and must go on as before.
	run -0 "$PYTHON" - "$SERVER_PORT" "$T/msg" <<'PYEOF'
import smtplib, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=30)
s.ehlo("client.example.org")
time.sleep(2.5)
s.sendmail("bob@example.org", ["alice@example.test"], open(sys.argv[2]).read())
time.sleep(2.5)
print(s.noop())
s.quit()
PYEOF
	assert_line --regexp '^\(250, '
	run -0 queue_ids
	assert_equal "${#lines[@]}" 1
	cmp <(queue_body "${lines[0]}") "$T/msg"
}

@test "smtp-recv, which serves one session at a time, refuses POOLSESSIONS: one line, exit 100; under tls-server -S 2 the client is closed" {
	run -100 env POOLFD=0 POOLSESSIONS=2 "$BIN/smtp-recv" </dev/null
	assert_output "smtp-recv: fatal: one session at a time: run under tls-server without -S"
	start_tls_server -n -c1 -S2 -- "$BIN/smtp-recv"
	run -0 python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
print("the client reads:", repr(s.recv(100)))' "$SERVER_PORT"
	assert_output "the client reads: b''"
	grep -q 'smtp-recv: fatal: one session at a time: run under tls-server without -S' "$SERVER_LOG"
}
