#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# imap-serve's search family: ESEARCH (RFC 4731) and SEARCHRES (RFC 5182) with the RFCs'
# examples, WITHIN (RFC 5032), and SORT, THREAD (RFC 5256), SORT=DISPLAY (RFC 5957) and ESORT
# (RFC 5267) compared with Dovecot's answers on the fixture folder tests/fixtures/thread/
# (Dovecot's own imap binary, preauthenticated on a copy, no daemon), cold and warm; a warm
# SORT or THREAD reads no message file.

load lib/common

setup() {
	make_private_dir
	[ -x "$BIN/imap-serve" ] || fail "imap-serve is not built in $BIN"
	MD=$PRIVATE_DIR/Maildir
	mkdir -p "$MD/cur" "$MD/new" "$MD/tmp"
}

# serve: LF lines on stdin to imap-serve -A in $MD, its replies without their CR.
serve() {
	(cd "$MD" && sed 's/$/\r/' | MAILDIR=$MD "$BIN/imap-serve" -A 2>>"$BATS_TEST_TMPDIR/imap.log" |
		sed 's/\r$//')
}

# folder UID:FROM:FLAGS...: one message per argument, with that UID (dovecot-uidlist written
# here), sender and Maildir flags.
folder() {
	local guid=0123456789abcdef0123456789abcdef next=1 arg uid from flags n=0
	for arg; do
		IFS=: read -r uid from flags <<<"$arg"
		n=$((n + 1))
		printf 'From: %s\nTo: x@example.org\nSubject: message %s\nDate: Mon, 6 Nov 2023 09:00:00 +0000\n\nbody %s\n' \
			"$from" "$n" "$n" >"$MD/cur/17000000$n.M${n}P1.test:2,$flags"
		echo "$uid :17000000$n.M${n}P1.test" >>"$BATS_TEST_TMPDIR/uids"
		next=$((uid + 1))
	done
	{ echo "3 V1700000000 N$next G$guid"; cat "$BATS_TEST_TMPDIR/uids"; } >"$MD/dovecot-uidlist"
}

# The RFC 4731 examples' folder: 15 messages, UIDs 7 to 3800, 2, 10 and 11 flagged and not
# from Smith, 5 flagged and from Smith.
rfc4731_folder() {
	folder 7:alice@example.org: 8:bob@example.org:F 9:carol@example.org: \
		10:dave@example.org: 11:"Smith <smith@example.org>":F 12:erin@example.org: \
		13:frank@example.org: 14:grace@example.org: 15:heidi@example.org: \
		16:ivan@example.org:F 17:judy@example.org:F 18:x@example.org: \
		19:y@example.org: 20:z@example.org: 3800:w@example.org:
}

# A285 is the RFC's with UID before its set: this folder has 15 messages, not 5000.
@test "ESEARCH: the RFC 4731 examples" {
	rfc4731_folder
	run serve <<'EOF'
a SELECT INBOX
A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
A284 SEARCH RETURN (MIN) UNSEEN
A285 UID SEARCH RETURN (MIN MAX) UID 1:5000
A286 SEARCH RETURN (COUNT) UNDELETED
A287 UID SEARCH RETURN (ALL COUNT) FLAGGED
A288 SEARCH RETURN (MIN MAX ALL COUNT) SUBJECT nothing-matches
A289 SEARCH RETURN (FOO) ALL
A290 SEARCH RETURN ALL ALL
A291 SEARCH FLAGGED
EOF
	assert_success
	assert_line '* ESEARCH (TAG "A282") MIN 2 COUNT 3'
	assert_line '* ESEARCH (TAG "A283") ALL 2,10:11'
	assert_line '* ESEARCH (TAG "A284") MIN 1'
	assert_line '* ESEARCH (TAG "A285") UID MIN 7 MAX 3800'
	assert_line '* ESEARCH (TAG "A286") COUNT 15'
	assert_line '* ESEARCH (TAG "A287") UID ALL 8,11,16:17 COUNT 4'
	assert_line '* ESEARCH (TAG "A288") COUNT 0'
	assert_line --regexp '^A289 BAD '
	assert_line --regexp '^A290 BAD '
	# without RETURN, the answer stays RFC 3501's
	assert_line '* SEARCH 2 5 10 11'
}

@test "SEARCHRES: RETURN (SAVE) and \$ in FETCH, STORE, SEARCH, COPY, UID EXPUNGE, MOVE" {
	rfc4731_folder
	mkdir -p "$MD/.Other/cur" "$MD/.Other/new" "$MD/.Other/tmp"
	touch "$MD/.Other/maildirfolder"
	run serve <<'EOF'
a SELECT INBOX
b SEARCH RETURN (SAVE) FLAGGED
c FETCH $ (UID)
d UID SEARCH $ NOT FROM smith
e SEARCH RETURN (SAVE MIN MAX) FLAGGED
f UID SEARCH $
g SEARCH RETURN (SAVE) 1:3
h STORE $ +FLAGS (\Deleted)
i UID EXPUNGE $
j UID SEARCH $
k SEARCH RETURN (SAVE) 4
l COPY $ Other
m MOVE $ Other
n SEARCH $
o SEARCH RETURN (SAVE) FLAGGED
p SEARCH RETURN (SAVE) CHARSET KOI8-R FLAGGED
q SEARCH $
r SEARCH RETURN (SAVE) FLAGGED
s SELECT INBOX
t SEARCH $
u SEARCH RETURN (SAVE) NOSUCHKEY
EOF
	assert_success
	refute_line --regexp '^\* ESEARCH \(TAG "b"\)'
	assert_line '* 2 FETCH (UID 8)'
	assert_line '* 5 FETCH (UID 11)'
	assert_line '* 10 FETCH (UID 16)'
	assert_line '* 11 FETCH (UID 17)'
	[ "$(grep -c '^\* [0-9]* FETCH (UID [0-9]*)$' <<<"$output")" -eq 4 ] || fail "c fetched more"
	assert_line '* SEARCH 8 16 17'
	# SAVE with MIN and MAX keeps those two only (RFC 5182 section 2.4)
	assert_line '* ESEARCH (TAG "e") MIN 2 MAX 11'
	assert_line '* SEARCH 8 17'
	# messages expunged leave $
	assert_line '* 1 EXPUNGE'
	[ "$(sed -n '/^i OK/,/^j OK/p' <<<"$output" | grep -c '^\* SEARCH$')" -eq 1 ] ||
		fail "\$ still holds expunged messages"
	# after the expunge, message 4 is the one of UID 13
	assert_line --regexp '^l OK \[COPYUID [0-9]+ 13 1\] '
	assert_line --regexp '^\* OK \[COPYUID [0-9]+ 13 2\] '
	# a failed SEARCH with SAVE leaves $ empty, and so do SELECT and a bad SEARCH
	assert_line --regexp '^p NO \[BADCHARSET'
	[ "$(sed -n '/^p NO/,/^q OK/p' <<<"$output" | grep -c '^\* SEARCH$')" -eq 1 ] ||
		fail "\$ not empty after a failed SEARCH"
	[ "$(sed -n '/^s OK/,/^t OK/p' <<<"$output" | grep -c '^\* SEARCH$')" -eq 1 ] ||
		fail "\$ not empty after SELECT"
	assert_line --regexp '^u BAD '
}

@test "WITHIN: OLDER and YOUNGER on the internal date" {
	folder 1:a@example.org: 2:b@example.org: 3:c@example.org:
	local now
	now=$(date +%s)
	touch -d "@$((now - 2 * 86400))" "$MD"/cur/170000001.*
	touch -d "@$((now - 3600))" "$MD"/cur/170000002.*
	run serve <<'EOF'
a SELECT INBOX
b SEARCH OLDER 86400
c SEARCH YOUNGER 7200
d UID SEARCH RETURN (ALL) YOUNGER 172000 OLDER 60
e SEARCH OLDER 0
f SEARCH YOUNGER x
EOF
	assert_success
	assert_line '* SEARCH 1'
	assert_line '* SEARCH 2 3'
	assert_line '* ESEARCH (TAG "d") UID ALL 2'
	assert_line --regexp '^e BAD '
	assert_line --regexp '^f BAD '
}

# compare ARGS...: tests/lib/imap_thread_compare.py against Dovecot on the thread fixture.
compare() {
	[ -x /usr/lib/dovecot/imap ] || fail "Dovecot's imap is not installed (make deps)"
	local dovecot="setpriv --reuid=$NOBODY_UID --regid=$NOBODY_GID --clear-groups env -i USER=nobody HOME={home} /usr/lib/dovecot/imap -c {home}/dovecot.conf"
	local postroom="cd {maildir} && MAILDIR={maildir} exec $BIN/imap-serve -A"
	run --separate-stderr timeout 300 env PYTHONPATH="$TESTLIB" "$PYTHON" \
		"$TESTLIB/imap_thread_compare.py" --workdir "$PRIVATE_DIR/work" --ref "$dovecot" \
		--test "$postroom" "$@" "$REPO"/tests/fixtures/thread/*.eml
	[ "$status" -eq 0 ] || fail "$(printf '%s\n' "$output" "$stderr" | head -c 20000)"
}

@test "thread fixture: at least 30 messages" {
	local n
	n=$(ls "$REPO"/tests/fixtures/thread/*.eml | wc -l)
	[ "$n" -ge 30 ] || fail "only $n messages"
}

@test "SORT, THREAD, ESORT: Dovecot's answers, and the same again from the cache" {
	compare --warm 1
}

@test "SORT and THREAD: a warm folder's answers read no message file" {
	local i=0 f t
	for f in "$REPO"/tests/fixtures/thread/*.eml; do
		i=$((i + 1))
		cp "$f" "$MD/cur/$((1700000000 + i)).M${i}P1.fixture:2,S"
		touch -d "@$((1699000000 + (i * 17 % 38) * 3600))" "$MD/cur/$((1700000000 + i)).M${i}P1.fixture:2,S"
	done
	local cmds='a SELECT INBOX
b SORT (SUBJECT) UTF-8 ALL
c SORT (REVERSE DATE) UTF-8 ALL
d SORT (FROM CC TO SIZE) UTF-8 ALL
e SORT (DISPLAYFROM) UTF-8 ALL
f THREAD REFERENCES UTF-8 ALL
g THREAD ORDEREDSUBJECT UTF-8 ALL
z LOGOUT'
	run serve <<<"$cmds"
	assert_success
	local cold=$output
	[ -s "$MD/postroom-cache" ] || fail "no postroom-cache written"
	# every message emptied, its name and date kept: only the cache knows them now
	for f in "$MD"/cur/*; do
		t=$(stat -c %Y "$f")
		: >"$f"
		touch -d "@$t" "$f"
	done
	run serve <<<"$cmds"
	assert_success
	[ "$output" = "$cold" ] || fail "$(diff <(echo "$cold") <(echo "$output"))"
	# and the same with the cache gone does differ: the check can fail
	rm "$MD/postroom-cache"
	run serve <<<"$cmds"
	[ "$output" != "$cold" ] || fail "the emptied messages still sort the same"
}

@test "SORT and THREAD: bad arguments are BAD, an unknown charset NO [BADCHARSET]" {
	folder 1:a@example.org:
	run serve <<'EOF'
a SELECT INBOX
b SORT SUBJECT UTF-8 ALL
c SORT (SUBJECT) UTF-8
d SORT () UTF-8 ALL
e SORT (REVERSE) UTF-8 ALL
f SORT (SUBJECT) KOI8-R ALL
g THREAD FOO UTF-8 ALL
h THREAD REFERENCES KOI8-R ALL
i SORT RETURN (SAVE) (SUBJECT) UTF-8 ALL
j UNSELECT
k SORT (SUBJECT) UTF-8 ALL
EOF
	assert_success
	for t in b c d e g i k; do
		assert_line --regexp "^$t BAD "
	done
	assert_line --regexp '^f NO \[BADCHARSET'
	assert_line --regexp '^h NO \[BADCHARSET'
}

@test "SORT and THREAD on a Subject of 300 000 blobs and a References of 300 000 '<': answered at once (linear, not quadratic)" {
	local md=$PRIVATE_DIR/big
	mkdir -p "$md"/{cur,new,tmp}
	python3 - "$md/new/1.M1.host" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("From: a@example.test\nSubject: " + "[x] " * 300000 + "end\n")
    f.write("Message-Id: <big@example.test>\nReferences: " + "<" * 300000 + "r@example.test>\n\nbody\n")
PY
	run -0 timeout 60 sh -c "cd '$md' && printf 's SELECT INBOX\r\na SORT (SUBJECT) UTF-8 ALL\r\nb THREAD REFERENCES UTF-8 ALL\r\nc LOGOUT\r\n' |
		MAILDIR='$md' imap-serve -A"
	assert_line --partial '* SORT 1'
	assert_line --partial '* THREAD (1)'
}
