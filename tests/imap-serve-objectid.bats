#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# OBJECTID (RFC 8474) and PREVIEW (RFC 8970) in imap-serve, run by hand (-A, PREAUTH) in a
# Maildir: MAILBOXID on CREATE, SELECT and STATUS, the same after RENAME and a restart, and
# Dovecot's mailbox GUID (doveadm mailbox status guid); EMAILID stable, kept by COPY and MOVE
# (and by a COPY that Dovecot's own imap made), found by SEARCH EMAILID; THREADID from the
# thread's root as each message names it; PREVIEW
# of every message of tests/fixtures/mime/ the same as Dovecot's imap answers (but one), LAZY
# answered from postroom-cache only.

load lib/common
load lib/smtp
load lib/imap

CORPUS=$REPO/tests/fixtures/mime

setup() {
	make_private_dir
	MD=$PRIVATE_DIR/mail
	DV=$PRIVATE_DIR/dovecot
	mkdir -p "$MD/cur" "$MD/new" "$MD/tmp" "$DV"
	IMAP_LOG=$BATS_TEST_TMPDIR/imap.log
	cat >"$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = /dev/null
mail_location = maildir:$MD
ssl = no
EOF
}

# session: an LF heredoc of commands to imap-serve -A in $MD, replies without CR.
session() {
	imap_preauth "$MD"
}

# dove_imap: the same to Dovecot's own imap, preauthenticated as nobody on $MD.
dove_imap() {
	chown -R "$NOBODY_UID:$NOBODY_GID" "$MD" "$DV"
	crlf | as_nobody env -i USER=nobody HOME="$DV" /usr/lib/dovecot/imap -c "$DV/dovecot.conf" \
		2>/dev/null | sed 's/\r$//'
}

dove() {
	chown -R "$NOBODY_UID:$NOBODY_GID" "$MD" "$DV"
	as_nobody env -i PATH=/usr/bin:/bin USER=nobody HOME="$DV" doveadm -c "$DV/dovecot.conf" "$@"
}

# deliver N: messages 1..N into $MD/cur under Maildir names as Dovecot's would be.
deliver() {
	local i
	for ((i = 1; i <= $1; i++)); do
		make_message "$MD/cur/17000000$i.M${i}P1.host,S=100:2," "oid-$i"
	done
}

# id_of TEXT WORD: the objectid after "WORD (" in TEXT's first line that has it.
id_of() {
	sed -n "s/.*$2 (\([A-Za-z0-9_-]*\)).*/\1/p" <<<"$1" | head -1
}

@test "objectid: CAPABILITY has OBJECTID and PREVIEW" {
	run session <<<'a CAPABILITY
z LOGOUT'
	assert_success
	assert_line --regexp '^\* CAPABILITY .* OBJECTID PREVIEW( |$)'
}

@test "objectid: MAILBOXID on CREATE, SELECT and STATUS, kept by RENAME and a restart, Dovecot's mailbox GUID" {
	run session <<<'a CREATE Work
z LOGOUT'
	assert_success
	assert_line --regexp '^a OK \[MAILBOXID \([0-9a-f]{32}\)\] Create completed$'
	local id
	id=$(id_of "$output" MAILBOXID)
	# the G field of the new folder's dovecot-uidlist, which Dovecot calls the mailbox GUID
	run head -1 "$MD/.Work/dovecot-uidlist"
	assert_output --regexp " G$id\$"
	run session <<<'b STATUS Work (MESSAGES MAILBOXID)
c RENAME Work Job
d STATUS Job (MAILBOXID)
e SELECT Job
f STATUS INBOX (MAILBOXID)
z LOGOUT'
	assert_success
	assert_line "* STATUS \"Work\" (MESSAGES 0 MAILBOXID ($id))"
	assert_line "* STATUS \"Job\" (MAILBOXID ($id))"
	assert_line "* OK [MAILBOXID ($id)] Ok"
	local inbox
	inbox=$(sed -n 's/^\* STATUS "INBOX" (MAILBOXID (\([0-9a-f]*\)))$/\1/p' <<<"$output")
	[ ${#inbox} = 32 ] && [ "$inbox" != "$id" ] || fail "INBOX's MAILBOXID: '$inbox'"
	run session <<<'g EXAMINE Job
z LOGOUT'
	assert_line "* OK [MAILBOXID ($id)] Ok"
	run dove -f flow mailbox status guid '*'
	assert_success
	assert_line "Job guid=$id"
	assert_line "INBOX guid=$inbox"
}

@test "objectid: a folder Dovecot made has Dovecot's GUID as its MAILBOXID" {
	run dove mailbox create Made
	assert_success
	run dove -f flow mailbox status guid Made
	local guid=${output##*guid=}
	[ ${#guid} = 32 ] || fail "doveadm: $output"
	run session <<<'a STATUS Made (MAILBOXID)
z LOGOUT'
	assert_line "* STATUS \"Made\" (MAILBOXID ($guid))"
}

@test "objectid: EMAILID stable, distinct, kept by COPY, MOVE and RENAME; SEARCH EMAILID" {
	deliver 3
	run session <<<'a SELECT INBOX
b FETCH 1:3 (UID EMAILID THREADID)
z LOGOUT'
	assert_success
	local e1 e2 e3
	e1=$(sed -n 's/^\* 1 FETCH (UID 1 EMAILID (\([A-Za-z0-9_-]*\)) THREADID (T[0-9a-f]*))$/\1/p' <<<"$output")
	e2=$(sed -n 's/^\* 2 FETCH (UID 2 EMAILID (\([A-Za-z0-9_-]*\)) THREADID (T[0-9a-f]*))$/\1/p' <<<"$output")
	e3=$(sed -n 's/^\* 3 FETCH (UID 3 EMAILID (\([A-Za-z0-9_-]*\)) THREADID (T[0-9a-f]*))$/\1/p' <<<"$output")
	[ -n "$e1" ] && [ -n "$e2" ] && [ -n "$e3" ] || fail "no EMAILIDs: $output"
	[ "$e1" != "$e2" ] && [ "$e2" != "$e3" ] && [ "$e1" != "$e3" ] || fail "not distinct: $output"
	run session <<<"a CREATE Other
b SELECT INBOX
c FETCH 1:3 (EMAILID)
d SEARCH EMAILID $e2
e UID SEARCH EMAILID $e3
f SEARCH THREADID T1
g COPY 1 Other
h MOVE 2 Other
i SELECT Other
j FETCH 1:* (UID EMAILID)
k SEARCH EMAILID $e1
l RENAME Other Else
m SELECT Else
n FETCH 1:* (EMAILID)
o SEARCH EMAILID a.b
z LOGOUT"
	assert_success
	assert_line "* 1 FETCH (EMAILID ($e1))"
	assert_line "* 2 FETCH (EMAILID ($e2))"
	assert_line "* 3 FETCH (EMAILID ($e3))"
	assert_line "* SEARCH 2"
	assert_line "* SEARCH 3"
	assert_line "* SEARCH"
	assert_line "* 1 FETCH (UID 1 EMAILID ($e1))"
	assert_line "* 2 FETCH (UID 2 EMAILID ($e2))"
	assert_line "* SEARCH 1"
	assert_line "* 1 FETCH (EMAILID ($e1))"
	assert_line "* 2 FETCH (EMAILID ($e2))"
	assert_line --regexp '^o BAD '
	# the copy's uidlist line keeps the GUID, as Dovecot's COPY writes it
	run grep -c ' G17000000' "$MD/.Else/dovecot-uidlist"
	assert_output 2
}

@test "objectid: a message Dovecot copied has its source's EMAILID" {
	deliver 2
	run dove mailbox create Copies
	run dove_imap <<<'a SELECT INBOX
b COPY 2 Copies
z LOGOUT'
	assert_line --regexp '^b OK \[COPYUID '
	run session <<<'a SELECT INBOX
b FETCH 2 (EMAILID)
c SELECT Copies
d FETCH 1 (EMAILID)
z LOGOUT'
	assert_success
	local src
	src=$(sed -n 's/^\* 2 FETCH (EMAILID (\(.*\)))$/\1/p' <<<"$output")
	[ -n "$src" ] || fail "$output"
	assert_line "* 1 FETCH (EMAILID ($src))"
}

@test "objectid: a GUID that is an objectid is the EMAILID itself" {
	deliver 1
	local guid=0123456789abcdef0123456789abcdef
	run session <<<'a SELECT INBOX
z LOGOUT'
	sed -i "s/^1 :/1 G$guid :/" "$MD/dovecot-uidlist"
	run session <<<"a SELECT INBOX
b FETCH 1 (EMAILID)
c SEARCH EMAILID $guid
z LOGOUT"
	assert_line "* 1 FETCH (EMAILID ($guid))"
	assert_line "* SEARCH 1"
}

@test "preview: every message of the MIME corpus has Dovecot's PREVIEW (but 17-duplicate-headers)" {
	local i=0 f
	for f in "$CORPUS"/*.eml; do
		case $f in *17-duplicate-headers.eml) continue ;; esac
		i=$((i + 1))
		cp "$f" "$MD/cur/$((1700000000 + i)).M${i}P1.host:2,"
	done
	printf 'Subject: q\n\n> quoted\nplain &amp; text\n\xef\xbb\xbfafter   a  BOM\n' \
		>"$MD/cur/1800000001.M1P1.host:2,"
	printf 'Subject: q\n\n> only\n> quoted\n' >"$MD/cur/1800000002.M2P1.host:2,"
	printf 'Subject: h\nContent-Type: text/html\n\n<p>a&nbsp;b<br>c</p><style>x</style><blockquote>q</blockquote>&#233;&unknown;<!-- c -->d\n' \
		>"$MD/cur/1800000003.M3P1.host:2,"
	python3 -c "print('Subject: l\n\n' + 'é' * 150 + ' ' + 'x' * 100)" >"$MD/cur/1800000004.M4P1.host:2,"
	cp -a "$MD" "$PRIVATE_DIR/copy"
	local cmds='a SELECT INBOX
b FETCH 1:* (PREVIEW)
z LOGOUT'
	local want got
	want=$(dove_imap <<<"$cmds" | sed -n '/FETCH/,/^b OK/p' | grep -v '^b OK')
	MD=$PRIVATE_DIR/copy
	got=$(session <<<"$cmds" | sed -n '/FETCH/,/^b OK/p' | grep -v '^b OK')
	[ "$(grep -c FETCH <<<"$want")" -ge 50 ] || fail "Dovecot answered: $want"
	diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") || fail "PREVIEW differs from Dovecot's"
}

@test "preview: LAZY is NIL until a PREVIEW made it; then it comes from postroom-cache, not the file" {
	printf 'Subject: one\n\nThe first text.\n' >"$MD/cur/1700000001.M1P1.host:2,"
	printf 'Subject: two\n\n' >"$MD/cur/1700000002.M2P1.host:2,"
	run session <<<'a SELECT INBOX
b FETCH 1:2 (PREVIEW (LAZY))
c FETCH 1:2 (PREVIEW FLAGS)
d FETCH 1:2 (PREVIEW (lazy))
z LOGOUT'
	assert_success
	assert_line '* 1 FETCH (PREVIEW NIL)'
	assert_line '* 2 FETCH (PREVIEW NIL)'
	assert_line '* 1 FETCH (PREVIEW "The first text." FLAGS ())'
	assert_line '* 2 FETCH (PREVIEW "" FLAGS ())'
	assert_line '* 1 FETCH (PREVIEW "The first text.")'
	assert_line '* 2 FETCH (PREVIEW "")'
	# Another text in the same file: the next session still answers from the cache.
	printf 'Subject: one\n\nChanged on disk.\n' >"$MD/cur/1700000001.M1P1.host:2,"
	run session <<<'a EXAMINE INBOX
b FETCH 1 (PREVIEW (LAZY))
c FETCH 1 (PREVIEW)
z LOGOUT'
	assert_line '* 1 FETCH (PREVIEW "The first text.")'
	refute_line --partial 'Changed'
	run session <<<'a EXAMINE INBOX
b FETCH 1 (BODY.PEEK[TEXT])
z LOGOUT'
	assert_line 'Changed on disk.'
}

@test "preview: modifiers other than (LAZY) are BAD" {
	printf 'Subject: one\n\ntext\n' >"$MD/cur/1700000001.M1P1.host:2,"
	run session <<<'a SELECT INBOX
b FETCH 1 (PREVIEW ())
c FETCH 1 (PREVIEW (FOO))
d FETCH 1 (PREVIEW (LAZY LAZY))
e FETCH 1 (PREVIEW (LAZY) UID)
f FETCH 1 PREVIEW
g FETCH 1 (FLAGS)
z LOGOUT'
	assert_success
	assert_line --regexp '^b BAD '
	assert_line --regexp '^c BAD '
	assert_line --regexp '^d BAD '
	assert_line '* 1 FETCH (PREVIEW NIL UID 1)'
	assert_line '* 1 FETCH (PREVIEW "text")'
	assert_line '* 1 FETCH (FLAGS ())'
}

@test "objectid: THREADID is the same for the messages of a thread that name its root, other for another thread, stable, found by SEARCH THREADID" {
	local i
	for i in 1 2 3 4 5; do
		{
			printf 'From: a@example.test\nSubject: t%s\nMessage-Id: <m%s@example.test>\n' "$i" "$i"
			case $i in
			2) printf 'In-Reply-To: <m1@example.test>\nReferences: <m1@example.test>\n' ;;
			3) printf 'In-Reply-To: <m2@example.test>\nReferences: <m1@example.test> <m2@example.test>\n' ;;
			5) printf 'In-Reply-To: <m1@example.test>\n' ;;
			esac
			printf '\nbody %s\n' "$i"
		} >"$MD/new/100$i.M$i.host"
	done
	run session <<<'a SELECT INBOX
b FETCH 1:5 (THREADID)
z LOGOUT'
	assert_success
	local t1 t2 t3 t4 t5
	for i in 1 2 3 4 5; do
		eval "t$i=\$(sed -n 's/^\\* $i FETCH (THREADID (\\(T[0-9a-f]*\\)))\$/\\1/p' <<<\"\$output\")"
	done
	[ -n "$t1" ] && [ "$t1" = "$t2" ] && [ "$t1" = "$t3" ] && [ "$t1" = "$t5" ] || fail "one thread: $output"
	[ -n "$t4" ] && [ "$t4" != "$t1" ] || fail "another thread: $output"
	run session <<<"a SELECT INBOX
b SEARCH THREADID $t1
c FETCH 3 (THREADID)
z LOGOUT"
	assert_line '* SEARCH 1 2 3 5'
	assert_line "* 3 FETCH (THREADID ($t3))"
}
