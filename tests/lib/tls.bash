# postroom: ISC license, see LICENSE.
# TLS helpers for the bats suite, loaded after lib/common and lib/smtp with `load lib/tls`:
#   make_cert NAME CERT KEY       a self-signed EC certificate for NAME (CN and subjectAltName)
#   make_ca                       a test CA: $BATS_TEST_TMPDIR/ca.pem and ca.key
#   make_leaf NAME SAN CERT KEY   a certificate for NAME signed by that CA (SAN as openssl
#                                 writes it: DNS:host or IP:127.0.0.1)
#   tls_chat PORT [starttls] [SNI] < LINES
#                                 python3 ssl client: implicit TLS (or STARTTLS after EHLO),
#                                 sends each line of stdin (CRLF) and prints every reply line
#                                 ("EOF" when the server closed), then the session's protocol,
#                                 cipher and certificate subject
#   tls_read PORT [SNI [MAX-VERSION]]
#                                 implicit TLS: prints all the server sends, then the same;
#                                 SNI "-": no TLS at all, only what the server sends;
#                                 from the address SOURCE_IP when it is set
#   plain_chat PORT < LINES       a cleartext SMTP client: the greeting, then each line of stdin
#                                 and its reply ("EOF" when the server closed); from the address
#                                 SOURCE_IP when it is set
#   start_tls_server [VAR=V...] [-OPTION...] -- PROG [ARG...]
#                                 tls-server as start_server starts tcpserver
#   from_chat SOURCE-IP PORT < LINES
#                                 plain_chat from another loopback address ("EOF": closed)
#   from_read SOURCE-IP PORT      all the server sends until it closes, from that address

make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$1" -addext "subjectAltName=DNS:$1" -keyout "$3" -out "$2" 2>/dev/null ||
		fail "openssl req for $1 failed"
}

tls_chat() {
	# The script comes on stdin: the lines to send, on fd 3.
	"$PYTHON" - "$@" 3<&0 <<'PY'
import os, socket, ssl, sys
port = int(sys.argv[1])
starttls = len(sys.argv) > 2 and sys.argv[2] == "starttls"
sni = sys.argv[3] if len(sys.argv) > 3 else None
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection(("127.0.0.1", port), timeout=10)

def replies(f):
    # One SMTP reply (all its lines), printed; its code, or None at end of input.
    while True:
        line = f.readline()
        if not line:
            print("EOF")
            return None
        print(line.decode().rstrip("\r\n"))
        if line[3:4] != b"-":
            return line[:3]

if starttls:
    f = raw.makefile("rb")
    replies(f)
    raw.sendall(b"EHLO client.example.org\r\n")
    replies(f)
    raw.sendall(b"STARTTLS\r\n")
    replies(f)
s = ctx.wrap_socket(raw, server_hostname=sni)
f = s.makefile("rb")
if not starttls:
    replies(f)
for line in os.fdopen(3).read().splitlines():
    s.sendall(line.encode() + b"\r\n")
    code = replies(f)
    if code is None:
        break
    if code in (b"221", b"421"):
        # The server said it closes: show that it did.
        replies(f)
        break
der = s.getpeercert(binary_form=True)
import subprocess
subject = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                         capture_output=True).stdout.decode().strip()
print("TLS", s.version(), s.cipher()[0], subject)
PY
}

# tls_read PORT [SNI [MAX-VERSION]]: implicit TLS, prints all the server sends until it closes,
# then "TLS <version> <cipher> <subject>". MAX-VERSION: TLSv1_2 to refuse TLS 1.3.
tls_read() {
	"$PYTHON" - "$@" <<'PY'
import os, socket, ssl, subprocess, sys
port = int(sys.argv[1])
sni = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if len(sys.argv) > 3:
    ctx.maximum_version = getattr(ssl.TLSVersion, sys.argv[3])
source = os.environ.get("SOURCE_IP")
s = socket.create_connection(("127.0.0.1", port), timeout=10,
                             source_address=(source, 0) if source else None)
if sni != "-":
    s = ctx.wrap_socket(s, server_hostname=sni)
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
if sni != "-":
    der = s.getpeercert(binary_form=True)
    subject = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                             input=der, capture_output=True).stdout.decode().strip()
    print("TLS", s.version(), s.cipher()[0], subject)
PY
}

plain_chat() {
	# The script comes on stdin: the lines to send, on fd 3.
	"$PYTHON" - "$@" 3<&0 <<'PY'
import os, socket, sys
source = os.environ.get("SOURCE_IP")
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10,
                             source_address=(source, 0) if source else None)
f = s.makefile("rb")
def reply():
    while True:
        r = f.readline().decode().rstrip("\r\n")
        if not r:
            print("EOF")
            sys.exit(0)
        print(r)
        if r[3:4] != "-":
            return
reply()
for line in os.fdopen(3).read().splitlines():
    s.sendall(line.encode() + b"\r\n")
    reply()
PY
}

# A CA and certificates it signs: make_leaf NAME SAN CERT KEY (SAN as openssl writes it).
make_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=postroom test CA" -keyout "$BATS_TEST_TMPDIR/ca.key" \
		-out "$BATS_TEST_TMPDIR/ca.pem" 2>/dev/null || fail "openssl: CA"
}
make_leaf() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
		-keyout "$4" -out "$BATS_TEST_TMPDIR/leaf.csr" 2>/dev/null || fail "openssl: request"
	printf 'subjectAltName=%s\n' "$2" >"$BATS_TEST_TMPDIR/leaf.ext"
	openssl x509 -req -in "$BATS_TEST_TMPDIR/leaf.csr" -CA "$BATS_TEST_TMPDIR/ca.pem" \
		-CAkey "$BATS_TEST_TMPDIR/ca.key" -CAcreateserial -days 2 \
		-extfile "$BATS_TEST_TMPDIR/leaf.ext" -out "$3" 2>/dev/null || fail "openssl: signing"
}

# start_tls_server [VAR=V...] [-OPTION...] -- PROG [ARG...]: tls-server as start_server starts
# tcpserver (SERVER_PORT, SERVER_PID, SERVER_LOG; stop_server stops it, its workers and their
# programs).
start_tls_server() {
	start_listening tls-server "$BIN/tls-server" -- "$@"
}

# from_chat SOURCE-IP PORT < LINES: plain_chat from another loopback address.
from_chat() {
	SOURCE_IP=$1 plain_chat "$2"
}

# from_read SOURCE-IP PORT: all the server sends until it closes, from that address.
from_read() {
	SOURCE_IP=$1 tls_read "$2" -
}
