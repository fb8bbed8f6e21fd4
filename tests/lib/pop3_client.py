#!/usr/bin/env python3
# postroom: ISC license, see LICENSE.
"""POP3 client helpers for tests/pop3-serve.bats and tests/make-run.bats.

As a module (the bats files run `pop3_py - ARGS <<'PY'` with tests/lib on the path; imap_client's
eq, check, wait_for, context and CORPUS come along):
    connect(how, user=..., password=..., login=True, cafile=None)
                                    a poplib client (POP3 or POP3_SSL), logged in with USER and
                                    PASS; HOW is "tls:PORT" (implicit TLS), "stls:PORT" (STLS
                                    first) or "plain:PORT" (no TLS at all)
    p.drop()                        closes the connection without QUIT, as a crashed client
    p.raw_line(cmd)                 sends CMD; the status line as sent, CRLF taken off
    p.raw_multi(cmd)                sends CMD; (status line, every byte after it up to the
                                    terminating ".\\r\\n", which must come, left off), as sent:
                                    CRLF and dot-stuffing intact
    p.closed()                      the server has closed the connection (EOF within 10 s)
    check_mailbox(p, md)            STAT, LIST, UIDL, TOP and RETR of every message against the
                                    Maildir md's files, byte for byte (see its docstring)
    by_msgid(p)                     {corpus name: message number}, from TOP n 0's Message-Id
    wire(data)                      what RETR must send for a Maildir file's bytes: LF made CRLF,
                                    a CRLF added to a last line without one, lines starting with
                                    "." dot-stuffed (without the terminating ".\\r\\n")
    top_of(data, n)                 what TOP with n lines must send for a Maildir file's bytes
    wire_size(data)                 the size POP3 gives a Maildir file: its length with CRLF ends
    maildir_files(md)               {base name: path} of the messages in md's new/ and cur/
    info(path)                      the flags of a Maildir file name (what follows ":2,"), or None
    uidlist(md)                     dovecot-uidlist's (UIDVALIDITY, next UID, {base name: UID})
    expected_uidls(md)              {base name: "%08X%08X" % (UID, UIDVALIDITY)} for every
                                    message in md, from dovecot-uidlist
    pop3_error(callable)            the -ERR line poplib raised for it (bytes), or a Failure
As a program:
    pop3_client.py extra MAILDIR    adds the awkward messages (dots, nonl, eight: see EXTRA) to
                                    MAILDIR's cur/ and new/
"""

import os
import poplib
import re
import socket
import ssl
import sys

from imap_client import CORPUS, Failure, check, context, eq, wait_for  # noqa: F401

# Lines of a message may be long; poplib's own limit is 2048.
poplib._MAXLINE = 10_000_000

# Messages that take care on the wire; each has a Message-Id <NAME@extra.test>.
EXTRA = {
    # Lines that start with a dot, a lone dot, and a dot as the last line: unstuffed, the lone
    # dot would end the message early.
    "dots": (b"From: Dot Tester <dots@example.org>\nSubject: dots\nMessage-Id: <dots@extra.test>\n\n"
             b".\n..\n.hidden\n...three\n . space first\nmiddle\n.\n.\n"),
    # No newline at the end of the file.
    "nonl": (b"From: No Newline <nonl@example.org>\nSubject: nonl\nMessage-Id: <nonl@extra.test>\n\n"
             b"first line\nthe last line has no end"),
    # 8-bit bytes, a line of 998 octets, an empty last line.
    "eight": (b"From: Eight <eight@example.org>\nSubject: h\xe9llo w\xf6rld\nMessage-Id: <eight@extra.test>\n\n"
              b"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xae \xff\xfe\x80\n" + b"a" * 998 + b"\n\t\n\n"),
}
EXTRA_FILES = {"dots": "cur/1700000101.M101P1.host.test:2,", "nonl": "cur/1700000102.M102P1.host.test:2,F",
               "eight": "new/1700000103.M103P1.host.test"}


def write_extra(md):
    for name, data in EXTRA.items():
        path = os.path.join(md, EXTRA_FILES[name])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


class _Raw:
    def raw_line(self, cmd):
        self._putcmd(cmd)
        line = self.file.readline()
        check(line.endswith(b"\r\n"), "%s: status line not ended by CRLF: %r" % (cmd, line))
        return line[:-2]

    def raw_multi(self, cmd):
        status = self.raw_line(cmd)
        check(status.startswith(b"+OK"), "%s: %r" % (cmd, status))
        body = []
        while True:
            line = self.file.readline()
            check(line != b"", "%s: the connection closed before the final dot" % cmd)
            if line == b".\r\n":
                return status, b"".join(body)
            body.append(line)

    def drop(self):
        """The connection goes, with no QUIT, as a client that crashed."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.file.close()
        self.sock.close()

    def closed(self, seconds=10):
        self.sock.settimeout(seconds)
        try:
            return self.file.read(1) == b""
        except socket.timeout:
            return False
        except (ConnectionError, ssl.SSLError):
            return True


class POP3(_Raw, poplib.POP3):
    pass


class POP3_SSL(_Raw, poplib.POP3_SSL):
    pass


def connect(how, user="alice@example.test", password="alice-demo", login=True, cafile=None):
    kind, port = how.split(":", 1)
    if kind == "tls":
        p = POP3_SSL("127.0.0.1", int(port), context=context(cafile), timeout=20)
    else:
        p = POP3("127.0.0.1", int(port), timeout=20)
        if kind == "stls":
            p.stls(context(cafile))
        else:
            check(kind == "plain", "connect: " + how)
    if login:
        p.user(user)
        resp = p.pass_(password)
        eq(resp, b"+OK Logged in", "the answer to PASS")
    return p


def top_of(data, n):
    """What TOP must send for n body lines of a Maildir file's bytes."""
    w = wire(data)
    lines = w.split(b"\r\n")[:-1]
    blank = lines.index(b"") if b"" in lines else len(lines) - 1
    return b"".join(l + b"\r\n" for l in lines[:blank + 1 + n])


def check_mailbox(p, md):
    """STAT, LIST, UIDL, TOP and RETR, with and without an argument, for every message of the
    Maildir md, against its files: sizes with CRLF, UIDLs from dovecot-uidlist (read after the
    login), the bytes of RETR and TOP as sent. The session's messages must be md's files."""
    data = {b: read(path) for b, path in maildir_files(md).items()}
    exp = expected_uidls(md)
    byuidl = {v: k for k, v in exp.items()}
    count = len(data)
    total = sum(wire_size(d) for d in data.values())
    eq(p.raw_line("STAT"), b"+OK %d %d" % (count, total), "STAT")
    status, listing = p.raw_multi("LIST")
    sizes = {}
    for line in listing.split(b"\r\n")[:-1]:
        n, size = line.split(b" ")
        sizes[int(n)] = int(size)
    eq(sorted(sizes), list(range(1, count + 1)), "LIST's message numbers")
    status, uidls = p.raw_multi("UIDL")
    uid = {}
    for line in uidls.split(b"\r\n")[:-1]:
        n, u = line.decode().split(" ")
        uid[int(n)] = u
    eq(sorted(uid), list(range(1, count + 1)), "UIDL's message numbers")
    eq(sorted(uid.values()), sorted(exp.values()), "UIDL against dovecot-uidlist")
    for n in range(1, count + 1):
        base = byuidl[uid[n]]
        d = data[base]
        what = "message %d (%s)" % (n, base)
        eq(sizes[n], wire_size(d), "LIST's size of " + what)
        eq(p.raw_line("LIST %d" % n), b"+OK %d %d" % (n, wire_size(d)), "LIST %d" % n)
        eq(p.raw_line("UIDL %d" % n), b"+OK %d %s" % (n, uid[n].encode()), "UIDL %d" % n)
        status, body = p.raw_multi("RETR %d" % n)
        eq(status, b"+OK %d octets" % wire_size(d), "RETR %d's status" % n)
        eq(body, wire(d), "RETR of " + what)
        for k in (0, 1, 3, 100000):
            status, body = p.raw_multi("TOP %d %d" % (n, k))
            eq(body, top_of(d, k), "TOP %d %d of %s" % (n, k, what))
    # poplib's own reading agrees (dot-unstuffed lines).
    for n in range(1, count + 1):
        _, lines, _ = p.retr(n)
        want = [l[1:] if l.startswith(b".") else l
                for l in wire(data[byuidl[uid[n]]]).split(b"\r\n")[:-1]]
        eq(lines, want, "poplib's RETR %d" % n)


def pop3_error(call):
    try:
        got = call()
    except poplib.error_proto as e:
        return e.args[0] if isinstance(e.args[0], bytes) else str(e.args[0]).encode()
    raise Failure("no -ERR, but %r" % (got,))


def by_msgid(p):
    out = {}
    count = p.stat()[0]
    for n in range(1, count + 1):
        _, lines, _ = p.top(n, 0)
        for line in lines:
            m = re.match(rb"(?i)^Message-Id:\s*<([^@>]+)@", line)
            if m:
                out[m.group(1).decode()] = n
    return out


def wire(data):
    if data and not data.endswith(b"\n"):
        data += b"\n"
    out = []
    for line in data.split(b"\n")[:-1]:
        out.append((b"." + line if line.startswith(b".") else line) + b"\r\n")
    return b"".join(out)


def wire_size(data):
    return len(data.replace(b"\n", b"\r\n"))


def base_name(name):
    return name.split(":", 1)[0]


def maildir_files(md):
    out = {}
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(md, sub)):
            out[base_name(name)] = os.path.join(md, sub, name)
    return out


def info(path):
    name = os.path.basename(path)
    return name.split(":2,", 1)[1] if ":2," in name else None


def read(path):
    with open(path, "rb") as f:
        return f.read()


def uidlist(md):
    with open(os.path.join(md, "dovecot-uidlist"), "rb") as f:
        lines = f.read().decode().split("\n")
    head = lines[0].split()
    check(head[0] == "3", "dovecot-uidlist: not version 3: %r" % lines[0])
    fields = {w[0]: w[1:] for w in head[1:]}
    uids = {}
    for line in lines[1:]:
        if not line:
            continue
        m = re.match(r"^(\d+)(?: [^:]*)? :(.*)$", line)
        check(m, "dovecot-uidlist: a bad line %r" % line)
        uids[base_name(m.group(2))] = int(m.group(1))
    return int(fields["V"]), int(fields["N"]), uids


def expected_uidls(md):
    validity, _, uids = uidlist(md)
    out = {}
    for base in maildir_files(md):
        check(base in uids, "%s is not in dovecot-uidlist" % base)
        out[base] = "%08X%08X" % (uids[base], validity)
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["extra"] and len(sys.argv) == 3:
        write_extra(sys.argv[2])
    else:
        sys.exit("usage: pop3_client.py extra MAILDIR")
