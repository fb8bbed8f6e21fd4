#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# UIDONLY (RFC 9586) in imap-serve: once enabled, message numbers are refused (BAD
# [UIDREQUIRED]) wherever a command would take them, every FETCH reply is a UIDFETCH led by
# the UID, and expunges are told as VANISHED. imap-serve runs by hand (-A, PREAUTH) in a
# Maildir, driven by python3's imaplib (tests/lib/imap_client.py).

load lib/common

setup() {
	make_private_dir
	MD=$PRIVATE_DIR/mail/alice
	mkdir -p "$MD"/{new,cur,tmp}
	for i in 1 2 3 4; do
		make_message "$MD/new/100$i.M$i.host" "uidonly-$i" 100
	done
	export MD
}

py_ok() {
	run env PYTHONPATH="$TESTLIB" "$PYTHON" - <<<"import os, re
from imap_client import *
MD = os.environ['MD']
def session():
    return connect('preauth:' + MD)
$(cat)" 2>&1
	[ "$status" -eq 0 ] || fail "$output"
}

@test "UIDONLY: ENABLE, then UIDFETCH replies led by the UID, to UID FETCH, UID STORE and another session's change" {
	py_ok <<'PY'
a, b = session(), session()
eq(a.ok("ENABLE UIDONLY")[0], "* ENABLED UIDONLY", "ENABLED")
r = a.ok("SELECT INBOX")
check(not [l for l in r if "UNSEEN" in l], "no message number in SELECT: %r" % r)
eq(a.ok("UID FETCH 2:3 (FLAGS)")[:-1], ["* 2 UIDFETCH (FLAGS (\\Recent))", "* 3 UIDFETCH (FLAGS (\\Recent))"],
   "UIDFETCH, no UID item unless asked")
eq(a.ok("UID FETCH 4 (UID FLAGS)")[0], "* 4 UIDFETCH (UID 4 FLAGS (\\Recent))", "UID when asked")
eq(a.ok("UID STORE 3 +FLAGS (\\Seen)")[0], "* 3 UIDFETCH (FLAGS (\\Seen \\Recent))", "UID STORE")
b.ok("SELECT INBOX")
b.ok("STORE 4 +FLAGS (\\Flagged)")
eq(a.ok("NOOP")[0], "* 4 UIDFETCH (FLAGS (\\Flagged \\Recent))", "another session's change")
a.logout(); b.logout()
PY
}

@test "UIDONLY: message numbers are BAD [UIDREQUIRED] in FETCH, STORE, COPY, MOVE, SEARCH, SORT, THREAD and in search keys" {
	py_ok <<'PY'
a = session()
a.ok("ENABLE UIDONLY")
a.ok("SELECT INBOX")
for cmd in ("FETCH 1 (FLAGS)", "STORE 1 +FLAGS (\\Seen)", "COPY 1 Trash", "MOVE 1 Trash",
            "SEARCH ALL", "SORT (DATE) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL",
            "UID SEARCH 1:2", "UID SEARCH OR 1 UID 2", "UID SORT (DATE) UTF-8 1:*"):
    r = a.lines(cmd)
    check(re.match(r"^R\d+ BAD \[UIDREQUIRED\] ", r[-1]), "%s: %r" % (cmd, r))
eq(a.ok("UID SEARCH UID 1:2")[0], "* SEARCH 1 2", "UID sets are fine")
eq(a.ok("UID COPY 1 Trash")[-1].split(" ")[2], "[COPYUID", "UID COPY")
a.ok("ENABLE QRESYNC")
r = a.lines("SELECT INBOX (QRESYNC (1 1 1:4 (1:4 1:4)))")
check(re.match(r"^R\d+ BAD \[UIDREQUIRED\] ", r[-1]), "seq-match-data: %r" % r)
a.logout()
PY
}

@test "UIDONLY: expunges are told as VANISHED, the session's own and another's, without QRESYNC" {
	py_ok <<'PY'
a, b = session(), session()
a.ok("ENABLE UIDONLY")
a.ok("SELECT INBOX")
a.ok("UID STORE 1,3 +FLAGS.SILENT (\\Deleted)")
r = a.ok("EXPUNGE")
eq(r[0], "* VANISHED 1,3", "the session's own")
check(not [l for l in r if l.endswith(" EXPUNGE")], "%r" % r)
b.ok("SELECT INBOX")
b.ok("STORE 1 +FLAGS (\\Deleted)")     # UID 2
b.ok("EXPUNGE")
eq(a.ok("NOOP")[0], "* VANISHED 2", "another's")
a.logout(); b.logout()
PY
}

@test "a tag with a wildcard, a backslash or '+' is not a tag (RFC 3501): untagged BAD, the command not run" {
	local dir=$MD
	run -0 sh -c "cd '$dir' && printf 'a%%b SELECT INBOX\r\na*b SELECT INBOX\r\na\\\\\\\\b SELECT INBOX\r\na+b SELECT INBOX\r\nok NOOP\r\nz LOGOUT\r\n' | MAILDIR='$dir' imap-serve -A 2>/dev/null"
	[ "$(grep -c '^\* BAD Error in IMAP command' <<<"$output")" -eq 4 ] || fail "$output"
	refute_output --partial 'EXISTS'
	assert_output --partial 'ok OK NOOP completed'
}
