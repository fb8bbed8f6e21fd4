#!/usr/bin/env python3
# postroom: ISC license, see LICENSE.
"""IMAP client helpers for tests/imap-serve-sessions.bats and imap-serve-clients.bats.

As a module (the bats files run `imap_py - ARGS <<'PY'` with tests/lib on the path):
    connect(how, user=..., password=...)  an imaplib client, logged in, that records every
                                    byte the server sends; HOW is "tls:PORT" (implicit TLS),
                                    "starttls:PORT" (STARTTLS, then LOGIN) or "preauth:MAILDIR"
                                    ("imap-serve -A" in MAILDIR on a pipe)
    c.raw(text)                     sends "TAG text" (text may hold {N+} literals, sent at once)
                                    and returns every byte the server sent until the tagged reply,
                                    CRLF intact, as one bytes; c.tagged: the tagged line
    c.lines(text)                   the same, split into lines (CRLF taken off; a literal stays
                                    inside its line)
    eq(got, want, what)             raises with both shown when they differ
    untagged(reply, word)           the untagged lines of a raw reply whose second word is WORD
    wait_for(cond, seconds)         polls COND until it holds; raises at the deadline
As a program:
    imap_client.py corpus DIR       writes the test messages (LF line ends) to DIR/m1 ... DIR/m4
    imap_client.py smtp             the SMTP session (for smtp-recv on stdin) that sends them to
                                    alice, and m4 to bob too
"""

import base64
import imaplib
import os
import re
import socket
import ssl
import sys
import time

imaplib._MAXLINE = 10_000_000
for _name, _states in (("IDLE", ("AUTH", "SELECTED")), ("ID", ("NONAUTH", "AUTH", "SELECTED")),
                       ("UNSELECT", ("SELECTED",)), ("MOVE", ("SELECTED",)),
                       ("ENABLE", ("AUTH", "SELECTED")), ("NAMESPACE", ("AUTH", "SELECTED"))):
    imaplib.Commands.setdefault(_name, _states)

# A 2048-byte attachment, base64 in lines of 76.
_BLOB = bytes((i * 7 + 3) % 256 for i in range(2048))
_B64 = base64.b64encode(_BLOB).decode()
_B64_LINES = "\n".join(_B64[i:i + 76] for i in range(0, len(_B64), 76))

CORPUS = {
    "m1": """From: Bob Example <bob@example.org>
To: Alice <alice@example.test>
Cc: Carol <carol@example.net>
Subject: Meeting agenda
Date: Wed, 01 Jan 2020 10:00:00 +0000
Message-Id: <m1@example.org>

Hello Alice,
the quick brown fox jumps over the lazy dog.
""",
    "m2": """From: Dave <dave@example.com>
To: alice@example.test
Bcc: secret@example.com
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=
Date: Tue, 15 Jun 2021 12:00:00 +0200
Message-Id: <m2@example.com>
X-Priority: 1
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

A plain body with UniqueNeedle inside.
""",
    "m3": """From: Bob Example <bob@example.org>
To: alice@example.test
Subject: Report attached
Date: Thu, 10 Mar 2022 08:30:00 -0500
Message-Id: <m3@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XYZ"

This is a MIME message.

--XYZ
Content-Type: text/plain; charset=us-ascii

See the attached report.
--XYZ
Content-Type: application/octet-stream; name="report.bin"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report.bin"

""" + _B64_LINES + """
--XYZ--
""",
    "m4": """From: Erin <erin@example.net>
To: alice@example.test
Subject: Lunch tomorrow?
Date: Mon, 01 Jul 2024 09:00:00 +0000
Message-Id: <m4@example.net>

Shall we have lunch? Reply soon.
""",
}

SENDER = {"m1": "bob@example.org", "m2": "dave@example.com", "m3": "bob@example.org",
          "m4": "erin@example.net"}


def smtp_script():
    out = ["EHLO client.example.org"]
    for name in sorted(CORPUS):
        rcpts = ["alice@example.test"] + (["bob@example.test"] if name == "m4" else [])
        out.append("MAIL FROM:<%s>" % SENDER[name])
        out += ["RCPT TO:<%s>" % r for r in rcpts]
        out.append("DATA")
        for line in CORPUS[name].split("\n")[:-1]:
            out.append("." + line if line.startswith(".") else line)
        out.append(".")
    out.append("QUIT")
    return "\n".join(out) + "\n"


class Failure(AssertionError):
    pass


def eq(got, want, what=""):
    if got != want:
        raise Failure("%s:\n  got:  %r\n  want: %r" % (what or "mismatch", got, want))


def check(cond, what):
    if not cond:
        raise Failure(what)


def wait_for(cond, seconds, what="condition"):
    end = time.monotonic() + seconds
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= end:
            raise Failure("%s did not hold within %s s" % (what, seconds))
        time.sleep(0.02)


def untagged(reply, word):
    """The lines '* WORD ...' or '* N WORD ...' of a raw reply (bytes or lines), as str."""
    if isinstance(reply, bytes):
        reply = split_lines(reply)
    out = []
    for line in reply:
        w = line.split(" ")
        if w[0] != "*":
            continue
        if len(w) > 1 and w[1].upper() == word.upper():
            out.append(line)
        elif len(w) > 2 and w[1].isdigit() and w[2].upper().rstrip(")") == word.upper():
            out.append(line)
    return out


def split_lines(data):
    """Reply bytes into lines, a literal kept inside its line (decoded as latin-1)."""
    lines, cur, i = [], b"", 0
    while i < len(data):
        j = data.find(b"\r\n", i)
        if j < 0:
            cur += data[i:]
            break
        cur += data[i:j]
        m = re.search(rb"\{(\d+)\}$", data[i:j])
        if m:
            n = int(m.group(1))
            cur += b"\r\n" + data[j + 2:j + 2 + n]
            i = j + 2 + n
            continue
        lines.append(cur.decode("latin-1"))
        cur = b""
        i = j + 2
    if cur:
        lines.append(cur.decode("latin-1"))
    return lines


class Wire:
    """Mixin for imaplib classes: keeps what the server sent, and raw exchanges."""

    def readline(self):
        line = super().readline()
        self.__dict__.setdefault("wire", bytearray()).extend(line)
        return line

    def read(self, size):
        data = super().read(size)
        self.__dict__.setdefault("wire", bytearray()).extend(data)
        return data

    def raw_tag(self):
        self.__dict__["_rawn"] = self.__dict__.get("_rawn", 0) + 1
        return "R%d" % self._rawn

    def raw_send(self, text):
        tag = self.raw_tag()
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.send(tag.encode() + b" " + data + b"\r\n")
        return tag

    def raw_read(self, tag, until_continuation=False):
        """Reads until the tagged line of TAG (or a '+' line); returns all of it."""
        out = bytearray()
        while True:
            line = super().readline()
            if not line:
                raise Failure("connection closed; so far: %r" % bytes(out))
            out += line
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                n = int(m.group(1))
                while n:
                    chunk = super().read(n)
                    if not chunk:
                        raise Failure("connection closed in a literal")
                    out += chunk
                    n -= len(chunk)
                continue
            if until_continuation and line.startswith(b"+"):
                return bytes(out)
            if line.startswith(tag.encode() + b" "):
                self.tagged = line.decode("latin-1").rstrip("\r\n")
                return bytes(out)

    def raw(self, text):
        return self.raw_read(self.raw_send(text))

    def lines(self, text):
        return split_lines(self.raw(text))

    def ok(self, text):
        """raw(), which must end in "TAG OK"; its lines."""
        reply = self.lines(text)
        check(reply and re.match(r"^R\d+ OK", reply[-1]), "%s: %r" % (text, reply))
        return reply


class Stream(Wire, imaplib.IMAP4_stream):
    pass


class Plain(Wire, imaplib.IMAP4):
    pass


class TLS(Wire, imaplib.IMAP4_SSL):
    pass


def context(cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = False
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(how, user="alice@example.test", password="alice-demo", login=True, cafile=None):
    kind, _, where = how.partition(":")
    if kind == "preauth":
        import shlex
        cmd = "cd %s && MAILDIR=%s exec imap-serve -A" % (shlex.quote(where), shlex.quote(where))
        c = Stream(cmd)
        check(c.state == "AUTH", "no PREAUTH: %r" % c.welcome)
        return c
    if kind == "tls":
        c = TLS("127.0.0.1", int(where), ssl_context=context(cafile), timeout=20)
    elif kind in ("starttls", "plain"):
        c = Plain("127.0.0.1", int(where), timeout=20)
        if kind == "starttls":
            c.starttls(context(cafile))
    else:
        raise ValueError(how)
    if login:
        c.login(user, password)
    return c


def message_crlf(path):
    """A delivered Maildir file as IMAP sends it: LF made CRLF."""
    with open(path, "rb") as f:
        return f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _value(data, i):
    """Parses one value at data[i]; returns (value, next index). Literals and quoted strings
    give their bytes, NIL None, lists and atoms their raw bytes."""
    if data.startswith(b"{", i):
        j = data.index(b"}", i)
        n = int(data[i + 1:j].rstrip(b"+"))
        start = j + 3
        return data[start:start + n], start + n
    if data.startswith(b'"', i):
        j, out = i + 1, bytearray()
        while data[j:j + 1] != b'"':
            if data[j:j + 1] == b"\\":
                j += 1
            out += data[j:j + 1]
            j += 1
        return bytes(out), j + 1
    if data.startswith(b"(", i):
        depth, j = 0, i
        while True:
            ch = data[j:j + 1]
            if ch == b'"':
                _, j = _value(data, j)
                continue
            if ch == b"{":
                k = data.index(b"}", j)
                j = k + 3 + int(data[j + 1:k].rstrip(b"+"))
                continue
            if ch == b"(":
                depth += 1
            elif ch == b")":
                depth -= 1
                if depth == 0:
                    return data[i:j + 1], j + 1
            j += 1
    m = re.compile(rb"[^ ()]+").match(data, i)
    v = m.group(0)
    return (None if v == b"NIL" else v), m.end()


def fetches(reply):
    """The '* N FETCH (...)' responses of a raw reply: a list of (N, {ITEM: value}), ITEM as
    the server wrote it (e.g. 'BODY[1.MIME]', 'BODY[]<0>'), upper-cased."""
    out = []
    for m in re.finditer(rb"(?m)^\* (\d+) FETCH \(", reply):
        i, items = m.end(), {}
        while reply[i:i + 1] != b")":
            if reply[i:i + 1] == b" ":
                i += 1
            n = re.compile(rb"[A-Za-z0-9.]+(\[[^\]]*\])?(<\d+>)?").match(reply, i)
            if not n:
                raise Failure("FETCH response not understood at byte %d: %r" % (i - m.start(), reply[m.start():i + 80]))
            name = n.group(0).decode().upper()
            try:
                v, i = _value(reply, n.end() + 1)
            except (ValueError, AttributeError):
                raise Failure("FETCH response not understood after %s: %r" % (name, reply[m.start():m.start() + 400]))
            items[name] = v
        out.append((int(m.group(1)), items))
    return out


def fetch1(c, text):
    """raw FETCH of one message that must answer OK; the items of its one FETCH response."""
    reply = c.raw(text)
    check(re.match(r"^R\d+ OK", c.tagged), "%s: %r" % (text, reply))
    f = fetches(reply)
    check(len(f) == 1, "%s: %d FETCH responses: %r" % (text, len(f), reply))
    return f[0][1]


def flagset(v):
    """A FLAGS value (b'(\\Seen \\Recent)') as a set of str."""
    return set(v.decode().strip("()").split())


def msgmap(c, uid=False):
    """{'m1': seq (or uid), ...} in the selected folder, by Message-Id (m5+: appended)."""
    out = {}
    for seq, items in fetches(c.raw("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")):
        m = re.search(rb"<(m\d+)@", items["BODY[HEADER.FIELDS (MESSAGE-ID)]"] or b"")
        if m:
            out[m.group(1).decode()] = int(items["UID"]) if uid else seq
    return out


def maildir_file(maildir, name):
    """The file of corpus message NAME in MAILDIR's new/ or cur/."""
    import glob
    needle = ("<%s@" % name).encode()
    for path in glob.glob(os.path.join(maildir, "new", "*")) + glob.glob(os.path.join(maildir, "cur", "*")):
        try:
            with open(path, "rb") as f:
                if needle in f.read():
                    return path
        except FileNotFoundError:
            pass
    raise Failure("no file for %s in %s" % (name, maildir))


def search(c, text, mm, uid=False):
    """SEARCH (or UID SEARCH) TEXT: the set of corpus names found, by mm (msgmap)."""
    reply = c.lines(("UID SEARCH " if uid else "SEARCH ") + text)
    check(re.match(r"^R\d+ OK", reply[-1]), "SEARCH %s: %r" % (text, reply))
    lines = untagged(reply, "SEARCH")
    check(len(lines) == 1, "SEARCH %s: %r" % (text, reply))
    nums = {int(x) for x in lines[0].split()[2:]}
    back = {v: k for k, v in mm.items()}
    check(nums <= set(back), "SEARCH %s: unknown numbers in %r" % (text, lines[0]))
    return {back[n] for n in nums}


def deliver(maildir, message, mtime=None, sender="sender@example.org", recipient="alice@example.test"):
    """maildir-deliver MAILDIR with MESSAGE (LF) on stdin; the new file's mtime set to MTIME
    (touch -d syntax) when given. Returns the file's path."""
    import glob
    import subprocess

    def files():
        return {os.path.basename(p).split(":")[0]: p for d in ("new", "cur")
                for p in glob.glob(os.path.join(maildir, d, "*"))}
    before = files()
    env = dict(os.environ, SENDER=sender, RECIPIENT=recipient)
    subprocess.run(["maildir-deliver", maildir], input=message, env=env, check=True)
    new = set(files()) - set(before)
    check(len(new) == 1, "maildir-deliver made %r" % new)
    path = os.path.join(maildir, "new", new.pop())
    if mtime:
        subprocess.run(["touch", "-d", mtime, path], check=True)
    return path


def status(c, name, items):
    """STATUS NAME (ITEMS), which must answer OK: {ITEM: number}."""
    reply = c.ok('STATUS "%s" (%s)' % (name, items))
    lines = untagged(reply, "STATUS")
    check(len(lines) == 1, "STATUS %s: %r" % (name, reply))
    m = re.match(r'^\* STATUS ("(?:[^"\\]|\\.)*"|\S+) \((.*)\)$', lines[0])
    check(m, "STATUS %s: %r" % (name, lines[0]))
    got = m.group(1).strip('"')
    eq(got, name, "the name in STATUS")
    w = m.group(2).split()
    return {w[i]: int(w[i + 1]) for i in range(0, len(w), 2)}


if __name__ == "__main__":
    if sys.argv[1] == "corpus":
        os.makedirs(sys.argv[2], exist_ok=True)
        for name, text in CORPUS.items():
            with open(os.path.join(sys.argv[2], name), "w") as f:
                f.write(text)
    elif sys.argv[1] == "smtp":
        sys.stdout.write(smtp_script())
    else:
        sys.exit("usage: imap_client.py corpus DIR | smtp")
