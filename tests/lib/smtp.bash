# postroom: ISC license, see LICENSE.
# SMTP helpers for the bats suite, loaded after lib/common with `load lib/smtp`:
#   crlf                      LF line ends on stdin -> CRLF on stdout
#   smtp_session [VAR=V...]   an LF heredoc on stdin, sent as CRLF to smtp-recv, with VAR=V in
#                             its environment; the replies come out with the CR of each CRLF
#                             taken off, and the exit code is smtp-recv's
#   smtp_raw [VAR=V...]       the same, with stdin sent to smtp-recv byte for byte
#   free_port                 a TCP port on 127.0.0.1 that was free a moment ago
#   start_server [VAR=V...] [-TCPSERVER-OPTION...] -- PROG [ARG...]  (options in one word: -xFILE)
#                             tcpserver -HR on 127.0.0.1:$SERVER_PORT (a free port) running
#                             PROG with VAR=V in its environment, stderr to $SERVER_LOG
#   start_listening NAME SERVER... -- [VAR=V...] [-OPTION...] -- PROG [ARG...]
#                             the same for any server that takes "OPTIONS HOST PORT PROG"
#   stop_server               kills the sessions and what they run, then tcpserver, by pid; a
#                             test file that starts a server loads lib/common at the top level
#                             (not in setup) and calls it in its own teardown, with
#                             common_teardown
#   start_tcpserver [relay] [VAR=V...]
#                             smtp-recv under start_server, as $SMTP_PORT and $SMTP_LOG; with
#                             "relay", tcprules gives RELAYCLIENT to 127.0.0.1
#   stop_tcpserver            stop_server
#   odd_message FILE          writes a message (LF line ends) full of awkward bytes
#   smtp_wire FILE            FILE (LF) as DATA sends it: CRLF, dot-stuffed, no final dot
#   strip_added FILE          FILE without the Return-Path, X-Original-To, Delivered-To and
#                             Received lines that delivery and smtp-recv put in front; fails if
#                             one is missing (X-Original-To may be)
#   py_send PORT FROM TO FILE sends FILE (LF line ends, no CR) with python3 smtplib, printing
#                             each command and its reply
#   drip PORT command|data    a slow client: once greeted (it prints "greeted"), and for data
#                             after EHLO, MAIL, RCPT and DATA's 354, sends one byte every 0.2 s
#                             and never ends its line, until the server closes the connection;
#                             then prints what the server said last and "closed after N s"
#                             (N counted from the first byte dripped). Gives up after 20 s.

crlf() {
	sed 's/$/\r/'
}

smtp_session() {
	(
		set -o pipefail
		crlf | env "$@" smtp-recv | sed 's/\r$//'
	)
}

smtp_raw() {
	(
		set -o pipefail
		env "$@" smtp-recv | sed 's/\r$//'
	)
}

free_port() {
	"$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# port_answers PORT: 0 when something accepts connections on 127.0.0.1:PORT.
port_answers() {
	"$PYTHON" - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
s.close()
PY
}

# server_up: tcpserver is alive and its port answers (for wait_until).
server_up() {
	kill -0 "$SERVER_PID" 2>/dev/null || return 2
	port_answers "$SERVER_PORT"
}

start_server() {
	start_listening tcpserver tcpserver -HR -l 0 -- "$@"
}

# start_listening NAME SERVER... -- [VAR=V...] [-OPTION...] -- PROG [ARG...]: start_server's
# work for any server taking "OPTIONS HOST PORT PROG" (tcpserver, tls-server): SERVER... on
# 127.0.0.1 and a free port, the options after SERVER's own.
start_listening() {
	local name=$1 server=() vars=() opts=() try
	shift
	while [ "$1" != -- ]; do
		server+=("$1")
		shift
	done
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		case $1 in
		-*) opts+=("$1") ;;
		*) vars+=("$1") ;;
		esac
		shift
	done
	shift
	SERVER_LOG=$BATS_TEST_TMPDIR/server.log
	# The port may be taken between free_port and the bind: try a few.
	for try in 1 2 3 4 5; do
		SERVER_PORT=$(free_port)
		env -u RELAYCLIENT "${vars[@]}" "${server[@]}" "${opts[@]}" 127.0.0.1 "$SERVER_PORT" "$@" \
			</dev/null >/dev/null 2>>"$SERVER_LOG" 3>&- &
		SERVER_PID=$!
		if wait_until 50 server_up; then
			return 0
		fi
		stop_server
	done
	echo "start_server: $name did not come up; $SERVER_LOG:" >&2
	cat "$SERVER_LOG" >&2
	return 1
}

stop_server() {
	[ -n "${SERVER_PID:-}" ] || return 0
	local child pids=()
	# tcpserver's sessions (tls-server's workers), and what they run (smtp-recv), then the
	# server; and until they are all gone, since only the server is ours to wait for.
	for child in $(pgrep -P "$SERVER_PID"); do
		pids+=("$child" $(pgrep -P "$child" || true))	# a child with none is no failure
		pkill -TERM -P "$child" 2>/dev/null || true
		kill -TERM "$child" 2>/dev/null || true
	done
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
	for child in "${pids[@]}"; do
		wait_until 50 sh -c "! kill -0 $child 2>/dev/null" || kill -KILL "$child" 2>/dev/null || true
	done
}

start_tcpserver() {
	local relay=0
	if [ "${1:-}" = relay ]; then
		relay=1
		shift
	fi
	local rules=$BATS_TEST_TMPDIR/tcp.smtp
	if [ "$relay" = 1 ]; then
		printf '127.0.0.1:allow,RELAYCLIENT=""\n:allow\n' >"$rules"
	else
		printf ':allow\n' >"$rules"
	fi
	tcprules "$rules.cdb" "$rules.tmp" <"$rules" || return 1
	start_server SMTP_HOSTNAME=mx.example.test "$@" "-x$rules.cdb" -- "$(command -v smtp-recv)" ||
		return 1
	export SMTP_PORT=$SERVER_PORT SMTP_LOG=$SERVER_LOG
}

stop_tcpserver() {
	stop_server
}

odd_message() {
	"$PYTHON" - "$1" <<'PY'
import sys
lines = [
    b"Subject: odd bytes",
    b"From: Bob <bob@example.org>",
    b"X-Eight-Bit: h\xe9llo w\xf6rld \xff\xfe",
    b"",
    b".",
    b"..",
    b"..x",
    b".x",
    b". ",
    b" .",
    b"",
    b"",
    b"\t",
    b"trailing white space   \t",
    b"From the start of a line",
    b"%DATE% \\n %NEWLINE% tokens some clients expand",
    b"a" * 998,
    b"." + b"b" * 900,
    b"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xae",
]
# Every byte value but CR and LF, 61 to a line.
odd = bytes(b for b in range(256) if b not in (10, 13))
lines += [odd[i:i + 61] for i in range(0, len(odd), 61)]
lines += [b"\x00middle\x00nul", b"\x7f\x80\x81\xfe\xff", b"last line"]
with open(sys.argv[1], "wb") as f:
    f.write(b"\n".join(lines) + b"\n")
PY
}

smtp_wire() {
	"$PYTHON" - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
out = []
for line in data.split(b"\n")[:-1]:
    out.append((b"." + line if line.startswith(b".") else line) + b"\r\n")
sys.stdout.buffer.write(b"".join(out))
PY
}

strip_added() {
	"$PYTHON" - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
lines = data.split(b"\n")
if len(lines) > 1 and lines[1].startswith(b"X-Original-To: "):
    del lines[1]
want = [b"Return-Path: <", b"Delivered-To: ", b"Received: from "]
for i, w in enumerate(want):
    if not lines[i].startswith(w):
        sys.exit("strip_added: line %d is %r, not %r..." % (i + 1, lines[i][:40], w))
i = 3
while lines[i].startswith(b"\t"):
    i += 1
if not 5 <= i <= 6:
    sys.exit("strip_added: a Received block of %d lines" % (i - 2))
sys.stdout.buffer.write(b"\n".join(lines[i:]))
PY
}

py_send() {
	"$PYTHON" - "$@" <<'PY'
import smtplib, sys
port, sender, rcpt, path = sys.argv[1:5]
# smtplib dot-stuffs bytes but leaves their line ends alone: the LF file goes out as CRLF.
msg = open(path, "rb").read().replace(b"\n", b"\r\n")
# local_hostname: smtplib would otherwise look the host's name up in DNS.
s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="client.example.org", timeout=10)
code, _ = s.ehlo()
print("EHLO", code)
code, text = s.mail(sender)
print("MAIL", code, text.decode())
code, text = s.rcpt(rcpt)
print("RCPT", code, text.decode())
if code == 250:
    try:
        code, text = s.data(msg)
    except smtplib.SMTPDataError as e:
        code, text = e.smtp_code, e.smtp_error
    print("DATA", code, text.decode())
s.quit()
PY
}

drip() {
	"$PYTHON" - "$@" <<'PY'
import select, socket, sys, time
port, stage = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
f = s.makefile("rb")
def reply():
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    return line
assert reply().startswith(b"220 ")
print("greeted", flush=True)
if stage == "data":
    for cmd, code in ((b"EHLO client.example.org", b"250"), (b"MAIL FROM:<bob@example.org>", b"250"),
                      (b"RCPT TO:<alice@example.test>", b"250"), (b"DATA", b"354")):
        s.sendall(cmd + b"\r\n")
        line = reply()
        assert line.startswith(code), line
start = time.monotonic()
while time.monotonic() - start < 20:
    # The reply, if any, comes while we wait between two bytes.
    if select.select([s], [], [], 0.2)[0]:
        print(f.read().decode().strip())
        print("closed after %d s" % (time.monotonic() - start))
        sys.exit(0)
    s.sendall(b"x")
print("still open after 20 s")
sys.exit(1)
PY
}

# queue_ids: the ids in $QUEUEDIR/msg, oldest first, one a line.
queue_ids() {
	ls "$QUEUEDIR/msg" | sort -t - -k1,1n -k2,2n
}

# queue_message ID: the message part of a queue file, as queued.
queue_message() {
	"$PYTHON" - "$QUEUEDIR/msg/$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
assert data[:5] == b"PRQ1 " and data[25:26] == b"\n", "not a queue file"
sys.stdout.buffer.write(data[26:26 + int(data[5:25])])
PY
}

# queue_envelope ID: the envelope records of a queue file, one a line (F..., T...).
queue_envelope() {
	"$PYTHON" - "$QUEUEDIR/msg/$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
rest = data[26 + int(data[5:25]):]
for rec in rest.split(b"\0"):
    if not rec:
        break
    sys.stdout.buffer.write(rec + b"\n")
PY
}

# queue_body ID: the queued message without the Received block smtp-recv put in front.
queue_body() {
	queue_message "$1" | "$PYTHON" -c '
import sys
lines = sys.stdin.buffer.read().split(b"\n")
assert lines[0].startswith(b"Received: from "), "no Received header first"
i = 1
while lines[i].startswith(b"\t"):
    i += 1
sys.stdout.buffer.write(b"\n".join(lines[i:]))'
}

# assert_stderr_line ERE: some line of $stderr (from run --separate-stderr) matches ERE whole.
assert_stderr_line() {
	if ! grep -Eqx -e "$1" <<<"$stderr"; then
		printf 'no stderr line matches: %s\nstderr:\n%s\n' "$1" "$stderr" | fail
	fi
}
