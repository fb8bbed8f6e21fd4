#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# IMAP4rev2 (RFC 9051) beside IMAP4rev1: both advertised, rev1's replies until ENABLE
# IMAP4rev2, rev2's after (appendix A). Each difference of appendix E that imap-serve makes,
# with and without ENABLE, on "imap-serve -A" over its stdin/stdout, with the RFC's examples
# where they apply; a python3 imaplib session for what needs a change between two commands.

load lib/common
load lib/smtp
load lib/imap

setup() {
	make_private_dir
	[ -x "$BIN/imap-serve" ] || fail "imap-serve is not built in $BIN"
	MD=$PRIVATE_DIR/Maildir
	mkdir -p "$MD/cur" "$MD/new" "$MD/tmp"
	# A folder with a special use: the session makes none of its own (mbox_ensure_special).
	subfolder Sent
}

teardown() {
	common_teardown
}

# serve [ENABLE]: LF lines on stdin to imap-serve -A in $MD, its replies without their CR;
# with "rev2", "ENABLE IMAP4rev2" goes first.
serve() {
	(cd "$MD" && { [ "${1-}" = rev2 ] && printf 'E ENABLE IMAP4rev2\n'; cat; } | sed 's/$/\r/' |
		MAILDIR=$MD "$BIN/imap-serve" -A 2>>"$BATS_TEST_TMPDIR/imap.log" | sed 's/\r$//')
}

subfolder() {
	mkdir -p "$MD/.$1/cur" "$MD/.$1/new" "$MD/.$1/tmp"
	touch "$MD/.$1/maildirfolder"
}

# folder UID:DIR:FLAGS...: one message per argument with that UID (dovecot-uidlist written
# here), in new/ (recent) or cur/ with those Maildir flags.
folder() {
	local guid=0123456789abcdef0123456789abcdef next=1 arg uid dir flags n=0 name
	for arg; do
		IFS=: read -r uid dir flags <<<"$arg"
		n=$((n + 1))
		name=17000000$n.M${n}P1.test
		[ "$dir" = new ] || name=$name:2,$flags
		printf 'From: sender%s@example.org\nSubject: message %s\nDate: Mon, 6 Nov 2023 09:00:00 +0000\n\nbody %s\n' \
			"$n" "$n" "$n" >"$MD/$dir/$name"
		echo "$uid :17000000$n.M${n}P1.test" >>"$BATS_TEST_TMPDIR/uids"
		next=$((uid + 1))
	done
	{ echo "3 V1700000000 N$next G$guid"; cat "$BATS_TEST_TMPDIR/uids"; } >"$MD/dovecot-uidlist"
}

# The same, afresh: a session moves what is in new/ to cur/ (and makes it its recent).
refolder() {
	rm -f "$MD"/cur/* "$MD"/new/* "$BATS_TEST_TMPDIR/uids"
	folder "$@"
}

@test "IMAP4rev2 is advertised beside IMAP4rev1 before and after login; ENABLE turns it on once and CAPABILITY stays (RFC 9051 6.3.1)" {
	imap_users
	run -0 imap_session <<'EOF'
a CAPABILITY
b LOGIN alice@example.test alice-demo
t1 CAPABILITY
t2 ENABLE CONDSTORE X-GOOD-IDEA IMAP4rev2
t3 CAPABILITY
t4 ENABLE IMAP4rev2
t5 LOGOUT
EOF
	assert_line -n 0 --regexp '^\* OK \[CAPABILITY IMAP4rev1 IMAP4rev2 .*\] '
	assert_line -n 1 --regexp '^\* CAPABILITY IMAP4rev1 IMAP4rev2 '
	assert_line -n 3 --regexp '^b OK \[CAPABILITY IMAP4rev1 IMAP4rev2 .*\] Logged in$'
	assert_line -n 4 --regexp '^\* CAPABILITY IMAP4rev1 IMAP4rev2 .* CONDSTORE '
	assert_line -n 6 '* ENABLED CONDSTORE IMAP4rev2'
	assert_line -n 7 't2 OK Enabled'
	[ "${lines[8]}" = "${lines[4]}" ] || fail "CAPABILITY changed after ENABLE: ${lines[8]}"
	assert_line -n 10 '* ENABLED'
	assert_line -n 11 't4 OK Enabled'
}

@test "SELECT and EXAMINE: RECENT and [UNSEEN n] under rev1; the folder's LIST instead under rev2, OLDNAME for \"inbox\" (RFC 9051 6.3.2, 6.3.3, section 8)" {
	folder 1:cur:S 2:cur: 3:new:
	run -0 serve <<'EOF'
A142 SELECT INBOX
A143 EXAMINE Sent
EOF
	assert_line '* 3 EXISTS'
	assert_line '* 1 RECENT'
	assert_line '* OK [UNSEEN 2] First unseen'
	refute_line --partial '* LIST'
	run -0 serve rev2 <<'EOF'
A142 SELECT INBOX
A143 EXAMINE Sent
a002 select inbox
EOF
	assert_line -n 0 --regexp '^\* PREAUTH '
	assert_line -n 1 '* ENABLED IMAP4rev2'
	assert_line -n 2 'E OK Enabled'
	assert_line -n 3 '* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)'
	assert_line -n 4 '* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted'
	assert_line -n 5 '* 3 EXISTS'
	assert_line -n 6 '* LIST (\HasNoChildren) "." "INBOX"'
	assert_line -n 7 '* OK [UIDVALIDITY 1700000000] UIDs valid'
	assert_line -n 8 '* OK [UIDNEXT 4] Predicted next UID'
	assert_line -n 9 --regexp '^\* OK \[MAILBOXID \([0-9a-f]+\)\] '
	assert_line -n 10 'A142 OK [READ-WRITE] Select completed'
	assert_line -n 11 '* OK [CLOSED] Previous mailbox closed'
	assert_line '* LIST (\HasNoChildren \Sent) "." "Sent"'
	assert_line --regexp '^A143 OK \[READ-ONLY\] '
	assert_line '* LIST (\HasNoChildren) "." "INBOX" ("OLDNAME" ("inbox"))'
	assert_line --regexp '^a002 OK \[READ-WRITE\] '
	refute_line --regexp 'RECENT|UNSEEN'
}

@test "no \\Recent under rev2: FETCH FLAGS, STATUS RECENT and the search keys RECENT, NEW and OLD (RFC 9051 appendix E, 12)" {
	folder 1:cur:S 2:new: 3:new:
	run -0 serve <<'EOF'
a SELECT INBOX
b FETCH 1:* (FLAGS)
c SEARCH RECENT
d SEARCH NEW
e SEARCH OLD
f STATUS Sent (RECENT MESSAGES)
EOF
	assert_line '* 2 FETCH (FLAGS (\Recent))'
	[ "$(grep -c '^\* SEARCH 2 3$' <<<"$output")" = 2 ] || fail "RECENT and NEW: not 2 and 3"
	assert_line '* SEARCH 1'
	assert_line '* STATUS "Sent" (MESSAGES 0 RECENT 0)'
	refolder 1:cur:S 2:new: 3:new:
	run -0 serve rev2 <<'EOF'
a SELECT INBOX
b FETCH 1:* (FLAGS)
c SEARCH RECENT
d SEARCH NEW
e SEARCH OLD
f STATUS Sent (RECENT MESSAGES)
g SEARCH NOT SEEN
EOF
	assert_line '* 1 FETCH (FLAGS (\Seen))'
	assert_line '* 2 FETCH (FLAGS ())'
	assert_line '* 3 FETCH (FLAGS ())'
	assert_line --regexp '^c BAD '
	assert_line --regexp '^d BAD '
	assert_line --regexp '^e BAD '
	assert_line --regexp '^f BAD '
	assert_line '* ESEARCH (TAG "g") ALL 2:3'
	refute_line --partial 'Recent'
}

# The RFC's examples of 6.4.4 on a folder where they hold: 2, 10 and 11 flagged and not from
# Smith, UIDs 7 to 21, 15 \Deleted. A285 has UID before its set: the folder has 15 messages,
# not 5000.
@test "SEARCH answers ESEARCH under rev2, RETURN or not; SEARCH under rev1 (RFC 9051 6.4.4, 7.3.4)" {
	local args=() i
	for i in $(seq 1 15); do
		case $i in 2 | 10 | 11) args+=("$((i + 6)):cur:FT") ;; *) args+=("$((i + 6)):cur:T") ;; esac
	done
	folder "${args[@]}"
	run -0 serve <<'EOF'
a SELECT INBOX
A283 SEARCH FLAGGED
A284 SEARCH TEXT "string not in mailbox"
EOF
	assert_line '* SEARCH 2 10 11'
	assert_line '* SEARCH'
	refute_line --regexp '^\* ESEARCH'
	run -0 serve rev2 <<'EOF'
a SELECT INBOX
A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
A284 SEARCH TEXT "string not in mailbox"
A285 UID SEARCH RETURN (MIN MAX) UID 1:5000
A286 SEARCH RETURN (COUNT) DELETED
A287 SEARCH FLAGGED
A288 UID SEARCH FLAGGED
A289 SEARCH RETURN (SAVE) FLAGGED
A290 FETCH $ (UID)
A291 SEARCH CHARSET UTF-8 OR 1 3:4
EOF
	assert_line '* ESEARCH (TAG "A282") MIN 2 COUNT 3'
	assert_line '* ESEARCH (TAG "A283") ALL 2,10:11'
	assert_line '* ESEARCH (TAG "A284")'
	assert_line 'A284 OK Search completed'
	assert_line '* ESEARCH (TAG "A285") UID MIN 7 MAX 21'
	assert_line '* ESEARCH (TAG "A286") COUNT 15'
	assert_line '* ESEARCH (TAG "A287") ALL 2,10:11'
	assert_line '* ESEARCH (TAG "A288") UID ALL 8,16:17'
	# SAVE alone still asks for no reply (6.4.4); "$" holds the result
	refute_line --partial '(TAG "A289")'
	assert_line '* 10 FETCH (UID 16)'
	assert_line '* ESEARCH (TAG "A291") ALL 1,3:4'
	refute_line --regexp '^\* SEARCH'
}

@test "STATUS DELETED under rev2, in LIST RETURN (STATUS) too; not an item of rev1 (RFC 9051 6.3.11, 6.3.9.8 example 11)" {
	subfolder blurdybloop
	folder 1:cur:S 2:cur:T 3:cur:ST 4:new:
	run -0 serve <<'EOF'
a STATUS INBOX (MESSAGES DELETED)
b STATUS INBOX (MESSAGES RECENT)
EOF
	assert_line --regexp '^a BAD '
	assert_line '* STATUS "INBOX" (MESSAGES 4 RECENT 1)'
	run -0 serve rev2 <<'EOF'
A042 STATUS blurdybloop (UIDNEXT MESSAGES)
a STATUS INBOX (MESSAGES UNSEEN DELETED)
A01 LIST "" % RETURN (STATUS (MESSAGES DELETED))
EOF
	assert_line '* STATUS "blurdybloop" (MESSAGES 0 UIDNEXT 1)'
	assert_line '* STATUS "INBOX" (MESSAGES 4 UNSEEN 2 DELETED 2)'
	# each STATUS right after its LIST
	[[ $output == *$'* LIST (\\HasNoChildren) "." "INBOX"\n* STATUS "INBOX" (MESSAGES 4 DELETED 2)\n'* ]] ||
		fail "no STATUS after INBOX's LIST"
	assert_line '* STATUS "blurdybloop" (MESSAGES 0 DELETED 0)'
	assert_line 'A01 OK List completed'
}

@test "LIST under rev2: \\NonExistent \\HasChildren for a parent that is no folder, LIST \"\" \"\" in the basic form only, CHILDINFO; LSUB still answered (RFC 9051 6.3.9)" {
	subfolder Foo
	subfolder Foo.Bar
	subfolder Foo.Baz
	subfolder Moo
	subfolder music.rock
	printf 'Foo.Baz\n' >"$MD/subscriptions"
	run -0 serve <<'EOF'
a2 LIST () "" %
A101 LIST "" ""
b LIST () "" ""
EOF
	assert_line '* LIST (\Noselect \HasChildren) "." "music"'
	assert_line '* LIST (\HasChildren) "." "Foo"'
	# RFC 3501 and Dovecot answer the root to both forms
	[ "$(grep -c '^\* LIST (\\Noselect) "\." ""$' <<<"$output")" = 2 ] ||
		fail "LIST \"\" \"\" and LIST () \"\" \"\" did not both answer the root"
	run -0 serve rev2 <<'EOF'
a2 LIST () "" %
A101 LIST "" ""
b LIST () "" ""
c LIST "" ("")
C02 LIST (SUBSCRIBED) "" "*"
C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"
CA3 LIST "" "%" RETURN (CHILDREN)
d LSUB "" *
EOF
	assert_line '* LIST (\NonExistent \HasChildren) "." "music"'
	assert_line '* LIST (\HasChildren) "." "Foo"'
	assert_line '* LIST (\HasNoChildren) "." "Moo"'
	refute_line --partial '\Noselect \HasChildren'
	assert_line '* LIST (\Noselect) "." ""'
	assert_line 'b OK List completed'
	assert_line 'c OK List completed'
	[ "$(grep -c '^\* LIST (\\Noselect) "\." ""$' <<<"$output")" = 1 ] ||
		fail "LIST () \"\" \"\" or LIST \"\" (\"\") answered the root"
	assert_line '* LIST (\HasNoChildren \Subscribed) "." "Foo.Baz"'
	assert_line '* LIST (\HasChildren) "." "Foo" ("CHILDINFO" ("SUBSCRIBED"))'
	assert_line '* LSUB () "." "Foo.Baz"'
	assert_line 'd OK Lsub completed'
}

@test "FETCH under rev2: no RFC822, RFC822.HEADER or RFC822.TEXT; the UID with the FLAGS a fetch sets (RFC 9051 appendix E, 18 and 21)" {
	folder 1:cur: 2:cur: 3:cur: 4:cur:
	run -0 serve <<'EOF'
a SELECT INBOX
b FETCH 1 RFC822.HEADER
c FETCH 2 BODY[TEXT]
EOF
	assert_line --regexp '^\* 1 FETCH \(RFC822.HEADER \{[0-9]+\}$'
	assert_line '* 2 FETCH (BODY[TEXT] {8}'
	assert_line ' FLAGS (\Seen))'
	run -0 serve rev2 <<'EOF'
a SELECT INBOX
b FETCH 1 RFC822.HEADER
b2 FETCH 1 (UID RFC822)
b3 FETCH 1 RFC822.TEXT
b4 FETCH 1 (RFC822.SIZE)
c FETCH 3 BODY[TEXT]
d FETCH 4 BINARY[1]
EOF
	assert_line --regexp '^b BAD '
	assert_line --regexp '^b2 BAD '
	assert_line --regexp '^b3 BAD '
	assert_line --regexp '^\* 1 FETCH \(RFC822.SIZE [0-9]+\)$'
	assert_line '* 3 FETCH (UID 3 BODY[TEXT] {8}'
	assert_line '* 4 FETCH (UID 4 BINARY[1] {8}'
	assert_line ' FLAGS (\Seen))'
}

@test "rev2 through python3 imaplib: SELECT's replies, SEARCH's ESEARCH, and NOOP with no RECENT when a message comes" {
	folder 1:cur:S 2:new:
	run -0 imap_py - "$MD" <<'PY'
import sys
from imap_client import connect, eq, check, untagged, deliver

md = sys.argv[1]
c = connect("preauth:" + md)
caps = c.capabilities
check("IMAP4REV2" in caps and "IMAP4REV1" in caps, caps)
eq(c.enable("IMAP4rev2"), ("OK", [b"Enabled"]), "ENABLE")
eq(c.untagged_responses.pop("ENABLED", None), [b"IMAP4rev2"], "ENABLED")
typ, data = c.select("INBOX")
eq((typ, data), ("OK", [b"2"]), "SELECT")
eq(c.untagged_responses.pop("LIST", None), [b'(\\HasNoChildren) "." "INBOX"'], "SELECT's LIST")
check("RECENT" not in c.untagged_responses, c.untagged_responses)
eq(c.search(None, "ALL"), ("OK", [None]), "SEARCH has no SEARCH reply")
check(c.untagged_responses.pop("ESEARCH", None), "no ESEARCH for imaplib's SEARCH")
reply = c.lines("SEARCH ALL")
eq(untagged(reply, "ESEARCH"), ['* ESEARCH (TAG "%s") ALL 1:2' % c.tagged.split()[0]], "ESEARCH")
eq(c.lines("FETCH 2 FLAGS")[0], "* 2 FETCH (FLAGS ())", "no \\Recent")
deliver(md, b"From: a@example.org\nSubject: new\n\nhello\n")
reply = c.lines("NOOP")
eq(reply[:-1], ["* 3 EXISTS"], "NOOP after a delivery")
c.logout()

# The same without ENABLE: RFC 3501's replies.
c = connect("preauth:" + md)
c.select("INBOX")
check(c.untagged_responses.get("RECENT"), c.untagged_responses)
check("LIST" not in c.untagged_responses, c.untagged_responses)
eq(c.search(None, "ALL"), ("OK", [b"1 2 3"]), "SEARCH")
deliver(md, b"From: b@example.org\nSubject: newer\n\nhello\n")
reply = c.lines("NOOP")
eq(reply[:-1], ["* 4 EXISTS", "* 1 RECENT"], "NOOP after a delivery")
c.logout()
PY
	[ -z "$output" ] || echo "$output"
}
