# postroom: ISC license, see LICENSE.
"""queue_records.py QUEUEFILE MESSAGE ENVELOPE: checks that QUEUEFILE is a queue file of queue(5)
holding exactly MESSAGE and ENVELOPE (the header, the message, the envelope, byte for byte),
then prints its delivery records, one a line: the letter, a space and the address (the text
before the tab), and "torn N" for a last record of N bytes without its NUL. Exit 1, with the
reason on stderr, when the file is not that message's queue file or a record has a letter
queue(5) does not define."""
import sys

LETTERS = b"DXRPSJLNW"


def main():
    qf, msg, env = (open(p, "rb").read() for p in sys.argv[1:4])
    header = b"PRQ1 %020d\n" % len(msg)
    if not qf.startswith(header):
        sys.exit("not a queue file of this message: header %r" % qf[:26])
    body = qf[len(header):]
    if body[:len(msg)] != msg:
        sys.exit("the message in the queue file differs from the one injected")
    body = body[len(msg):]
    if body[:len(env)] != env:
        sys.exit("the envelope in the queue file differs from the one injected")
    rest = body[len(env):]
    while rest:
        end = rest.find(b"\0")
        if end < 0:
            print("torn %d" % len(rest))
            break
        rec, rest = rest[:end], rest[end + 1:]
        if not rec or rec[:1] not in LETTERS:
            sys.exit("a record with an unknown letter: %r" % rec)
        print("%s %s" % (rec[:1].decode(), rec[1:].split(b"\t")[0].decode()))


main()
