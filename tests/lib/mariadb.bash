# postroom: ISC license, see LICENSE.
# A throwaway MariaDB server for the bats suite, loaded after lib/common with `load lib/mariadb`.
# It listens on a unix socket only (--skip-networking), reads no option file (--no-defaults
# everywhere) and keeps everything in one directory made with mktemp under /tmp:
#   mariadb_setup      (in setup_file) makes the directory and the data directory, starts the
#                      server, creates the database postfix with the PostfixAdmin tables
#                      (tests/fixtures/postfixadmin.sql, no rows), a read-only user postroom and
#                      a read-write user postfixadmin, and an option file for each
#   mariadb_up         starts the server again on the existing data (after mariadb_down)
#   mariadb_down       stops it (TERM, by pid); the data stays
#   mariadb_teardown   (in teardown_file) stops it if it runs, removes the directory; safe to
#                      call after a setup that failed halfway
#   mdb_sql [SQL...]   runs SQL (the arguments, or stdin if there are none) as root on the
#                      database postfix; rows come out tab-separated, without column names
# Exported (setup_file runs in another shell than the tests, so only exported variables reach
# them):
#   MDB_DIR            the directory, /tmp/postroom-mdb.XXXXXX (short: a unix socket path has at
#                      most 107 bytes); its data/ is the data directory, *.log the logs
#   MDB_SOCKET         the server's socket, $MDB_DIR/mysqld.sock
#   MDB_PID            the server's pid while it runs, else empty; $MDB_DIR/mdb.pid (absent while
#                      it is down) is the reference: a test sees the MDB_PID of setup_file, not
#                      that of an earlier test that restarted the server
#   MDB_READER_CNF     $MDB_DIR/reader.cnf: [client] socket, user postroom, its password,
#                      database postfix (mode 0600), for `mariadb --defaults-file=...` or
#                      mysql_options(MYSQL_READ_DEFAULT_FILE)
#   MDB_ADMIN_CNF      $MDB_DIR/admin.cnf: the same for postfixadmin (SELECT, INSERT, UPDATE,
#                      DELETE on postfix.*)

MDB_FIXTURE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../fixtures" && pwd)/postfixadmin.sql
MDB_READER_PASSWORD=reader-secret
MDB_ADMIN_PASSWORD=admin-secret

# The client library and programs look at these; none may point them elsewhere.
unset MYSQL_HOST MYSQL_TCP_PORT MYSQL_UNIX_PORT MYSQL_PWD MYSQL_HOME MARIADB_HOME \
	MYSQL_GROUP_SUFFIX MARIADB_GROUP_SUFFIX MYSQL_TEST_LOGIN_FILE

# mariadb_setup: makes $MDB_DIR and a data directory in it, starts the server, creates the
# database, the users, the tables and the option files; exports the MDB_* variables above.
mariadb_setup() {
	MDB_DIR=$(mktemp -d /tmp/postroom-mdb.XXXXXX) || {
		fail "mktemp for the MariaDB directory failed"
		return 1
	}
	export MDB_DIR MDB_SOCKET=$MDB_DIR/mysqld.sock MDB_PID=
	export MDB_READER_CNF=$MDB_DIR/reader.cnf MDB_ADMIN_CNF=$MDB_DIR/admin.cnf
	[ -f "$MDB_FIXTURE" ] || {
		fail "no fixture $MDB_FIXTURE"
		return 1
	}
	# --skip-name-resolve: no resolveip of the host name (a DNS query); the innodb sizes
	# must match mariadb_up's.
	mariadb-install-db --no-defaults --datadir="$MDB_DIR/data" --user="$(id -un)" \
		--auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
		--skip-log-bin --innodb-log-file-size=4M --innodb-buffer-pool-size=16M \
		</dev/null >"$MDB_DIR/install.log" 2>&1 3>&- || {
		fail "$(printf 'mariadb-install-db failed:\n%s' "$(tail -30 "$MDB_DIR/install.log")")"
		return 1
	}
	mariadb_up || return 1
	_mdb_client <<EOF || {
CREATE DATABASE postfix CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE USER 'postroom'@'localhost' IDENTIFIED BY '$MDB_READER_PASSWORD';
GRANT SELECT ON postfix.* TO 'postroom'@'localhost';
CREATE USER 'postfixadmin'@'localhost' IDENTIFIED BY '$MDB_ADMIN_PASSWORD';
GRANT SELECT, INSERT, UPDATE, DELETE ON postfix.* TO 'postfixadmin'@'localhost';
EOF
		fail "creating the database postfix and its users failed"
		return 1
	}
	_mdb_client -D postfix <"$MDB_FIXTURE" || {
		fail "loading $MDB_FIXTURE failed"
		return 1
	}
	_mdb_cnf "$MDB_READER_CNF" postroom "$MDB_READER_PASSWORD" &&
		_mdb_cnf "$MDB_ADMIN_CNF" postfixadmin "$MDB_ADMIN_PASSWORD"
}

# _mdb_cnf FILE USER PASSWORD: writes the option file FILE, mode 0600, for USER on the socket.
_mdb_cnf() {
	(umask 077 && cat >"$1") <<EOF || {
[client]
socket=$MDB_SOCKET
user=$2
password=$3
database=postfix
default-character-set=utf8mb4
EOF
		fail "writing $1 failed"
		return 1
	}
	chmod 0600 "$1"
}

# mariadb_up: starts mariadbd on $MDB_DIR/data in the background (detached: its parent is gone,
# so any shell can stop it), records its pid in MDB_PID and $MDB_DIR/mdb.pid, and waits (at
# most ~30 s) until it answers a ping on the socket.
mariadb_up() {
	if [ -z "${MDB_DIR:-}" ] || [ ! -d "$MDB_DIR/data" ]; then
		fail "mariadb_up: no data directory (mariadb_setup first)"
		return 1
	fi
	if _mdb_running; then
		fail "mariadb_up: the server already runs (pid $MDB_PID)"
		return 1
	fi
	rm -f -- "$MDB_DIR/mdb.pid"
	: >>"$MDB_DIR/error.log"
	local logsize
	logsize=$(stat -c %s "$MDB_DIR/error.log")
	# In a subshell that exits at once (so mariadbd outlives whichever shell started it), with no
	# descriptor of bats's left open (bats waits on some: fd 3, the test's output, pipes).
	# --no-defaults must come first. The innodb sizes must match mariadb_setup's.
	(
		local fd
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			[ "$fd" -le 2 ] || eval "exec $fd>&-" 2>/dev/null || true
		done
		/usr/sbin/mariadbd --no-defaults --user="$(id -un)" --datadir="$MDB_DIR/data" \
			--socket="$MDB_SOCKET" --pid-file="$MDB_DIR/mariadbd.pid" \
			--log-error="$MDB_DIR/error.log" --tmpdir="$MDB_DIR" \
			--skip-networking --skip-name-resolve --skip-log-bin \
			--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
			--innodb-buffer-pool-size=16M --innodb-log-file-size=4M \
			--innodb-flush-log-at-trx-commit=2 --innodb-buffer-pool-dump-at-shutdown=OFF \
			--innodb-buffer-pool-load-at-startup=OFF \
			</dev/null >/dev/null 2>>"$MDB_DIR/error.log" 3>&- &
		echo $! >"$MDB_DIR/mdb.pid"
	)
	MDB_PID=$(cat "$MDB_DIR/mdb.pid") || {
		fail "mariadb_up: no pid file"
		return 1
	}
	export MDB_PID
	local deadline=$((SECONDS + 30))
	until mariadb-admin --no-defaults --protocol=socket -S "$MDB_SOCKET" -uroot \
		--connect-timeout=2 ping >/dev/null 2>&1; do
		if ! _mdb_alive "$MDB_PID" || [ "$SECONDS" -ge "$deadline" ]; then
			_mdb_alive "$MDB_PID" || MDB_PID=
			fail "$(printf 'mariadbd did not come up (pid %s); %s:\n%s' "$MDB_PID" \
				"$MDB_DIR/error.log" "$(tail -c +$((logsize + 1)) "$MDB_DIR/error.log" | tail -30)")"
			return 1
		fi
		sleep 0.1
	done
}

# mariadb_down: stops the server by its pid: TERM, waits until it is gone, KILL after ~20 s.
# The data stays for mariadb_up. Nothing happens if it does not run.
mariadb_down() {
	_mdb_running || {
		[ -z "${MDB_DIR:-}" ] || rm -f -- "$MDB_DIR/mdb.pid"
		MDB_PID=
		return 0
	}
	local pid=$MDB_PID n=200
	kill -TERM "$pid" 2>/dev/null || true
	while _mdb_alive "$pid"; do
		if [ $((n -= 1)) -eq 0 ]; then kill -KILL "$pid" 2>/dev/null || true; fi
		if [ "$n" -lt -50 ]; then
			fail "mariadb_down: mariadbd (pid $pid) does not die"
			return 1
		fi
		sleep 0.1
	done
	rm -f -- "$MDB_DIR/mdb.pid"
	export MDB_PID=
}

# mariadb_teardown: mariadb_down if the server runs, then removes $MDB_DIR (only a
# /tmp/postroom-mdb.* directory). Does what it can after a failed or partial mariadb_setup.
mariadb_teardown() {
	local rc=0
	if [ -n "${MDB_DIR:-}" ]; then
		mariadb_down || rc=1
		case $MDB_DIR in
		/tmp/postroom-mdb.*) [ "$rc" != 0 ] || rm -rf -- "$MDB_DIR" ;;
		esac
	fi
	return "$rc"
}

# mdb_sql [SQL...]: runs SQL (the arguments joined by spaces, or stdin if none) as root on the
# database postfix through the socket; prints the rows tab-separated without column names;
# returns the client's status.
mdb_sql() {
	if [ $# -gt 0 ]; then
		_mdb_client -D postfix -e "$*"
	else
		_mdb_client -D postfix
	fi
}

# _mdb_client [ARG...]: the mariadb client as root on the socket, batch mode, no column names.
_mdb_client() {
	mariadb --no-defaults --protocol=socket -S "$MDB_SOCKET" -uroot --default-character-set=utf8mb4 \
		-N -B "$@"
}

# _mdb_running: true if the pid in $MDB_DIR/mdb.pid (or, without that file, MDB_PID) is our live
# mariadbd; sets MDB_PID to it. The file comes first: MDB_PID is stale in a shell other than the
# one that last ran mariadb_up or mariadb_down (teardown_file after a test restarted the server).
_mdb_running() {
	local pid=${MDB_PID:-}
	if [ -n "${MDB_DIR:-}" ] && [ -f "$MDB_DIR/mdb.pid" ]; then
		pid=$(cat "$MDB_DIR/mdb.pid" 2>/dev/null) || pid=
	fi
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# only a mariadbd on our data directory (the pid may have been reused)
	_mdb_alive "$pid" || return 1
	local cmdline
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *mariadbd*" --datadir=$MDB_DIR/data "* ]] || return 1
	MDB_PID=$pid
}

# _mdb_alive PID: true if process PID exists and is not a zombie.
_mdb_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}
