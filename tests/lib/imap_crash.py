# postroom: ISC license, see LICENSE.
"""imap_crash.py: the IMAP sessions of tests/crash-imap-serve.bats, each "imap-serve -A" run by
hand in a Maildir (PREAUTH) with its whole input at once (APPEND literals are LITERAL+), bounded
by a timeout. The messages are m0 ... m3, CRLF text named by their Message-Id.

  imap_crash.py pre MAILDIR            APPEND m0, SELECT (CONDSTORE), STORE \\Seen on it: the
                                       folder as it is before the test, with its dovecot-uidlist
                                       and postroom-modseq; must all be answered OK
  imap_crash.py run MAILDIR TOLD       the session the power is cut under: APPEND m1 and m2,
                                       SELECT (CONDSTORE), UID STORE \\Flagged on m1 (or m0),
                                       FETCH the modseqs; writes to TOLD (JSON) what the client
                                       was told: UIDVALIDITY, the UID of each APPEND answered OK,
                                       every UID and the highest modseq told
  imap_crash.py check MAILDIR TOLD     the session after the cut (the recovery: a new session
                                       reads the folder as a start-up would): SELECT
                                       (CONDSTORE), FETCH every message, APPEND m3; checks the
                                       promises against TOLD and the files (see check()); prints
                                       each broken one and exits 1 if any
"""

import json
import os
import re
import subprocess
import sys

TIMEOUT = 60


def message(n):
    body = "".join("line %d of message m%d\r\n" % (i, n) for i in range(200))
    return ("From: Sender <sender@remote.test>\r\nTo: alice@example.test\r\n"
            "Subject: crash m%d\r\nMessage-Id: <m%d@crash.test>\r\n\r\n%s" % (n, n, body)).encode()


def append(tag, n):
    m = message(n)
    return b"%s APPEND INBOX {%d+}\r\n%s\r\n" % (tag.encode(), len(m), m)


def session(maildir, commands):
    """Runs imap-serve -A in MAILDIR with COMMANDS (bytes), returns all it wrote."""
    env = dict(os.environ, MAILDIR=maildir)
    p = subprocess.run(["imap-serve", "-A"], input=commands, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, cwd=maildir, env=env, timeout=TIMEOUT)
    return p.stdout


def tagged(out, tag):
    m = re.search(rb"^%s (OK|NO|BAD)([^\r\n]*)" % tag.encode(), out, re.M)
    return (m.group(1).decode(), m.group(2).decode()) if m else (None, "")


def modseqs(out):
    """Every modseq the output tells: HIGHESTMODSEQ and MODSEQ (n) values."""
    return [int(x) for x in re.findall(rb"HIGHESTMODSEQ (\d+)", out)] + \
        [int(x) for x in re.findall(rb"MODSEQ \((\d+)\)", out)]


def pre(maildir):
    out = session(maildir, append("p1", 0) + b"p2 SELECT INBOX (CONDSTORE)\r\n"
                  b"p3 STORE 1 +FLAGS (\\Seen)\r\np4 LOGOUT\r\n")
    for t in ("p1", "p2", "p3", "p4"):
        if tagged(out, t)[0] != "OK":
            sys.exit("the setup session failed at %s: %s" % (t, out.decode(errors="replace")))


def run(maildir, told_path):
    out = session(maildir, b"a1 ENABLE CONDSTORE\r\n" + append("a2", 1) + append("a3", 2) +
                  b"a4 SELECT INBOX (CONDSTORE)\r\n"
                  b"a5 STORE 1:* +FLAGS (\\Flagged)\r\n"
                  b"a6 UID FETCH 1:* (FLAGS MODSEQ)\r\na7 LOGOUT\r\n")
    told = {"appended": {}, "stored": [], "uids": [], "modseq": max(modseqs(out), default=0),
            "uidvalidity": None, "flagged": False}
    for tag, n in (("a2", 1), ("a3", 2)):
        ok, text = tagged(out, tag)
        m = re.match(r" \[APPENDUID (\d+) (\d+)\]", text)
        if ok == "OK" and not m:
            # Stored, but its UID could not be written: it gets one at the next sync
            # (mbox_append_batch). It must be there, whole, once.
            told["stored"].append("m%d" % n)
        elif ok == "OK":
            told["uidvalidity"] = int(m.group(1))
            told["appended"]["m%d" % n] = int(m.group(2))
            told["uids"].append(int(m.group(2)))
    m = re.search(rb"\[UIDVALIDITY (\d+)\]", out)
    if m:
        told["uidvalidity"] = int(m.group(1))
    told["uids"] += [int(x) for x in re.findall(rb"FETCH \([^\r\n]*UID (\d+)", out)]
    told["flagged"] = tagged(out, "a5")[0] == "OK"
    told["transcript"] = out.decode(errors="replace")
    with open(told_path, "w") as f:
        json.dump(told, f)


def fetch_bodies(out):
    """uid -> BODY[] from '* n FETCH (UID u BODY[] {len}' replies."""
    bodies = {}
    for m in re.finditer(rb"\* \d+ FETCH \(UID (\d+) BODY\[\] \{(\d+)\}\r\n", out):
        n = int(m.group(2))
        bodies.setdefault(int(m.group(1)), []).append(out[m.end():m.end() + n])
    return bodies


def uidlist(maildir, problems):
    """Parses dovecot-uidlist as Dovecot's version 3: checks unique UIDs and names."""
    try:
        with open(os.path.join(maildir, "dovecot-uidlist"), "rb") as f:
            lines = f.read().split(b"\n")
    except FileNotFoundError:
        return  # none yet, or lost: then an APPEND answered OK finds its UID gone (check())
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        problems.append("dovecot-uidlist does not end with a newline")
    if not lines or not re.fullmatch(rb"3 V\d+ N\d+ G[0-9a-f]{32}", lines[0]):
        problems.append("dovecot-uidlist's header is %r" % (lines[:1],))
        return
    seen, names, last = set(), set(), 0
    for line in lines[1:]:
        m = re.fullmatch(rb"(\d+)(?: [^:]*)? :(\S+)", line)
        if not m:
            problems.append("dovecot-uidlist has the line %r" % line)
            continue
        uid = int(m.group(1))
        if uid in seen or uid <= last:
            problems.append("dovecot-uidlist gives UID %d twice or out of order" % uid)
        if m.group(2) in names:
            problems.append("dovecot-uidlist names %r twice" % m.group(2))
        seen.add(uid)
        names.add(m.group(2))
        last = max(last, uid)


def check(maildir, told_path):
    with open(told_path) as f:
        told = json.load(f)
    problems = []
    uidlist(maildir, problems)
    # Every file in new/ and cur/ is one of the messages, whole (as stored: CRLF or LF).
    whole = {}
    for n in range(4):
        m = message(n)
        whole[m] = whole[m.replace(b"\r\n", b"\n")] = "m%d" % n
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(maildir, sub)):
            with open(os.path.join(maildir, sub, name), "rb") as f:
                data = f.read()
            if data not in whole:
                problems.append("%s/%s is not a whole message (%d bytes)" % (sub, name, len(data)))
    out = session(maildir, b"b1 SELECT INBOX (CONDSTORE)\r\n"
                  b"b2 UID FETCH 1:* (BODY.PEEK[])\r\n" + append("b3", 3) + b"b4 LOGOUT\r\n")
    for t in ("b1", "b2", "b3"):
        if tagged(out, t)[0] != "OK":
            problems.append("the recovery session's %s was answered %s" % (t, tagged(out, t)))
    m = re.search(rb"\[UIDVALIDITY (\d+)\]", out)
    uidvalidity = int(m.group(1)) if m else None
    highest = max([int(x) for x in re.findall(rb"HIGHESTMODSEQ (\d+)", out)], default=0)
    bodies = fetch_bodies(out)
    byname = {}
    for uid, bs in bodies.items():
        if len(bs) > 1:
            problems.append("UID %d is told %d times" % (uid, len(bs)))
        for b in bs:
            name = whole.get(b)
            if name is None:
                problems.append("UID %d is not a whole message" % uid)
            else:
                byname.setdefault(name, []).append(uid)
    for name, uids in byname.items():
        if len(uids) > 1:
            problems.append("%s is in the folder %d times, UIDs %s" % (name, len(uids), uids))
    if "m0" not in byname:
        problems.append("m0, there before the session, is gone")
    same = uidvalidity is not None and uidvalidity == told["uidvalidity"]
    for name, uid in told["appended"].items():
        if not same:
            problems.append("%s's APPEND was answered OK with UIDVALIDITY %s UID %d; "
                            "the folder's UIDVALIDITY is now %s" % (name, told["uidvalidity"], uid,
                                                                   uidvalidity))
        elif byname.get(name) != [uid]:
            problems.append("%s's APPEND was answered OK with UID %d; the folder has it as %s"
                            % (name, uid, byname.get(name)))
    for name in told["stored"]:
        if len(byname.get(name, [])) != 1:
            problems.append("%s's APPEND was answered OK (no UID); the folder has it as %s"
                            % (name, byname.get(name)))
    ok, text = tagged(out, "b3")
    m = re.match(r" \[APPENDUID (\d+) (\d+)\]", text)
    if same and m and told["uids"] and int(m.group(2)) <= max(told["uids"]):
        problems.append("UID %s given again: told up to %d before the cut"
                        % (m.group(2), max(told["uids"])))
    if highest < told["modseq"]:
        problems.append("HIGHESTMODSEQ is %d, below %d told before the cut" % (highest, told["modseq"]))
    if problems:
        print("\n".join(problems))
        print("--- told before the cut:\n%s--- the recovery session:\n%s"
              % (told["transcript"], out.decode(errors="replace")[:3000]))
        sys.exit(1)


if __name__ == "__main__":
    {"pre": pre, "run": run, "check": check}[sys.argv[1]](*sys.argv[2:])
