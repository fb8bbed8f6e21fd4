#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# maildir-deliver MAILDIR: the delivered file's framing and name, Maildir creation, parallel
# deliveries, Maildir++ quota, loop detection, and its exit codes.

load lib/common

setup() {
	export SENDER=sender@remote.test
	export RECIPIENT=alice@example.test
	unset QUOTA OVERQUOTA
	MD=$BATS_TEST_TMPDIR/mail/example.test/alice
	MSG=$BATS_TEST_TMPDIR/message
	make_message "$MSG" md-1
}

# sum_maildirsize MAILDIR: "<bytes> <count>" summed over the lines after the first.
sum_maildirsize() {
	awk 'NR > 1 { b += $1; c += $2 } END { printf "%d %d\n", b, c }' "$1/maildirsize"
}

# maildir_usage MAILDIR: "<bytes> <count>" of the files in new/ and cur/.
maildir_usage() {
	local b=0 c=0 f
	for f in "$1"/new/* "$1"/cur/*; do
		[ -f "$f" ] || continue
		b=$((b + $(stat -c %s "$f")))
		c=$((c + 1))
	done
	echo "$b $c"
}

@test "the delivered file is Return-Path, Delivered-To, then the message byte for byte" {
	run --separate-stderr -0 maildir-deliver "$MD" <"$MSG"
	[ -z "$stderr" ] || fail "stderr: $stderr"
	assert_count 1 msg_count "$MD"
	assert_delivered "$(maildir_files "$MD")" sender@remote.test alice@example.test "$MSG"
	assert_count 0 file_count "$MD/tmp"
}

@test "the file name is <sec>.M<usec>P<pid>Q<n>.<host>,S=<size of the file>" {
	run -0 maildir-deliver "$MD" <"$MSG"
	f=$(maildir_files "$MD")
	name=${f##*/}
	[[ $name =~ ^([0-9]+)\.M[0-9]+P[0-9]+Q[0-9]+\.[^/]+,S=([0-9]+)$ ]] || fail "bad name: $name"
	assert_equal "${BASH_REMATCH[2]}" "$(stat -c %s "$f")"
	now=$(date +%s)
	[ $((now - BASH_REMATCH[1])) -le 60 ] || fail "time in name ${BASH_REMATCH[1]}, now $now"
}

@test "binary bytes, CRs and a missing final newline are kept; an empty message works" {
	printf 'Subject: x\n\n\001\377\r\nno newline' >"$BATS_TEST_TMPDIR/bin"
	run -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/bin"
	assert_delivered "$(maildir_files "$MD")" sender@remote.test alice@example.test "$BATS_TEST_TMPDIR/bin"
	rm -f "$MD"/new/*
	: >"$BATS_TEST_TMPDIR/empty"
	run -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/empty"
	assert_delivered "$(maildir_files "$MD")" sender@remote.test alice@example.test "$BATS_TEST_TMPDIR/empty"
}

@test "the null sender gives Return-Path: <>" {
	SENDER= run -0 maildir-deliver "$MD" <"$MSG"
	assert_delivered "$(maildir_files "$MD")" "" alice@example.test "$MSG"
}

@test "a missing Maildir and its parents are created with tmp/ new/ cur/, mode 0700" {
	[ ! -e "$BATS_TEST_TMPDIR/mail" ]
	run -0 maildir-deliver "$MD" <"$MSG"
	for d in "$MD" "$MD/tmp" "$MD/new" "$MD/cur" "$BATS_TEST_TMPDIR/mail/example.test"; do
		[ -d "$d" ] || fail "$d not created"
		assert_equal "$d $(stat -c %a "$d")" "$d 700"
	done
	assert_count 1 msg_count "$MD"
}

@test "run as root, what a delivery creates belongs to the owner of where it creates it" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	mkdir -p "$BATS_TEST_TMPDIR/mail"
	chown nobody:nogroup "$BATS_TEST_TMPDIR/mail"
	run -0 maildir-deliver "$MD" <"$MSG"
	run -0 maildir-deliver "$BATS_TEST_TMPDIR/mail/example.test/alice/.Lists" <"$MSG"
	# Every directory made (the domain, the Maildir, its folder) and every file delivered
	# (and the folder's maildirfolder) are nobody's, as if nobody had delivered them.
	run find "$BATS_TEST_TMPDIR/mail" ! -user nobody
	assert_output ''
	assert_count 2 sh -c "find '$BATS_TEST_TMPDIR/mail' -type f -path '*/new/*' | wc -l"
	[ -f "$MD/.Lists/maildirfolder" ]
	# A store that root owns stays root's.
	run -0 maildir-deliver "$BATS_TEST_TMPDIR/rootmail/bob" <"$MSG"
	run find "$BATS_TEST_TMPDIR/rootmail" ! -user root
	assert_output ''
}

@test "an existing Maildir is delivered into as it is" {
	mkdir -p "$MD/tmp" "$MD/new" "$MD/cur"
	echo old >"$MD/cur/1.M1P1Q1.host,S=4:2,S"
	run -0 maildir-deliver "$MD" <"$MSG"
	assert_count 1 msg_count "$MD"
	assert_count 1 file_count "$MD/cur"
}

@test "100 parallel deliveries give 100 distinct, whole files in new/ and an empty tmp/" {
	origs=$BATS_TEST_TMPDIR/origs
	make_messages "$origs" 100 300
	mkdir -p "$MD"
	pids=()
	for i in $(seq 1 100); do
		maildir-deliver "$MD" <"$origs/$i" 2>>"$BATS_TEST_TMPDIR/errors" 3>&- &
		pids+=($!)
		track_pid $!
	done
	bad=0
	for p in "${pids[@]}"; do
		wait "$p" || bad=$((bad + 1))
	done
	[ "$bad" -eq 0 ] || fail "$bad deliveries failed: $(head -5 "$BATS_TEST_TMPDIR/errors")"
	assert_count 100 msg_count "$MD"
	assert_count 0 file_count "$MD/tmp"
	assert_maildirs "messages=100 distinct=100 missing=0 duplicated=0 bad=0 unknown=0" \
		"$origs" sender@remote.test "$MD"
}

@test "over quota: QUOTA=2000 and a 5000-byte message -> 111, nothing delivered" {
	make_message "$BATS_TEST_TMPDIR/big" big 5000
	QUOTA=2000 run --separate-stderr -111 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/big"
	assert_one_stderr_line maildir-deliver
	assert_count 0 msg_count "$MD"
	assert_count 0 file_count "$MD/tmp"
}

@test "over quota with OVERQUOTA=bounce -> 100" {
	make_message "$BATS_TEST_TMPDIR/big" big 5000
	QUOTA=2000 OVERQUOTA=bounce run --separate-stderr -100 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/big"
	assert_one_stderr_line maildir-deliver
	assert_count 0 msg_count "$MD"
}

@test "OVERQUOTA=defer is the default: over quota -> 111" {
	make_message "$BATS_TEST_TMPDIR/big" big 5000
	QUOTA=2000 OVERQUOTA=defer run --separate-stderr -111 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/big"
	assert_count 0 msg_count "$MD"
}

@test "-q BYTES sets the quota and overrides QUOTA" {
	make_message "$BATS_TEST_TMPDIR/big" big 5000
	run --separate-stderr -111 maildir-deliver -q 2000 "$MD" <"$BATS_TEST_TMPDIR/big"
	QUOTA=100000 run --separate-stderr -111 maildir-deliver -q 2000 "$MD" <"$BATS_TEST_TMPDIR/big"
	QUOTA=2000 run --separate-stderr -0 maildir-deliver -q 100000 "$MD" <"$BATS_TEST_TMPDIR/big"
	assert_count 1 msg_count "$MD"
}

@test "quota usage accumulates in maildirsize: the third 800-byte message to a 2000-byte quota -> 111" {
	make_message "$BATS_TEST_TMPDIR/m800" m800 600
	size=$(stat -c %s "$BATS_TEST_TMPDIR/m800")
	[ "$size" -gt 700 ] && [ "$size" -lt 900 ] || fail "fixture size $size"
	QUOTA=2000 run -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/m800"
	QUOTA=2000 run -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/m800"
	QUOTA=2000 run --separate-stderr -111 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/m800"
	assert_count 2 msg_count "$MD"
	[ -f "$MD/maildirsize" ] || fail "no maildirsize"
	assert_equal "$(head -n 1 "$MD/maildirsize")" 2000S
	assert_equal "$(sum_maildirsize "$MD")" "$(maildir_usage "$MD")"
}

@test "a missing maildirsize is computed from new/, cur/ and .Folder/ and written" {
	mkdir -p "$MD/tmp" "$MD/new" "$MD/cur" "$MD/.Sent/tmp" "$MD/.Sent/new" "$MD/.Sent/cur"
	head -c 1500 /dev/zero | tr '\0' x >"$MD/.Sent/cur/1795000000.M1P1Q1.host,S=1500:2,S"
	make_message "$BATS_TEST_TMPDIR/m800" m800 600
	QUOTA=2000 run --separate-stderr -111 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/m800"
	assert_count 0 msg_count "$MD"
	rm -f "$MD/maildirsize"
	# without the folder's message it fits
	rm "$MD/.Sent/cur/"*
	QUOTA=2000 run --separate-stderr -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/m800"
	assert_count 1 msg_count "$MD"
	[ -f "$MD/maildirsize" ] || fail "maildirsize not written"
	assert_equal "$(head -n 1 "$MD/maildirsize")" 2000S
	assert_equal "$(sum_maildirsize "$MD")" "$(maildir_usage "$MD")"
}

@test "no quota: a large message is delivered" {
	make_message "$BATS_TEST_TMPDIR/big" big 200000
	run -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/big"
	assert_delivered "$(maildir_files "$MD")" sender@remote.test alice@example.test "$BATS_TEST_TMPDIR/big"
}

# nobody_deliver MAILDIR < message: maildir-deliver run as nobody.
nobody_deliver() {
	as_nobody env SENDER=sender@remote.test RECIPIENT=alice@example.test \
		"$PRIVATE_DIR/bin/maildir-deliver" "$1"
}

@test "an unwritable Maildir (maildir-deliver as nobody) -> 111, one stderr line" {
	make_private_dir
	md=$PRIVATE_DIR/mail/alice
	mkdir -p "$md/tmp" "$md/new" "$md/cur"
	chmod -R 0755 "$PRIVATE_DIR/mail"
	run -100 as_nobody "$PRIVATE_DIR/bin/maildir-deliver" # reachable and runs as nobody
	run --separate-stderr -111 nobody_deliver "$md" <"$MSG"
	assert_one_stderr_line maildir-deliver
	[[ $stderr == "maildir-deliver: fatal: "* ]] || fail "not a fatal line: $stderr"
	assert_count 0 msg_count "$md"
	assert_count 0 file_count "$md/tmp"
}

@test "a Maildir that cannot be created (parent unwritable, as nobody) -> 111" {
	make_private_dir
	mkdir -m 0755 "$PRIVATE_DIR/mail"
	run --separate-stderr -111 nobody_deliver "$PRIVATE_DIR/mail/alice" <"$MSG"
	assert_one_stderr_line maildir-deliver
	[ ! -e "$PRIVATE_DIR/mail/alice" ]
}

@test "mail loop: the header already has Delivered-To: alice@example.test -> 100" {
	{ printf 'Delivered-To: alice@example.test\n'; cat "$MSG"; } >"$BATS_TEST_TMPDIR/looped"
	run --separate-stderr -100 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/looped"
	assert_one_stderr_line maildir-deliver
	[[ $stderr == *loop* ]] || fail "the error does not say loop: $stderr"
	assert_count 0 msg_count "$MD"
}

@test "mail loop detection is case-insensitive and finds the header anywhere in the header" {
	{
		printf 'Received: from somewhere\n'
		printf 'DELIVERED-TO: Alice@Example.TEST\n'
		cat "$MSG"
	} >"$BATS_TEST_TMPDIR/looped"
	run --separate-stderr -100 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/looped"
	assert_count 0 msg_count "$MD"
}

@test "no loop: Delivered-To another address, or the line only in the body -> delivered" {
	{ printf 'Delivered-To: bob@example.test\n'; cat "$MSG"; } >"$BATS_TEST_TMPDIR/other"
	run -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/other"
	{ cat "$MSG"; printf 'Delivered-To: alice@example.test\n'; } >"$BATS_TEST_TMPDIR/body"
	run -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/body"
	assert_count 2 msg_count "$MD"
}

@test "a delivered message delivered again to the same recipient is a loop" {
	run -0 maildir-deliver "$MD" <"$MSG"
	run --separate-stderr -100 maildir-deliver "$BATS_TEST_TMPDIR/md2" <"$(maildir_files "$MD")"
	assert_count 0 msg_count "$BATS_TEST_TMPDIR/md2"
}

@test "usage: no argument -> 100, one stderr line" {
	run --separate-stderr -100 maildir-deliver <"$MSG"
	assert_one_stderr_line maildir-deliver
}

@test "usage: two arguments -> 100" {
	run --separate-stderr -100 maildir-deliver "$MD" "$MD.2" <"$MSG"
	assert_one_stderr_line maildir-deliver
	[ ! -e "$MD" ]
}

@test "usage: an unknown option -> 100, one stderr line" {
	run --separate-stderr -100 maildir-deliver -x "$MD" <"$MSG"
	assert_one_stderr_line maildir-deliver
}

@test "SENDER unset -> 100; RECIPIENT unset -> 100; nothing delivered" {
	run --separate-stderr -100 env -u SENDER maildir-deliver "$MD" <"$MSG"
	assert_one_stderr_line maildir-deliver
	run --separate-stderr -100 env -u RECIPIENT maildir-deliver "$MD" <"$MSG"
	assert_one_stderr_line maildir-deliver
	assert_count 0 msg_count "$MD"
}

@test "an invalid quota (-q abc, QUOTA=12x) or OVERQUOTA value -> 100" {
	run --separate-stderr -100 maildir-deliver -q abc "$MD" <"$MSG"
	assert_one_stderr_line maildir-deliver
	QUOTA=12x run --separate-stderr -100 maildir-deliver "$MD" <"$MSG"
	assert_one_stderr_line maildir-deliver
	OVERQUOTA=sometimes run --separate-stderr -100 maildir-deliver "$MD" <"$MSG"
	assert_one_stderr_line maildir-deliver
	assert_count 0 msg_count "$MD"
}

# added_lines FILE: the lines delivery put in front of the message (up to Delivered-To).
added_lines() {
	sed -n '1,/^Delivered-To: /p' "$1"
}

@test "a newline or other control byte in SENDER, RECIPIENT or ORIGINAL_RECIPIENT adds no header line: it becomes _" {
	SENDER=$'evil@remote.test>\nX-Evil: 1' RECIPIENT=$'alice@example.test\r\nX-Evil: 2' \
		ORIGINAL_RECIPIENT=$'Alice@Example.TEST\nX-Evil: 3\t\001\177' \
		run --separate-stderr -0 maildir-deliver "$MD" <"$MSG"
	f=$(maildir_files "$MD")
	run -0 added_lines "$f"
	assert_output "$(printf '%s\n' 'Return-Path: <evil@remote.test>_X-Evil: 1>' \
		'X-Original-To: Alice@Example.TEST_X-Evil: 3___' \
		'Delivered-To: alice@example.test__X-Evil: 2')"
	assert_delivered "$f" 'evil@remote.test>_X-Evil: 1' 'alice@example.test__X-Evil: 2' "$MSG" \
		'Alice@Example.TEST_X-Evil: 3___'
	refute_log 'X-Evil: .*' "$f"
}

@test "the loop check compares the neutralised recipient: a second delivery of the file is a loop" {
	RECIPIENT=$'alice@example.test\nX' run -0 maildir-deliver "$MD" <"$MSG"
	RECIPIENT=$'alice@example.test\nX' run --separate-stderr -100 maildir-deliver "$MD.2" <"$(maildir_files "$MD")"
	[[ $stderr == *loop* ]] || fail "not a loop: $stderr"
}

@test "the message's own Return-Path fields (folded ones too) are removed; one Return-Path, ours, remains" {
	{
		printf 'Return-Path: <forged@evil.test>\n'
		printf 'From: Sender <sender@remote.test>\n'
		printf 'return-path :\n <folded@evil.test>\n\t(more)\n'
		printf 'Subject: rp\n'
		printf 'RETURN-PATH:<x@evil.test>\r\n'
		printf 'Return-Paths: kept, not the field\n'
		printf 'X-Note: Return-Path: kept\n'
		printf '\n'
		printf 'Return-Path: <in the body, kept>\n'
	} >"$BATS_TEST_TMPDIR/rp"
	{
		printf 'From: Sender <sender@remote.test>\n'
		printf 'Subject: rp\n'
		printf 'Return-Paths: kept, not the field\n'
		printf 'X-Note: Return-Path: kept\n'
		printf '\n'
		printf 'Return-Path: <in the body, kept>\n'
	} >"$BATS_TEST_TMPDIR/want"
	run -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/rp"
	f=$(maildir_files "$MD")
	assert_delivered "$f" sender@remote.test alice@example.test "$BATS_TEST_TMPDIR/want"
	assert_equal "$(grep -ci '^return-path *:' "$f")" 2	# ours, and the body's line
	[[ $f == *",S=$(stat -c %s "$f")" ]] || fail "S= is not the size of the file: $f"
}

@test "Return-Path removal streams: fields across the 64 KiB read boundaries, a header of 1 MB" {
	python3 - "$BATS_TEST_TMPDIR" <<'PY'
import sys
d = sys.argv[1]
rp = b"Return-Path: <old@evil.test>\n"
keep, full = [], []
# A Return-Path line starting at every offset around the first read boundary (65536).
for k in range(40):
    pad = b"X-Pad: " + b"p" * (65536 - 7 - 1 - 20 + k) + b"\n"
    keep.append(pad)
    full += [pad, rp, b"Return-Path:\n\t<folded@evil.test>\n"]
big = b"X-Big: " + b"b" * 1000000 + b"\n"
keep.append(big)
full += [big, rp]
tail = b"Subject: boundaries\n\nReturn-Path: <body>\n"
open(d + "/rp", "wb").write(b"".join(full) + tail)
open(d + "/want", "wb").write(b"".join(keep) + tail)
PY
	run -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/rp"
	assert_delivered "$(maildir_files "$MD")" sender@remote.test alice@example.test "$BATS_TEST_TMPDIR/want"
}

@test "a header without an empty line, ending in a partial field name, is kept as it is" {
	printf 'Subject: x\nReturn-Pa' >"$BATS_TEST_TMPDIR/short"
	run -0 maildir-deliver "$MD" <"$BATS_TEST_TMPDIR/short"
	assert_delivered "$(maildir_files "$MD")" sender@remote.test alice@example.test "$BATS_TEST_TMPDIR/short"
}

@test "X-Original-To: ORIGINAL_RECIPIENT as given, between Return-Path and Delivered-To; unset or empty: none" {
	RECIPIENT=x@example.test ORIGINAL_RECIPIENT=X+Tag@Example.TEST run -0 maildir-deliver "$MD" <"$MSG"
	f=$(maildir_files "$MD")
	assert_delivered "$f" sender@remote.test x@example.test "$MSG" X+Tag@Example.TEST
	run -0 added_lines "$f"
	assert_output "$(printf '%s\n' 'Return-Path: <sender@remote.test>' \
		'X-Original-To: X+Tag@Example.TEST' 'Delivered-To: x@example.test')"
	rm "$f"
	ORIGINAL_RECIPIENT= run -0 maildir-deliver "$MD" <"$MSG"
	run -0 added_lines "$(maildir_files "$MD")"
	assert_output "$(printf '%s\n' 'Return-Path: <sender@remote.test>' 'Delivered-To: alice@example.test')"
}

# queue_both MAILBOX-LINE RCPT SENDER < message: the message queued for RCPT and delivered by
# queue-run in-process and, from a copy of the queue, through LOCALDELIVERY=maildir-deliver;
# sets A and B to the two delivered files.
queue_both() {
	make_queue
	make_userdb "$1"
	run -0 inject "$3" "$2"
	cp -a "$QUEUEDIR" "$BATS_TEST_TMPDIR/queue2"
	run --separate-stderr -0 queue-run -1
	QUEUEDIR=$BATS_TEST_TMPDIR/queue2 MAILROOT=$BATS_TEST_TMPDIR/mail2 \
		LOCALDELIVERY=$(command -v maildir-deliver) run --separate-stderr -0 queue-run -1
	A=$(maildir_files "$MAILROOT/example.test/x")
	B=$(maildir_files "$BATS_TEST_TMPDIR/mail2/example.test/x")
	[ -n "$A" ] || fail "nothing delivered in-process"
	[ -n "$B" ] || fail "nothing delivered through maildir-deliver"
	cmp "$A" "$B" || fail "in-process and maildir-deliver deliveries differ"
}

@test "queue-run, in-process and via maildir-deliver: X+Tag@Example.TEST gets X-Original-To as given, the same bytes" {
	queue_both 'mailbox x@example.test {SHA512-CRYPT}$6$saltsalt$xHASH example.test/x/' \
		X+Tag@Example.TEST sender@remote.test <"$MSG"
	assert_delivered "$A" sender@remote.test x@example.test "$MSG" X+Tag@Example.TEST
}

# (queue-inject refuses control bytes in the envelope: exit 91; maildir-deliver's own test has them)
@test "queue-run, in-process and via maildir-deliver: the message's own Return-Path goes, the same bytes" {
	{ printf 'Return-Path: <forged@evil.test>\n'; cat "$MSG"; } >"$BATS_TEST_TMPDIR/rp"
	queue_both 'mailbox x@example.test {SHA512-CRYPT}$6$saltsalt$xHASH example.test/x/' \
		x@example.test sender@remote.test <"$BATS_TEST_TMPDIR/rp"
	assert_delivered "$A" sender@remote.test x@example.test "$MSG" x@example.test
}
