#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# The DNS and network test world itself (tests/lib/world.bash): the namespace, its resolv.conf,
# the name server, the peers, and that nothing is left behind.

load lib/common
load lib/world

setup() {
	world_start 'a.world.test A 127.0.0.2' 'a.world.test AAAA 2001:db8::2'
}

teardown() {
	world_teardown
}

@test "world: resolv.conf inside names 127.0.0.53 only; the machine's resolver has no route from inside" {
	run -0 in_world cat /etc/resolv.conf
	assert_output "$(printf 'nameserver 127.0.0.53\noptions timeout:2 attempts:2')"
	# The machine's resolv.conf is untouched outside.
	refute [ "$(cat /etc/resolv.conf)" = "$output" ]
	# Every name server the machine uses: no route inside (ip route get sends no packet).
	local word ns
	while read -r word ns _; do
		[ "$word" = nameserver ] || continue
		run ! in_world ip route get "$ns"
	done </etc/resolv.conf
	# (none: the resolver's default 127.0.0.1, which inside is the namespace's own lo)
	# Only lo inside.
	run -0 in_world ip -o link show
	assert_equal "${#lines[@]}" 1
	assert_regex "$output" '^1: lo: <LOOPBACK,UP,LOWER_UP>'
}

@test "world: the system resolver inside asks the test name server" {
	# getent hosts, not ahosts: getaddrinfo's AI_ADDRCONFIG asks nothing with only lo up.
	run -2 in_world getent -s dns hosts b.world.test
	run -0 in_world getent -s dns hosts a.world.test
	assert_output --regexp '^(2001:db8::2|127\.0\.0\.2) +a\.world\.test$'
	assert_log '127\.0\.0\.1 a\.world\.test (A|AAAA) answer 1' "$WORLD_DNS_LOG"
	# The zone is read again on every query.
	world_zone 'b.world.test A 127.0.0.3'
	run -0 in_world getent -s dns hosts b.world.test
	assert_output --regexp '^127\.0\.0\.3 +b\.world\.test$'
}

@test "world: a peer answers on 127.0.0.2:25 inside, with its own queue; another on 127.0.0.3:587" {
	world_peer 3:587
	run -0 world_port_answers 127.0.0.3 587
	run -1 world_port_answers 127.0.0.3 25
	world_peer 2
	run -0 in_world "$PYTHON" - <<'PY'
import smtplib
s = smtplib.SMTP("127.0.0.2", 25, local_hostname="client.example.org", timeout=10)
code, text = s.ehlo()
print(code, text.split(b"\n")[0].decode())
print(s.sendmail("bob@example.org", ["alice@example.test"], b"Subject: hi\r\n\r\nworld\r\n"))
s.quit()
PY
	assert_output "$(printf '250 mx2.example.test\n{}')"
	assert_equal "$(find "$PEER_QUEUE/msg" -type f | wc -l)" 1
	[ "$PEER_DIR" = "$WORLD_DIR/peer2" ]
}

@test "world: world_stop leaves no process in the namespace" {
	world_peer 3
	local netns=$(readlink "/proc/$WORLD_PID/ns/net") holder=$WORLD_PID
	in_world sleep 1000 </dev/null >/dev/null 2>&1 3>&- &
	world_stop
	run ! kill -0 "$holder"
	local p left=
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/net" 2>/dev/null)" != "$netns" ] || left+=" ${p#/proc/}"
	done
	assert_equal "$left" ''
	# And no world to run in.
	run -111 in_world true
}
