#!/usr/bin/env python3
# postroom: ISC license, see LICENSE.
"""Compare two IMAP servers' answers about the same messages, item by item.

imap_mime_compare.py --ref CMD --test CMD [--workdir DIR] MESSAGE...

Each MESSAGE (a file) is put alone in a fresh Maildir's cur/ for each server, and the server is
run with CMD (a shell command; {maildir} and {home} are replaced by the Maildir and a home
directory beside it holding a dovecot.conf for that Maildir) speaking IMAP on its stdin and
stdout, already authenticated (PREAUTH). Both get the same commands: SELECT INBOX, then FETCH of
RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE and BODY.PEEK[...] of the message and of every part
the reference's BODYSTRUCTURE shows (with .HEADER, .TEXT, .MIME, HEADER.FIELDS and
HEADER.FIELDS.NOT), and of parts that do not exist. The FETCH answers are split into items and
compared byte for byte; every difference is printed, and the exit status is 1 when there is one.
With --binary the FETCHes are BINARY.PEEK[...] and BINARY.SIZE[...] (RFC 3516) of every part that
is neither a multipart nor a message/rfc822, and of a part that does not exist, one a command.
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile

DOVECOT_CONF = """base_dir = {home}/run
state_dir = {home}/state
log_path = /dev/null
mail_location = maildir:{maildir}
ssl = no
"""

FIELDS = "(From To Subject X-Long Content-Type Nonexistent)"
NOT_FIELDS = "(From Subject Received Content-Type)"


class Server:
    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.tag = 0
        greeting = self.proc.stdout.readline()
        if not greeting.startswith(b"* PREAUTH"):
            raise RuntimeError("no PREAUTH greeting: %r" % greeting)

    def command(self, text):
        """Sends one command; returns (untagged responses as raw bytes, tagged line)."""
        self.tag += 1
        tag = b"c%d" % self.tag
        self.proc.stdin.write(tag + b" " + text.encode() + b"\r\n")
        self.proc.stdin.flush()
        responses = []
        while True:
            resp = self.read_response()
            if resp.startswith(tag + b" "):
                return responses, resp
            responses.append(resp)

    def read_response(self):
        """One response line with its literals, as raw bytes."""
        out = b""
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server closed the connection")
            out += line
            stripped = line.rstrip(b"\r\n")
            if stripped.endswith(b"}") and b"{" in stripped:
                n = stripped[stripped.rindex(b"{") + 1:-1]
                if n.isdigit():
                    out += self.proc.stdout.read(int(n))
                    continue
            return out

    def close(self):
        try:
            self.proc.stdin.write(b"z LOGOUT\r\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.stdout.read()
        self.proc.wait()


# --- a small reader of IMAP data, enough for FETCH answers ----------------------------------

def tokens(data):
    """Splits IMAP data into '(' ')' and bytes atoms/strings (strings tagged as ('s', value))."""
    i, n = 0, len(data)
    while i < n:
        c = data[i:i + 1]
        if c in b" \r\n":
            i += 1
        elif c in b"()":
            yield c.decode()
            i += 1
        elif c == b'"':
            j, val = i + 1, b""
            while j < n and data[j:j + 1] != b'"':
                if data[j:j + 1] == b"\\":
                    j += 1
                val += data[j:j + 1]
                j += 1
            yield ("s", val)
            i = j + 1
        elif c == b"{":
            j = data.index(b"}", i)
            size = int(data[i + 1:j])
            start = data.index(b"\n", j) + 1
            yield ("s", data[start:start + size])
            i = start + size
        else:
            j = i
            while j < n and data[j:j + 1] not in b" ()\r\n" and not (
                    data[j:j + 1] == b"[" and False):
                if data[j:j + 1] == b"[":
                    j = data.index(b"]", j)
                j += 1
            yield ("a", data[i:j])
            i = j


def parse(toks):
    """Nested lists of ('s'|'a', bytes) from tokens."""
    stack = [[]]
    for t in toks:
        if t == "(":
            stack.append([])
        elif t == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(t)
    return stack[0]


def fetch_items(raw):
    """{item name: raw bytes of its value} from one '* n FETCH (...)' response."""
    start = raw.index(b"(")
    body = raw[start + 1:]
    items = {}
    i = 0
    # Walk the top-level list by hand so that each value keeps its exact bytes.
    while True:
        while i < len(body) and body[i:i + 1] == b" ":
            i += 1
        if i >= len(body) or body[i:i + 1] == b")":
            break
        j = i
        depth = 0
        while body[j:j + 1] != b" " or depth:
            if body[j:j + 1] == b"[":
                depth += 1
            elif body[j:j + 1] == b"]":
                depth -= 1
            j += 1
        name = body[i:j].decode(errors="replace").upper()
        i = j + 1
        i, end = skip_value(body, i)
        items[name] = body[i:end] if False else body[end[0]:end[1]]
        i = end[1]
    return items


def skip_value(b, i):
    """Returns (next index, (start, end)) of the IMAP value at b[i:]."""
    start = i
    depth = 0
    while True:
        c = b[i:i + 1]
        if c == b'"':
            i += 1
            while b[i:i + 1] != b'"':
                i += 2 if b[i:i + 1] == b"\\" else 1
            i += 1
        elif c == b"{" or (c == b"~" and b[i + 1:i + 2] == b"{"):
            j = b.index(b"}", i)
            size = int(b[b.index(b"{", i) + 1:j])
            i = b.index(b"\n", j) + 1 + size
        elif c == b"(":
            depth += 1
            i += 1
        elif c == b")":
            if depth == 0:
                return i, (start, i)
            depth -= 1
            i += 1
            if depth == 0:
                return i, (start, i)
        elif c in (b" ", b"\r", b"\n", b""):
            if depth == 0:
                return i, (start, i)
            i += 1
        else:
            i += 1


def part_sections(bs, prefix=""):
    """The section numbers of every part in a parsed BODYSTRUCTURE, with the parts'
    kinds: 'multipart', 'message' (message/rfc822) or 'leaf'."""
    out = []
    if bs and isinstance(bs[0], list):
        n = 0
        for child in bs:
            if not isinstance(child, list):
                break
            n += 1
            sec = prefix + str(n)
            out.append((sec, "multipart" if child and isinstance(child[0], list) else
                        "message" if is_message(child) else "leaf"))
            out += part_sections(child, sec + ".")
    elif is_message(bs) and len(bs) > 8 and isinstance(bs[8], list):
        inner = bs[8]
        if inner and isinstance(inner[0], list):
            out += part_sections(inner, prefix)
        else:
            # a message/rfc822 whose body is one part: that part is prefix + "1"
            out.append((prefix + "1", "message" if is_message(inner) else "leaf"))
            out += part_sections(inner, prefix + "1.")
    return out


def binary_fetches(bodystructure):
    """--binary: BINARY.PEEK and BINARY.SIZE of each leaf part, and of a part not there."""
    base = ["BINARY.PEEK[9]", "BINARY.PEEK[1.9]"]
    try:
        tree = parse(tokens(bodystructure))[0]
    except (ValueError, IndexError):
        return base
    secs = part_sections(tree)
    if not secs:
        secs = [("1", "leaf")]
    for sec, kind in secs:
        if kind == "leaf":
            base += ["BINARY.PEEK[%s]" % sec, "BINARY.SIZE[%s]" % sec]
    return base


def is_message(bs):
    return (len(bs) > 1 and not isinstance(bs[0], list) and
            bs[0][1].lower() == b"message" and bs[1][1].lower() == b"rfc822")


def fetches(bodystructure):
    """The FETCH commands to send, given the reference's BODYSTRUCTURE bytes."""
    base = ["RFC822.SIZE ENVELOPE", "BODY", "BODYSTRUCTURE",
            "BODY.PEEK[]", "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]",
            "BODY.PEEK[HEADER.FIELDS %s]" % FIELDS,
            "BODY.PEEK[HEADER.FIELDS.NOT %s]" % NOT_FIELDS,
            "BODY.PEEK[1]", "BODY.PEEK[1.MIME]", "BODY.PEEK[9]", "BODY.PEEK[1.9]",
            "BODY.PEEK[9.MIME]", "BODY.PEEK[2.1.1.1.1]"]
    try:
        tree = parse(tokens(bodystructure))[0]
    except (ValueError, IndexError):
        return base
    secs = part_sections(tree)
    for sec, kind in secs:
        base.append("BODY.PEEK[%s]" % sec)
        base.append("BODY.PEEK[%s.MIME]" % sec)
        if kind == "message":
            base.append("BODY.PEEK[%s.HEADER]" % sec)
            base.append("BODY.PEEK[%s.TEXT]" % sec)
            base.append("BODY.PEEK[%s.HEADER.FIELDS %s]" % (sec, FIELDS))
            base.append("BODY.PEEK[%s.HEADER.FIELDS.NOT %s]" % (sec, NOT_FIELDS))
    seen = set()
    return [f for f in base if not (f in seen or seen.add(f))]


def answers(cmd, maildir, home, message, items_list):
    os.makedirs(home, exist_ok=True)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    with open(os.path.join(home, "dovecot.conf"), "w") as f:
        f.write(DOVECOT_CONF.format(home=home, maildir=maildir))
    with open(message, "rb") as f:
        data = f.read()
    name = "1700000000.M1P1.postroom-test,S=%d:2,S" % len(data)
    with open(os.path.join(maildir, "cur", name), "wb") as f:
        f.write(data)
    for root, dirs, files in os.walk(os.path.dirname(maildir)):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o777)
        for fn in files:
            os.chmod(os.path.join(root, fn), 0o666)
    os.chmod(os.path.dirname(maildir), 0o777)
    server = Server(cmd.format(maildir=shlex.quote(maildir), home=shlex.quote(home)))
    try:
        _, tagged = server.command("SELECT INBOX")
        if b" OK" not in tagged:
            raise RuntimeError("SELECT failed: %r" % tagged)
        result = {}
        for items in items_list:
            untagged, tagged = server.command("FETCH 1 (%s)" % items)
            got = {}
            for resp in untagged:
                if resp.startswith(b"* 1 FETCH"):
                    got.update(fetch_items(resp))
            words = tagged.split()
            got["(status)"] = words[1] if len(words) > 1 else tagged
            if got["(status)"] == b"NO":
                # the response code too ([UNKNOWN-CTE], [PARSE]); Dovecot's lone "UID n" of
                # the message it failed on is no answer
                if len(words) > 2 and words[2].startswith(b"["):
                    got["(status)"] += b" " + words[2]
                if list(got) == ["UID", "(status)"]:
                    del got["UID"]
            result[items] = got
        return result
    finally:
        server.close()


def show(b):
    s = repr(b)
    return s if len(s) < 600 else s[:300] + " ... " + s[-250:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--binary", action="store_true")
    ap.add_argument("messages", nargs="+")
    a = ap.parse_args()
    work = a.workdir or tempfile.mkdtemp()
    bad = 0
    for n, msg in enumerate(a.messages):
        base = os.path.join(work, "m%d" % n)
        try:
            ref0 = answers(a.ref, base + "/ref/Maildir", base + "/ref/home", msg,
                           ["BODYSTRUCTURE"])
            bs = ref0["BODYSTRUCTURE"].get("BODYSTRUCTURE", b"")
            items = binary_fetches(bs) if a.binary else fetches(bs)
            ref = answers(a.ref, base + "/ref2/Maildir", base + "/ref2/home", msg, items)
            test = answers(a.test, base + "/test/Maildir", base + "/test/home", msg, items)
        except Exception as e:  # a crash or protocol error is a difference too
            print("%s: error: %s" % (msg, e))
            bad += 1
            continue
        diffs = 0
        for it in items:
            r, t = ref[it], test[it]
            for key in sorted(set(r) | set(t)):
                if r.get(key) != t.get(key):
                    diffs += 1
                    print("%s: FETCH (%s) %s:\n  dovecot: %s\n  test:    %s" %
                          (os.path.basename(msg), it, key, show(r.get(key)), show(t.get(key))))
        if diffs:
            bad += 1
    print("%d of %d messages differ" % (bad, len(a.messages)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
