# postroom: ISC license, see LICENSE.
# A scripted SMTP peer for smtp-send's tests, run by tcpserver once per connection (the socket
# on stdin and stdout): python3 smtp_peer.py MODE. Every read it makes is recorded in $PEER_LOG
# ("CONNECT", then "READ <bytes>" per read(2), "MSG <bytes>" per message), so that a test can
# see what arrived in one read (PIPELINING) and what never arrived (no DATA).
#
# Modes that misbehave: silent (never greets), greet421, longline (a 100 kB greeting line),
# nocrlf (a greeting that never ends a line), continuation (100 000 "220-" lines), ehlo421
# (a 220 greeting, then 421 to EHLO).
# Mode smtp: an ESMTP server, shaped by the environment:
#   PEER_EXT       extension lines after the EHLO greeting, comma-separated
#                  (default "PIPELINING,8BITMIME,ENHANCEDSTATUSCODES")
#   PEER_RCPT      the reply to every RCPT (default "250 2.1.5 ok")
#   PEER_MAXRCPT   after this many RCPTs in a transaction, PEER_TOOMANY
#   PEER_TOOMANY   that reply (default "452 4.5.3 too many recipients")
#   PEER_DATA      the reply to DATA instead of 354 (the message is then not read)
#   PEER_QUIT      hang: QUIT is recorded and never answered
#   PEER_DELAY     seconds to wait before answering the final dot (a slow disk)
# "RCPTS <n>" is recorded at each DATA: the recipients accepted in that transaction.
#   PEER_NOEHLO    1: 502 to EHLO (HELO works)
#   PEER_BADTLS    1: offer STARTTLS, say 220 to it, then send garbage and hang up
import os
import sys
import time

mode = sys.argv[1]
logpath = os.environ.get("PEER_LOG")
log = open(logpath, "ab", buffering=0) if logpath else None


def record(tag, data=b""):
    if log:
        log.write(tag + b" " + repr(data).encode() + b"\n")


def send(data):
    try:
        os.write(1, data)
    except BrokenPipeError:
        sys.exit(0)


pending = b""


def readline():
    global pending
    while b"\n" not in pending:
        chunk = os.read(0, 65536)
        if not chunk:
            sys.exit(0)
        record(b"READ", chunk)
        pending += chunk
    line, pending = pending.split(b"\n", 1)
    return line.rstrip(b"\r")


def drain():
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            sys.exit(0)
        record(b"READ", chunk)


record(b"CONNECT")
if mode == "silent":
    drain()
if mode == "greet421":
    send(b"421 4.3.2 peer.test busy, come back later\r\n")
    sys.exit(0)
if mode == "longline":
    send(b"220 " + b"x" * 100000 + b"\r\n")
    drain()
if mode == "nocrlf":
    # A megabyte without a line end, then silence.
    send(b"220 " + b"y" * 1000000)
    drain()
if mode == "continuation":
    send(b"220-peer.test\r\n" * 100000 + b"220 peer.test ready\r\n")
    drain()
if mode == "ehlo421":
    send(b"220 peer.test ESMTP scripted\r\n")
    readline()
    send(b"421 4.3.2 peer.test shutting down\r\n")
    sys.exit(0)
assert mode == "smtp", mode

ext = os.environ.get("PEER_EXT", "PIPELINING,8BITMIME,ENHANCEDSTATUSCODES")
ext = [e for e in ext.split(",") if e]
badtls = os.environ.get("PEER_BADTLS") == "1"
if badtls:
    ext.append("STARTTLS")
rcpt_reply = os.environ.get("PEER_RCPT", "250 2.1.5 ok").encode()
maxrcpt = int(os.environ.get("PEER_MAXRCPT", "0"))
toomany = os.environ.get("PEER_TOOMANY", "452 4.5.3 too many recipients").encode()
data_reply = os.environ.get("PEER_DATA", "").encode()

send(b"220 peer.test ESMTP scripted\r\n")
nrcpt = 0
while True:
    line = readline()
    verb = line[:4].upper()
    if verb == b"EHLO":
        if os.environ.get("PEER_NOEHLO") == "1":
            send(b"502 5.5.1 EHLO not implemented\r\n")
            continue
        lines = [b"peer.test"] + [e.encode() for e in ext]
        send(b"".join(b"250-" + l + b"\r\n" for l in lines[:-1]) + b"250 " + lines[-1] + b"\r\n")
    elif verb == b"HELO":
        send(b"250 peer.test\r\n")
    elif verb == b"STAR" and badtls:
        send(b"220 2.0.0 go ahead\r\n")
        send(b"this is not a TLS server hello\r\n")
        sys.exit(0)
    elif verb == b"MAIL":
        nrcpt = 0
        send(b"250 2.1.0 ok\r\n")
    elif verb == b"RCPT":
        if maxrcpt and nrcpt >= maxrcpt:
            send(toomany + b"\r\n")
        else:
            if rcpt_reply.startswith(b"2"):
                nrcpt += 1
            send(rcpt_reply + b"\r\n")
    elif verb == b"DATA":
        record(b"RCPTS", str(nrcpt).encode())
        if data_reply:
            send(data_reply + b"\r\n")
            continue
        if not nrcpt:
            send(b"554 5.5.1 no valid recipients\r\n")
            continue
        send(b"354 go ahead\r\n")
        body = b""
        while True:
            l = readline()
            if l == b".":
                break
            body += l + b"\n"
        record(b"MSG", body)
        if os.environ.get("PEER_DELAY"):
            time.sleep(float(os.environ["PEER_DELAY"]))
        send(b"250 2.0.0 ok: got it\r\n")
    elif verb == b"RSET":
        nrcpt = 0
        send(b"250 2.0.0 ok\r\n")
    elif verb == b"QUIT":
        if os.environ.get("PEER_QUIT") == "hang":
            record(b"QUIT")
            drain()
        send(b"221 2.0.0 bye\r\n")
        sys.exit(0)
    else:
        send(b"502 5.5.2 unknown command\r\n")
