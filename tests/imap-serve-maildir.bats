#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# imap-serve's storage shares a Maildir with Dovecot both ways: what doveadm (run on a throwaway
# config, no daemon) wrote, imap-serve shows with every UID, UIDVALIDITY, flag, keyword, folder
# and subscription; what imap-serve changed, doveadm reads back the same; UIDs survive a restart,
# a message put in new/ by hand gets the next UID, and UIDVALIDITY changes only when
# dovecot-uidlist is lost. imap-serve runs by hand (-A, PREAUTH) in the Maildir, driven by
# tests/lib/imap_maildir.py.

load lib/common

setup() {
	make_private_dir
	MD=$PRIVATE_DIR/mail/alice
	DV=$PRIVATE_DIR/dovecot
	mkdir -p "$MD" "$DV"
	cat >"$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = /dev/stderr
mail_location = maildir:$MD
EOF
	export POSTROOM_BIN=$BIN
	for i in 1 2 3; do
		make_message "$BATS_TEST_TMPDIR/m$i" "maildir-$i" $((i * 200))
	done
}

# dove COMMAND...: doveadm as nobody, who is given the Maildir first (Dovecot opens no mail as
# root, and imap-serve, run here as root, leaves files only root could read).
dove() {
	chown -R "$NOBODY_UID:$NOBODY_GID" "$PRIVATE_DIR/mail" "$DV"
	chmod -R a+rX "$DV"
	as_nobody env USER=nobody HOME="$DV" doveadm -c "$DV/dovecot.conf" "$@"
}

# imap ARGS...: tests/lib/imap_maildir.py on $MD; imap-serve's log lines go to imap.log.
imap() {
	PYTHONPATH=$TESTLIB "$PYTHON" "$TESTLIB/imap_maildir.py" "$MD" "$@" \
		2>>"$BATS_TEST_TMPDIR/imap.log"
}

# dove_dump FOLDER...: what doveadm says of each folder (doveadm's UTF-8 names), in the form
# of imap_maildir.py dump. The fetch comes first: it syncs Dovecot's index with the Maildir,
# which a bare status does not (its index may still hold the UIDVALIDITY of a lost uidlist).
dove_dump() {
	local f fetched
	for f in "$@"; do
		fetched=$(dove -f flow fetch 'uid flags' mailbox "$f" all)
		dove -f flow mailbox status 'uidvalidity uidnext' "$f" |
			PYTHONPATH=$TESTLIB "$PYTHON" "$TESTLIB/imap_maildir.py" - dovecot-status
		PYTHONPATH=$TESTLIB "$PYTHON" "$TESTLIB/imap_maildir.py" - dovecot-fetch "$f" \
			<<<"$fetched"
	done
}

# dove_fill: a Maildir as Dovecot writes it: three messages in INBOX with flags and keywords,
# one expunged (a hole in the UIDs), folders (one a child, one with a non-ASCII name, one
# holding a message) and subscriptions (one to a name that has no folder).
dove_fill() {
	local i
	for i in 1 2 3 4; do dove save -m INBOX <"$BATS_TEST_TMPDIR/m$(((i - 1) % 3 + 1))"; done
	dove mailbox create Lists Lists.Debian Entwürfe Archive
	dove save -m Lists.Debian <"$BATS_TEST_TMPDIR/m2"
	dove flags add '\Seen $Forwarded' mailbox INBOX uid 1
	dove flags add '\Flagged \Answered Work' mailbox INBOX uid 2
	dove flags add '\Deleted' mailbox INBOX uid 3
	dove expunge mailbox INBOX uid 3
	dove flags add '\Draft Later' mailbox Lists.Debian uid 1
	dove mailbox subscribe INBOX Lists.Debian Entwürfe Gone
}

@test "dovecot -> postroom: every UID, UIDVALIDITY, flag, keyword, folder and subscription" {
	dove_fill
	expected=$(dove_dump INBOX Lists.Debian Entwürfe)
	run -0 imap dump INBOX Lists.Debian 'Entw&APw-rfe'
	assert_output "$expected"
	[[ $output == *"INBOX 4 "* ]] || fail "not the UIDs doveadm gave: $output"
	run -0 imap folders
	assert_output "$(printf '%s\n' Archive Entwürfe INBOX Lists Lists.Debian)"
	run -0 imap subscribed
	assert_output "$(printf '%s\n' Entwürfe Gone INBOX Lists.Debian)"
	# and the names on disk are still Dovecot's
	[ -d "$MD/.Entw&APw-rfe" ] && [ -f "$MD/.Lists.Debian/maildirfolder" ]
	assert_equal "$(sed -n 1p "$MD/subscriptions")" "V	2"
}

@test "dovecot -> pop3-serve: UIDL is Dovecot's default pop3_uidl_format (%08Xu%08Xv) of the UIDs and UIDVALIDITY it gave" {
	dove_fill
	local uidvalidity expected
	uidvalidity=$(dove -f flow mailbox status uidvalidity INBOX | sed 's/.*uidvalidity=//')
	# Dovecot's own numbering of the messages it wrote (3 was expunged: UIDs 1, 2, 4)...
	expected=$(dove -f flow fetch uid mailbox INBOX all | sed 's/^uid=//' |
		awk -v v="$uidvalidity" '{ printf "%d %08X%08X\n", NR, $1, v }')
	assert_equal "$(wc -l <<<"$expected")" 3
	# ...is what a POP3 client that collected from Dovecot knows; pop3-serve must say the same.
	run -0 bash -c 'cd "$1" && printf "UIDL\r\nQUIT\r\n" | MAILDIR=$1 pop3-serve -A 2>/dev/null |
		tr -d "\r" | sed -n "/^[0-9]/p"' - "$MD"
	assert_output "$expected"
}

@test "postroom -> dovecot: APPEND, STORE, EXPUNGE, CREATE, SUBSCRIBE, RENAME and COPY read back by doveadm" {
	dove_fill
	uidvalidity=$(dove -f flow mailbox status uidvalidity INBOX)
	lists_uv=$(dove -f flow mailbox status uidvalidity Lists.Debian)
	run -0 imap run <<EOF
SELECT INBOX
UID STORE 1 +FLAGS (\\Answered NewWord)
UID STORE 2 -FLAGS (Work \\Flagged)
UID STORE 4 +FLAGS (\\Deleted)
EXPUNGE
APPEND INBOX (\\Seen \$Label1 Work) @$BATS_TEST_TMPDIR/m3
CREATE Projects.2024
SUBSCRIBE Projects.2024
UID COPY 1 Projects.2024
RENAME Lists Mailing
CLOSE
EOF
	refute_output --partial " NO "
	refute_output --partial " BAD "
	run -0 dove_dump INBOX Projects.2024 Mailing.Debian
	assert_output "$(printf '%s\n' "INBOX uidvalidity=${uidvalidity##*=} uidnext=6" \
		'INBOX 1 $Forwarded NewWord \Answered \Seen' 'INBOX 2 \Answered' \
		'INBOX 5 $Label1 Work \Seen' \
		"$(grep '^Projects.2024 uidvalidity=[0-9]* uidnext=2$' <<<"$output")" \
		'Projects.2024 1 $Forwarded NewWord \Answered \Seen' \
		"Mailing.Debian uidvalidity=${lists_uv##*=} uidnext=2" \
		'Mailing.Debian 1 Later \Draft')"
	run -0 dove mailbox list
	# Projects is a name with children, not a folder, as Dovecot's own CREATE leaves it
	assert_equal "$(sort <<<"$output")" "$(printf '%s\n' Archive Entwürfe INBOX Mailing \
		Mailing.Debian Projects Projects.2024 | sort)"
	[ ! -e "$MD/.Projects" ] && [ ! -e "$MD/.Lists" ] && [ -f "$MD/.Projects.2024/maildirfolder" ]
	dove mailbox list -s | grep -qx Projects.2024 || fail "SUBSCRIBE not seen by Dovecot"
	# and both sides still agree on every folder
	assert_equal "$(imap dump INBOX Projects.2024 Mailing.Debian)" \
		"$(dove_dump INBOX Projects.2024 Mailing.Debian)"
}

@test "UIDs survive a restart; a message put in new/ by hand gets the next UID" {
	mkdir -p "$MD/cur" "$MD/new" "$MD/tmp"
	cp "$BATS_TEST_TMPDIR/m1" "$MD/new/1700000002.M2P1.host"
	cp "$BATS_TEST_TMPDIR/m2" "$MD/cur/1700000001.M9P1.host:2,S"
	cp "$BATS_TEST_TMPDIR/m3" "$MD/cur/1700000001.M10P1.host:2,"
	run -0 imap dump INBOX
	first=$output
	# Dovecot's order: by the seconds, then the microseconds, in the file names
	assert_equal "$(sed 1d <<<"$first")" "$(printf '%s\n' 'INBOX 1 \Seen' 'INBOX 2 ' 'INBOX 3 ')"
	run -0 imap dump INBOX
	assert_output "$first"
	cp "$BATS_TEST_TMPDIR/m1" "$MD/new/1600000000.M1P1.host"
	run -0 imap dump INBOX
	assert_line --index 0 "$(sed -n 1p <<<"$first" | sed 's/uidnext=4/uidnext=5/')"
	assert_line --index 4 'INBOX 4 '
	# Dovecot agrees, and its next message gets UID 5
	assert_equal "$(dove_dump INBOX)" "$output"
	dove save -m INBOX <"$BATS_TEST_TMPDIR/m2"
	run -0 imap dump INBOX
	assert_line --index 5 'INBOX 5 '
}

@test "UIDVALIDITY changes only when dovecot-uidlist is lost; a garbled line costs nothing else" {
	dove_fill
	run -0 imap dump INBOX
	before=$output
	v=$(sed -n '1s/.*uidvalidity=\([0-9]*\).*/\1/p' <<<"$before")
	# a garbage line, a line out of order and a torn last line: dropped, the rest kept
	printf 'garbage\n1 :nonexistent\n77 W1 :torn' >>"$MD/dovecot-uidlist"
	run -0 imap dump INBOX
	assert_output "$before"
	assert_equal "$(dove_dump INBOX)" "$before"
	# an unreadable header: the list is lost, the messages are numbered afresh
	printf 'not a uidlist\n' >"$MD/dovecot-uidlist"
	run -0 imap dump INBOX
	w=$(sed -n '1s/.*uidvalidity=\([0-9]*\).*/\1/p' <<<"$output")
	[ "$w" -gt 0 ] && [ "$w" != "$v" ] || fail "UIDVALIDITY $v became $w"
	assert_line --index 1 --regexp '^INBOX 1 '
	rm "$MD/dovecot-uidlist"
	run -0 imap dump INBOX
	x=$(sed -n '1s/.*uidvalidity=\([0-9]*\).*/\1/p' <<<"$output")
	[ "$x" -gt "$w" ] || fail "UIDVALIDITY $w became $x"
	# what Dovecot reads is what imap-serve shows
	assert_equal "$(dove_dump INBOX)" "$output"
}

@test "garbage in dovecot-keywords, subscriptions and postroom-cache loses nothing but itself" {
	dove_fill
	run -0 imap dump INBOX
	before=$output
	head -c 3000 /dev/urandom >"$MD/postroom-cache"
	printf '99 Bad\nx y\n\0\0\0' >>"$MD/dovecot-keywords"
	printf '\0\0\t\t\n..\n' >>"$MD/subscriptions"
	run -0 imap dump INBOX
	assert_output "$before"
	run -0 imap subscribed
	assert_output "$(printf '%s\n' Entwürfe Gone INBOX Lists.Debian)"
	rm "$MD/postroom-cache"
	run -0 imap dump INBOX
	assert_output "$before"
}
