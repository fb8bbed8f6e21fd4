# postroom: ISC license, see LICENSE.
"""imap-serve -A sessions on pipes, for tests that run several at once on one Maildir."""
import os
import subprocess


def start(prog, md):
    """imap-serve -A (prog) serving the Maildir md, its greeting read."""
    p = subprocess.Popen([prog, "-A"], cwd=md, env=dict(os.environ, MAILDIR=md),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    p.stdout.readline()
    return p


def cmd(p, tag, line):
    """Sends "tag line" and reads up to the tagged reply, which must be OK: the untagged
    lines before it, as text."""
    p.stdin.write(b"%s %s\r\n" % (tag, line))
    p.stdin.flush()
    got = []
    while True:
        reply = p.stdout.readline()
        assert reply, "connection closed after %r" % got
        if reply.startswith(tag + b" "):
            assert reply.split()[1] == b"OK", reply
            return got
        got.append(reply.rstrip(b"\r\n").decode())


def idle(p):
    """IDLE, then DONE: the session rests in between."""
    p.stdin.write(b"i IDLE\r\n")
    p.stdin.flush()
    assert p.stdout.readline().startswith(b"+ ")
    p.stdin.write(b"DONE\r\n")
    p.stdin.flush()
    assert p.stdout.readline().startswith(b"i OK")
