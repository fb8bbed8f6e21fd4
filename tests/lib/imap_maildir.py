# postroom: ISC license, see LICENSE.
"""imap-serve's view of a Maildir, through its by-hand interface ("imap-serve -A" in the Maildir,
PREAUTH on stdin/stdout), driven by imaplib, in the same normal form as tests/imap-serve-maildir.bats
makes of doveadm's output, so that the two can be compared line for line.

  imap_maildir.py MAILDIR dump FOLDER...   per folder: "FOLDER uidvalidity=V uidnext=N", then
                                           "FOLDER <uid> <flags and keywords, sorted>" a message
  imap_maildir.py MAILDIR folders          "name" of every LIST "" "*" answer that is a folder
  imap_maildir.py MAILDIR subscribed       "name" of every LSUB "" "*" answer
  imap_maildir.py MAILDIR run < script     one command a line, sent as it is; "APPEND FOLDER
                                           (FLAGS) @FILE" sends FILE's bytes as the literal;
                                           prints each tagged answer's status and text
  imap_maildir.py - dovecot-fetch FOLDER < "doveadm -f flow fetch 'uid flags'" output
  imap_maildir.py - dovecot-status < "doveadm -f flow mailbox status 'uidvalidity uidnext'"
                                           the same normal form from doveadm
Names are shown decoded from modified UTF-7, as doveadm shows them. \\Recent is left out: it is
the session's, not the Maildir's.
"""
import imaplib
import os
import re
import shlex
import sys


def connect(maildir):
    binary = os.path.join(os.environ["POSTROOM_BIN"], "imap-serve")
    cmd = "cd %s && MAILDIR=%s exec %s -A" % (shlex.quote(maildir), shlex.quote(maildir),
                                               shlex.quote(binary))
    return imaplib.IMAP4_stream(cmd)


def mutf7_decode(name):
    def run(m):
        body = m.group(1)
        if body == "":
            return "&"
        b = body.replace(",", "/")
        return ("+" + b + "-").encode("ascii").decode("utf-7")
    return re.sub(r"&([A-Za-z0-9+,]*)-", run, name)


def norm_flags(words):
    return " ".join(sorted(w for w in words if w.lower() != "\\recent"))


def ok(typ, data, what):
    if typ != "OK":
        sys.exit("%s: %s %r" % (what, typ, data))
    return data


def dump(m, folder):
    data = ok(*m.status(folder, "(UIDVALIDITY UIDNEXT)"), "STATUS " + folder)
    st = dict(re.findall(r"(UIDVALIDITY|UIDNEXT) (\d+)", data[0].decode()))
    print("%s uidvalidity=%s uidnext=%s" % (mutf7_decode(folder), st["UIDVALIDITY"],
                                              st["UIDNEXT"]))
    ok(*m.select(folder, readonly=True), "EXAMINE " + folder)
    data = ok(*m.uid("FETCH", "1:*", "(UID FLAGS)"), "FETCH")
    rows = []
    for item in data:
        if not item:
            continue
        text = item.decode() if isinstance(item, bytes) else item[0].decode()
        u = re.search(r"UID (\d+)", text)
        f = re.search(r"FLAGS \(([^)]*)\)", text)
        if u and f:
            rows.append((int(u.group(1)), norm_flags(f.group(1).split())))
    for uid, flags in sorted(rows):
        print("%s %d %s" % (mutf7_decode(folder), uid, flags))
    m.close()


def names(m, command):
    typ, data = (m.list if command == "LIST" else m.lsub)('""', '"*"')
    ok(typ, data, command)
    out = []
    for item in data:
        if not item:
            continue
        text = item.decode() if isinstance(item, bytes) else item[0].decode()
        mm = re.match(r'\(([^)]*)\) (?:"."|NIL) "?(.*?)"?$', text)
        if not mm:
            continue
        attrs = mm.group(1).lower()
        if command == "LIST" and ("\\noselect" in attrs or "\\nonexistent" in attrs):
            continue
        out.append(mutf7_decode(mm.group(2)))
    for n in sorted(out):
        print(n)


def run_script(m):
    for line in sys.stdin.read().splitlines():
        if not line.strip():
            continue
        app = re.match(r"APPEND (\S+) (\([^)]*\)) @(\S+)$", line)
        if app:
            with open(app.group(3), "rb") as f:
                typ, data = m.append(app.group(1), app.group(2), None, f.read())
        else:
            word, _, rest = line.partition(" ")
            if word.upper() == "UID":
                sub, _, rest = rest.partition(" ")
                typ, data = m.uid(sub, *rest.split(" ", 1)) if rest else m.uid(sub)
            else:
                name = word.upper()
                if name not in imaplib.Commands:
                    sys.exit("unknown command " + name)
                args = shlex.split(rest) if rest else []
                typ, data = m._simple_command(name, *args)
                if name == "SELECT" and typ == "OK":
                    m.state = "SELECTED"
        text = data[-1] if data else b""
        if isinstance(text, tuple):
            text = text[0]
        print("%s %s %s" % (line.split(" @")[0], typ,
                            text.decode() if isinstance(text, bytes) else text))


def dovecot_fetch(folder):
    rows = []
    for line in sys.stdin.read().splitlines():
        mm = re.match(r"uid=(\d+) flags=(.*)$", line)
        if mm:
            rows.append((int(mm.group(1)), norm_flags(mm.group(2).split())))
    for uid, flags in sorted(rows):
        print("%s %d %s" % (folder, uid, flags))


def dovecot_status():
    for line in sys.stdin.read().splitlines():
        mm = re.match(r"(.*) uidnext=(\d+) uidvalidity=(\d+)$", line)
        if mm:
            print("%s uidvalidity=%s uidnext=%s" % (mm.group(1), mm.group(3), mm.group(2)))


def main():
    maildir, what, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if what == "dovecot-fetch":
        return dovecot_fetch(args[0])
    if what == "dovecot-status":
        return dovecot_status()
    m = connect(maildir)
    if what == "dump":
        for folder in args:
            dump(m, folder)
    elif what == "folders":
        names(m, "LIST")
    elif what == "subscribed":
        names(m, "LSUB")
    elif what == "run":
        run_script(m)
    else:
        sys.exit("unknown request " + what)
    m.logout()


if __name__ == "__main__":
    main()
