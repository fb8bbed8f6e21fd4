# postroom: ISC license, see LICENSE.
# check_maildirs.py ORIGDIR SENDER MAILDIR...: checks every file in each MAILDIR/new against the
# originals in ORIGDIR, one file per message, named by the message's Message-Id (without <>
# and without "@test"). A delivered file must be "Return-Path: <SENDER>\n", "X-Original-To: ...\n"
# (optional), "Delivered-To: ...\n", then the original byte for byte. Prints one line:
#   messages=N distinct=N missing=N duplicated=N bad=N unknown=N
# (files in the Maildirs; distinct originals found; originals not found; originals found more
# than once; files whose framing or content is wrong; files with no matching original), and on
# stderr a line per problem.
import os
import re
import sys


def main():
    origdir, sender, maildirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    originals = {}
    for name in os.listdir(origdir):
        with open(os.path.join(origdir, name), 'rb') as f:
            originals[name] = f.read()
    seen = {}
    files = bad = unknown = 0
    for md in maildirs:
        new = os.path.join(md, 'new')
        if not os.path.isdir(new):
            continue
        for name in sorted(os.listdir(new)):
            path = os.path.join(new, name)
            files += 1
            with open(path, 'rb') as f:
                data = f.read()
            m = re.search(rb'^Message-Id: <([^@>]*)@test>$', data, re.M)
            if not m:
                unknown += 1
                print('no Message-Id: %s' % path, file=sys.stderr)
                continue
            mid = m.group(1).decode()
            if mid not in originals:
                unknown += 1
                print('unknown message %s: %s' % (mid, path), file=sys.stderr)
                continue
            seen[mid] = seen.get(mid, 0) + 1
            parts = data.split(b'\n', 2)
            if len(parts) == 3 and parts[1].startswith(b'X-Original-To: ') and len(parts[1]) > 15:
                parts = [parts[0]] + parts[2].split(b'\n', 1)
            if (len(parts) != 3 or parts[0] != b'Return-Path: <' + sender.encode() + b'>'
                    or not parts[1].startswith(b'Delivered-To: ')
                    or parts[2] != originals[mid]):
                bad += 1
                print('bad delivery of %s: %s' % (mid, path), file=sys.stderr)
    missing = [k for k in originals if k not in seen]
    dup = [k for k, n in seen.items() if n > 1]
    for k in sorted(missing):
        print('missing: %s' % k, file=sys.stderr)
    for k in sorted(dup):
        print('duplicated %d times: %s' % (seen[k], k), file=sys.stderr)
    print('messages=%d distinct=%d missing=%d duplicated=%d bad=%d unknown=%d'
          % (files, len(seen), len(missing), len(dup), bad, unknown))


main()
