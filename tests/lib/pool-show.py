#!/usr/bin/env python3
# postroom: ISC license, see LICENSE.
# pool-show.py: a program for tls-server that stays up between sessions (POOLFD, lib/pool.h).
# For each session it writes to the client its own pid and uid, whether its parent's (the
# worker's) environment is readable, the session's descriptors' count and the variables a
# server is given (TCP*, PROTO, SSL*, UCSPITLS, RELAYCLIENT, X_*), sorted, then "end"; closes
# every descriptor of the session and answers exit code 0 (or X_EXIT's value).
import os, socket

WANTED = ("TCP", "PROTO", "SSL", "UCSPITLS", "RELAYCLIENT", "X_")
chan = socket.socket(fileno=int(os.environ["POOLFD"]))
base = {k: v for k, v in os.environ.items() if k != "POOLFD"}
while True:
    msg, fds, _, _ = socket.recv_fds(chan, 8192, 8)
    if not msg and not fds:
        break
    env = dict(base)
    for pair in msg.split(b"\0"):
        if b"=" in pair:
            name, value = pair.decode().split("=", 1)
            env[name] = value
    try:
        open("/proc/%d/environ" % os.getppid(), "rb").read()
        parent = "parent-readable"
    except OSError:
        parent = "parent-closed"
    lines = ["pid=%d uid=%d fds=%d %s" % (os.getpid(), os.getuid(), len(fds), parent)]
    lines += sorted("%s=%s" % kv for kv in env.items() if kv[0].startswith(WANTED))
    lines.append("end")
    os.write(fds[1], ("\n".join(lines) + "\n").encode())
    for fd in fds:
        os.close(fd)
    chan.send(bytes([int(env.get("X_EXIT", "0"))]))
