#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# imap-serve sessions end to end: python3 imaplib (tests/lib/imap_client.py) over tcpserver +
# tls-wrap, with STARTTLS and with implicit TLS, logging in through checkpassword-mysql, on mail
# that came in through smtp-recv and queue-run. Every IMAP4rev1 command and FETCH item, every
# SEARCH key, and the extensions imap-serve announces; replies are checked against what
# RFC 3501 and the extensions say, and against Dovecot's answers for the same messages.
#
# The corpus (imap_client.py): m1 text/plain with a Cc, m2 with an RFC 2047 Subject and a Bcc,
# m3 multipart/mixed with a base64 attachment, m4 (to alice and bob). Their internal dates (the
# files' mtimes) are set after delivery: m1 2020-01-02, m2 2021-06-16, m3 2022-03-11, m4 now.
# UIDs follow the server's order of the files, so the tests find messages by Message-Id.

load lib/common
load lib/smtp
load lib/tls
load lib/imap

setup() {
	export TZ=UTC
	imap_users
	make_queue
	make_cert imap.example.test "$BATS_TEST_TMPDIR/cert.pem" "$BATS_TEST_TMPDIR/key.pem"
	SERVER_ENV=(CERTFILE="$BATS_TEST_TMPDIR/cert.pem" KEYFILE="$BATS_TEST_TMPDIR/key.pem"
		USERDB="$USERDB" MAILROOT="$MAILROOT" TZ=UTC)
	deliver_corpus
}

teardown() {
	stop_server
	common_teardown
}

# deliver_corpus: the four messages through smtp-recv (one SMTP session, four transactions)
# and queue-run -1 into alice's (and m4 into bob's) Maildir; then their internal dates.
deliver_corpus() {
	run -0 --separate-stderr smtp_session SMTP_HOSTNAME=mx.example.test \
		< <(imap_py "$TESTLIB/imap_client.py" smtp)
	[ "$(grep -c '^250 2\.0\.0 ok: queued as ' <<<"$output")" -eq 4 ] || fail "not queued: $output"
	run -0 --separate-stderr queue-run -1
	assert_count 4 msg_count "$(alice_maildir)"
	assert_count 1 msg_count "$(mailbox bob)"
	local f
	for f in "$(alice_maildir)"/new/*; do
		case $(grep -m1 '^Message-Id:' "$f") in
		*'<m1@'*) touch -d '2020-01-02 12:00:00 UTC' "$f" ;;
		*'<m2@'*) touch -d '2021-06-16 12:00:00 UTC' "$f" ;;
		*'<m3@'*) touch -d '2022-03-11 12:00:00 UTC' "$f" ;;
		esac
	done
}

# imap_starttls [VAR=V...]: the 143 service (STARTTLS) on $SERVER_PORT.
imap_starttls() {
	start_server "${SERVER_ENV[@]}" UCSPITLS='!' "$@" -- tls-wrap -n imap-serve $CHECKPW
}

# imaps [VAR=V...]: the 993 service (implicit TLS) on $SERVER_PORT.
imaps() {
	start_server "${SERVER_ENV[@]}" "$@" -- tls-wrap imap-serve $CHECKPW
}

# session ARGS... <<'PY': a python3 script with imap_client's names imported, with PORT,
# MAILDIR (alice's), BOBDIR and ARGS in its globals. It must exit 0; what it printed is shown
# when it does not.
session() {
	run imap_py - "$@" < <(
		printf 'import sys\nfrom imap_client import *\n'
		printf 'PORT = %s\nMAILDIR = %s\nBOBDIR = %s\nARGS = sys.argv[1:]\n' \
			"'${SERVER_PORT:-}'" "'$(alice_maildir)'" "'$(mailbox bob)'"
		cat
	)
	[ "$status" -eq 0 ] || fail "$(printf 'the session failed (exit %s):\n%s' "$status" "$output")"
}

@test "STARTTLS: LOGINDISABLED and PRIVACYREQUIRED before it, TLS 1.3, then LOGIN, SELECT, FETCH FAST, LOGOUT" {
	imap_starttls
	session <<'PY'
c = connect("plain:" + PORT, login=False)
greeting = c.welcome.decode()
check(re.match(r"^\* OK \[CAPABILITY IMAP4rev1 .*\]", greeting), greeting)
caps = c.lines("CAPABILITY")
eq(len(caps), 2, "CAPABILITY answer")
words = caps[0].split()
eq(words[:3], ["*", "CAPABILITY", "IMAP4rev1"], "CAPABILITY")
for w in ("STARTTLS", "LOGINDISABLED", "SASL-IR", "ID", "LITERAL+"):
    check(w in words, "no %s before TLS: %s" % (w, caps[0]))
check(not any(w.startswith("AUTH=") for w in words), "AUTH= before TLS: " + caps[0])
reply = c.lines("LOGIN alice@example.test alice-demo")
check(re.match(r"^R\d+ NO \[PRIVACYREQUIRED\] ", reply[-1]), reply)
c.ok("NOOP")
c.starttls(context())
eq(c.sock.version(), "TLSv1.3", "TLS version")
caps = c.lines("CAPABILITY")[0].split()
check("AUTH=PLAIN" in caps, "no AUTH=PLAIN under TLS: %s" % caps)
check("STARTTLS" not in caps and "LOGINDISABLED" not in caps, "after STARTTLS: %s" % caps)
typ, data = c.login("alice@example.test", "alice-demo")
eq(typ, "OK", "LOGIN")
check(re.match(r"^\[CAPABILITY IMAP4rev1 .*\] Logged in", data[0].decode()), data)
after = data[0].decode().split("]")[0].split()
for w in ("UIDPLUS", "MOVE", "IDLE", "NAMESPACE", "UNSELECT", "CHILDREN", "SPECIAL-USE",
          "LIST-EXTENDED", "LIST-STATUS", "QUOTA", "ENABLE", "ID", "LITERAL+", "SASL-IR"):
    check(w in after, "no %s after login: %s" % (w, after))
check(any(w.startswith("APPENDLIMIT=") for w in after), after)
sel = c.ok("SELECT INBOX")
for line in ("* 4 EXISTS", "* 4 RECENT", "* OK [UIDNEXT 5] Predicted next UID",
             "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"):
    check(line in sel, "SELECT: no %r in %r" % (line, sel))
check(any(re.match(r"^\* OK \[UIDVALIDITY [1-9][0-9]*\]", l) for l in sel), sel)
check(any(l.startswith("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]") for l in sel), sel)
check(any(l.startswith("* OK [UNSEEN 1]") for l in sel), sel)
check(re.match(r"^R\d+ OK \[READ-WRITE\] ", sel[-1]), sel)
it = fetch1(c, "FETCH %d FAST" % msgmap(c)["m1"])
eq(set(it), {"FLAGS", "INTERNALDATE", "RFC822.SIZE"}, "FAST")
eq(it["INTERNALDATE"], b"02-Jan-2020 12:00:00 +0000", "m1 INTERNALDATE")
eq(flagset(it["FLAGS"]), {"\\Recent"}, "m1 FLAGS")
eq(int(it["RFC822.SIZE"]), len(message_crlf(maildir_file(MAILDIR, "m1"))), "m1 RFC822.SIZE")
reply = c.lines("LOGOUT")
eq(len(reply), 2, "LOGOUT")
check(reply[0].startswith("* BYE "), reply)
check(re.match(r"^R\d+ OK ", reply[1]), reply)
eq(c.readline(), b"", "the connection closed after LOGOUT")
PY
	# The session is logged, and ended.
	wait_until 50 grep -q 'logged out' "$SERVER_LOG" || fail "$(cat "$SERVER_LOG")"
}

@test "implicit TLS: AUTHENTICATE PLAIN with SASL-IR and after +, LOGIN with LITERAL+ literals, ID, NAMESPACE, ENABLE, CAPABILITY" {
	imaps
	session <<'PY'
ir = base64.b64encode(b"\0alice@example.test\0alice-demo").decode()
c = connect("tls:" + PORT, login=False)
eq(c.sock.version(), "TLSv1.3", "TLS version")
check(c.welcome.startswith(b"* OK [CAPABILITY IMAP4rev1 "), c.welcome)
caps = c.lines("CAPABILITY")[0].split()
check("AUTH=PLAIN" in caps and "SASL-IR" in caps, caps)
check("STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps)
# ID before login (RFC 2971).
reply = c.lines('ID ("name" "imap_client" "version" "1")')
check(re.match(r'^\* ID \(.*"name" "postroom"', reply[0]), reply)
check(re.match(r"^R\d+ OK", reply[-1]), reply)
reply = c.lines("AUTHENTICATE PLAIN " + ir)
eq(len(reply), 1, "AUTHENTICATE with SASL-IR")
check(re.match(r"^R\d+ OK \[CAPABILITY IMAP4rev1 .*\] Logged in$", reply[0]), reply)
c.state = "AUTH"
caps = c.lines("CAPABILITY")
check(caps[0].startswith("* CAPABILITY IMAP4rev1 "), caps)
check("AUTH=PLAIN" not in caps[0].split(), "AUTH= after login: %r" % caps)
reply = c.lines("NAMESPACE")
eq(reply[0], '* NAMESPACE (("" ".")) NIL NIL', "NAMESPACE")
# ENABLE of what is not offered: "* ENABLED" without it (RFC 5161).
reply = c.lines("ENABLE X-NOSUCH")
eq(reply[0], "* ENABLED", "ENABLE")
check(re.match(r"^R\d+ OK", reply[-1]), reply)
reply = c.lines("ENABLE X-NOSUCH CONDSTORE")
eq(reply[0], "* ENABLED CONDSTORE", "ENABLE")
reply = c.lines('ID NIL')
check(reply[0].startswith("* ID ("), reply)
c.logout()

# The continuation form (imaplib's own), and LOGIN with non-synchronizing literals.
c = connect("tls:" + PORT, login=False)
typ, data = c.authenticate("PLAIN", lambda _: b"\0alice@example.test\0alice-demo")
eq(typ, "OK", "AUTHENTICATE PLAIN after +")
c.logout()
c = connect("tls:" + PORT, login=False)
reply = c.lines("LOGIN {18+}\r\nalice@example.test {10+}\r\nalice-demo")
check(re.match(r"^R\d+ OK \[CAPABILITY ", reply[-1]), reply)
c.state = "AUTH"
c.ok("SELECT INBOX")
c.logout()
PY
}

@test "folders: SPECIAL-USE folders after the first login, CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS, CHILDREN, LIST-EXTENDED, LIST-STATUS" {
	imaps
	session <<'PY'
c = connect("tls:" + PORT)

def listing(cmd):
    """LIST/LSUB answer: {name: set of attributes}."""
    reply = c.ok(cmd)
    out = {}
    for line in reply[:-1]:
        m = re.match(r'^\* (LIST|LSUB) \(([^)]*)\) "\." (.*)$', line)
        if not m:
            continue
        name = m.group(3)
        name = name[1:-1] if name.startswith('"') else name
        out[name] = set(m.group(2).split())
    return out

top = listing('LIST "" "*"')
eq(sorted(top), ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"], "folders after first login")
for name in ("Archive", "Drafts", "Junk", "Sent", "Trash"):
    check("\\" + name in top[name], "%s without \\%s: %s" % (name, name, top[name]))
    check("\\HasNoChildren" in top[name], "%s: %s" % (name, top[name]))
for name in ("Archive", "Drafts", "Junk", "Sent", "Trash"):
    check(os.path.isdir(os.path.join(MAILDIR, "." + name, "cur")), "no Maildir++ folder ." + name)
# LIST "" "" gives the hierarchy delimiter.
eq(c.ok('LIST "" ""')[0], '* LIST (\\Noselect) "." ""', 'LIST "" ""')

c.ok("CREATE Projects")
c.ok("CREATE Projects.2024")
c.ok('CREATE "Gr&APwA3w-e"')
reply = c.lines("CREATE Projects")
check(re.match(r"^R\d+ NO \[ALREADYEXISTS\] ", reply[-1]), reply)
reply = c.lines("CREATE INBOX")
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
check(os.path.isdir(os.path.join(MAILDIR, ".Projects.2024", "new")), "no .Projects.2024")
all_ = listing('LIST "" "*"')
check("\\HasChildren" in all_["Projects"], all_)
check("\\HasNoChildren" in all_["Projects.2024"], all_)
check("Gr&APwA3w-e" in all_, all_)
eq(sorted(listing('LIST "" "%"')), ["Archive", "Drafts", "Gr&APwA3w-e", "INBOX", "Junk", "Projects", "Sent", "Trash"], 'LIST "" "%"')
eq(sorted(listing('LIST "" "Projects.%"')), ["Projects.2024"], 'LIST "" "Projects.%"')
eq(sorted(listing('LIST "Projects." "%"')), ["Projects.2024"], 'LIST with a reference')
eq(sorted(listing('LIST "" "inbox"')), ["INBOX"], "INBOX in any case")

c.ok("SUBSCRIBE Projects.2024")
c.ok("SUBSCRIBE INBOX")
subs = listing('LSUB "" "*"')
check({"Projects.2024", "INBOX"} <= set(subs), subs)
check("Projects" not in subs, "Projects is not subscribed: %s" % subs)
# LIST-EXTENDED: the subscribed ones, with \Subscribed (RFC 5258).
sel = listing('LIST (SUBSCRIBED) "" "*"')
eq(sorted(sel), sorted(subs), "LIST (SUBSCRIBED) against LSUB")
for name, attrs in sel.items():
    check("\\Subscribed" in attrs, "%s: %s" % (name, attrs))
ret = listing('LIST "" "*" RETURN (CHILDREN SUBSCRIBED)')
eq(sorted(ret), sorted(all_), "RETURN (CHILDREN SUBSCRIBED)")
for name, attrs in ret.items():
    check(("\\HasChildren" in attrs) != ("\\HasNoChildren" in attrs), "%s: %s" % (name, attrs))
    eq("\\Subscribed" in attrs, name in subs, "\\Subscribed of " + name)
c.ok("UNSUBSCRIBE Projects.2024")
subs = listing('LSUB "" "*"')
check("Projects.2024" not in subs, subs)

# STATUS, and LIST-STATUS (RFC 5819).
reply = c.ok("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
m = re.match(r'^\* STATUS "?INBOX"? \(MESSAGES 4 RECENT 4 UIDNEXT 5 UIDVALIDITY ([1-9][0-9]*) UNSEEN 4\)$', reply[0])
check(m, reply)
validity = m.group(1)
eq(status(c, "Projects.2024", "MESSAGES UNSEEN"), {"MESSAGES": 0, "UNSEEN": 0}, "STATUS")
reply = c.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))')
i = reply.index('* LIST (\\HasNoChildren) "." INBOX') if '* LIST (\\HasNoChildren) "." INBOX' in reply else \
    [j for j, l in enumerate(reply) if re.match(r'^\* LIST \([^)]*\) "\." "?INBOX"?$', l)][0]
check(re.match(r'^\* STATUS "?INBOX"? \(MESSAGES 4 UNSEEN 4\)$', reply[i + 1]), "LIST-STATUS of INBOX: %r" % reply)
eq(len(untagged(reply, "STATUS")), len(untagged(reply, "LIST")), "a STATUS for each LIST")
reply = c.lines("STATUS Nonexistent (MESSAGES)")
check(re.match(r"^R\d+ NO ", reply[-1]), reply)

# RENAME takes the children along (RFC 3501 6.3.5).
c.ok("RENAME Projects Work")
after = listing('LIST "" "*"')
check("Work" in after and "Work.2024" in after, after)
check("Projects" not in after and "Projects.2024" not in after, after)
reply = c.lines("RENAME Nonexistent Other")
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
reply = c.lines("RENAME Work Sent")
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
c.ok("DELETE Work.2024")
c.ok("DELETE Work")
c.ok('DELETE "Gr&APwA3w-e"')
reply = c.lines("DELETE Work")
check(re.match(r"^R\d+ NO \[NONEXISTENT\] ", reply[-1]), reply)
reply = c.lines("DELETE INBOX")
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
eq(sorted(listing('LIST "" "*"')), ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"], "after DELETE")

# RENAME INBOX moves its messages to the new folder and leaves INBOX empty (RFC 3501 6.3.5).
c.ok("RENAME INBOX Old")
eq(status(c, "INBOX", "MESSAGES"), {"MESSAGES": 0}, "INBOX after RENAME INBOX")
eq(status(c, "Old", "MESSAGES"), {"MESSAGES": 4}, "Old after RENAME INBOX")
c.logout()
PY
}

@test "FETCH: BODY[] byte for byte as delivered, HEADER TEXT MIME sections, partials, RFC822*, UID, \\Seen from BODY[] but not BODY.PEEK" {
	imaps
	session <<'PY'
c = connect("tls:" + PORT)
c.ok("SELECT INBOX")
mm = msgmap(c)
s1, s2, s3, s4 = mm["m1"], mm["m2"], mm["m3"], mm["m4"]
whole = message_crlf(maildir_file(MAILDIR, "m1"))
head, body = whole.split(b"\r\n\r\n", 1)
head += b"\r\n\r\n"

it = fetch1(c, "FETCH %d (UID RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] RFC822.HEADER FLAGS)" % s1)
eq(it["BODY[]"], whole, "BODY[] of m1")
eq(int(it["RFC822.SIZE"]), len(whole), "RFC822.SIZE of m1")
eq(it["BODY[HEADER]"], head, "BODY[HEADER]")
eq(it["BODY[TEXT]"], body, "BODY[TEXT]")
eq(body, b"Hello Alice,\r\nthe quick brown fox jumps over the lazy dog.\r\n", "m1's text")
eq(it["RFC822.HEADER"], head, "RFC822.HEADER")
eq(flagset(it["FLAGS"]), {"\\Recent"}, "no \\Seen after PEEK and RFC822.HEADER")
check(int(it["UID"]) >= 1, it)

it = fetch1(c, "FETCH %d (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] BODY.PEEK[HEADER.FIELDS.NOT (RECEIVED RETURN-PATH DELIVERED-TO X-ORIGINAL-TO)])" % s1)
eq(it["BODY[HEADER.FIELDS (FROM SUBJECT)]"], b"From: Bob Example <bob@example.org>\r\nSubject: Meeting agenda\r\n\r\n", "HEADER.FIELDS")
eq(it["BODY[HEADER.FIELDS.NOT (RECEIVED RETURN-PATH DELIVERED-TO X-ORIGINAL-TO)]"],
   b"From: Bob Example <bob@example.org>\r\nTo: Alice <alice@example.test>\r\nCc: Carol <carol@example.net>\r\n"
   b"Subject: Meeting agenda\r\nDate: Wed, 01 Jan 2020 10:00:00 +0000\r\nMessage-Id: <m1@example.org>\r\n\r\n",
   "HEADER.FIELDS.NOT")

# Partials: <0.10>, a middle, past the end.
it = fetch1(c, "FETCH %d (BODY.PEEK[]<0.10> BODY.PEEK[TEXT]<6.5> BODY.PEEK[TEXT]<100000.10>)" % s1)
eq(it["BODY[]<0>"], whole[:10], "BODY[]<0.10>")
eq(it["BODY[TEXT]<6>"], b"Alice", "BODY[TEXT]<6.5>")
eq(it["BODY[TEXT]<100000>"], b"", "a partial past the end")

# Sections of the multipart.
whole3 = message_crlf(maildir_file(MAILDIR, "m3"))
b64 = whole3.split(b'filename="report.bin"\r\n\r\n')[1].split(b"\r\n--XYZ--")[0]
it = fetch1(c, "FETCH %d (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[1]<4.8> BODY.PEEK[HEADER.FIELDS (Content-Type)])" % s3)
eq(it["BODY[1]"], b"See the attached report.", "BODY[1]")
eq(it["BODY[1.MIME]"], b"Content-Type: text/plain; charset=us-ascii\r\n\r\n", "BODY[1.MIME]")
eq(it["BODY[2]"], b64, "BODY[2]")
eq(len(b64), 2802, "the attachment's size")
eq(base64.b64decode(b64), bytes((i * 7 + 3) % 256 for i in range(2048)), "the attachment")
eq(it["BODY[2.MIME]"], b'Content-Type: application/octet-stream; name="report.bin"\r\n'
   b"Content-Transfer-Encoding: base64\r\n"
   b'Content-Disposition: attachment; filename="report.bin"\r\n\r\n', "BODY[2.MIME]")
eq(it["BODY[1]<4>"], b"the atta", "BODY[1]<4.8>")
eq(it["BODY[HEADER.FIELDS (CONTENT-TYPE)]"], b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n', "HEADER.FIELDS (Content-Type)")
eq(flagset(fetch1(c, "FETCH %d FLAGS" % s3)["FLAGS"]), {"\\Recent"}, "FLAGS after PEEKs")

# RFC822, RFC822.TEXT and BODY[...] set \Seen, and say so in a FLAGS item (RFC 3501 6.4.5).
it = fetch1(c, "FETCH %d RFC822" % s1)
eq(it["RFC822"], whole, "RFC822")
it = fetch1(c, "FETCH %d FLAGS" % s1)
eq(flagset(it["FLAGS"]), {"\\Seen", "\\Recent"}, "FLAGS after RFC822")
it = fetch1(c, "FETCH %d RFC822.TEXT" % s2)
eq(it["RFC822.TEXT"], b"A plain body with UniqueNeedle inside.\r\n", "RFC822.TEXT")
check("\\Seen" in flagset(it.get("FLAGS", b"()")), "RFC822.TEXT: no FLAGS (\\Seen) in %s" % it)
it = fetch1(c, "FETCH %d BODY[1]" % s3)
eq(it["BODY[1]"], b"See the attached report.", "BODY[1]")
check("\\Seen" in flagset(it.get("FLAGS", b"()")), "BODY[1]: no FLAGS (\\Seen) in %s" % it)
it = fetch1(c, "FETCH %d (INTERNALDATE UID)" % s2)
eq(it["INTERNALDATE"], b"16-Jun-2021 12:00:00 +0000", "INTERNALDATE of m2")
# UID FETCH answers with the UID even when not asked for it.
uid = int(it["UID"])
it = fetch1(c, "UID FETCH %d FLAGS" % uid)
eq(int(it["UID"]), uid, "UID in UID FETCH")
reply = c.lines("FETCH 99 FLAGS")
check(re.match(r"^R\d+ (BAD|NO) ", reply[-1]), reply)
eq(c.ok("UID FETCH 99:100 FLAGS"), [c.tagged], "UID FETCH of no message")
c.logout()
PY
}

@test "FETCH: ENVELOPE, BODY, BODYSTRUCTURE as Dovecot gives them, and the macros FAST ALL FULL" {
	imaps
	session <<'PY'
c = connect("tls:" + PORT)
c.ok("SELECT INBOX")
mm = msgmap(c)
s1, s2, s3, s4 = mm["m1"], mm["m2"], mm["m3"], mm["m4"]
# Each is one parenthesized list (RFC 3501 7.4.2).
raw = c.raw("FETCH %d (ENVELOPE BODY BODYSTRUCTURE)" % s1)
for item in (b"ENVELOPE (", b" BODY (", b"BODYSTRUCTURE ("):
    check(item + b'"' in raw or item + b"(" in raw, "%r is not followed by a list: %r" % (item, raw))
eq(fetch1(c, "FETCH %d ENVELOPE" % s1)["ENVELOPE"],
   b'("Wed, 01 Jan 2020 10:00:00 +0000" "Meeting agenda" (("Bob Example" NIL "bob" "example.org")) '
   b'(("Bob Example" NIL "bob" "example.org")) (("Bob Example" NIL "bob" "example.org")) '
   b'(("Alice" NIL "alice" "example.test")) (("Carol" NIL "carol" "example.net")) NIL NIL "<m1@example.org>")',
   "ENVELOPE of m1")
eq(fetch1(c, "FETCH %d ENVELOPE" % s2)["ENVELOPE"],
   b'("Tue, 15 Jun 2021 12:00:00 +0200" "=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=" (("Dave" NIL "dave" "example.com")) '
   b'(("Dave" NIL "dave" "example.com")) (("Dave" NIL "dave" "example.com")) ((NIL NIL "alice" "example.test")) '
   b'NIL ((NIL NIL "secret" "example.com")) NIL "<m2@example.com>")',
   "ENVELOPE of m2")
eq(fetch1(c, "FETCH %d BODYSTRUCTURE" % s1)["BODYSTRUCTURE"],
   b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 60 2 NIL NIL NIL NIL)', "BODYSTRUCTURE of m1")
eq(fetch1(c, "FETCH %d BODYSTRUCTURE" % s2)["BODYSTRUCTURE"],
   b'("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 40 1 NIL NIL NIL NIL)', "BODYSTRUCTURE of m2")
it = fetch1(c, "FETCH %d (BODYSTRUCTURE BODY)" % s3)
eq(it["BODYSTRUCTURE"],
   b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 24 0 NIL NIL NIL NIL)'
   b'("application" "octet-stream" ("name" "report.bin") NIL NIL "base64" 2802 NIL '
   b'("attachment" ("filename" "report.bin")) NIL NIL) "mixed" ("boundary" "XYZ") NIL NIL NIL)',
   "BODYSTRUCTURE of m3")
eq(it["BODY"],
   b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 24 0)'
   b'("application" "octet-stream" ("name" "report.bin") NIL NIL "base64" 2802) "mixed")', "BODY of m3")

# The macros are their items (RFC 3501 6.4.5).
want = {"FAST": {"FLAGS", "INTERNALDATE", "RFC822.SIZE"}}
want["ALL"] = want["FAST"] | {"ENVELOPE"}
want["FULL"] = want["ALL"] | {"BODY"}
for macro, items in want.items():
    got = fetches(c.raw("FETCH 1:4 %s" % macro))
    eq(sorted(n for n, _ in got), [1, 2, 3, 4], macro + " messages")
    for n, it in got:
        eq(set(it), items, "%s of %d" % (macro, n))
        eq(flagset(it["FLAGS"]), {"\\Recent"}, "%s FLAGS of %d" % (macro, n))
it = fetch1(c, "FETCH %d FULL" % s1)
eq(it["BODY"], b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 60 2)', "m1 BODY in FULL")
c.logout()
PY
}

@test "SEARCH: every key, sets, NOT OR and parentheses, UID SEARCH, CHARSET UTF-8 against an RFC 2047 Subject, case-insensitive" {
	imap_starttls
	session <<'PY'
# Flags: m1 \Answered \Flagged, m2 \Deleted \Draft $Work, m3 \Seen, m4 none; m5, appended
# delivered afterwards by maildir-deliver, is the one \Recent message there.
c0 = connect("starttls:" + PORT)
c0.ok("SELECT INBOX")
mm = msgmap(c0)
c0.ok("STORE %d +FLAGS.SILENT (\\Answered \\Flagged)" % mm["m1"])
c0.ok("STORE %d +FLAGS.SILENT (\\Deleted \\Draft $Work)" % mm["m2"])
c0.ok("STORE %d +FLAGS.SILENT (\\Seen)" % mm["m3"])
c0.logout()
m5 = (b"From: Frank <frank@example.org>\r\nTo: Frank <frank@example.org>\r\nSubject: appended\r\n"
      b"Date: Fri, 05 May 2023 09:00:00 +0000\r\nMessage-Id: <m5@example.org>\r\n\r\nA short one.\r\n")
deliver(MAILDIR, m5.replace(b"\r\n", b"\n"), mtime="2023-05-05 10:00:00 UTC")
c = connect("starttls:" + PORT)
sel = c.ok("SELECT INBOX")
check("* 5 EXISTS" in sel and "* 1 RECENT" in sel, sel)
mm = msgmap(c)
eq(sorted(mm), ["m1", "m2", "m3", "m4", "m5"], "messages")
ALL = set(mm)
sizes = {n: int(it["RFC822.SIZE"]) for s, it in fetches(c.raw("FETCH 1:* RFC822.SIZE"))
         for n in mm if mm[n] == s}
want = {
    "ALL": ALL,
    "ANSWERED": {"m1"}, "UNANSWERED": ALL - {"m1"},
    "FLAGGED": {"m1"}, "UNFLAGGED": ALL - {"m1"},
    "DELETED": {"m2"}, "UNDELETED": ALL - {"m2"},
    "DRAFT": {"m2"}, "UNDRAFT": ALL - {"m2"},
    "SEEN": {"m3"}, "UNSEEN": ALL - {"m3"},
    "KEYWORD $Work": {"m2"}, "UNKEYWORD $Work": ALL - {"m2"},
    "KEYWORD $Nothing": set(), "UNKEYWORD $Nothing": ALL,
    "RECENT": {"m5"}, "NEW": {"m5"}, "OLD": ALL - {"m5"},
    "BCC secret@example.com": {"m2"}, "CC carol": {"m1"}, "CC Carol": {"m1"},
    "FROM bob": {"m1", "m3"}, "FROM BOB@EXAMPLE.ORG": {"m1", "m3"}, 'FROM "Bob Example"': {"m1", "m3"},
    "TO alice@example.test": ALL - {"m5"}, "TO frank": {"m5"},
    "SUBJECT meeting": {"m1"}, "SUBJECT AGENDA": {"m1"}, 'SUBJECT "lunch tomorrow"': {"m4"},
    "HEADER X-Priority 1": {"m2"}, 'HEADER X-Priority ""': {"m2"}, "HEADER Message-Id m3@": {"m3"},
    "HEADER X-Nothing x": set(),
    "BODY uniqueneedle": {"m2"}, 'BODY "quick brown"': {"m1"}, "BODY meeting": set(),
    "TEXT meeting": {"m1"}, "TEXT LUNCH": {"m4"}, "TEXT dave@example.com": {"m2"},
    "LARGER %d" % sizes["m1"]: {n for n in ALL if sizes[n] > sizes["m1"]},
    "SMALLER %d" % sizes["m1"]: {n for n in ALL if sizes[n] < sizes["m1"]},
    "LARGER %d" % (sizes["m5"] - 1): {n for n in ALL if sizes[n] >= sizes["m5"]},
    "SMALLER %d" % (sizes["m5"] + 1): {n for n in ALL if sizes[n] <= sizes["m5"]},
    "BEFORE 1-Jan-2022": {"m1", "m2"}, "BEFORE 16-Jun-2021": {"m1"},
    "ON 16-Jun-2021": {"m2"}, "ON 02-Jan-2020": {"m1"}, "ON 5-May-2023": {"m5"},
    "SINCE 11-Mar-2022": {"m3", "m4", "m5"}, "SINCE 12-Mar-2022": {"m4", "m5"},
    "SENTBEFORE 10-Mar-2022": {"m1", "m2"}, "SENTON 10-Mar-2022": {"m3"}, "SENTON 15-Jun-2021": {"m2"},
    "SENTSINCE 1-Jul-2024": {"m4"}, "SENTSINCE 5-May-2023": {"m4", "m5"},
    "NOT SEEN": ALL - {"m3"}, "NOT NOT SEEN": {"m3"},
    "OR ANSWERED DRAFT": {"m1", "m2"}, "OR (FROM bob SEEN) TO frank": {"m3", "m5"},
    "(FROM bob SUBJECT report)": {"m3"}, "NOT (FROM bob)": {"m2", "m4", "m5"},
    "FLAGGED ANSWERED": {"m1"}, "FROM bob SINCE 1-Jan-2021": {"m3"},
    "OR OR SEEN DRAFT FLAGGED": {"m1", "m2", "m3"},
    "1:2": {n for n in ALL if mm[n] <= 2}, "1,3:*": {n for n in ALL if mm[n] != 2},
    "*": {n for n in ALL if mm[n] == 5}, "2:* UNSEEN": {n for n in ALL - {"m3"} if mm[n] >= 2},
    "CHARSET UTF-8 FROM bob": {"m1", "m3"}, "CHARSET US-ASCII SUBJECT meeting": {"m1"},
}
uids = msgmap(c, uid=True)
want["UID %d" % uids["m3"]] = {"m3"}
want["UID %d,%d" % (uids["m1"], uids["m4"])] = {"m1", "m4"}
want["UID 1:*"] = ALL
bad = []
for key, names in want.items():
    got = search(c, key, mm)
    if got != names:
        bad.append("SEARCH %s: got %s, want %s" % (key, sorted(got), sorted(names)))
    got = search(c, key, uids, uid=True)
    if got != names:
        bad.append("UID SEARCH %s: got %s, want %s" % (key, sorted(got), sorted(names)))
# CHARSET UTF-8 with non-ASCII needles in literals: the decoded Subject, any case.
for needle in ("Grüße", "köln", "KÖLN", "aus Köln"):
    b = needle.encode()
    got = search(c, "CHARSET UTF-8 SUBJECT {%d+}\r\n" % len(b) + needle, mm)
    if got != {"m2"}:
        bad.append("SEARCH CHARSET UTF-8 SUBJECT %s: got %s" % (needle, sorted(got)))
b = "GRÜSSE".encode()
got = search(c, "CHARSET UTF-8 TEXT {%d+}\r\n" % len(b) + "GRÜSSE", mm)
if got != set():
    bad.append("TEXT GRÜSSE (not a substring of Grüße): got %s" % sorted(got))
reply = c.lines("SEARCH CHARSET KOI8-X SUBJECT x")
if not re.match(r"^R\d+ NO \[BADCHARSET", reply[-1]):
    bad.append("unknown charset: %r" % reply)
for key in ("FROBNICATE", "BEFORE 32-Jan-2020", "OR SEEN", "(SEEN"):
    reply = c.lines("SEARCH " + key)
    if not re.match(r"^R\d+ BAD ", reply[-1]):
        bad.append("SEARCH %s: %r" % (key, reply))
check(not bad, "\n".join(bad))
c.logout()
PY
}

@test "STORE +FLAGS -FLAGS FLAGS .SILENT and keywords, COPY MOVE and UID forms with COPYUID, EXPUNGE numbering, UID EXPUNGE, CHECK CLOSE UNSELECT" {
	imaps
	session <<'PY'
c = connect("tls:" + PORT)
c.ok("SELECT INBOX")
mm = msgmap(c)
uids = msgmap(c, uid=True)
s1, s2, s3, s4 = mm["m1"], mm["m2"], mm["m3"], mm["m4"]

def store(text):
    reply = c.raw(text)
    check(re.match(r"^R\d+ OK", c.tagged), "%s: %r" % (text, reply))
    return {n: flagset(it["FLAGS"]) for n, it in fetches(reply)}, reply

got, _ = store("STORE %d +FLAGS (\\Flagged \\Answered)" % s1)
eq(got, {s1: {"\\Flagged", "\\Answered", "\\Recent"}}, "+FLAGS")
got, _ = store("STORE %d -FLAGS (\\Answered)" % s1)
eq(got, {s1: {"\\Flagged", "\\Recent"}}, "-FLAGS")
got, _ = store("STORE %d FLAGS (\\Seen \\Draft)" % s1)
eq(got, {s1: {"\\Seen", "\\Draft", "\\Recent"}}, "FLAGS")
got, _ = store("STORE %d +FLAGS.SILENT (\\Flagged)" % s1)
eq(got, {}, "+FLAGS.SILENT answers no FETCH")
got, _ = store("STORE %d:%d -FLAGS.SILENT (\\Draft)" % (min(s1, s2), max(s1, s2)))
eq(got, {}, "-FLAGS.SILENT answers no FETCH")
got, _ = store("STORE %d FLAGS.SILENT (\\Seen \\Flagged)" % s2)
eq(got, {}, "FLAGS.SILENT answers no FETCH")
# A new keyword: FLAGS and PERMANENTFLAGS are announced again with it (RFC 3501 7.2.6).
got, reply = store("STORE %d +FLAGS ($Label1 Work)" % s3)
eq(got, {s3: {"$Label1", "Work", "\\Recent"}}, "+FLAGS keywords")
fl = untagged(reply, "FLAGS")
check(fl and "$Label1" in fl[0] and "Work" in fl[0], "no * FLAGS with the new keywords: %r" % reply)
got, _ = store("STORE %d -FLAGS (Work)" % s3)
eq(got, {s3: {"$Label1", "\\Recent"}}, "-FLAGS keyword")
# UID STORE answers with the UID (RFC 3501 6.4.8).
reply = c.raw("UID STORE %d +FLAGS (\\Answered)" % uids["m4"])
f = fetches(reply)
eq(len(f), 1, "UID STORE answer")
eq((f[0][0], int(f[0][1]["UID"]), flagset(f[0][1]["FLAGS"])), (s4, uids["m4"], {"\\Answered", "\\Recent"}), "UID STORE")
# What was stored is in the files' names (Maildir info), for other programs.
check(maildir_file(MAILDIR, "m1").endswith(":2,FS"), maildir_file(MAILDIR, "m1"))
c.ok("CHECK")

# COPY: COPYUID with the source and destination UIDs, flags kept (RFC 4315).
reply = c.ok("COPY %d,%d Archive" % (s1, s3))
m = re.match(r"^R\d+ OK \[COPYUID ([1-9][0-9]*) (\S+) (\S+)\]", reply[-1])
check(m, reply)
srcs = sorted(uids[n] for n in ("m1", "m3"))
eq(m.group(2), "%d,%d" % tuple(srcs) if srcs[1] != srcs[0] + 1 else "%d:%d" % tuple(srcs), "COPYUID source set")
eq(m.group(3), "1:2", "COPYUID destination set")
archive_validity = m.group(1)
reply = c.lines("COPY %d Nonexistent" % s1)
check(re.match(r"^R\d+ NO \[TRYCREATE\] ", reply[-1]), reply)
reply = c.ok("UID COPY %d Archive" % uids["m2"])
check(re.match(r"^R\d+ OK \[COPYUID %s %d 3\]" % (archive_validity, uids["m2"]), reply[-1]), reply)
eq(status(c, "Archive", "MESSAGES UIDNEXT"), {"MESSAGES": 3, "UIDNEXT": 4}, "Archive after COPY")

# MOVE (RFC 6851): COPYUID untagged, then EXPUNGE, then OK.
reply = c.ok("MOVE %d Trash" % s4)
check(re.match(r"^\* OK \[COPYUID [0-9]+ %d 1\]" % uids["m4"], reply[0]), reply)
eq([l for l in reply[1:-1] if not l.endswith(" RECENT")], ["* %d EXPUNGE" % s4], "MOVE's EXPUNGE")
order = [n for n, _ in sorted(mm.items(), key=lambda kv: kv[1]) if n != "m4"]
mm = {n: i + 1 for i, n in enumerate(order)}
reply = c.ok("UID MOVE %d Trash" % uids["m2"])
check(re.match(r"^\* OK \[COPYUID [0-9]+ %d 2\]" % uids["m2"], reply[0]), reply)
eq([l for l in reply[1:-1] if not l.endswith(" RECENT")], ["* %d EXPUNGE" % mm["m2"]], "UID MOVE's EXPUNGE")
order.remove("m2")
mm = {n: i + 1 for i, n in enumerate(order)}
eq(status(c, "Trash", "MESSAGES"), {"MESSAGES": 2}, "Trash after MOVE")
eq(msgmap(c), mm, "INBOX after MOVE")

# The copies are the messages, byte for byte, with their flags.
c.ok("SELECT Archive")
am = msgmap(c)
it = fetch1(c, "FETCH %d (BODY.PEEK[] FLAGS)" % am["m1"])
eq(it["BODY[]"], message_crlf(maildir_file(MAILDIR, "m1")), "the copy of m1")
eq(flagset(it["FLAGS"]) - {"\\Recent"}, {"\\Seen", "\\Flagged"}, "the copy's flags")
it = fetch1(c, "FETCH %d FLAGS" % am["m3"])
eq(flagset(it["FLAGS"]) - {"\\Recent"}, {"$Label1"}, "the copy's keywords")

# EXPUNGE: the sequence numbers, applied in order, remove exactly the \Deleted ones.
for i in range(3):
    typ, _ = c.append("Archive", None, None, ("Subject: x%d\r\nMessage-Id: <m%d@example.org>\r\n\r\nx\r\n" % (i, 6 + i)).encode())
    eq(typ, "OK", "APPEND")
c.ok("NOOP")
am = msgmap(c)
eq(len(am), 6, "Archive: %r" % am)
view = [n for n, _ in sorted(am.items(), key=lambda kv: kv[1])]
gone = {view[1], view[3], view[4]}
c.ok("STORE %s +FLAGS.SILENT (\\Deleted)" % ",".join(str(am[n]) for n in gone))
reply = c.ok("EXPUNGE")
for line in reply[:-1]:
    m = re.match(r"^\* (\d+) EXPUNGE$", line)
    check(m, reply)
    del view[int(m.group(1)) - 1]
eq(len(reply) - 1, 3, "EXPUNGE responses")
eq(set(view) & gone, set(), "expunged")
eq(view, [n for n, _ in sorted(msgmap(c).items(), key=lambda kv: kv[1])], "the view after EXPUNGE")

# UID EXPUNGE (RFC 4315) expunges only the named ones among the \Deleted.
am = msgmap(c)
au = msgmap(c, uid=True)
c.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
reply = c.ok("UID EXPUNGE %d" % au[view[1]])
eq(reply[:-1], ["* 2 EXPUNGE"], "UID EXPUNGE")
eq(len(msgmap(c)), 2, "after UID EXPUNGE")
# UNSELECT leaves \Deleted messages; CLOSE expunges them silently.
reply = c.ok("UNSELECT")
eq(len(reply), 1, "UNSELECT")
eq(status(c, "Archive", "MESSAGES"), {"MESSAGES": 2}, "after UNSELECT")
c.ok("SELECT Archive")
reply = c.ok("CLOSE")
eq(len(reply), 1, "CLOSE says nothing but OK")
eq(status(c, "Archive", "MESSAGES"), {"MESSAGES": 0}, "after CLOSE")
reply = c.lines("FETCH 1 FLAGS")
check(re.match(r"^R\d+ BAD ", reply[-1]), "FETCH after CLOSE: %r" % reply)
c.logout()
PY
}

@test "APPEND: BODY[] is what was appended, flags and date kept, APPENDUID, LITERAL+, TRYCREATE, \\Recent, and over APPENDLIMIT NO [TOOBIG]" {
	imaps IMAP_APPENDLIMIT=4096
	session <<'PY'
c = connect("tls:" + PORT)
caps = c.lines("CAPABILITY")[0].split()
check("APPENDLIMIT=4096" in caps, caps)
# (APPEND into an INBOX no session has read yet: its own test below.)
c.ok("EXAMINE INBOX")
c.ok("UNSELECT")
msg = (b"From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\nSubject: draft\r\n"
       b"Message-Id: <m7@example.test>\r\n\r\nline one\r\n\r\n.dot line\r\n\ttabbed \xc3\xa9t\xc3\xa9\r\nlast")
typ, data = c.append("INBOX", "(\\Seen $Label)", '"05-May-2023 10:00:00 +0200"', msg)
eq(typ, "OK", "APPEND")
m = re.match(r"^\[APPENDUID ([1-9][0-9]*) ([1-9][0-9]*)\] ", data[0].decode())
check(m, data)
validity, uid = int(m.group(1)), int(m.group(2))
eq(uid, 5, "the appended message's UID")
sel = c.ok("SELECT INBOX")
check("* 5 EXISTS" in sel, sel)
check(any(l == "* OK [UIDVALIDITY %d] UIDs valid" % validity for l in sel), (validity, sel))
it = fetch1(c, "UID FETCH %d (BODY.PEEK[] RFC822.SIZE FLAGS INTERNALDATE)" % uid)
eq(it["BODY[]"], msg, "BODY[] of the appended message")
eq(int(it["RFC822.SIZE"]), len(msg), "RFC822.SIZE")
eq(it["INTERNALDATE"], b"05-May-2023 08:00:00 +0000", "INTERNALDATE")
eq(flagset(it["FLAGS"]) - {"\\Recent"}, {"\\Seen", "$Label"}, "the appended flags")
# A LITERAL+ APPEND into another folder, while INBOX is selected.
body = b"Subject: via literal+\r\n\r\nhello\r\n"
reply = c.lines(b"APPEND Drafts (\\Draft) {%d+}\r\n" % len(body) + body)
check(re.match(r"^R\d+ OK \[APPENDUID [0-9]+ 1\] ", reply[-1]), reply)
eq(status(c, "Drafts", "MESSAGES"), {"MESSAGES": 1}, "Drafts")
# An APPEND into the selected folder shows up as EXISTS (at the latest on the next NOOP).
reply = c.lines(b"APPEND INBOX {%d+}\r\n" % len(body) + body)
check(re.match(r"^R\d+ OK \[APPENDUID %d 6\] " % validity, reply[-1]), reply)
if "* 6 EXISTS" not in reply:
    reply = c.ok("NOOP")
check("* 6 EXISTS" in reply, reply)
reply = c.lines(b"APPEND Nowhere {%d+}\r\n" % len(body) + body)
check(re.match(r"^R\d+ NO \[TRYCREATE\] ", reply[-1]), reply)
# Over the limit: NO [TOOBIG] instead of the continuation (RFC 7889), and the connection goes on.
tag = c.raw_send("APPEND INBOX {5000}")
reply = split_lines(c.raw_read(tag, until_continuation=True))
check(re.match(r"^R\d+ NO \[TOOBIG\] ", reply[-1]), "APPEND of 5000 bytes: %r" % reply)
c.ok("NOOP")
typ, data = c.append("INBOX", None, None, b"x" * 4097)
check(typ == "NO" and b"[TOOBIG]" in data[0], (typ, data))
typ, data = c.append("INBOX", None, None, b"Subject: four kB\r\n\r\n" + b"y" * (4096 - 20))
eq(typ, "OK", "an APPEND of exactly the limit")
# An APPENDed message is \Recent (RFC 3501 6.3.11: "In either case, the Recent flag is also set").
c.ok("UNSELECT")
typ, data = c.append("INBOX", None, None, b"Subject: recent\r\n\r\nnew\r\n")
eq(typ, "OK", "APPEND")
uid = int(re.match(r"^\[APPENDUID [0-9]+ ([0-9]+)\]", data[0].decode()).group(1))
c.ok("SELECT INBOX")
it = fetch1(c, "UID FETCH %d FLAGS" % uid)
eq(flagset(it["FLAGS"]), {"\\Recent"}, "the flags of a message appended to a folder nobody had selected")
c.logout()
PY
}

@test "APPEND into a folder no session has read yet: the new message's UID comes after the delivered ones" {
	imaps
	session <<'PY'
c = connect("tls:" + PORT)
typ, data = c.append("INBOX", None, None, b"Subject: late\r\nMessage-Id: <m5@example.org>\r\n\r\nlate\r\n")
eq(typ, "OK", "APPEND")
m = re.match(r"^\[APPENDUID [0-9]+ ([0-9]+)\]", data[0].decode())
check(m, data)
c.ok("EXAMINE INBOX")
uids = msgmap(c, uid=True)
seqs = msgmap(c)
eq(int(m.group(1)), uids["m5"], "APPENDUID against UID FETCH")
# RFC 3501 2.3.1.1: UIDs ascend in the order messages were added; the four delivered before.
eq(seqs["m5"], 5, "the appended message's sequence number")
eq(uids["m5"], 5, "the appended message's UID")
c.logout()
PY
}

@test "\\Recent in exactly one session; EXAMINE is read-only and leaves \\Seen alone" {
	imaps
	session <<'PY'
a = connect("tls:" + PORT)
b = connect("tls:" + PORT)
sa = a.ok("SELECT INBOX")
sb = b.ok("SELECT INBOX")
check("* 4 RECENT" in sa, sa)
check("* 0 RECENT" in sb, sb)
eq({flagset(it["FLAGS"]) == {"\\Recent"} for _, it in fetches(a.raw("FETCH 1:* FLAGS"))}, {True}, "A's flags")
eq({flagset(it["FLAGS"]) == set() for _, it in fetches(b.raw("FETCH 1:* FLAGS"))}, {True}, "B's flags")
deliver(MAILDIR, b"Subject: new\nMessage-Id: <m5@example.org>\n\nnew\n")
ra, rb = a.ok("NOOP"), b.ok("NOOP")
check("* 5 EXISTS" in ra and "* 5 EXISTS" in rb, (ra, rb))
recent = [("* 5 RECENT" in ra), ("* 5 RECENT" in rb)]
flags = [flagset(fetch1(x, "FETCH 5 FLAGS")["FLAGS"]) for x in (a, b)]
eq(sorted(map(sorted, flags)), [[], ["\\Recent"]], "the new message's flags in the two sessions")
eq(recent.count(True), 1, "sessions that announced 5 RECENT: %r %r" % (ra, rb))
eq(recent[0], "\\Recent" in flags[0], "RECENT and FETCH FLAGS agree")
a.logout()
b.logout()
c = connect("tls:" + PORT)
sc = c.ok("EXAMINE INBOX")
check("* 0 RECENT" in sc, "a later session: %r" % sc)
check(re.match(r"^R\d+ OK \[READ-ONLY\] ", sc[-1]), sc)
it = fetch1(c, "FETCH 1 (BODY[TEXT] FLAGS)")
check("\\Seen" not in flagset(it["FLAGS"]), "EXAMINE: BODY[] set \\Seen: %r" % it)
reply = c.lines("STORE 1 +FLAGS (\\Flagged)")
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
reply = c.lines("EXPUNGE")
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
eq(status(c, "INBOX", "MESSAGES UNSEEN"), {"MESSAGES": 5, "UNSEEN": 5}, "nothing changed")
c.logout()
PY
}

@test "two sessions on one folder: what one expunges and stores, the other sees as EXPUNGE and FETCH FLAGS on its next NOOP" {
	imap_starttls
	session <<'PY'
a = connect("starttls:" + PORT)
b = connect("starttls:" + PORT)
a.ok("SELECT INBOX")
b.ok("SELECT INBOX")
mm = msgmap(a)
eq(msgmap(b), mm, "the same view")
uids = msgmap(b, uid=True)
a.ok("STORE %d +FLAGS.SILENT (\\Deleted)" % mm["m2"])
a.ok("STORE %d +FLAGS.SILENT (\\Flagged $Important)" % mm["m3"])
reply = a.ok("EXPUNGE")
eq([l for l in reply if "EXPUNGE" in l], ["* %d EXPUNGE" % mm["m2"]], "A's EXPUNGE")
order = [n for n, _ in sorted(mm.items(), key=lambda kv: kv[1]) if n != "m2"]
reply = b.ok("NOOP")
eq([l for l in reply if l.endswith(" EXPUNGE")], ["* %d EXPUNGE" % mm["m2"]], "B's EXPUNGE on NOOP")
f = fetches("\r\n".join(reply).encode() + b"\r\n")
# B sees m3's new flags under its number after the expunge, with its UID.
new3 = order.index("m3") + 1
got = {n: flagset(it["FLAGS"]) for n, it in f}
check(new3 in got, "no FETCH FLAGS for m3 (now %d) in %r" % (new3, reply))
eq(got[new3] - {"\\Recent"}, {"\\Flagged", "$Important"}, "m3's flags in B")
check(any("$Important" in l for l in untagged(reply, "FLAGS")), "no * FLAGS with the new keyword: %r" % reply)
# The EXPUNGE comes before the FETCH that uses the new numbering.
check(reply.index("* %d EXPUNGE" % mm["m2"]) < [i for i, l in enumerate(reply) if l.startswith("* %d FETCH" % new3)][0], reply)
eq(msgmap(b), {n: i + 1 for i, n in enumerate(order)}, "B's view")
# Nothing more on a second NOOP.
eq(b.ok("NOOP")[:-1], [], "a second NOOP")
a.logout()
b.logout()
PY
}

@test "IDLE: a message maildir-deliver puts in shows as EXISTS within a second; flags and expunges from another session too; DONE" {
	imaps
	session <<'PY'
import time
a = connect("tls:" + PORT)
b = connect("tls:" + PORT)
a.ok("SELECT INBOX")
b.ok("SELECT INBOX")
tag = a.raw_send("IDLE")
first = a.raw_read(tag, until_continuation=True)
check(first.startswith(b"+ "), first)
a.sock.settimeout(5)
buf = bytearray()

def got(line):
    def cond():
        while line.encode() not in buf:
            a.sock.settimeout(0.05)
            try:
                chunk = a.sock.recv(4096)
            except (socket.timeout, ssl.SSLWantReadError, TimeoutError):
                return False
            finally:
                a.sock.settimeout(5)
            if not chunk:
                raise Failure("connection closed in IDLE: %r" % bytes(buf))
            buf.extend(chunk)
        return True
    return cond

t0 = time.monotonic()
deliver(MAILDIR, b"Subject: during idle\nMessage-Id: <m5@example.org>\n\nidle\n")
wait_for(got("* 5 EXISTS\r\n"), 1.0, "* 5 EXISTS in IDLE (%r)" % bytes(buf))
print("EXISTS after %.3f s" % (time.monotonic() - t0))
b.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
wait_for(got("* 1 FETCH ("), 2.0, "FETCH FLAGS in IDLE (%r)" % bytes(buf))
b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
b.ok("EXPUNGE")
wait_for(got("* 2 EXPUNGE\r\n"), 2.0, "EXPUNGE in IDLE (%r)" % bytes(buf))
a.send(b"DONE\r\n")
wait_for(got(tag + " OK"), 2.0, "the tagged OK after DONE (%r)" % bytes(buf))
lines = split_lines(bytes(buf))
check(re.match(r"^\* 1 FETCH \(.*FLAGS \(.*\\Seen", [l for l in lines if l.startswith("* 1 FETCH")][0]), lines)
eq(lines[-1].split()[:2], [tag, "OK"], "IDLE's end")
# The session goes on, with the new numbering.
eq(len(fetches(a.raw("FETCH 1:* UID"))), 4, "messages after IDLE")
a.logout()
b.logout()
PY
}

@test "QUOTA: GETQUOTAROOT INBOX and GETQUOTA from maildirsize, usage grows with APPEND; no quota root without a quota" {
	imaps
	session <<'PY'
def usage(path):
    with open(path) as f:
        lines = f.read().split("\n")
    limits, total, count = lines[0], 0, 0
    for l in lines[1:]:
        if l.strip():
            b, n = l.split()
            total, count = total + int(b), count + int(n)
    return limits, total, count

limits, used, count = usage(os.path.join(BOBDIR, "maildirsize"))
eq(limits, "104857600S", "bob's maildirsize")
c = connect("tls:" + PORT, user="bob@example.test", password="bob-demo")
reply = c.ok("GETQUOTAROOT INBOX")
check(re.match(r'^\* QUOTAROOT "?INBOX"? "User quota"$', reply[0]), "QUOTAROOT: %r" % reply)
eq(reply[1], '* QUOTA "User quota" (STORAGE %d 102400)' % ((used + 1023) // 1024), "QUOTA")
typ, data = c.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"z" * 5000 + b"\r\n")
eq(typ, "OK", "APPEND")
limits, used2, count2 = usage(os.path.join(BOBDIR, "maildirsize"))
check(used2 >= used + 5000 and count2 == count + 1, (used, used2, count, count2))
reply = c.ok('GETQUOTA "User quota"')
eq(reply[0], '* QUOTA "User quota" (STORAGE %d 102400)' % ((used2 + 1023) // 1024), "QUOTA after APPEND")
reply = c.lines('GETQUOTA "Other"')
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
reply = c.lines('SETQUOTA "User quota" (STORAGE 1)')
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
c.logout()
c = connect("tls:" + PORT)
reply = c.ok("GETQUOTAROOT INBOX")
eq(len(reply), 2, "alice has no quota: %r" % reply)
check(re.match(r'^\* QUOTAROOT "?INBOX"?$', reply[0]), "alice has no quota: %r" % reply)
c.logout()
PY
}

@test "STARTTLS injection: a command pipelined after STARTTLS in the same packet is thrown away" {
	imap_starttls
	run -0 "$PYTHON" - "$SERVER_PORT" <<'PY'
import socket, ssl, sys
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = raw.makefile("rb")
print("greeting:", f.readline().decode().rstrip())
raw.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")	# one write: one packet on loopback
print("starttls:", f.readline().decode().rstrip())
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(raw)
s.sendall(b"c NOOP\r\n")
# Had "b CAPABILITY" been taken as sent under TLS, its replies would come first.
print("first line inside TLS:", s.makefile("rb").readline().decode().rstrip())
PY
	assert_line --regexp '^starttls: a OK '
	assert_line --regexp '^first line inside TLS: c OK '
}

# imap_pool [VAR=V...]: the 143 service as make run runs it: tls-server -n, which keeps one
# imap-serve for its sessions (pool(5)); a login's process becomes the checkpassword program.
imap_pool() {
	start_listening tls-server "$BIN/tls-server" -- "${SERVER_ENV[@]}" UCSPITLS='!' "$@" -n -c2 -S2 \
		-- "$BIN/imap-serve" $CHECKPW
}

@test "under tls-server nothing waits for a login: a refused one is answered by the next process, which reads on where the last stopped, under TLS" {
	imap_pool
	run -0 imap_py - "$SERVER_PORT" "$SERVER_PID" <<'PY'
import sys
from pool_session import children, session_processes, starttls, unix_datagram_sockets
port, master = int(sys.argv[1]), int(sys.argv[2])
s, f = starttls(port, b"s STARTTLS")
s.sendall(b"n NOOP\r\n")
f.readline()
# Before login the session's process holds its end of the note's socket.
for w in children(master):
    for pool in children(w):
        for session in children(pool):
            print("before login, the session's process holds:", unix_datagram_sockets(session))
# One write: each refusal ends a process, and the next must find what came after it.
s.sendall(b"a LOGIN alice@example.test wrong\r\nb NOOP\r\nc LOGIN alice@example.test wrong\r\n"
          b"d CAPABILITY\r\ne LOGIN alice@example.test alice-demo\r\nf SELECT INBOX\r\n")
while True:
    line = f.readline().decode().rstrip()
    print(line)
    if line.startswith("f "):
        break
# Logged in: below the program tls-server keeps, one process, the session's.
for cmdline, below in session_processes(master):
    print("session process:", cmdline, "children:", below)
s.sendall(b"g LOGOUT\r\n")
for line in f:
    print(line.decode().rstrip())
PY
	assert_line -n 0 "before login, the session's process holds: 1"
	assert_line -n 1 --regexp '^a NO \[AUTHENTICATIONFAILED\] '
	assert_line -n 2 --regexp '^b OK '
	assert_line -n 3 --regexp '^c NO \[AUTHENTICATIONFAILED\] '
	# Still under TLS: AUTH=PLAIN, and no STARTTLS offered again.
	assert_line -n 4 --regexp '^\* CAPABILITY IMAP4rev1 .*AUTH=PLAIN'
	refute_line --regexp '^\* CAPABILITY .*STARTTLS'
	assert_line -n 5 --regexp '^d OK '
	assert_line -n 6 --regexp '^e OK \[CAPABILITY IMAP4rev1 .*\] Logged in$'
	assert_line '* 4 EXISTS'
	assert_line --regexp '^f OK \[READ-WRITE\] '
	assert_line --regexp "^session process: $BIN/imap-serve -A children: 0$"
	assert_equal "$(grep -c '^session process:' <<<"$output")" 1
	assert_line --regexp '^g OK '
}

@test "under tls-server: the third refusal closes the session and the next client is served; checkpassword's trouble is NO [UNAVAILABLE]" {
	imap_pool
	run -0 imap_py - "$SERVER_PORT" <<'PY'
import sys
from pool_session import starttls
s, f = starttls(int(sys.argv[1]), b"s STARTTLS")
s.sendall(b"".join(b"%d LOGIN alice@example.test wrong\r\n" % i for i in range(1, 5)))
for line in f:
    print(line.decode().rstrip())
s, f = starttls(int(sys.argv[1]), b"s STARTTLS")
s.sendall(b"a LOGIN alice@example.test alice-demo\r\nb LOGOUT\r\n")
for line in f:
    print(line.decode().rstrip())
PY
	assert_line -n 0 --regexp '^1 NO \[AUTHENTICATIONFAILED\] '
	assert_line -n 1 --regexp '^2 NO \[AUTHENTICATIONFAILED\] '
	assert_line -n 2 --regexp '^3 NO \[AUTHENTICATIONFAILED\] '
	assert_line -n 3 '* BYE Too many failed logins'
	refute_line --regexp '^4 '
	assert_line --regexp '^a OK \[CAPABILITY .*\] Logged in$'
	assert_line --regexp '^b OK '
	stop_server
	# A user database that cannot be read: checkpassword-mysql exits 111.
	imap_pool USERDB="$BATS_TEST_TMPDIR/missing.cdb"
	run -0 imap_py - "$SERVER_PORT" <<'PY'
import sys
from pool_session import starttls
s, f = starttls(int(sys.argv[1]), b"s STARTTLS")
s.sendall(b"a LOGIN alice@example.test alice-demo\r\nb NOOP\r\nc LOGOUT\r\n")
for line in f:
    print(line.decode().rstrip())
PY
	assert_line -n 0 --regexp '^a NO \[UNAVAILABLE\] '
	assert_line -n 1 --regexp '^b OK '
	assert_line --regexp '^c OK '
	assert_log 'imap-serve: trouble: the checkpassword program exited 111' "$SERVER_LOG"
}

@test "under tls-server (implicit TLS): a refused login is no bad command; a session that dies after its login is not taken back" {
	start_listening tls-server "$BIN/tls-server" -- "${SERVER_ENV[@]}" IMAP_BAD_COMMANDS=3 -c2 \
		-- "$BIN/imap-serve" $CHECKPW
	run -0 imap_py - "$SERVER_PORT" "$SERVER_PID" <<'PY'
import os, signal, sys
from pool_session import children, tls
port, master = int(sys.argv[1]), int(sys.argv[2])
s, f = tls(port)
# Two bad commands, a refused login, a third bad one: not three in a row.
s.sendall(b"x1 FOO\r\nx2 FOO\r\na LOGIN alice@example.test wrong\r\nx3 FOO\r\nb NOOP\r\n"
          b"c LOGIN alice@example.test alice-demo\r\n")
while True:
    line = f.readline().decode().rstrip()
    print(line)
    if line.startswith("c "):
        break
# The session's process dies (as by the OOM killer): the client is cut off, not taken back
# to before its login.
for w in children(master):
    for pool in children(w):
        for session in children(pool):
            print("session process:", open("/proc/%d/cmdline" % session).read().replace("\0", " ").strip())
            os.kill(session, signal.SIGKILL)
rest = f.read().decode()
print("after the kill:", repr(rest))
PY
	assert_line -n 0 --regexp '^x1 BAD '
	assert_line -n 1 --regexp '^x2 BAD '
	assert_line -n 2 --regexp '^a NO \[AUTHENTICATIONFAILED\] '
	assert_line -n 3 --regexp '^x3 BAD '
	assert_line -n 4 --regexp '^b OK '
	assert_line -n 5 --regexp '^c OK \[CAPABILITY .*\] Logged in$'
	assert_line "session process: $BIN/imap-serve -A"
	assert_line "after the kill: ''"
}

@test "under tls-server with IMAP_LOGIN_USER: the parser holds no channel to the pool's parent; logins work" {
	[ "$(id -u)" = 0 ] || skip "needs root to change users"
	imap_pool IMAP_LOGIN_USER=nobody
	run -0 imap_py - "$SERVER_PORT" "$SERVER_PID" <<'PY'
import sys
from pool_session import children, starttls, unix_datagram_sockets
port, master = int(sys.argv[1]), int(sys.argv[2])
s, f = starttls(port, b"s STARTTLS")
s.sendall(b"n NOOP\r\n")
print(f.readline().decode().rstrip())
# tls-server's worker, its imap-serve, the session's process (root), the parser (nobody).
for w in children(master):
    for pool in children(w):
        for session in children(pool):
            print("session holds:", unix_datagram_sockets(session))
            for parser in children(session):
                uid = [l.split()[1] for l in open("/proc/%d/status" % parser) if l.startswith("Uid:")]
                print("parser uid %s holds: %d" % (uid[0], unix_datagram_sockets(parser)))
s.sendall(b"a LOGIN alice@example.test wrong\r\nb LOGIN alice@example.test alice-demo\r\n"
          b"c LOGOUT\r\n")
for line in f:
    print(line.decode().rstrip())
PY
	assert_line -n 0 --regexp '^n OK '
	assert_line 'session holds: 0'
	assert_line --regexp '^parser uid [0-9]+ holds: 0$'
	refute_line --regexp '^parser uid 0 '
	assert_line --regexp '^a NO \[AUTHENTICATIONFAILED\] '
	assert_line --regexp '^b OK \[CAPABILITY .*\] Logged in$'
	assert_line --regexp '^c OK '
}

@test "under tls-server: a login refused in cleartext is answered by the next process, in which STARTTLS still works" {
	imap_pool IMAP_AUTH_PLAINTEXT=1
	run -0 imap_py - "$SERVER_PORT" <<'PY'
import socket, ssl, sys
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"a LOGIN alice@example.test wrong\r\nb CAPABILITY\r\n")
for _ in range(3):
    print(f.readline().decode().rstrip())
raw.sendall(b"s STARTTLS\r\n")
print(f.readline().decode().rstrip())
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(raw)
print("TLS", s.version())
s.sendall(b"c LOGIN alice@example.test alice-demo\r\nd LOGOUT\r\n")
for line in s.makefile("rb"):
    print(line.decode().rstrip())
PY
	assert_line -n 0 --regexp '^a NO \[AUTHENTICATIONFAILED\] '
	assert_line -n 1 --regexp '^\* CAPABILITY IMAP4rev1 .*STARTTLS'
	assert_line -n 2 --regexp '^b OK '
	assert_line -n 3 --regexp '^s OK '
	assert_line -n 4 'TLS TLSv1.3'
	assert_line --regexp '^c OK \[CAPABILITY .*\] Logged in$'
	assert_line --regexp '^d OK '
}

# log_count REGEX N: N lines of the server's log match REGEX.
log_count() {
	[ "$(grep -c -- "$1" "$SERVER_LOG")" -eq "$2" ]
}

# imaps_shared [VAR=V...]: -S2, implicit TLS: the 993 service's shape, with room for two sessions in a worker.
imaps_shared() {
	start_listening tls-server "$BIN/tls-server" -- "${SERVER_ENV[@]}" "$@" -c3 -S2 \
		-- "$BIN/imap-serve" $CHECKPW
}

@test "tls-server -S 2: a worker holds two sessions at once, a thread each, given to one imap-serve; a third goes to a new worker; each its own log line" {
	imaps_shared
	run -0 imap_py - "$SERVER_PORT" "$SERVER_PID" <<'PY'
import os, sys
from pool_session import children, imap_login
port, master = int(sys.argv[1]), int(sys.argv[2])
def login(tag):
    return imap_login(port, tag, select=True)
def busy_workers():
    """Each worker that has sessions: its threads, its programs, their session processes."""
    found = []
    for w in children(master):
        threads = len(os.listdir("/proc/%d/task" % w)) - 1
        programs = children(w)
        sessions = sum(len(children(p)) for p in programs)
        if sessions:
            found.append((threads, len(programs), sessions))
    return sorted(found)
one, two = login(b"a"), login(b"b")
print("two sessions:", busy_workers())
# Both answer, one after the other, each its own.
for tag, (s, f) in ((b"c", one), (b"d", two), (b"e", one)):
    s.sendall(tag + b" STATUS INBOX (MESSAGES)\r\n")
    print(f.readline().decode().rstrip(), "/", f.readline().decode().rstrip())
three = login(b"f")
print("three sessions:", busy_workers())
for s, f in (one, two, three):
    s.sendall(b"z LOGOUT\r\n")
    f.read()
PY
	assert_line "two sessions: [(2, 1, 2)]"
	assert_line --regexp '^\* STATUS "INBOX" \(MESSAGES 4\) / c OK'
	assert_line --regexp '^\* STATUS "INBOX" \(MESSAGES 4\) / d OK'
	assert_line --regexp '^\* STATUS "INBOX" \(MESSAGES 4\) / e OK'
	assert_line "three sessions: [(1, 1, 1), (2, 1, 2)]"
	# One line per session, each with its thread's number and exit=0.
	wait_until 50 log_count 'result="ok" exit=0$' 3
	run -0 sh -c "sed -n 's/^tls-server: \([0-9]*\) client=.* exit=0$/\1/p' '$SERVER_LOG' | sort -u | wc -l"
	assert_output 3
}

@test "tls-server -S 2: the program killed under two sessions: they go on to their end, logged exit=111, and the next client gets a new program" {
	imaps_shared
	run -0 imap_py - "$SERVER_PORT" "$SERVER_PID" <<'PY'
import os, signal, sys, time
from pool_session import children, gone, imap_login
port, master = int(sys.argv[1]), int(sys.argv[2])
def login(tag):
    return imap_login(port, tag)
one, two = login(b"a"), login(b"b")
programs = [p for w in children(master) for p in children(w) if children(p)]
print("programs with sessions:", len(programs))
os.kill(programs[0], signal.SIGKILL)
while not gone(programs[0]):
    time.sleep(0.01)
for tag, (s, f) in ((b"c", one), (b"d", two)):
    s.sendall(tag + b" NOOP\r\n")
    print("after the kill:", f.readline().decode().rstrip())
    s.sendall(b"z LOGOUT\r\n")
    f.read()
three = login(b"e")
print("a new client:", "served")
# The new program was started by the new client's thread, which blocks SIGTERM: the program
# must not inherit that.
for p in [p for w in children(master) for p in children(w) if children(p)]:
    print("the new program blocks:", [l.split()[1] for l in open("/proc/%d/status" % p) if l.startswith("SigBlk:")])
three[0].sendall(b"z LOGOUT\r\n")
three[1].read()
PY
	assert_line "programs with sessions: 1"
	assert_line "the new program blocks: ['0000000000000000']"
	assert_line --regexp '^after the kill: c OK'
	assert_line --regexp '^after the kill: d OK'
	assert_line "a new client: served"
	wait_until 50 log_count 'result="ok" exit=' 3
	assert_equal "$(grep -c 'result="ok" exit=111$' "$SERVER_LOG")" 2
	assert_equal "$(grep -c 'result="ok" exit=0$' "$SERVER_LOG")" 1
}

@test "tls-server -S 2: SIGTERM: the master and the port go at once; a session in flight goes on to its end, and its worker after it" {
	imaps_shared
	run -0 imap_py - "$SERVER_PORT" "$SERVER_PID" <<'PY'
import os, signal, socket, sys, time
from pool_session import children, gone, imap_login
port, master = int(sys.argv[1]), int(sys.argv[2])
s, f = imap_login(port, b"a")
workers = [w for w in children(master) if any(children(p) for p in children(w))]
os.kill(master, signal.SIGTERM)
for _ in range(500):
    if gone(master):
        break
    time.sleep(0.01)
print("master gone:", gone(master))
try:
    socket.create_connection(("127.0.0.1", port), timeout=5)
    print("port: open")
except ConnectionRefusedError:
    print("port: closed")
s.sendall(b"b NOOP\r\n")
print("in flight:", f.readline().decode().rstrip())
print("worker still there:", not gone(workers[0]))
s.sendall(b"z LOGOUT\r\n")
f.read()
for _ in range(500):
    if gone(workers[0]):
        break
    time.sleep(0.01)
print("worker gone after the session:", gone(workers[0]))
PY
	assert_line "master gone: True"
	assert_line "port: closed"
	assert_line --regexp '^in flight: b OK'
	assert_line "worker still there: True"
	assert_line "worker gone after the session: True"
}

@test "tls-server -S 2 -m 2 -c 1: a worker that served its clients and finishes a session takes no more, and does not count against -c: the next clients get a new worker" {
	start_listening tls-server "$BIN/tls-server" -- "${SERVER_ENV[@]}" -c1 -S2 -m2 \
		-- "$BIN/imap-serve" $CHECKPW
	run -0 imap_py - "$SERVER_PORT" "$SERVER_PID" <<'PY'
import sys
from pool_session import children, imap_login
port, master = int(sys.argv[1]), int(sys.argv[2])
stays = imap_login(port, b"a")
for tag in (b"b", b"c", b"d"):
    s, f = imap_login(port, tag)
    s.sendall(b"z LOGOUT\r\n")
    f.read()
    print("client", tag.decode(), "served")
stays[0].sendall(b"y NOOP\r\n")
print("the first:", stays[1].readline().decode().rstrip())
print("workers:", len(children(master)))
PY
	assert_line "client b served"
	assert_line "client c served"
	assert_line "client d served"
	assert_line --regexp '^the first: y OK'
	assert_line --regexp '^workers: [23]$'
}
