#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# Maildir++ quota shared with Dovecot: what postroom writes in maildirsize is what doveadm (with
# quota=maildir, run on a throwaway config, no daemon) reads and recalculates; folders count
# against the root; dot files that are not directories are not folders; a count limit is kept
# and honoured; concurrent deliveries cannot overshoot the quota.

load lib/common

setup() {
	export SENDER=sender@remote.test
	export RECIPIENT=alice@example.test
	make_private_dir
	MD=$PRIVATE_DIR/mail/example.test/alice
	DV=$PRIVATE_DIR/dovecot
	mkdir -p "$DV"
	MSG=$BATS_TEST_TMPDIR/message
	make_message "$MSG" q-1 3000
}

# dovecot_conf [QUOTA-RULE]: a doveadm configuration for nobody's Maildir $MD with the
# Maildir++ quota backend; without a rule, Dovecot takes the limits maildirsize states.
dovecot_conf() {
	cat >"$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = /dev/stderr
mail_location = maildir:$MD
mail_plugins = quota
plugin {
  quota = maildir:User quota
${1:+  quota_rule = *:$1}
}
EOF
	chmod -R a+rX "$DV"
}

# dove COMMAND...: doveadm COMMAND as nobody, who is given the Maildir first (Dovecot refuses
# to open mail as root).
dove() {
	chown -R "$NOBODY_UID:$NOBODY_GID" "$PRIVATE_DIR/mail" "$DV"
	as_nobody env USER=nobody HOME="$DV" doveadm -c "$DV/dovecot.conf" "$@"
}

# dove_quota TYPE: "<value> <limit>" of doveadm quota get for STORAGE (kilobytes) or MESSAGE.
dove_quota() {
	dove -f tab quota get | awk -F'\t' -v t="$1" '$2 == t { print $3, $4 }'
}

# sum_maildirsize DIR: "<bytes> <count>" summed over the lines of DIR/maildirsize after the first.
sum_maildirsize() {
	awk 'NR > 1 { b += $1; c += $2 } END { printf "%d %d\n", b, c }' "$1/maildirsize"
}

# deliver_ok [ENV=V...] MAILDIR < message: maildir-deliver, which must exit 0.
deliver_ok() {
	local md=${*: -1}
	run --separate-stderr env "${@:1:$#-1}" maildir-deliver "$md"
	[ "$status" -eq 0 ] || fail "maildir-deliver $md exited $status: $stderr"
}

# kib BYTES: what doveadm shows for BYTES of storage (kilobytes, rounded up).
kib() {
	echo $((($1 + 1023) / 1024))
}

# assert_dovecot_agrees COUNT LIMIT: $MD/maildirsize adds up to COUNT messages; doveadm quota get
# shows that count, their bytes (in kilobytes) and LIMIT bytes; doveadm's recalculation finds the
# same bytes and count.
assert_dovecot_agrees() {
	local bytes count
	read -r bytes count < <(sum_maildirsize "$MD")
	assert_equal "$count" "$1"
	assert_equal "$(dove_quota MESSAGE)" "$1 -"
	assert_equal "$(dove_quota STORAGE)" "$(kib "$bytes") $(kib "$2")"
	run -0 dove quota recalc
	assert_equal "$(sum_maildirsize "$MD")" "$bytes $1"
}

@test "dovecot: a root delivery's maildirsize is what doveadm reads and what its recalc finds" {
	dovecot_conf
	for i in 1 2 3; do deliver_ok QUOTA=100000 "$MD" <"$MSG"; done
	assert_equal "$(head -n 1 "$MD/maildirsize")" 100000S
	assert_dovecot_agrees 3 100000
}

@test "dovecot: a delivery into a folder (maildirfolder) counts in the root's maildirsize, none in the folder" {
	dovecot_conf
	deliver_ok QUOTA=100000 "$MD" <"$MSG"
	run -0 dove mailbox create Lists
	[ -f "$MD/.Lists/maildirfolder" ] || fail "Dovecot made no maildirfolder"
	deliver_ok QUOTA=100000 "$MD/.Lists/" <"$MSG"
	deliver_ok QUOTA=100000 "$MD/.Lists" <"$MSG"
	[ ! -e "$MD/.Lists/maildirsize" ] || fail "a maildirsize in the folder: $(cat "$MD/.Lists/maildirsize")"
	assert_count 2 msg_count "$MD/.Lists"
	assert_dovecot_agrees 3 100000
}

@test "a folder delivery is refused when the root's messages use up the quota" {
	mkdir -p "$MD/.Lists/cur" "$MD/.Lists/new" "$MD/.Lists/tmp"
	: >"$MD/.Lists/maildirfolder"
	deliver_ok "$MD" <"$MSG"
	size=$(stat -c %s "$(maildir_files "$MD")")
	QUOTA=$((size * 3 / 2)) run --separate-stderr -111 maildir-deliver "$MD/.Lists" <"$MSG"
	assert_one_stderr_line maildir-deliver
	assert_count 0 msg_count "$MD/.Lists"
	QUOTA=$((size * 3)) run -0 maildir-deliver "$MD/.Lists" <"$MSG"
	assert_count 1 msg_count "$MD/.Lists"
	[ ! -e "$MD/.Lists/maildirsize" ]
	assert_equal "$(sum_maildirsize "$MD")" "$((size * 2)) 2"
}

@test "a missing .Folder of a Maildir is made with a maildirfolder file; a dot-named Maildir elsewhere is not" {
	deliver_ok "$MD" <"$MSG"
	deliver_ok QUOTA=100000 "$MD/.New/" <"$MSG"
	[ -f "$MD/.New/maildirfolder" ] || fail "no maildirfolder in the new folder"
	[ ! -e "$MD/.New/maildirsize" ]
	assert_equal "$(sum_maildirsize "$MD" | cut -d' ' -f2)" 2
	deliver_ok QUOTA=100000 "$PRIVATE_DIR/mail/.hidden" <"$MSG"
	[ ! -e "$PRIVATE_DIR/mail/.hidden/maildirfolder" ]
	[ -f "$PRIVATE_DIR/mail/.hidden/maildirsize" ]
}

@test "regular files named .DS_Store or .nfs* in the root are not folders: a quota delivery works" {
	mkdir -p "$MD/cur" "$MD/new" "$MD/tmp"
	echo junk >"$MD/.DS_Store"
	echo junk >"$MD/.nfs000000000012345600000001"
	QUOTA=100000 run --separate-stderr -0 maildir-deliver "$MD" <"$MSG"
	assert_count 1 msg_count "$MD"
	assert_equal "$(sum_maildirsize "$MD")" "$(stat -c %s "$(maildir_files "$MD")") 1"
}

@test "dovecot: an existing maildirsize gets its line from a delivery without a quota" {
	dovecot_conf storage=100000B
	deliver_ok "$MD" <"$MSG"
	run -0 dove quota recalc
	assert_equal "$(head -n 1 "$MD/maildirsize")" 100000S
	deliver_ok "$MD" <"$MSG"
	deliver_ok "$MD" <"$MSG"
	assert_dovecot_agrees 3 100000
	# and a Maildir without one still gets none
	deliver_ok "$BATS_TEST_TMPDIR/plain" <"$MSG"
	[ ! -e "$BATS_TEST_TMPDIR/plain/maildirsize" ]
}

@test "dovecot: a 100000S,50C header is kept, and the 51st message is refused (111; 100 with OVERQUOTA=bounce)" {
	dovecot_conf storage=100000B:messages=50
	mkdir -p "$MD/cur" "$MD/new" "$MD/tmp"
	for i in $(seq 1 49); do echo "Subject: $i" >"$MD/cur/17950000$i.M1P1Q$i.host,S=12:2,S"; done
	run -0 dove quota recalc
	assert_equal "$(head -n 1 "$MD/maildirsize")" 100000S,50C
	make_message "$MSG" small
	deliver_ok QUOTA=100000 "$MD" <"$MSG"
	assert_equal "$(head -n 1 "$MD/maildirsize")" 100000S,50C
	assert_equal "$(sum_maildirsize "$MD" | cut -d' ' -f2)" 50
	QUOTA=100000 run --separate-stderr -111 maildir-deliver "$MD" <"$MSG"
	assert_one_stderr_line maildir-deliver
	[[ $stderr == *"50 of 50 messages"* ]] || fail "the reason does not name the count: $stderr"
	QUOTA=100000 OVERQUOTA=bounce run --separate-stderr -100 maildir-deliver "$MD" <"$MSG"
	assert_count 1 msg_count "$MD"
	assert_equal "$(head -n 1 "$MD/maildirsize")" 100000S,50C
	assert_equal "$(dove_quota MESSAGE)" "50 50"
	# another byte limit rewrites the header but keeps the count limit
	QUOTA=200000 run --separate-stderr -111 maildir-deliver "$MD" <"$MSG"
	assert_equal "$(head -n 1 "$MD/maildirsize")" 200000S,50C
}

# release_together N PROGRAM...: starts N copies of PROGRAM, each reading its message ($MSG)
# from a FIFO of its own, then feeds all the FIFOs at once, so that the N deliveries race;
# waits for them and prints how many exited 0, 111 and otherwise.
release_together() {
	local n=$1 i ok=0 tempfail=0 other=0 rc
	shift
	local -a pids=() fds=()
	for ((i = 1; i <= n; i++)); do
		mkfifo "$BATS_TEST_TMPDIR/fifo$i"
		"$@" <"$BATS_TEST_TMPDIR/fifo$i" 2>>"$BATS_TEST_TMPDIR/errors" &
		pids+=($!)
		track_pid $!
	done
	for ((i = 1; i <= n; i++)); do
		exec {fd}>"$BATS_TEST_TMPDIR/fifo$i"
		fds+=("$fd")
	done
	for fd in "${fds[@]}"; do cat "$MSG" >&"$fd"; done
	for fd in "${fds[@]}"; do exec {fd}>&-; done
	for p in "${pids[@]}"; do
		rc=0
		wait "$p" || rc=$?
		case $rc in 0) ok=$((ok + 1)) ;; 111) tempfail=$((tempfail + 1)) ;; *) other=$((other + 1)) ;; esac
	done
	echo "ok=$ok tempfail=$tempfail other=$other"
}

@test "8 maildir-deliver at once against a quota of 2.5 messages: 2 accepted, 6 deferred, never past the quota" {
	make_message "$MSG" c-1
	deliver_ok "$BATS_TEST_TMPDIR/probe" <"$MSG"
	size=$(stat -c %s "$(maildir_files "$BATS_TEST_TMPDIR/probe")")
	quota=$((size * 5 / 2))
	run -0 release_together 8 env QUOTA=$quota maildir-deliver "$MD"
	assert_output "ok=2 tempfail=6 other=0"
	assert_count 2 msg_count "$MD"
	assert_equal "$(sum_maildirsize "$MD")" "$((size * 2)) 2"
}

@test "queue-run at its default concurrency: 8 messages to a quota of 2.5 messages, 2 delivered" {
	make_queue
	make_message "$MSG" c-2
	deliver_ok RECIPIENT=dan@example.test ORIGINAL_RECIPIENT=dan@example.test \
		"$BATS_TEST_TMPDIR/probe" <"$MSG"
	size=$(stat -c %s "$(maildir_files "$BATS_TEST_TMPDIR/probe")")
	make_userdb "mailbox dan@example.test {SHA512-CRYPT}\$6\$saltsalt\$danHASH example.test/dan/ $((size * 5 / 2))"
	for i in $(seq 1 8); do run -0 inject sender@remote.test dan@example.test <"$MSG"; done
	run --separate-stderr -0 queue-run -1
	assert_count 2 msg_count "$(mailbox dan)"
	assert_count 6 file_count "$QUEUEDIR/msg"
	assert_equal "$(sum_maildirsize "$(mailbox dan)")" "$((size * 2)) 2"
}
