# postroom: ISC license, see LICENSE.
# The DNS and network test world, loaded after lib/common with `load lib/world`. A test that
# resolves names runs its programs in a network + mount namespace of its own: loopback only (the
# machine's real resolver has no route from inside), /etc/resolv.conf bind-mounted (inside only)
# to name the test name server on 127.0.0.53, which serves a zone the test writes. Needs root.
#
#   world_start [ZONE-LINE...]
#       makes the namespace (held by a process whose pid is WORLD_PID), brings lo up, starts the
#       name server (tests/lib/dns_server.py: see its top for the zone syntax, SERVFAIL, REFUSED,
#       NOANSWER and RAW records) on 127.0.0.53 and ::1 port 53, and waits until it is bound.
#       Sets WORLD_DIR, WORLD_ZONE (the zone file, read again on every query: append to it, or
#       rewrite it, at any time), WORLD_DNS_LOG (one line per query: "CLIENT QNAME QTYPE RESULT").
#       resolv.conf inside: "nameserver 127.0.0.53" and "options timeout:2 attempts:2"; set
#       RES_OPTIONS (e.g. "timeout:1 attempts:1") in a command's environment to change it.
#   world_zone LINE...          appends LINE... to the zone
#   world_resolv_conf LINE...   rewrites the resolv.conf seen inside with LINE...
#   in_world COMMAND...         runs COMMAND inside (nsenter; environment and cwd kept); refuses
#                               to run anything when there is no world
#   world_port_answers ADDRESS PORT
#                               0 when something inside accepts TCP connections on ADDRESS:PORT
#   world_peer N[:PORT] [VAR=V...] [-- PROG ARG...]
#                               a peer MTA on 127.0.0.N port PORT (default 25) inside (N from 2
#                               to 9; a second peer on the same N needs its own PORT, and shares
#                               PEER_DIR=$WORLD_DIR/peerN):
#                               tcpserver -HR running PROG (default smtp-recv) with
#                               SMTP_HOSTNAME=mxN.example.test, its own queue, user database and
#                               mail root, and VAR=V in its environment; waits until the port
#                               answers (PROG ARG... may be tls-wrap ... smtp-recv, or any
#                               program speaking on stdin/stdout). The user database is $WORLD_DIR/peerN/users.txt if the
#                               test wrote one before, else the fixture of common.bash (users_txt).
#                               Sets PEER_DIR=$WORLD_DIR/peerN, PEER_QUEUE (its QUEUEDIR),
#                               PEER_USERDB, PEER_MAILROOT, PEER_LOG (tcpserver's and PROG's
#                               stderr), PEER_PID (tcpserver's pid). With WORLD_PEER_VERBOSE
#                               set, tcpserver runs with -v: a "status: K/MAX" line and a
#                               "pid P from ADDRESS" line per connection in PEER_LOG.
#   world_stop                  kills the peers, the name server and the holder by pid, then any
#                               process left in the namespace (by the pids whose network
#                               namespace it is); the teardown of world_teardown calls it.
#   world_teardown              world_stop, then common_teardown: a test file's teardown.

WORLD_PID=
WORLD_DNS_PID=
_world_peer_pids=()

world_start() {
	WORLD_DIR=$BATS_TEST_TMPDIR/world
	WORLD_ZONE=$WORLD_DIR/zone
	WORLD_DNS_LOG=$WORLD_DIR/dns.log
	mkdir -p "$WORLD_DIR" || return 1
	: >"$WORLD_ZONE"
	[ $# -eq 0 ] || printf '%s\n' "$@" >>"$WORLD_ZONE"
	: >"$WORLD_DNS_LOG"
	printf 'nameserver 127.0.0.53\noptions timeout:2 attempts:2\n' >"$WORLD_DIR/resolv.conf"
	# shellcheck disable=SC2016 # expanded by the inner bash
	# The holder: its mounts private (nothing propagates back to the machine), lo up,
	# resolv.conf covered, then a ready file; it waits until world_stop kills it.
	unshare --net --mount --propagation private -- bash -c '
		set -e
		ip link set lo up
		mount --bind "$1" /etc/resolv.conf
		: >"$2"
		exec sleep infinity' world-holder "$WORLD_DIR/resolv.conf" "$WORLD_DIR/ns.ready" \
		</dev/null >/dev/null 2>"$WORLD_DIR/holder.log" 3>&- &
	WORLD_PID=$!
	if ! wait_until 100 _world_holder_ready; then
		fail "world_start: the namespace did not come up: $(cat "$WORLD_DIR/holder.log")"
	fi
	# Never run a test against the machine's network by mistake.
	[ "$(readlink "/proc/$WORLD_PID/ns/net")" != "$(readlink /proc/self/ns/net)" ] ||
		fail "world_start: the holder is in the machine's network namespace"
	in_world grep -qx 'nameserver 127.0.0.53' /etc/resolv.conf ||
		fail "world_start: resolv.conf inside does not name 127.0.0.53"

	in_world "$PYTHON" "$TESTLIB/dns_server.py" "$WORLD_ZONE" "$WORLD_DIR/dns.ready" \
		"$WORLD_DNS_LOG" 127.0.0.53 ::1 </dev/null >/dev/null 2>"$WORLD_DIR/dns.err" 3>&- &
	WORLD_DNS_PID=$!
	if ! wait_until 100 _world_dns_ready; then
		fail "world_start: the name server did not start: $(cat "$WORLD_DIR/dns.err")"
	fi
}

_world_holder_ready() {
	kill -0 "$WORLD_PID" 2>/dev/null || return 2
	[ -e "$WORLD_DIR/ns.ready" ]
}

_world_dns_ready() {
	kill -0 "$WORLD_DNS_PID" 2>/dev/null || return 2
	[ -e "$WORLD_DIR/dns.ready" ]
}

world_zone() {
	printf '%s\n' "$@" >>"$WORLD_ZONE"
}

world_resolv_conf() {
	# Rewritten in place: the bind mount holds this inode.
	printf '%s\n' "$@" >"$WORLD_DIR/resolv.conf"
}

in_world() {
	if [ -z "$WORLD_PID" ] || ! kill -0 "$WORLD_PID" 2>/dev/null; then
		echo "in_world: no world (world_start first): not running $*" >&2
		return 111
	fi
	nsenter -t "$WORLD_PID" -n -m -- "$@"
}

world_port_answers() {
	in_world "$PYTHON" - "$1" "$2" <<'PY'
import socket, sys
a, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET)
s.settimeout(1)
try:
    s.connect((a, port))
except OSError:
    sys.exit(1)
s.close()
PY
}

world_peer() {
	local n=${1%%:*} port=25 vars=()
	[[ $1 != *:* ]] || port=${1#*:}
	shift
	case $n in [2-9]) ;; *) fail "world_peer: N must be 2 to 9, not $n" ;; esac
	case $port in '' | *[!0-9]*) fail "world_peer: not a port: $port" ;; esac
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		vars+=("$1")
		shift
	done
	[ "${1:-}" != -- ] || shift
	[ $# -gt 0 ] || set -- "$(command -v smtp-recv)"

	PEER_DIR=$WORLD_DIR/peer$n
	PEER_QUEUE=$PEER_DIR/queue
	PEER_USERDB=$PEER_DIR/users.cdb
	PEER_MAILROOT=$PEER_DIR/mail
	PEER_LOG=$PEER_DIR/log
	mkdir -p "$PEER_DIR" "$PEER_MAILROOT"
	queue-init "$PEER_QUEUE" || fail "world_peer: queue-init $PEER_QUEUE failed"
	[ -f "$PEER_DIR/users.txt" ] || users_txt >"$PEER_DIR/users.txt"
	userdb-compile -f "$PEER_DIR/users.txt" "$PEER_USERDB" ||
		fail "world_peer: userdb-compile $PEER_DIR/users.txt failed"
	printf ':allow\n' >"$PEER_DIR/tcp.rules"
	tcprules "$PEER_DIR/tcp.cdb" "$PEER_DIR/tcp.tmp" <"$PEER_DIR/tcp.rules" ||
		fail "world_peer: tcprules failed"

	in_world env -u RELAYCLIENT QUEUEDIR="$PEER_QUEUE" USERDB="$PEER_USERDB" \
		MAILROOT="$PEER_MAILROOT" SMTP_HOSTNAME="mx$n.example.test" "${vars[@]}" \
		tcpserver -HR ${WORLD_PEER_VERBOSE:+-v} -l 0 -x "$PEER_DIR/tcp.cdb" "127.0.0.$n" "$port" "$@" \
		</dev/null >/dev/null 2>>"$PEER_LOG" 3>&- &
	PEER_PID=$!
	_world_peer_pids+=("$PEER_PID")
	if ! wait_until 100 _world_peer_up "$PEER_PID" "127.0.0.$n" "$port"; then
		fail "world_peer: nothing answers on 127.0.0.$n:$port; $PEER_LOG: $(cat "$PEER_LOG")"
	fi
}

_world_peer_up() {
	kill -0 "$1" 2>/dev/null || return 2
	world_port_answers "$2" "$3"
}

_world_kill() {	# PID: its children (tcpserver's sessions), then PID, and reaps it
	local child
	for child in $(pgrep -P "$1" 2>/dev/null); do
		kill -KILL "$child" 2>/dev/null || true
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

world_stop() {
	[ -n "$WORLD_PID" ] || return 0
	local netns pid p
	netns=$(readlink "/proc/$WORLD_PID/ns/net" 2>/dev/null) || netns=
	for pid in "${_world_peer_pids[@]}"; do _world_kill "$pid"; done
	_world_peer_pids=()
	[ -z "$WORLD_DNS_PID" ] || _world_kill "$WORLD_DNS_PID"
	# Whatever else a test started inside: the processes of that network namespace.
	if [ -n "$netns" ] && [ "$netns" != "$(readlink /proc/self/ns/net)" ]; then
		for p in /proc/[0-9]*; do
			pid=${p#/proc/}
			[ "$pid" != "$WORLD_PID" ] || continue
			[ "$(readlink "$p/ns/net" 2>/dev/null)" = "$netns" ] && kill -KILL "$pid" 2>/dev/null
		done
	fi
	_world_kill "$WORLD_PID"
	WORLD_PID='' WORLD_DNS_PID=''
	return 0
}

world_teardown() {
	world_stop
	common_teardown
}
