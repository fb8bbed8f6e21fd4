#!/usr/bin/env python3
# postroom: ISC license, see LICENSE.
"""An IMAP client for COMPRESS=DEFLATE (RFC 4978) tests (tests/imap-serve-compress.bats).

    c = preauth(MAILDIR, env={}, log=FILE, wrap=[])
                                    "imap-serve -A" in MAILDIR on pipes (its stderr appended to
                                    FILE; WRAP: a command it runs under); c.greeting
    c = tls(PORT)                   implicit TLS to 127.0.0.1:PORT; c.greeting
    c.send(data, flush)             bytes to the server, deflated once c.compressing, ended with
                                    FLUSH (zlib.Z_SYNC_FLUSH, Z_PARTIAL_FLUSH, Z_NO_FLUSH)
    c.send_raw(data)                bytes as they are, past the deflater (garbage, say)
    c.line(timeout)                 the next line from the server (inflated), CRLF taken off; a
                                    line that ends in {N} gets its literal and the rest of
                                    its line; raises Failure when nothing comes within TIMEOUT
    c.until(tag, timeout)           the lines up to and including TAG's tagged one
    c.command(text) / c.ok(text)    "TAG text" sent with a sync flush, its lines (ok: must be OK)
    c.compress()                    COMPRESS DEFLATE, which must be OK; deflates both ways after
    c.rest(timeout)                 what the server sends until it closes (inflated)
    c.counts                        [compressed bytes received, inflated bytes]
Every wait is bounded by its timeout: a reply that does not come fails the test, never hangs it.
"""

import os
import re
import select
import socket
import ssl
import subprocess
import time
import zlib


class Failure(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Conn:
    def __init__(self):
        self.compressing = False
        self.pending = b""          # inflated (or plain) bytes not yet taken
        self.eof = False
        self.counts = [0, 0]
        self.n = 0
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflater = zlib.decompressobj(-15)

    # --- transport: _write(bytes), _read(timeout) -> bytes (b"" at EOF), None on timeout
    def send_raw(self, data):
        self._write(data)

    def send(self, data, flush=zlib.Z_SYNC_FLUSH):
        if isinstance(data, str):
            data = data.encode()
        if self.compressing:
            data = self.deflater.compress(data)
            if flush != zlib.Z_NO_FLUSH:
                data += self.deflater.flush(flush)
        self._write(data)

    def _more(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        data = self._read(left)
        if data is None:
            return False
        if not data:
            self.eof = True
            return True
        if self.compressing:
            self.counts[0] += len(data)
            data = self.inflater.decompress(data)
            self.counts[1] += len(data)
        self.pending += data
        return True

    def line(self, timeout=10):
        deadline = time.monotonic() + timeout
        out = b""
        while True:
            i = self.pending.find(b"\r\n")
            if i >= 0:
                out += self.pending[:i]
                self.pending = self.pending[i + 2:]
                m = re.search(rb"\{(\d+)\}$", out)
                if not m:
                    return out.decode("latin-1")
                n = int(m.group(1))
                while len(self.pending) < n:
                    if self.eof or not self._more(deadline):
                        raise Failure("no literal of %d bytes within %s s; so far %r"
                                      % (n, timeout, out[-200:]))
                out += b"\r\n" + self.pending[:n]
                self.pending = self.pending[n:]
                continue
            if self.eof:
                raise Failure("connection closed; so far %r" % (out + self.pending)[-300:])
            if not self._more(deadline):
                raise Failure("no line within %s s; so far %r" % (timeout, (out + self.pending)[-300:]))

    def until(self, tag, timeout=10):
        lines = []
        while True:
            ln = self.line(timeout)
            lines.append(ln)
            if ln.startswith(tag + " "):
                return lines

    def tag(self):
        self.n += 1
        return "T%d" % self.n

    def command(self, text, timeout=10):
        t = self.tag()
        self.send("%s %s\r\n" % (t, text))
        return self.until(t, timeout)

    def ok(self, text, timeout=10):
        lines = self.command(text, timeout)
        check(re.match(r"^T\d+ OK", lines[-1]), "%s: %r" % (text, lines[-1000:]))
        return lines

    def compress(self):
        lines = self.command("COMPRESS DEFLATE")
        check(re.match(r"^T\d+ OK", lines[-1]), "COMPRESS: %r" % lines)
        check(not self.pending, "bytes after COMPRESS's OK before compression: %r" % self.pending)
        self.compressing = True
        return lines

    def rest(self, timeout=10):
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._more(deadline):
                raise Failure("the server did not close within %s s" % timeout)
        data, self.pending = self.pending, b""
        return data


class Pipe(Conn):
    def __init__(self, argv, cwd, env, log):
        super().__init__()
        with open(log, "ab") if log else open(os.devnull, "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err)
        self.greeting = self.line()

    def _write(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _read(self, timeout):
        fd = self.proc.stdout.fileno()
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return None
        return os.read(fd, 65536)

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        return self.proc.wait(timeout=10)


class Socket(Conn):
    def __init__(self, sock):
        super().__init__()
        self.sock = sock
        self.greeting = self.line()

    def _write(self, data):
        self.sock.sendall(data)

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return None

    def close(self):
        self.sock.close()


def preauth(maildir, env=None, log=None, wrap=()):
    e = dict(os.environ, MAILDIR=maildir)
    e.update(env or {})
    return Pipe(list(wrap) + ["imap-serve", "-A"], maildir, e, log)


def tls(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return Socket(ctx.wrap_socket(raw))
