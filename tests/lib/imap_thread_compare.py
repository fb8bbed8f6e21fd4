#!/usr/bin/env python3
# postroom: ISC license, see LICENSE.
"""Compare two IMAP servers' SORT, THREAD and ESEARCH answers on the same folder.

imap_thread_compare.py --ref CMD --test CMD --workdir DIR [--warm N] MESSAGE...

The messages become one Maildir (cur/, internal dates fixed from their order, UIDs given once by
the test server so that both see the same dovecot-uidlist); each server then runs with CMD (a
shell command; {maildir} and {home} as in imap_mime_compare.py) on its own copy, answering
the same commands after SELECT INBOX. The lines of each reply (untagged and the tagged
status) are compared; every difference is printed and the exit status is 1 when there is one.
With --warm N the test server answers every command N times more in the same session (the
later answers come from its cache) and they must not change.
"""

import argparse
import os
import re
import shutil
import sys

from imap_mime_compare import DOVECOT_CONF, Server

COMMANDS = [
    "SORT (ARRIVAL) UTF-8 ALL",
    "SORT (REVERSE ARRIVAL) UTF-8 ALL",
    "SORT (DATE) UTF-8 ALL",
    "SORT (REVERSE DATE) UTF-8 ALL",
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (REVERSE SUBJECT) UTF-8 ALL",
    "SORT (SUBJECT DATE) UTF-8 ALL",
    "SORT (FROM) UTF-8 ALL",
    "SORT (REVERSE FROM DATE) UTF-8 ALL",
    "SORT (TO) UTF-8 ALL",
    "SORT (CC) UTF-8 ALL",
    "SORT (REVERSE CC SUBJECT) UTF-8 ALL",
    "SORT (SIZE) UTF-8 ALL",
    "SORT (REVERSE SIZE) UTF-8 ALL",
    "SORT (DISPLAYFROM) UTF-8 ALL",
    "SORT (DISPLAYTO) UTF-8 ALL",
    "SORT (SUBJECT) US-ASCII FROM example.com",
    "SORT (DATE) UTF-8 OR SUBJECT lunch SUBJECT budget",
    "UID SORT (REVERSE DATE SUBJECT) UTF-8 ALL",
    "UID SORT (SUBJECT) UTF-8 2:30",
    "SORT RETURN (MIN MAX COUNT) (SUBJECT) UTF-8 ALL",
    "SORT RETURN (ALL) (DATE) UTF-8 ALL",
    "SORT RETURN () (ARRIVAL) UTF-8 ALL",
    "UID SORT RETURN (MIN MAX ALL COUNT) (REVERSE SUBJECT) UTF-8 ALL",
    "SORT RETURN (COUNT) (SUBJECT) UTF-8 SUBJECT nothing-matches-this",
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
    "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 FROM example.com",
    "THREAD REFERENCES UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 ALL",
    "THREAD REFERENCES UTF-8 NOT SUBJECT lunch",
    "THREAD REFERENCES US-ASCII 3:20",
    "SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT lunch",
    "UID SEARCH RETURN (ALL) OR FROM alice FROM bob",
    "SEARCH RETURN () NOT SUBJECT re",
    "SORT (FOO) UTF-8 ALL",
    "THREAD NOSUCH UTF-8 ALL",
]


def build(messages, maildir):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    for i, path in enumerate(messages, 1):
        with open(path, "rb") as f:
            data = f.read()
        name = os.path.join(maildir, "cur", "%d.M%dP1.fixture:2," % (1700000000 + i, i))
        with open(name, "wb") as f:
            f.write(data)
        # internal dates out of the messages' order, two of them equal
        t = 1699000000 + ((i * 17) % len(messages)) * 3600 - (3600 if i == 5 else 0)
        os.utime(name, (t, t))


def open_access(top):
    for root, dirs, files in os.walk(top):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o777)
        for fn in files:
            os.chmod(os.path.join(root, fn), 0o666)
    os.chmod(top, 0o777)


def start(cmd, top):
    maildir, home = os.path.join(top, "Maildir"), os.path.join(top, "home")
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, "dovecot.conf"), "w") as f:
        f.write(DOVECOT_CONF.format(home=home, maildir=maildir))
    open_access(top)
    import shlex
    server = Server(cmd.format(maildir=shlex.quote(maildir), home=shlex.quote(home)))
    _, tagged = server.command("SELECT INBOX")
    if b" OK" not in tagged:
        raise RuntimeError("SELECT failed: %r" % tagged)
    return server


def answer(server, command):
    untagged, tagged = server.command(command)
    status = tagged.split(b" ")[1]
    # ESEARCH names the command's tag, which differs between the two sessions; the form
    # of the tag is checked by the bats tests
    return [re.sub(rb'^\* ESEARCH \(TAG "[^"]*"\)', b'* ESEARCH (TAG)', u.rstrip(b"\r\n"))
            for u in untagged] + [status]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--warm", type=int, default=0)
    ap.add_argument("messages", nargs="+")
    a = ap.parse_args()

    template = os.path.join(a.workdir, "template")
    build(a.messages, os.path.join(template, "Maildir"))
    # the UIDs, given once, for both
    s = start(a.test, template)
    s.close()
    for f in ("postroom-cache",):
        p = os.path.join(template, "Maildir", f)
        if os.path.exists(p):
            os.unlink(p)
    shutil.rmtree(os.path.join(template, "home"))
    for side in ("ref", "test"):
        shutil.copytree(template, os.path.join(a.workdir, side), copy_function=shutil.copy2)

    ref = start(a.ref, os.path.join(a.workdir, "ref"))
    test = start(a.test, os.path.join(a.workdir, "test"))
    failed = 0
    try:
        for command in COMMANDS:
            want = answer(ref, command)
            got = answer(test, command)
            for n in range(a.warm):
                again = answer(test, command)
                if again != got:
                    print("%s: answer %d differs from the first: %r" % (command, n + 2, again))
                    failed = 1
            if want != got:
                print("%s:\n  ref:  %r\n  test: %r" % (command, want, got))
                failed = 1
    finally:
        ref.close()
        test.close()
    return failed


if __name__ == "__main__":
    sys.exit(main())
