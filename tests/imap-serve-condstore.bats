#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# CONDSTORE and QRESYNC (RFC 7162) in imap-serve: modseqs kept in postroom-modseq(5), shared by
# concurrent sessions and across restarts, raised by changes made by another session and by
# Dovecot on the same Maildir; FETCH CHANGEDSINCE, STORE UNCHANGEDSINCE, STATUS HIGHESTMODSEQ,
# SELECT (QRESYNC ...) with VANISHED (EARLIER), VANISHED in place of EXPUNGE. imap-serve runs by
# hand (-A, PREAUTH) in the Maildir, two sessions at once where a test needs them, driven by
# python3's imaplib (tests/lib/imap_client.py). The RFC's examples are checked in their form:
# the modseq values are the folder's own.

load lib/common

setup() {
	make_private_dir
	MD=$PRIVATE_DIR/mail/alice
	DV=$PRIVATE_DIR/dovecot
	mkdir -p "$MD"/{new,cur,tmp} "$DV"
	cat >"$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = /dev/stderr
mail_location = maildir:$MD
EOF
	for i in 1 2 3 4 5 6; do
		make_message "$MD/new/100$i.M$i.host" "condstore-$i" 100
	done
	export MD
}

# dove COMMAND...: doveadm as nobody on the same Maildir (see imap-serve-maildir.bats).
dove() {
	chown -R "$NOBODY_UID:$NOBODY_GID" "$PRIVATE_DIR/mail" "$DV"
	chmod -R a+rX "$DV"
	as_nobody env USER=nobody HOME="$DV" doveadm -c "$DV/dovecot.conf" "$@"
}

# py: a python3 script on stdin with tests/lib's helpers, and MODSEQ(line) to read one; its
# output and errors (imap-serve's log lines among them) on stdout.
py() {
	imap_py_script "$@" 2>&1
}

# py_ok: py, which must succeed; its output is the failure's text, and $output after.
py_ok() {
	run py
	[ "$status" -eq 0 ] || fail "$output"
}

imap_py_script() {
	PYTHONPATH=$TESTLIB "$PYTHON" - "$@" <<<"import os, re
from imap_client import *
MD = os.environ['MD']
def MODSEQ(line):
    m = re.search(r'MODSEQ \((\d+)\)', line)
    check(m, 'no MODSEQ in %r' % line)
    return int(m.group(1))
def HIGHEST(lines):
    for l in lines:
        m = re.search(r'\[HIGHESTMODSEQ (\d+)\]', l)
        if m:
            return int(m.group(1))
    raise Failure('no HIGHESTMODSEQ in %r' % lines)
def session():
    return connect('preauth:' + MD)
$(cat)"
}

@test "CONDSTORE: SELECT (CONDSTORE) says HIGHESTMODSEQ; a STORE gives the messages it changed one new modseq; it survives a restart" {
	py_ok <<'PY'
c = session()
r = c.ok("SELECT INBOX (CONDSTORE)")
h0 = HIGHEST(r)
check(h0 > 0, "HIGHESTMODSEQ %d" % h0)
check(r.index("* OK [HIGHESTMODSEQ %d] Highest" % h0) < len(r) - 1, "untagged, before the OK")
f = c.ok("FETCH 1:6 (MODSEQ)")
eq([re.sub(r"\d{6,}", "M", l) for l in f[:-1]], ["* %d FETCH (MODSEQ (M))" % i for i in range(1, 7)],
   "FETCH MODSEQ (RFC 7162 example 13's form)")
check(all(MODSEQ(l) <= h0 for l in f[:-1]), "no message above HIGHESTMODSEQ")
s = c.ok("STORE 2,4 +FLAGS (\\Flagged)")
eq([re.sub(r"MODSEQ \(\d+\)", "MODSEQ (M)", l) for l in s[:-1]],
   ["* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (M))",
    "* 4 FETCH (UID 4 FLAGS (\\Flagged \\Recent) MODSEQ (M))"], "STORE's FETCHes")
m2, m4 = MODSEQ(s[0]), MODSEQ(s[1])
eq(m2, m4, "one modseq for the command")
check(m2 > h0, "the new modseq is above the old highest")
s2 = c.ok("STORE 2 +FLAGS (\\Flagged)")
eq(s2[:-1], ["* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (%d))" % m2],
   "a flag already set changes no modseq")
s3 = c.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
eq(len(s3), 2, ".SILENT still says the modseq: %r" % s3)
check(re.match(r"^\* 1 FETCH \(UID 1 MODSEQ \(\d+\)\)$", s3[0]), s3[0])
check(MODSEQ(s3[0]) > m2, "each STORE a greater modseq")
c.logout()
d = session()
r = d.ok("SELECT INBOX (CONDSTORE)")
eq(HIGHEST(r), MODSEQ(s3[0]), "HIGHESTMODSEQ after a restart")
f = d.ok("FETCH 1:* (MODSEQ FLAGS)")
eq([MODSEQ(l) for l in f[:-1]], [MODSEQ(s3[0]), m2, h0, m2, h0, h0], "modseqs after a restart")
d.logout()
PY
	grep -q '^postroom-modseq 1 V[0-9]* F[0-9]* H[0-9]*$' "$MD/postroom-modseq" ||
		fail "$(head -3 "$MD/postroom-modseq")"
}

@test "CONDSTORE: FETCH CHANGEDSINCE finds the changes of a second session and of Dovecot on the same Maildir" {
	py_ok <<'PY'
a, b = session(), session()
ra = a.ok("SELECT INBOX (CONDSTORE)")
h0 = HIGHEST(ra)
b.ok("SELECT INBOX")
b.ok("STORE 3 +FLAGS (\\Answered)")          # b never asked for CONDSTORE
got = a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h0)
# Told by the FETCH itself, or by the FETCH that tells of others' changes at its end (a
# FETCH does not look at the folder first, as Dovecot's does not): either way once, with
# UID, flags and modseq.
changed = [l for l in got if " FETCH " in l]
eq(len(changed), 1, "only message 3: %r" % got)
check(re.match(r"^\* 3 FETCH \(UID 3 (MODSEQ \(\d+\) )?FLAGS \(\\Answered \\Recent\)( MODSEQ \(\d+\))?\)$",
               changed[0]), changed[0])
check(MODSEQ(changed[0]) > h0, "a modseq above the old highest")
open(os.environ["BATS_TEST_TMPDIR"] + "/since", "w").write(str(MODSEQ(changed[0])))
a.logout(); b.logout()
PY
	local after_b
	after_b=$(cat "$BATS_TEST_TMPDIR/since")
	# Dovecot flags message 5 and expunges message 6 behind our back.
	dove flags add '\Seen $Forwarded' mailbox INBOX uid 5
	dove flags add '\Deleted' mailbox INBOX uid 6
	dove expunge mailbox INBOX uid 6
	MODSEQ_B=$after_b py_ok <<'PY'
since = int(os.environ["MODSEQ_B"])
a = session()
a.ok("SELECT INBOX (CONDSTORE)")
got = a.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % since)
changed = [l for l in got if "FETCH" in l]
eq(len(changed), 1, "only message 5: %r" % got)
check(re.match(r"^\* 5 FETCH \(MODSEQ \(\d+\) FLAGS \(\\Seen \$Forwarded\)\)$", changed[0]), changed[0])
check(MODSEQ(changed[0]) > since, "Dovecot's change has a newer modseq")
a.logout()
PY
}

@test "CONDSTORE: unsolicited FETCHes carry UID and MODSEQ; ENABLE CONDSTORE with a folder selected says HIGHESTMODSEQ" {
	py_ok <<'PY'
a, b = session(), session()
a.ok("SELECT INBOX")
r = a.ok("ENABLE CONDSTORE")
eq(r[0], "* ENABLED CONDSTORE", "ENABLED")
h = HIGHEST(r)
b.ok("SELECT INBOX")
b.ok("STORE 2 +FLAGS (\\Draft)")
n = a.ok("NOOP")
eq(len(n), 2, "one FETCH then OK: %r" % n)
check(re.match(r"^\* 2 FETCH \(UID 2 FLAGS \(\\Draft \\Recent\) MODSEQ \(\d+\)\)$", n[0]), n[0])
check(MODSEQ(n[0]) > h, "newer")
s = a.ok("STATUS Trash (HIGHESTMODSEQ MESSAGES)")
check(re.match(r'^\* STATUS "?Trash"? \(MESSAGES 0 HIGHESTMODSEQ \d+\)$', s[0]), s[0])
a.logout(); b.logout()
PY
}

@test "CONDSTORE: STORE UNCHANGEDSINCE fails for what changed since, as MODIFIED numbers or UIDs, and changes the rest" {
	py_ok <<'PY'
a, b = session(), session()
h = HIGHEST(a.ok("SELECT INBOX (CONDSTORE)"))
b.ok("SELECT INBOX")
b.ok("STORE 3,5 +FLAGS (\\Seen)")
r = a.lines("STORE 2,3,4,5 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Deleted)" % h)
eq(r[-1], "R2 OK [MODIFIED 3,5] Conditional STORE failed", "MODIFIED with numbers")
stored = [l for l in r if re.match(r"^\* [24] FETCH \(UID [24] MODSEQ \(\d+\)\)$", l)]
eq(len(stored), 2, "2 and 4 stored, said even .SILENT: %r" % r)
check(MODSEQ(stored[0]) > h, "a new modseq")
f = a.ok("FETCH 2:5 (FLAGS)")
eq([l.split()[1] for l in f if "Deleted" in l], ["2", "4"], "what was stored: %r" % f)
r = a.lines("UID STORE 3,5 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)")
eq(r[-1], "R4 OK [MODIFIED 3,5] Conditional STORE failed", "UNCHANGEDSINCE 0 always fails, UIDs for UID STORE")
check(not [l for l in r if "FETCH" in l], "nothing stored: %r" % r)
cur = MODSEQ(a.ok("FETCH 5 (MODSEQ)")[0])
r = a.lines("UID STORE 5 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % cur)
eq(r[-1], "R6 OK Store completed", "a flag already set passes the test")
check(MODSEQ(r[0]) == cur, "and keeps its modseq: %r" % r)
a.logout(); b.logout()
PY
}

@test "QRESYNC: SELECT (QRESYNC ...) tells VANISHED (EARLIER) of another session's expunges and the FETCHes of what changed" {
	py_ok <<'PY'
a = session()
a.ok("ENABLE QRESYNC")
r = a.ok("SELECT INBOX")
h0, uv = HIGHEST(r), int(re.search(r"UIDVALIDITY (\d+)", "\n".join(r)).group(1))
a.logout()
b = session()
b.ok("SELECT INBOX")
b.ok("STORE 2 +FLAGS (\\Deleted)")
b.ok("EXPUNGE")                   # UID 2 gone
b.ok("STORE 2 +FLAGS (\\Flagged)")  # now message 2 is UID 3
b.logout()
c = session()
c.ok("SELECT INBOX")
eq(c.lines("SELECT Trash")[0], "* OK [CLOSED] Previous mailbox closed", "CLOSED")
eq(c.lines("SELECT INBOX (QRESYNC (%d %d 1:6))" % (uv, h0))[-1], "R3 BAD QRESYNC is not enabled",
   "QRESYNC must be enabled first")
eq(c.ok("ENABLE QRESYNC")[0], "* ENABLED QRESYNC", "ENABLED")
c.ok("SELECT Trash")
r = c.ok("SELECT INBOX (QRESYNC (%d %d 1:6))" % (uv, h0))
check(r[0] == "* OK [CLOSED] Previous mailbox closed", r[0])
i = r.index("* VANISHED (EARLIER) 2")
check(i > r.index([l for l in r if "HIGHESTMODSEQ" in l][0]), "after HIGHESTMODSEQ")
fetches = [l for l in r if " FETCH " in l]
eq(len(fetches), 1, "%r" % r)
check(re.match(r"^\* 2 FETCH \(UID 3 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$", fetches[0]), fetches[0])
check(r.index(fetches[0]) > i, "VANISHED before the FETCHes")
# known-uids leaves out what the client does not know of
r = c.ok("SELECT INBOX (QRESYNC (%d %d 4:6))" % (uv, h0))
check(not [l for l in r if "VANISHED" in l or " FETCH " in l], "nothing in 4:6: %r" % r)
# a UIDVALIDITY that is not the folder's: an ordinary SELECT
r = c.ok("SELECT INBOX (QRESYNC (%d %d))" % (uv + 1, h0))
check(not [l for l in r if "VANISHED" in l or " FETCH " in l], "%r" % r)
# the same through UID FETCH ... (CHANGEDSINCE n VANISHED)
r = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % h0)
eq(r[0], "* VANISHED (EARLIER) 2", "UID FETCH VANISHED")
check(re.match(r"^\* 2 FETCH \(UID 3 MODSEQ \(\d+\) FLAGS \(\\Flagged\)\)$", r[1]), r[1])
c.logout()
PY
}

@test "QRESYNC: EXPUNGE says VANISHED and its HIGHESTMODSEQ; another session's expunge comes as VANISHED, never EXPUNGE" {
	py_ok <<'PY'
a, b = session(), session()
a.ok("ENABLE QRESYNC")
a.ok("SELECT INBOX")
b.ok("SELECT INBOX")
a.ok("STORE 1,3,4 +FLAGS.SILENT (\\Deleted)")
r = a.ok("EXPUNGE")
eq(r[0], "* VANISHED 1,3:4", "one VANISHED, UIDs as a set")
m = re.match(r"^R\d+ OK \[HIGHESTMODSEQ (\d+)\] Expunge completed$", r[-1])
check(m, r[-1])
h = int(m.group(1))
check(not [l for l in r if "EXPUNGE" in l.split()[:3]], "no EXPUNGE: %r" % r)
b.ok("STORE 2 +FLAGS (\\Deleted)")     # message 2 is UID 2
b.ok("EXPUNGE")
n = a.ok("NOOP")
eq(n[0], "* VANISHED 2", "another session's expunge")
r = a.ok("UID FETCH 1:6 (FLAGS) (CHANGEDSINCE %d VANISHED)" % h)
eq(r[0], "* VANISHED (EARLIER) 2", "only what went after %d" % h)
a.logout(); b.logout()
PY
}

@test "QRESYNC: a modseq from before what postroom-modseq remembers gets every missing UID; a lost file starts above the old values" {
	py_ok <<'PY'
a = session()
a.ok("ENABLE QRESYNC")
r = a.ok("SELECT INBOX")
h0, uv = HIGHEST(r), int(re.search(r"UIDVALIDITY (\d+)", "\n".join(r)).group(1))
a.ok("STORE 5 +FLAGS.SILENT (\\Deleted)")
a.ok("EXPUNGE")
r = a.ok("UID FETCH 1:* (UID) (CHANGEDSINCE 1 VANISHED)")
eq(r[0], "* VANISHED (EARLIER) 5", "from before the file: every UID missing below UIDNEXT")
a.logout()
os.unlink(os.path.join(MD, "postroom-modseq"))
b = session()
b.ok("ENABLE CONDSTORE")
r = b.ok("SELECT INBOX")
check(HIGHEST(r) > h0, "a new file's modseqs are above the lost one's")
b.ok("ENABLE QRESYNC")
r = b.ok("SELECT INBOX (QRESYNC (%d %d))" % (uv, h0))
check("* VANISHED (EARLIER) 5" in r, "what the lost file knew is told again: %r" % r)
b.logout()
PY
}

@test "CONDSTORE and QRESYNC: what is not valid is BAD and changes nothing" {
	py_ok <<'PY'
a = session()
a.ok("SELECT INBOX")
for cmd in ("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",     # VANISHED: UID FETCH only
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",  # QRESYNC not enabled
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE x)",
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 9223372036854775808)",
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE)",
            "UID FETCH 1:* (FLAGS) (NOSUCH 1)",
            "STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
            "STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)",
            "STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\\Seen)"):
    r = a.lines(cmd)
    check(re.match(r"^R\d+ BAD ", r[-1]), "%s: %r" % (cmd, r))
f = a.ok("FETCH 1:* (FLAGS)")
check(not [l for l in f if "Seen" in l], "nothing stored: %r" % f)
a.ok("ENABLE QRESYNC")
r = a.lines("UID FETCH 1:* (FLAGS) (VANISHED)")              # without CHANGEDSINCE
check(re.match(r"^R\d+ BAD ", r[-1]), "%r" % r)
# A SELECT that is not valid leaves no folder selected, as a failed one (RFC 3501 6.3.1).
for cmd in ("SELECT INBOX (NOSUCH)",
            "SELECT INBOX (QRESYNC (0 1))",
            "SELECT INBOX (QRESYNC (1 0))",
            "SELECT INBOX (QRESYNC (1 2 1:*))",                 # no * in known-uids
            "SELECT INBOX (QRESYNC (1 2 1:5 (1:2)))",
            "SELECT INBOX (QRESYNC 1 2)"):
    r = a.lines(cmd)
    check(re.match(r"^R\d+ BAD ", r[-1]), "%s: %r" % (cmd, r))
b = session()
r = b.lines("SELECT INBOX (QRESYNC (1 2))")                   # not enabled
check(re.match(r"^R\d+ BAD QRESYNC is not enabled", r[-1]), "%r" % r)
a.logout(); b.logout()
PY
}

@test "CONDSTORE: SEARCH MODSEQ finds what changed since, and says the highest modseq it found, in SEARCH, ESEARCH and SORT" {
	py_ok <<'PY'
a = session()
h0 = HIGHEST(a.ok("SELECT INBOX (CONDSTORE)"))
a.ok("STORE 2 +FLAGS (\\Draft)")
m2 = MODSEQ(a.ok("FETCH 2 (MODSEQ)")[0])
a.ok("STORE 5 +FLAGS (\\Seen)")
m5 = MODSEQ(a.ok("FETCH 5 (MODSEQ)")[0])
check(h0 < m2 < m5, "%d %d %d" % (h0, m2, m5))
r = a.ok('SEARCH MODSEQ "/flags/\\\\draft" all %d' % m2)
eq(r[0], "* SEARCH 2 5 (MODSEQ %d)" % m5, "RFC 7162 3.1.5's form; the entry is ignored")
eq(a.ok("UID SEARCH MODSEQ %d" % (m2 + 1))[0], "* SEARCH 5 (MODSEQ %d)" % m5, "MODSEQ is >=")
eq(a.ok("SEARCH OR NOT MODSEQ %d LARGER 50000" % h0)[0], "* SEARCH", "nothing found: no MODSEQ")
eq(a.ok("SEARCH MODSEQ 0")[0], "* SEARCH 1 2 3 4 5 6 (MODSEQ %d)" % m5, "MODSEQ 0 is every message")
r = a.lines("SEARCH RETURN (ALL) MODSEQ %d" % m2)
eq(r[0], '* ESEARCH (TAG "%s") ALL 2,5 MODSEQ %d' % (r[-1].split()[0], m5), "ESEARCH (RFC 4731 3.2)")
r = a.lines("SEARCH RETURN (MIN) MODSEQ %d" % m2)
eq(r[0], '* ESEARCH (TAG "%s") MIN 2 MODSEQ %d' % (r[-1].split()[0], m2), "MIN alone: its own modseq")
eq(a.ok("SORT (REVERSE SUBJECT) UTF-8 MODSEQ %d" % m2)[0], "* SORT 5 2 (MODSEQ %d)" % m5, "SORT")
for bad in ("SEARCH MODSEQ", "SEARCH MODSEQ x", 'SEARCH MODSEQ "/flags/\\\\seen" nosuch 1'):
    check(re.match(r"^R\d+ BAD ", a.lines(bad)[-1]), bad)
a.logout()
b = session()
b.ok("SELECT INBOX")
r = b.ok("SEARCH MODSEQ %d" % m2)
check(re.match(r"^\* OK \[HIGHESTMODSEQ \d+\]", r[0]), "SEARCH MODSEQ turns CONDSTORE on: %r" % r)
eq(r[1], "* SEARCH 2 5 (MODSEQ %d)" % m5, "%r" % r)
b.logout()
PY
}

@test "CONDSTORE in IDLE: another session's changes arrive as FETCH with UID and MODSEQ, again after the session rested" {
	py_ok <<'PY'
a, b = session(), session()
h = HIGHEST(a.ok("SELECT INBOX (CONDSTORE)"))
b.ok("SELECT INBOX")
tag = a.raw_send("IDLE")
check(a.raw_read(tag, until_continuation=True).startswith(b"+"), "no continuation")
seen = h
for n in (3, 4):
    b.ok("STORE %d +FLAGS (\\Flagged)" % n)
    line = a.readline().decode().rstrip("\r\n")
    check(re.match(r"^\* %d FETCH \(UID %d FLAGS \(\\Flagged( \\Recent)?\) MODSEQ \(\d+\)\)$" % (n, n), line), line)
    check(MODSEQ(line) > seen, "rising: %r" % line)
    seen = MODSEQ(line)
a.send(b"DONE\r\n")
check(a.raw_read(tag).rstrip().endswith(b"OK Idle completed"), "DONE")
st = a.ok("STATUS INBOX (HIGHESTMODSEQ)")[0]
eq(int(re.search(r"HIGHESTMODSEQ (\d+)", st).group(1)), seen, "HIGHESTMODSEQ: %r" % st)
a.logout(); b.logout()
PY
}

@test "CONDSTORE: UID STORE UNCHANGEDSINCE after another session expunged and changed messages: MODIFIED names the right UIDs" {
	py_ok <<'PY'
a, b = session(), session()
h = HIGHEST(a.ok("SELECT INBOX (CONDSTORE)"))
b.ok("SELECT INBOX")
b.ok("STORE 4 +FLAGS (\\Flagged)")
b.ok("STORE 2 +FLAGS (\\Deleted)")
b.ok("EXPUNGE")
r = a.lines("UID STORE 1:4 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % h)
eq(r[-1].split(" ", 1)[1], "OK [MODIFIED 4] Conditional STORE failed", "%r" % r)
f = a.ok("UID FETCH 1:4 (FLAGS)")
seen = sorted(int(re.search(r"UID (\d+)", l).group(1)) for l in f if "\\Seen" in l)
eq(seen, [1, 3], "stored on 1 and 3 only: %r" % f)
a.logout(); b.logout()
PY
}
