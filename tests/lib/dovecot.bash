# postroom: ISC license, see LICENSE.
# A throwaway Dovecot (Debian's dovecot-imapd) for the bats suite (`load lib/dovecot`) and the
# benches (`. tests/lib/dovecot.bash`). Its own config, base_dir, state_dir, log and passwd-file
# in one directory; the system's /etc/dovecot is never read and no system instance is touched.
# Every setting not named below is Dovecot's built-in default (service limits, login processes
# in high-security mode, no auth cache).
#
#   dovecot_start MAILROOT PORT
#       writes the config and starts `dovecot -F` in the background (detached, no descriptor of
#       the caller's left open), listening on 127.0.0.1:PORT (IMAP; STARTTLS with DOVECOT_SSL)
#       and, with DOVECOT_IMAPS_PORT, on that port with implicit TLS; returns once the greeting
#       comes (at most ~20 s), else prints the log's tail on stderr and returns 1.
#       Mailboxes are those of a postroom user database in text (userdb(5): lines
#       "mailbox USER HASH PATH [QUOTA]"; the others are ignored), with each PATH relative to
#       MAILROOT, as MAILROOT is for checkpassword-mysql: Dovecot's passdb and userdb are a
#       passwd-file made from it (the same users, the same password hashes), each user's home
#       and Maildir++ root (mail_location = maildir:~) at MAILROOT/PATH. When run as root,
#       MAILROOT is made if missing and chowned (recursively) to the mail user, since Dovecot
#       opens no mail as root.
#   dovecot_stop
#       TERM to the master (by the pid it wrote), then waits until it and every process it had
#       started are gone (KILL after ~10 s). Nothing happens if it does not run.
#   dovecot_doveadm ARGS...
#       doveadm with the same config (e.g. `dovecot_doveadm mailbox list -u alice@example.test`,
#       which needs the server running for its userdb lookup).
#   dovecot_passwd USERS.TXT MAILROOT UID GID
#       prints the passwd-file lines that dovecot_start makes (for callers that want them).
#
# Settings (environment, read by dovecot_start; the others read DOVECOT_DIR only):
#   DOVECOT_DIR         where everything goes (created if missing; default
#                       $BATS_TEST_TMPDIR/dovecot). dovecot.conf, passwd, dovecot.log,
#                       run/ (base_dir: master.pid, sockets), state/. Keep it short: unix socket
#                       paths under run/ have at most 107 bytes. It and MAILROOT must be
#                       searchable by others (Dovecot's processes run as dovecot, dovenull and
#                       the mail user), which a mktemp -d directory is not: chmod 755 it.
#   DOVECOT_USERS       the user database in text (default: etc/demo/users.txt, make run's
#                       alice and bob)
#   DOVECOT_MAIL_USER   owner of the mail and uid of the imap processes (default nobody)
#   DOVECOT_SSL         "CERTFILE KEYFILE": ssl = yes with them (STARTTLS on PORT). Unset:
#                       ssl = no. Plain LOGIN is allowed on loopback either way (Dovecot's
#                       default counts a connection from 127.0.0.1 to 127.0.0.1 as secured).
#   DOVECOT_IMAPS_PORT  an implicit-TLS listener there too (needs DOVECOT_SSL)
#   DOVECOT_EXTRA       more config lines, appended as they are (e.g. a quota plugin)
# Exported by dovecot_start: DOVECOT_DIR, DOVECOT_CONF (the config file), DOVECOT_PID.

_DOVECOT_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

_dovecot_dir() {
	DOVECOT_DIR=${DOVECOT_DIR:-${BATS_TEST_TMPDIR:+$BATS_TEST_TMPDIR/dovecot}}
	[ -n "$DOVECOT_DIR" ] || {
		echo "dovecot: set DOVECOT_DIR" >&2
		return 1
	}
	export DOVECOT_DIR DOVECOT_CONF=$DOVECOT_DIR/dovecot.conf
}

dovecot_passwd() {
	local users=$1 root=$2 uid=$3 gid=$4
	awk -v root="$root" -v uid="$uid" -v gid="$gid" '
		$1 == "mailbox" && NF >= 4 {
			path = $4
			sub(/\/+$/, "", path)
			printf "%s:%s:%s:%s::%s/%s::\n", $2, $3, uid, gid, root, path
		}' "$users"
}

dovecot_start() {
	local root=$1 port=$2 users mailuser uid gid cert='' key='' imaps=${DOVECOT_IMAPS_PORT:-0}
	[ $# -eq 2 ] || {
		echo "usage: dovecot_start MAILROOT PORT" >&2
		return 1
	}
	_dovecot_dir || return 1
	users=${DOVECOT_USERS:-$_DOVECOT_TOP/etc/demo/users.txt}
	mailuser=${DOVECOT_MAIL_USER:-nobody}
	uid=$(id -u "$mailuser") && gid=$(id -g "$mailuser") || return 1
	if [ -n "${DOVECOT_SSL:-}" ]; then
		read -r cert key <<<"$DOVECOT_SSL"
		[ -r "$cert" ] && [ -r "$key" ] || {
			echo "dovecot: DOVECOT_SSL: cannot read \"$cert\" and \"$key\"" >&2
			return 1
		}
	elif [ "$imaps" != 0 ]; then
		echo "dovecot: DOVECOT_IMAPS_PORT needs DOVECOT_SSL" >&2
		return 1
	fi
	case $root in /*) ;; *) root=$PWD/$root ;; esac
	mkdir -p "$DOVECOT_DIR/state" "$root" || return 1
	if [ "$(id -u)" = 0 ]; then
		chown -R "$uid:$gid" "$root" || return 1
	fi
	dovecot_passwd "$users" "$root" "$uid" "$gid" >"$DOVECOT_DIR/passwd" || return 1
	chmod 644 "$DOVECOT_DIR/passwd"
	cat >"$DOVECOT_CONF" <<EOF
# A throwaway instance (tests/lib/dovecot.bash); everything else at Dovecot's defaults.
base_dir = $DOVECOT_DIR/run
state_dir = $DOVECOT_DIR/state
log_path = $DOVECOT_DIR/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = $([ -n "$cert" ] && echo yes || echo no)
${cert:+ssl_cert = <$cert}
${key:+ssl_key = <$key}
mail_location = maildir:~
passdb {
  driver = passwd-file
  args = $DOVECOT_DIR/passwd
}
userdb {
  driver = passwd-file
  args = $DOVECOT_DIR/passwd
}
service imap-login {
  inet_listener imap {
    port = $port
  }
  inet_listener imaps {
    port = $imaps
    ssl = yes
  }
}
${DOVECOT_EXTRA:-}
EOF
	rm -f "$DOVECOT_DIR/run/master.pid"
	: >>"$DOVECOT_DIR/dovecot.log"
	local logsize
	logsize=$(stat -c %s "$DOVECOT_DIR/dovecot.log")
	# In a subshell that exits at once, with none of the caller's descriptors (bats waits on
	# some) left open in the daemon.
	(
		local fd
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			[ "$fd" -le 2 ] || eval "exec $fd>&-" 2>/dev/null || true
		done
		exec /usr/sbin/dovecot -F -c "$DOVECOT_CONF" </dev/null >>"$DOVECOT_DIR/dovecot.log" 2>&1
	) &
	DOVECOT_PID=$!
	export DOVECOT_PID
	local i greeting
	for i in $(seq 200); do
		if kill -0 "$DOVECOT_PID" 2>/dev/null &&
			{ exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
			greeting=
			read -r -t 2 greeting <&"$fd" || true
			exec {fd}<&-
			case $greeting in "* OK"*)
				[ "$imaps" = 0 ] || _dovecot_wait_port "$imaps" || break
				return 0 ;;
			esac
		fi
		kill -0 "$DOVECOT_PID" 2>/dev/null || break
		sleep 0.1
	done
	printf 'dovecot: no greeting on 127.0.0.1:%s; %s:\n%s\n' "$port" "$DOVECOT_DIR/dovecot.log" \
		"$(tail -c +$((logsize + 1)) "$DOVECOT_DIR/dovecot.log" | tail -20)" >&2
	dovecot_stop
	return 1
}

_dovecot_wait_port() {
	local i fd
	for i in $(seq 100); do
		if { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then
			exec {fd}<&-
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# _dovecot_tree PID: PID and all its descendants, one a line.
_dovecot_tree() {
	ps -eo pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			n = 1; q[1] = root
			for (i = 1; i <= n; i++) {
				print q[i]
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) q[++n] = k[j]
			}
		}'
}

dovecot_stop() {
	_dovecot_dir || return 1
	local pid pids p i left
	pid=$(cat "$DOVECOT_DIR/run/master.pid" 2>/dev/null) || pid=${DOVECOT_PID:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	pids=$(_dovecot_tree "$pid")
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 200); do
		left=
		for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
		[ -z "$left" ] && break
		[ "$i" = 100 ] && kill -KILL $left 2>/dev/null
		sleep 0.1
	done
	[ -z "$left" ] || {
		echo "dovecot: still running after 20 s:$left" >&2
		return 1
	}
	DOVECOT_PID=
}

dovecot_doveadm() {
	_dovecot_dir || return 1
	doveadm -c "$DOVECOT_CONF" "$@"
}
