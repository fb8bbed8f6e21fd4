# postroom: ISC license, see LICENSE.
"""For tests of sessions under tls-server: a client that says STARTTLS (or STLS) and goes on
in TLS, and the processes below tls-server's master, read from /proc."""
import os
import socket
import ssl


def children(pid):
    """The children of process pid, whichever of its threads forked them (tls-server -S starts
    its program again from a client's thread)."""
    found = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            found += [int(c) for c in open("/proc/%d/task/%s/children" % (pid, task)).read().split()]
        except FileNotFoundError:
            pass    # a thread that ended meanwhile: its children went to another
    return found


def session_processes(master):
    """Each process a pool program (a worker's child) runs a session in: (its command line,
    how many children it has)."""
    found = []
    for worker in children(master):
        for pool in children(worker):
            for session in children(pool):
                cmdline = open("/proc/%d/cmdline" % session).read().replace("\0", " ").strip()
                found.append((cmdline, len(children(session))))
    return found


def starttls(port, command):
    """Connects to 127.0.0.1:port, reads the greeting, sends command (b"s STARTTLS",
    b"STLS") and its line end, reads the answer and does the handshake: the TLS socket and a
    file to read its lines from."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = raw.makefile("rb")
    f.readline()
    raw.sendall(command + b"\r\n")
    f.readline()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(raw)
    return s, s.makefile("rb")


def tls(port):
    """Connects to 127.0.0.1:port with implicit TLS, reads the greeting: the TLS socket and a
    file to read its lines from."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(raw)
    f = s.makefile("rb")
    f.readline()
    return s, f


def unix_datagram_sockets(pid):
    """How many AF_UNIX datagram sockets process pid holds."""
    dgram = set()
    for line in open("/proc/net/unix").read().splitlines()[1:]:
        fields = line.split()
        if fields[4] == "0002":
            dgram.add(fields[6])
    held = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        if target.startswith("socket:[") and target[8:-1] in dgram:
            held += 1
    return held


def imap_login(port, tag, select=False):
    """An IMAP session over implicit TLS, logged in as alice (and INBOX selected): the TLS
    socket and its file, the login's replies read."""
    s, f = tls(port)
    s.sendall(b"%s LOGIN alice@example.test alice-demo\r\n" % tag)
    if select:
        s.sendall(b"%s SELECT INBOX\r\n" % tag)
    done = tag + (b" OK [READ-WRITE]" if select else b" OK")
    while not f.readline().startswith(done):
        pass
    return s, f


def gone(pid):
    """Whether process pid has ended (a zombie counts: it is its parent's to reap)."""
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
