#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# mx-lookup in the DNS test world (tests/lib/world.bash): every run is inside the namespace, so
# that nothing can reach the machine's real resolver, even the ones that never resolve a name.

load lib/common
load lib/world

setup() {
	world_start \
		'example.test MX 20 mx2.example.test' \
		'example.test MX 10 mx1.example.test' \
		'example.test MX 30 mx3.example.test' \
		'mx1.example.test A 127.0.0.2' \
		'mx1.example.test AAAA 2001:db8::2' \
		'mx2.example.test A 127.0.0.3' \
		'mx3.example.test A 127.0.0.4' \
		'mx3.example.test A 127.0.0.5'
}

teardown() {
	world_teardown
}

@test "mx-lookup: preference ascending, each host's IPv6 before its IPv4" {
	run -0 --separate-stderr in_world mx-lookup example.test
	assert_output "$(printf '%s\n' \
		'10 mx1.example.test 2001:db8::2' \
		'10 mx1.example.test 127.0.0.2' \
		'20 mx2.example.test 127.0.0.3' \
		'30 mx3.example.test 127.0.0.4' \
		'30 mx3.example.test 127.0.0.5')"
	assert_equal "$stderr" ''
	# Case and a final dot make no difference.
	run -0 --separate-stderr in_world mx-lookup EXAMPLE.Test.
	assert_line --index 0 '10 mx1.example.test 2001:db8::2'
	assert_equal "${#lines[@]}" 5
}

@test "mx-lookup: both orders of two equal-preference hosts appear within 50 runs" {
	world_zone 'eq.test MX 10 a.eq.test' 'eq.test MX 10 b.eq.test' 'eq.test MX 5 first.eq.test' \
		'a.eq.test A 127.0.0.6' 'b.eq.test A 127.0.0.7' 'first.eq.test A 127.0.0.8'
	# (not "i": bats's run changes a global i)
	local ab=0 ba=0 tries
	for ((tries = 0; tries < 50 && (ab == 0 || ba == 0); tries++)); do
		run -0 --separate-stderr in_world mx-lookup eq.test
		assert_line --index 0 '5 first.eq.test 127.0.0.8'
		case $(printf '%s,' "${lines[@]:1}") in
		'10 a.eq.test 127.0.0.6,10 b.eq.test 127.0.0.7,') ab=$((ab + 1)) ;;
		'10 b.eq.test 127.0.0.7,10 a.eq.test 127.0.0.6,') ba=$((ba + 1)) ;;
		*) fail "unexpected output: $output" ;;
		esac
	done
	[ "$ab" -gt 0 ] && [ "$ba" -gt 0 ] || fail "in $tries runs: a,b $ab times, b,a $ba times"
}

@test "mx-lookup: no MX: the domain's own addresses as preference 0 (implicit MX)" {
	world_zone 'implicit.test A 127.0.0.9' 'implicit.test AAAA 2001:db8::9'
	run -0 --separate-stderr in_world mx-lookup implicit.test
	assert_output "$(printf '0 implicit.test 2001:db8::9\n0 implicit.test 127.0.0.9')"
	assert_equal "$stderr" ''
	# No MX and no address at all: permanent.
	world_zone 'empty.test TXT "v=spf1 -all"'
	run -100 --separate-stderr in_world mx-lookup empty.test
	assert_output ''
	assert_equal "$stderr" 'mx-lookup: fatal: empty.test has no MX and no AAAA or A record'
}

@test "mx-lookup: an MX host that is a CNAME is followed; so is a domain that is one" {
	world_zone 'cn.test MX 10 alias.cn.test' 'alias.cn.test CNAME real.cn.test' \
		'real.cn.test A 127.0.0.6' 'real.cn.test AAAA 2001:db8::6' \
		'other.test CNAME example.test'
	run -0 --separate-stderr in_world mx-lookup cn.test
	assert_output "$(printf '10 alias.cn.test 2001:db8::6\n10 alias.cn.test 127.0.0.6')"
	run -0 --separate-stderr in_world mx-lookup other.test
	assert_line --index 0 '10 mx1.example.test 2001:db8::2'
	assert_equal "${#lines[@]}" 5
	# A CNAME loop ends, as a temporary failure.
	world_zone 'loop.test MX 10 l1.loop.test' 'l1.loop.test CNAME l2.loop.test' \
		'l2.loop.test CNAME l1.loop.test'
	run -111 --separate-stderr in_world mx-lookup loop.test
	assert_output ''
	assert_equal "$stderr" 'mx-lookup: fatal: loop.test: no MX host has a usable address (l1.loop.test: a CNAME chain of more than 8 links)'
}

@test "mx-lookup: a host with AAAA only is listed, and -4 drops it (-6 keeps only it)" {
	world_zone 'v6.test MX 10 six.v6.test' 'v6.test MX 20 four.v6.test' \
		'six.v6.test AAAA 2001:db8::66' 'four.v6.test A 127.0.0.4'
	run -0 --separate-stderr in_world mx-lookup v6.test
	assert_output "$(printf '10 six.v6.test 2001:db8::66\n20 four.v6.test 127.0.0.4')"
	assert_equal "$stderr" ''
	run -0 --separate-stderr in_world mx-lookup -4 v6.test
	assert_output '20 four.v6.test 127.0.0.4'
	assert_equal "$stderr" 'mx-lookup: v6.test: MX 10 six.v6.test ignored (noaddress): no A record'
	run -0 --separate-stderr in_world mx-lookup -6 v6.test
	assert_output '10 six.v6.test 2001:db8::66'
	assert_equal "$stderr" 'mx-lookup: v6.test: MX 20 four.v6.test ignored (noaddress): no AAAA record'
	# An IPv6-only domain without MX, under -4: our choice, not the domain's: temporary.
	world_zone 'only6.test AAAA 2001:db8::67'
	run -111 --separate-stderr in_world mx-lookup -4 only6.test
	assert_equal "$stderr" 'mx-lookup: fatal: only6.test has no MX and only IPv6 addresses, and IPv4 only was asked for'
}

@test "mx-lookup: null MX (RFC 7505): exit 100 with one clear line" {
	world_zone 'nullmx.test MX 0 .' 'nullmx.test A 127.0.0.2'
	run -100 --separate-stderr in_world mx-lookup nullmx.test
	assert_output ''
	assert_equal "$stderr" 'mx-lookup: fatal: nullmx.test does not accept mail (null MX, RFC 7505)'
	# "." among real MX records (RFC 7505 forbids it): the others are used, the "." is logged.
	world_zone 'mixed.test MX 0 .' 'mixed.test MX 10 mx2.example.test'
	run -0 --separate-stderr in_world mx-lookup mixed.test
	assert_output '10 mx2.example.test 127.0.0.3'
	assert_equal "$stderr" 'mx-lookup: mixed.test: MX 0 . ignored (null): a null MX among other MX records'
}

@test "mx-lookup: NXDOMAIN: exit 100 with one line" {
	run -100 --separate-stderr in_world mx-lookup nosuch.test
	assert_output ''
	assert_equal "$stderr" 'mx-lookup: fatal: nosuch.test: no such domain (NXDOMAIN)'
	assert_log '127\.0\.0\.1 nosuch\.test MX nxdomain' "$WORLD_DNS_LOG"
}

@test "mx-lookup: SERVFAIL or REFUSED: exit 111 with one line" {
	world_zone 'broken.test SERVFAIL' 'refused.test REFUSED'
	run -111 --separate-stderr in_world mx-lookup broken.test
	assert_output ''
	assert_equal "$stderr" 'mx-lookup: fatal: broken.test MX: the name server failed (SERVFAIL) or did not answer'
	assert_log '127\.0\.0\.1 broken\.test MX servfail' "$WORLD_DNS_LOG"
	run -111 --separate-stderr in_world mx-lookup refused.test
	assert_output ''
	assert_one_stderr_line mx-lookup
	assert_regex "$stderr" '^mx-lookup: fatal: refused\.test MX: '
}

@test "mx-lookup: a name server that never answers: exit 111 within the resolver timeout" {
	world_zone '* NOANSWER'
	world_resolv_conf 'nameserver 127.0.0.53' 'options timeout:1 attempts:1'
	local t0 t1
	t0=$(date +%s%N)
	run -111 --separate-stderr in_world mx-lookup example.test
	t1=$(date +%s%N)
	assert_output ''
	assert_equal "$stderr" 'mx-lookup: fatal: example.test MX: the name server failed (SERVFAIL) or did not answer'
	# One query (attempts:1), and done after its 1 s (not the 4 s of timeout:2 attempts:2).
	assert_equal "$(grep -c 'example.test MX noanswer' "$WORLD_DNS_LOG")" 1
	[ $(((t1 - t0) / 1000000)) -lt 3500 ] || fail "took $(((t1 - t0) / 1000000)) ms"
}

@test "mx-lookup: no name server listening: exit 111" {
	world_resolv_conf 'nameserver 127.0.0.54' 'options timeout:1 attempts:1'
	run -111 --separate-stderr in_world mx-lookup example.test
	assert_output ''
	assert_equal "$stderr" 'mx-lookup: fatal: example.test MX: no name server answers (connection refused)'
}

@test "mx-lookup: MX hosts without an address are skipped; none left: exit 111" {
	world_zone 'partial.test MX 10 gone.partial.test' 'partial.test MX 20 noaddr.partial.test' \
		'partial.test MX 30 mx2.example.test' 'noaddr.partial.test TXT "no address here"' \
		'none.test MX 10 gone.none.test' 'none.test MX 20 failing.none.test' \
		'failing.none.test SERVFAIL'
	run -0 --separate-stderr in_world mx-lookup partial.test
	assert_output '30 mx2.example.test 127.0.0.3'
	assert_equal "$stderr" "$(printf '%s\n' \
		'mx-lookup: partial.test: MX 10 gone.partial.test ignored (noaddress): no AAAA or A record' \
		'mx-lookup: partial.test: MX 20 noaddr.partial.test ignored (noaddress): no AAAA or A record')"
	run -111 --separate-stderr in_world mx-lookup none.test
	assert_output ''
	assert_equal "$stderr" 'mx-lookup: fatal: none.test: no MX host has a usable address (gone.none.test: no AAAA or A record; failing.none.test AAAA: the name server failed (SERVFAIL) or did not answer)'
}

@test "mx-lookup -s ADDRESS asks that name server, IPv4 or IPv6, not resolv.conf's" {
	# resolv.conf's server does not exist: only -s can answer.
	world_resolv_conf 'nameserver 127.0.0.54' 'options timeout:1 attempts:1'
	run -0 --separate-stderr in_world mx-lookup -s 127.0.0.53 example.test
	assert_line --index 0 '10 mx1.example.test 2001:db8::2'
	assert_equal "${#lines[@]}" 5
	run -0 --separate-stderr in_world mx-lookup -4 -s ::1 example.test
	assert_line --index 0 '10 mx1.example.test 127.0.0.2'
	assert_equal "${#lines[@]}" 4
	assert_log '::1 example\.test MX answer 3' "$WORLD_DNS_LOG"
	# resolv.conf listing IPv6 servers (freed by res_nclose) replaced by -s, under ASan too.
	world_resolv_conf 'nameserver ::2' 'nameserver 127.0.0.54' 'nameserver ::3' 'options timeout:1 attempts:1'
	run -0 --separate-stderr in_world mx-lookup -s ::1 example.test
	assert_equal "${#lines[@]}" 5
	# Not a numeric address: a usage error, nothing asked.
	run -100 --separate-stderr in_world mx-lookup -s ns.example.test example.test
	assert_output ''
	assert_equal "$stderr" 'mx-lookup: fatal: -s ns.example.test: not a numeric IPv4 or IPv6 address'
}

@test "mx-lookup: a domain that is an address literal is that address, without DNS" {
	run -0 --separate-stderr in_world mx-lookup '[127.0.0.9]'
	assert_output '0 [127.0.0.9] 127.0.0.9'
	run -0 --separate-stderr in_world mx-lookup '[IPv6:2001:DB8::1]'
	assert_output '0 [IPv6:2001:db8::1] 2001:db8::1'
	run -0 --separate-stderr in_world mx-lookup '[ipv6:::1]'
	assert_output '0 [IPv6:::1] ::1'
	assert_equal "$(cat "$WORLD_DNS_LOG")" ''
	run -111 --separate-stderr in_world mx-lookup -4 '[IPv6:2001:db8::1]'
	assert_equal "$stderr" 'mx-lookup: fatal: [IPv6:2001:db8::1]: an IPv6 address, and only IPv4 was asked for'
	run -100 --separate-stderr in_world mx-lookup '[300.1.2.3]'
	assert_equal "$stderr" 'mx-lookup: fatal: [300.1.2.3]: not an address literal'
	run -100 --separate-stderr in_world mx-lookup '[2001:db8::1]'
	assert_equal "$stderr" 'mx-lookup: fatal: [2001:db8::1]: not an address literal'
}

@test "mx-lookup: an MX that is an address literal is ignored with a log line" {
	world_zone 'lit.test MX 10 192.0.2.1' 'lit.test MX 20 [192.0.2.2]' 'lit.test MX 25 2001:db8::1' \
		'lit.test MX 30 mx2.example.test' '192.0.2.1 A 192.0.2.1' \
		'onlylit.test MX 10 192.0.2.1'
	run -0 --separate-stderr in_world mx-lookup lit.test
	assert_output '30 mx2.example.test 127.0.0.3'
	assert_equal "$stderr" "$(printf '%s\n' \
		'mx-lookup: lit.test: MX 10 192.0.2.1 ignored (literal): an address literal, not a host name' \
		'mx-lookup: lit.test: MX 20 [192.0.2.2] ignored (literal): an address literal, not a host name' \
		'mx-lookup: lit.test: MX 25 2001:db8::1 ignored (literal): an address literal, not a host name')"
	# Never looked up as a name.
	refute_log '.* 192\.0\.2\.1 (A|AAAA) .*' "$WORLD_DNS_LOG"
	run -111 --separate-stderr in_world mx-lookup onlylit.test
	assert_output ''
	assert_equal "$stderr" 'mx-lookup: fatal: onlylit.test: no MX host has a usable address (192.0.2.1: an address literal)'
}

@test "mx-lookup: malformed answers are refused by the record reader, exit 111" {
	# An MX whose rdata is shorter than a preference and a name; a name running past the rdata;
	# an A record of 5 bytes.
	world_zone 'short.test RAW MX 000a' \
		'past.test RAW MX 000a036d7831' \
		'extra.test RAW MX 000a00ff' \
		'bada.test MX 10 host.bada.test' 'host.bada.test RAW A 7f00000201'
	local d
	for d in short.test past.test extra.test; do
		run -111 --separate-stderr in_world mx-lookup "$d"
		assert_output ''
		assert_equal "$stderr" "mx-lookup: fatal: $d MX: malformed record in the answer"
	done
	run -111 --separate-stderr in_world mx-lookup bada.test
	assert_equal "$stderr" 'mx-lookup: fatal: bada.test: no MX host has a usable address (host.bada.test A: malformed record in the answer)'
}

@test "mx-lookup: usage: exit 100 with one line" {
	local args
	for args in '' 'a.test b.test' '-x a.test' '-s' '-4 -q a.test'; do
		# shellcheck disable=SC2086
		run -100 --separate-stderr in_world mx-lookup $args
		assert_output ''
		assert_equal "$stderr" 'mx-lookup: usage: mx-lookup [-4|-6] [-s ADDRESS] DOMAIN'
	done
	run -100 --separate-stderr in_world mx-lookup 'no spaces.test'
	assert_equal "$stderr" 'mx-lookup: fatal: no spaces.test: not a valid domain name'
	assert_equal "$(cat "$WORLD_DNS_LOG")" ''
}

@test "mx-lookup: many MX hosts: addresses looked up for 10 hosts at most, 10 addresses at most" {
	local i
	for i in $(seq 10 10 200); do
		world_zone "many.test MX $i h$i.many.test" "h$i.many.test A 127.0.1.$((i / 10))"
	done
	run -0 --separate-stderr in_world mx-lookup -4 many.test
	assert_equal "${#lines[@]}" 10
	assert_line -n 0 '10 h10.many.test 127.0.1.1'
	assert_line -n 9 '100 h100.many.test 127.0.1.10'
	! grep -q 'h110\.many\.test' "$WORLD_DNS_LOG" || fail "h110 was looked up: $(cat "$WORLD_DNS_LOG")"
	# Hosts without addresses count too: none after the tenth is asked about.
	: >"$WORLD_DNS_LOG"
	for i in $(seq 10 10 200); do world_zone "bare.test MX $i b$i.many.test"; done
	world_zone 'bare.test MX 300 ok.many.test' 'ok.many.test A 127.0.4.1'
	run -111 --separate-stderr in_world mx-lookup -4 bare.test
	! grep -q 'b110\.many\.test\|ok\.many\.test' "$WORLD_DNS_LOG" ||
		fail "a host past the tenth was looked up: $(cat "$WORLD_DNS_LOG")"
}
