# postroom: ISC license, see LICENSE.
"""sync_writer.py [-C DIR] [-n N] STEP...: a program of known file operations and sync points,
for tests/crashfs.bats. The steps, run in order in DIR:

  write PATH TEXT      create or truncate PATH and write TEXT
  append PATH TEXT     append TEXT to PATH
  osync PATH TEXT      create or truncate PATH, open O_SYNC, and write TEXT: a sync point
  fsync PATH           fsync PATH (a file or a directory): a sync point
  fdatasync PATH       fdatasync PATH: a sync point
  rename FROM TO       rename(2)
  link FROM TO         link(2)
  unlink PATH          unlink(2)
  mkdir PATH           mkdir(2)

With -n N it stops, exit 0, after its Nth sync point. On the first step that fails it writes
"sync_writer: step K (OP PATH): REASON" to stderr and exits 1."""
import os
import sys

ARGS = {"write": 2, "append": 2, "osync": 2, "fsync": 1, "fdatasync": 1, "rename": 2,
        "link": 2, "unlink": 1, "mkdir": 1}
SYNCS = {"fsync", "fdatasync", "osync"}	# an O_SYNC write is a sync point


def write(path, text, flags):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def sync(path, call):
    fd = os.open(path, os.O_RDONLY)
    try:
        call(fd)
    finally:
        os.close(fd)


def run(op, args):
    if op == "write":
        write(args[0], args[1], os.O_TRUNC)
    elif op == "append":
        write(args[0], args[1], os.O_APPEND)
    elif op == "osync":
        write(args[0], args[1], os.O_TRUNC | os.O_SYNC)
    elif op == "fsync":
        sync(args[0], os.fsync)
    elif op == "fdatasync":
        sync(args[0], os.fdatasync)
    elif op == "rename":
        os.rename(args[0], args[1])
    elif op == "link":
        os.link(args[0], args[1])
    elif op == "unlink":
        os.unlink(args[0])
    elif op == "mkdir":
        os.mkdir(args[0])


def parse(argv):
    steps, i = [], 0
    while i < len(argv):
        op = argv[i]
        if op not in ARGS or i + ARGS[op] >= len(argv):
            sys.exit("sync_writer: bad step at %r" % argv[i:])
        steps.append((op, argv[i + 1:i + 1 + ARGS[op]]))
        i += 1 + ARGS[op]
    return steps


def main():
    argv, limit = sys.argv[1:], None
    while argv and argv[0] in ("-C", "-n"):
        if argv[0] == "-C":
            os.chdir(argv[1])
        else:
            limit = int(argv[1])
        argv = argv[2:]
    syncs = 0
    for k, (op, args) in enumerate(parse(argv), 1):
        if limit is not None and syncs == limit:
            break
        try:
            run(op, args)
        except OSError as e:
            sys.stderr.write("sync_writer: step %d (%s %s): %s\n" % (k, op, args[0], e.strerror))
            sys.exit(1)
        syncs += op in SYNCS
    sys.exit(0)


if __name__ == "__main__":
    main()
