#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# imap-serve's UTF8=ACCEPT (RFC 6855), in python sessions with "imap-serve -A" on a pipe: ENABLE,
# folder names in UTF-8 on the wire and modified UTF-7 on disk, compared with what Dovecot's own
# imap (2.3, which has no UTF8=ACCEPT) makes of and shows for the same Maildir, UTF-8 in quoted
# strings, SEARCH without CHARSET, and APPEND's UTF8 (~{n}) and 8-bit headers.

load lib/common

setup() {
	export TZ=UTC
	make_private_dir
	MD=$PRIVATE_DIR/p
	DMD=$PRIVATE_DIR/d
	mkdir -p "$MD"/{cur,new,tmp} "$DMD"/{cur,new,tmp}
}

# session: the python on stdin, with C a client of "imap-serve -A" in $MD and these helpers:
#   pr()            another such client
#   dovecot(md)     a client of Dovecot's imap, preauthenticated as nobody, on the Maildir md
#   u(lines)        reply lines (latin-1, as imap_client splits them) as UTF-8 text
#   listed(lines)   the names of the "* LIST" / "* LSUB" lines, unquoted, as UTF-8 text
#   folders(md)     the folder directories of the Maildir md, without their leading '.'
# Fails with what it printed when it fails.
session() {
	run env PYTHONPATH="$TESTLIB" "$PYTHON" - < <(
		printf 'import os, re, subprocess, sys\nfrom imap_client import *\n'
		printf 'MD = %s\nDMD = %s\nHOME = %s\n' "'$MD'" "'$DMD'" "'$PRIVATE_DIR/home'"
		cat <<'PY'
def pr():
    return connect("preauth:" + MD)

def dovecot(md):
    os.makedirs(HOME, exist_ok=True)
    with open(os.path.join(HOME, "dovecot.conf"), "w") as f:
        f.write("base_dir = %s/run\nstate_dir = %s/state\nlog_path = /dev/null\n"
                "mail_location = maildir:%s\nssl = no\n" % (HOME, HOME, md))
    subprocess.run(["chmod", "-R", "a+rwX", md, HOME], check=True)
    c = Stream("setpriv --reuid=65534 --regid=65534 --clear-groups env -i USER=nobody "
               "HOME=%s /usr/lib/dovecot/imap -c %s/dovecot.conf 2>/dev/null" % (HOME, HOME))
    check(c.state == "AUTH", "Dovecot: no PREAUTH: %r" % c.welcome)
    return c

def u(lines):
    return [l.encode("latin-1").decode("utf-8") for l in lines]

def listed(lines):
    out = []
    for line in u(lines):
        m = re.match(r'^\* (?:LIST|LSUB) \([^)]*\) (?:"."|NIL) (.*)$', line, re.S)
        if not m:
            continue
        v = m.group(1)
        if v.startswith('"'):
            v = re.sub(r'\\(.)', r'\1', v[1:-1])
        elif v.startswith("{"):
            v = v.split("\r\n", 1)[1]
        out.append(v)
    return out

def folders(md):
    return sorted(n[1:] for n in os.listdir(md) if n.startswith(".") and n not in (".", ".."))

C = pr()
PY
		cat
	)
	[ "$status" -eq 0 ] || fail "$(printf 'the session failed (exit %s):\n%s' "$status" "$output")"
}

@test "UTF8=ACCEPT: offered after login (not UTF8=ONLY); ENABLE lists it once; with a folder selected it is not enabled" {
	session <<'PY'
caps = C.lines("CAPABILITY")[0].split()
check("UTF8=ACCEPT" in caps, caps)
check(not [c for c in caps if c.startswith("UTF8=") and c != "UTF8=ACCEPT"], caps)
C.ok("SELECT INBOX")
# RFC 6855 section 3: valid only in the authenticated state.
eq(C.ok("ENABLE UTF8=ACCEPT"), ["* ENABLED", C.tagged], "ENABLE with INBOX selected")
C.ok('CREATE "Entw&APw-rfe"')
eq(listed(C.ok('LIST "" "Entw*"')), ["Entw&APw-rfe"], "names stay modified UTF-7")
C.ok("UNSELECT")
eq(C.ok("ENABLE UTF8=ACCEPT"), ["* ENABLED UTF8=ACCEPT", C.tagged], "ENABLE when authenticated")
eq(C.ok("ENABLE UTF8=ACCEPT"), ["* ENABLED", C.tagged], "ENABLE again lists nothing")
eq(C.ok("ENABLE UTF8=ONLY"), ["* ENABLED", C.tagged], "UTF8=ONLY is not something to enable")
eq(listed(C.ok('LIST "" "Entw*"')), ["Entwürfe"], "names in UTF-8")
C.logout()
PY
}

@test "UTF8=ACCEPT: folders Dovecot made (modified UTF-7) list, select and STATUS in UTF-8; a session without ENABLE sees them as Dovecot does" {
	session <<'PY'
D = dovecot(MD)
mutf7 = ["Entw&APw-rfe", "A&-B", "&AOQA9g-.x", "&2D3eAA-", "&ZeVnLIqe-", "Caf&AOk-.Men&APw-"]
for name in mutf7:
    D.ok('CREATE "%s"' % name)
dlist = listed(D.ok('LIST "" "*"'))
D.logout()

legacy = pr()
eq(sorted(listed(legacy.ok('LIST "" "*"'))), sorted(dlist), "LIST without ENABLE: Dovecot's names")
legacy.ok('SELECT "Entw&APw-rfe"')
legacy.logout()

C.ok("ENABLE UTF8=ACCEPT")
reply = C.ok('LIST "" "*"')
want = ["Entwürfe", "A&B", "äö", "äö.x", "\U0001F600", "日本語", "Café", "Café.Menü"]
check(set(want) <= set(listed(reply)), u(reply))
# The names go as quoted strings, not literals.
check('* LIST (\\HasNoChildren) "." "Entwürfe"' in u(reply), u(reply))
eq(listed(C.ok('LIST "" "%ü%"')), ["Entwürfe"], "a pattern in UTF-8")
eq(listed(C.ok('LIST "Café." "%"')), ["Café.Menü"], "a reference in UTF-8")
eq(listed(C.ok('LIST "" "Café%"')), ["Café"], "% stops at the separator")
reply = C.ok('STATUS "日本語" (MESSAGES)')
eq(u(reply)[0], '* STATUS "日本語" (MESSAGES 0)', "STATUS")
reply = C.ok('SELECT "Entwürfe"')
check(re.match(r"^R\d+ OK \[READ-WRITE\]", reply[-1]), reply)
C.ok('EXAMINE "\U0001F600"')
# The modified UTF-7 form is a different name now, and there is no such folder.
reply = C.lines('SELECT "Entw&APw-rfe"')
check(re.match(r"^R\d+ NO \[NONEXISTENT\]", reply[-1]), reply)
C.logout()
PY
}

@test "UTF8=ACCEPT: CREATE, RENAME, SUBSCRIBE in UTF-8 make what Dovecot makes of the modified UTF-7 names; Dovecot lists them" {
	session <<'PY'
C.ok("ENABLE UTF8=ACCEPT")
for name in ["Entwürfe", "A&B", "äö.x", "\U0001F600", "日本語", "Tab&Kaffee"]:
    C.ok('CREATE "%s"' % name)
C.ok('RENAME "Tab&Kaffee" "Café"')
C.ok('SUBSCRIBE "Entwürfe"')
eq(listed(C.ok('LSUB "" "E*"')), ["Entwürfe"], "LSUB in UTF-8")
eq(C.ok('GETQUOTAROOT "Entwürfe"')[0].encode("latin-1").decode(), '* QUOTAROOT "Entwürfe"',
   "QUOTAROOT")
C.logout()
with open(os.path.join(MD, "subscriptions"), "rb") as f:
    check(b"\nEntw&APw-rfe\n" in f.read(), "subscriptions in modified UTF-7")

D = dovecot(DMD)
for name in ["Entw&APw-rfe", "A&-B", "&AOQA9g-.x", "&2D3eAA-", "&ZeVnLIqe-", "Caf&AOk-"]:
    D.ok('CREATE "%s"' % name)
D.logout()
mine = [f for f in folders(MD) if f not in ("Archive", "Drafts", "Junk", "Sent", "Trash")]
eq(mine, folders(DMD), "the folder directories")

D = dovecot(MD)
got = listed(D.ok('LIST "" "*"'))
for name in ["Entw&APw-rfe", "A&-B", "&AOQA9g-", "&AOQA9g-.x", "&2D3eAA-", "&ZeVnLIqe-", "Caf&AOk-"]:
    check(name in got, "Dovecot does not list %s: %r" % (name, got))
D.ok('SELECT "Caf&AOk-"')
D.logout()

C = pr()
C.ok("ENABLE UTF8=ACCEPT")
C.ok('DELETE "日本語"')
check("&ZeVnLIqe-" not in folders(MD), folders(MD))
C.logout()
PY
}

@test "UTF8=ACCEPT: UTF-8 that is not well-formed is BAD; names with controls or line separators are NO [CANNOT], with or without ENABLE" {
	session <<'PY'
def tagged_of(raw):
    return split_lines(raw)[-1]
C.ok("ENABLE UTF8=ACCEPT")
for arg in [b'"Entw\xfcrfe"', b'"a\xc3"', b'"\xed\xa0\x80x"', b'"\xc0\xaf"', b'Entw\xfcrfe']:
    for cmd in [b"CREATE ", b"SELECT ", b"STATUS "]:
        line = cmd + arg + (b" (MESSAGES)" if cmd == b"STATUS " else b"")
        check(re.match(r"^R\d+ BAD ", tagged_of(C.raw(line))), (line, C.tagged))
reply = C.lines(b'CREATE {4+}\r\nx\xff\xfey')
check(re.match(r"^R\d+ BAD ", reply[-1]), reply)
# SEARCH's strings too, and the session goes on.
C.ok("SELECT INBOX")
check(re.match(r"^R\d+ BAD ", tagged_of(C.raw(b'SEARCH SUBJECT "\xe4"'))), C.tagged)
for name in ["line\u2028sep", "para\u2029sep", "c1\u0085x", "del\u007fx"]:
    reply = C.lines('CREATE "%s"' % name)
    check(re.match(r"^R\d+ NO \[CANNOT\] ", reply[-1]), (name, reply))
C.ok('CREATE "ok\u00a0space"')
C.logout()
legacy = pr()
for name in ["&ICg-", "x&AIU-"]:
    reply = legacy.lines('CREATE "%s"' % name)
    check(re.match(r"^R\d+ NO \[CANNOT\] ", reply[-1]), (name, reply))
legacy.logout()
eq([f for f in folders(MD) if f.startswith("ok")], ["ok&AKA-space"], "only the valid one made")
eq(len(folders(MD)), 6, folders(MD))
PY
}

@test "UTF8=ACCEPT: SEARCH with CHARSET is BAD once enabled (RFC 6855 section 3); without it, UTF-8 strings search" {
	session <<'PY'
msg = "Subject: Grüße aus Köln\r\nFrom: a@example.org\r\n\r\nDer Bär ist da.\r\n".encode()
plain = "Subject: Hello\r\n\r\nDer Bär\r\n".encode()
legacy = pr()
legacy.ok(b"APPEND INBOX {%d+}\r\n" % len(plain) + plain)
legacy.ok("SELECT INBOX")
eq(legacy.ok(b'SEARCH CHARSET UTF-8 BODY "B\xc3\xa4r"')[0], "* SEARCH 1", "CHARSET before ENABLE")
legacy.logout()
C.ok("ENABLE UTF8=ACCEPT")
C.ok(b"APPEND INBOX UTF8 (~{%d+}\r\n" % len(msg) + msg + b")")
C.ok("SELECT INBOX")
for cmd in ['SEARCH CHARSET UTF-8 ALL', 'UID SEARCH CHARSET UTF-8 SUBJECT "Köln"',
            'SEARCH RETURN (COUNT) CHARSET US-ASCII ALL']:
    reply = C.lines(cmd)
    check(re.match(r"^R\d+ BAD ", reply[-1]), (cmd, reply))
eq(C.ok('SEARCH SUBJECT "Grüße"')[0], "* SEARCH 2", "SUBJECT in UTF-8")
eq(C.ok('SEARCH BODY "Bär"')[0], "* SEARCH 1 2", "BODY in UTF-8")
# SORT and THREAD name a charset by their syntax (RFC 5256): still answered.
eq(C.ok("SORT (SUBJECT) UTF-8 ALL")[0], "* SORT 2 1", "SORT")
C.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")
C.logout()
PY
}

@test "UTF8=ACCEPT: APPEND UTF8 (~{n}) stores the message as sent; 8-bit headers need ENABLE (NO before it), 8-bit bodies do not" {
	session <<'PY'
msg = "From: Jörg <jörg@bücher.example>\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
body8 = "Subject: plain\r\n\r\nGrüße\r\n".encode()
# Before ENABLE: the UTF8 form is not there, and 8-bit headers are refused (section 4).
reply = C.lines(b"APPEND INBOX UTF8 (~{%d+}\r\n" % len(msg) + msg + b")")
check(re.match(r"^R\d+ BAD ", reply[-1]), reply)
reply = C.lines(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
reply = C.lines(b"APPEND INBOX (\\Seen) {%d+}\r\n" % len(body8) + body8 + b" {%d+}\r\n" % len(msg) + msg)
check(re.match(r"^R\d+ NO ", reply[-1]), reply)
eq(status(C, "INBOX", "MESSAGES"), {"MESSAGES": 0}, "nothing stored")
C.ok(b"APPEND INBOX {%d+}\r\n" % len(body8) + body8)
C.ok("ENABLE UTF8=ACCEPT")
reply = C.ok(b"APPEND INBOX (\\Flagged) UTF8 (~{%d+}\r\n" % len(msg) + msg + b")")
check(re.search(r"\[APPENDUID \d+ 2\]", reply[-1]), reply)
# MULTIAPPEND mixing both forms; a synchronizing literal8 inside UTF8 ( ) too.
tag = C.raw_send(b"APPEND INBOX UTF8 (~{%d}" % len(msg))
check(C.raw_read(tag, until_continuation=True).startswith(b"+"), "no continuation")
C.send(msg + b") {%d+}\r\n" % len(msg) + msg + b"\r\n")
C.raw_read(tag)
check(re.match(r"^R\d+ OK \[APPENDUID \d+ 3:4\]", C.tagged), C.tagged)
C.ok('CREATE "Entwürfe"')
C.ok(b'APPEND "Entw\xc3\xbcrfe" UTF8 (~{%d+}\r\n' % len(msg) + msg + b")")
eq(u(C.ok('STATUS "Entwürfe" (MESSAGES)'))[0], '* STATUS "Entwürfe" (MESSAGES 1)',
   "appended to a UTF-8 name")
C.ok("SELECT INBOX")
for seq in (2, 3, 4):
    eq(fetch1(C, "FETCH %d BODY.PEEK[]" % seq)["BODY[]"], msg, "message %d as sent" % seq)
check("\\Flagged" in flagset(fetch1(C, "FETCH 2 FLAGS")["FLAGS"]), "flags")
# Headers go out as they are, no RFC 2047: the subject of the ENVELOPE is the UTF-8.
env = fetch1(C, "FETCH 2 ENVELOPE")["ENVELOPE"]
check("Grüße".encode() in env and b"=?" not in env, env)
C.logout()
PY
}

@test "UTF8=ACCEPT: python imaplib with enable('UTF8=ACCEPT') creates, lists and selects a UTF-8 folder" {
	session <<'PY'
C.enable("UTF8=ACCEPT")
check(C.utf8_enabled, "imaplib did not see it enabled")
typ, data = C.create('"Entwürfe"')
eq(typ, "OK", "create")
typ, data = C.list('""', '"*rfe"')
eq(typ, "OK", "list")
eq(data, ['(\\HasNoChildren) "." "Entwürfe"'.encode()], "LIST data")
typ, data = C.select('"Entwürfe"')
eq((typ, data), ("OK", [b"0"]), "select")
C.logout()
check("Entw&APw-rfe" in folders(MD), folders(MD))
PY
}

@test "UTF8=ACCEPT: 300 random UTF-8 names (ASCII, '&', Latin, CJK, astral) become the modified UTF-7 directories RFC 3501 defines, and list back as sent" {
	session <<'PY'
import base64, random

def reference(name):
    """RFC 3501 5.1.3, written from the RFC: runs of other characters as UTF-16BE in BASE64
    with ',' for '/', no padding, between '&' and '-'."""
    out, run = "", ""
    for ch in name + "\0end":
        if ch == "\0" or 0x20 <= ord(ch) <= 0x7e:
            if run:
                out += "&" + base64.b64encode(run.encode("utf-16-be")).decode().rstrip("=").replace("/", ",") + "-"
                run = ""
            if ch == "\0":
                break
            out += "&-" if ch == "&" else ch
        else:
            run += ch
    return out

rng = random.Random(6855)
pool = "aZ09 &-+,_~" + "üéßÄ\u00a0€日本語한\U0001F600\U00010348\u05d0"
names = set()
while len(names) < 300:
    n = "".join(rng.choice(pool) for _ in range(rng.randint(1, 12))).strip()
    if n and n.upper() != "INBOX" and n not in ("Archive", "Drafts", "Junk", "Sent", "Trash"):
        names.add(n)
C.ok("ENABLE UTF8=ACCEPT")
for n in sorted(names):
    C.ok('CREATE "%s"' % n)
eq(sorted(f for f in folders(MD) if f not in ("Archive", "Drafts", "Junk", "Sent", "Trash")),
   sorted(reference(n) for n in names), "the directories")
got = listed(C.ok('LIST "" "*"'))
eq(sorted(set(got) - {"INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"}), sorted(names),
   "LIST in UTF-8")
legacy = pr()
got = listed(legacy.ok('LIST "" "*"'))
check({reference(n) for n in names} <= set(got), "LIST without ENABLE")
legacy.logout()
C.logout()
PY
}

@test "UTF8=ACCEPT: a UTF-8 name too long for its modified UTF-7 form is BAD in SELECT, CREATE and STATUS, as SELECT () is; the session goes on" {
	session <<'PY'
C.ok("ENABLE UTF8=ACCEPT")
long = ("\U0001F600" * 300).encode()
for cmd in [b"SELECT {%d+}\r\n" % len(long) + long, b"SELECT ()",
            b"CREATE {%d+}\r\n" % len(long) + long,
            b"STATUS {%d+}\r\n" % len(long) + long + b" (MESSAGES)"]:
    reply = C.lines(cmd)
    check(re.match(r"^R\d+ BAD ", reply[-1]), (cmd[:20], reply))
C.ok("NOOP")
C.logout()
PY
}

@test "IMAP4rev2: ENABLE IMAP4rev2 makes folder names UTF-8 on the wire too (RFC 9051 section 5.1), modified UTF-7 on disk" {
	session <<'PY'
C.ok('CREATE "Entw&APw-rfe"')
eq(listed(C.ok('LIST "" "Entw*"')), ["Entw&APw-rfe"], "rev1: modified UTF-7")
eq(C.ok("ENABLE IMAP4rev2")[0], "* ENABLED IMAP4rev2", "ENABLED")
eq(listed(C.ok('LIST "" "Entw*"')), ["Entwürfe"], "rev2: UTF-8")
C.ok('CREATE "Brouillons été"'.encode("utf-8"))
check(".Brouillons &AOk-t&AOk-" in ["." + f for f in folders(MD)], folders(MD))
PY
}
