#!/usr/bin/env python3
# postroom: ISC license, see LICENSE.
# burst.py PORT N TO: opens N connections to 127.0.0.1:PORT at once (threads released together
# by a barrier), each waits for its 220 greeting, then sends one message to TO and quits.
# Prints one line per connection, "OK SECONDS-TO-GREETING" or "FAIL why", then a summary line
# "greeted=N slowest=SECONDS sent=N".
import socket, sys, threading, time

port, n, to = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
barrier = threading.Barrier(n)
results = [None] * n
greet_times = [None] * n


def reply(f):
    """One SMTP reply (its last line); raises on end of file."""
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        if line[3:4] != b"-":
            return line.decode("ascii", "replace").rstrip("\r\n")


def client(i):
    stage = "connect"
    try:
        barrier.wait()
        start = time.monotonic()
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        f = s.makefile("rb")
        stage = "greeting"
        greeting = reply(f)
        greeted = time.monotonic() - start
        greet_times[i] = greeted
        if not greeting.startswith("220"):
            raise RuntimeError("greeting: " + greeting)
        for cmd, want in ((b"EHLO burst.example.org", "250"),
                          (b"MAIL FROM:<burst@example.org>", "250"),
                          (b"RCPT TO:<%s>" % to.encode(), "250"),
                          (b"DATA", "354"),
                          (b"Subject: burst %d\r\n\r\nmessage %d\r\n." % (i, i), "250"),
                          (b"QUIT", "221")):
            stage = cmd.split(b" ")[0].split(b"\r")[0].decode()
            s.sendall(cmd + b"\r\n")
            r = reply(f)
            if not r.startswith(want):
                raise RuntimeError("%s: %s" % (cmd.split(b"\r\n")[0].decode(), r))
        s.close()
        results[i] = "OK %.3f" % greeted
    except Exception as e:  # noqa: BLE001 - every failure is a line of the report
        results[i] = "FAIL %s: %s" % (stage, e)


threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
greeted = [g for g in greet_times if g is not None]
for r in results:
    print(r)
print("greeted=%d slowest=%.3f sent=%d" % (len(greeted), max(greeted) if greeted else 0,
                                         sum(r.startswith("OK") for r in results)))
