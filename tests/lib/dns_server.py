# postroom: ISC license, see LICENSE.
# A test name server (Python standard library only), for the DNS test world (tests/lib/world.bash).
#   dns_server.py ZONEFILE READYFILE LOGFILE ADDRESS...
# answers UDP queries on port 53 of each ADDRESS (IPv4 or IPv6) from ZONEFILE, which it reads
# again for every query (a test may change it at any time), logs "QNAME QTYPE RESULT" per query
# to LOGFILE, and creates READYFILE once every socket is bound (a query sent after that waits in
# the socket until it is read).
#
# ZONEFILE: one record a line, "#" comments; names without the final dot, case-insensitive:
#   NAME A 127.0.0.2             NAME AAAA ::1             NAME CNAME TARGET
#   NAME MX 10 HOST              NAME MX 0 .               (a null MX, RFC 7505)
#   NAME TXT "v=spf1 -all" "more"                          (character-strings, quoted or not)
#   NAME TLSA 3 1 1 HEXDATA
#   NAME RAW TYPE HEXRDATA       a record of TYPE (A, MX, ...) with these rdata bytes, as they
#                                are: for malformed answers
#   NAME SERVFAIL [TYPE]         SERVFAIL for queries of NAME (of TYPE only, if given)
#   NAME REFUSED [TYPE]          REFUSED likewise
#   NAME NOANSWER [TYPE]         no answer at all: the client times out
#   * NOANSWER                   ... for every name
# A name with no line (and no name below it) is NXDOMAIN; a name with lines but none of the type
# asked is NOERROR with an empty answer (NODATA). CNAMEs are followed inside the zone, as a
# recursive server does, the chain and the target's records in one answer.
import ipaddress
import shlex
import socket
import selectors
import struct
import sys

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "TLSA": 52, "ANY": 255}
NAMES = {v: k for k, v in TYPES.items()}
BEHAVIOURS = ("SERVFAIL", "REFUSED", "NOANSWER")


def encode_name(name):
    out = b""
    if name not in ("", "."):
        for label in name.rstrip(".").split("."):
            raw = label.encode()
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def rdata(rtype, args):
    if rtype == "A":
        return ipaddress.IPv4Address(args[0]).packed
    if rtype == "AAAA":
        return ipaddress.IPv6Address(args[0]).packed
    if rtype == "CNAME":
        return encode_name(args[0])
    if rtype == "MX":
        return struct.pack("!H", int(args[0])) + encode_name(args[1])
    if rtype == "TXT":
        out = b""
        for s in args:
            raw = s.encode()
            out += bytes([len(raw)]) + raw
        return out
    if rtype == "TLSA":
        return bytes([int(args[0]), int(args[1]), int(args[2])]) + bytes.fromhex(args[3])
    raise ValueError("unknown type " + rtype)


def load(path):
    """[(name, type, rdata)], {(name, type or None): behaviour}"""
    records, behaviour = [], {}
    with open(path) as f:
        for line in f:
            words = shlex.split(line, comments=True)
            if len(words) < 2:
                continue
            name, kind, args = words[0].lower().rstrip("."), words[1].upper(), words[2:]
            if kind in BEHAVIOURS:
                behaviour[(name, TYPES[args[0].upper()] if args else None)] = kind
            elif kind == "RAW":
                records.append((name, TYPES[args[0].upper()], bytes.fromhex(args[1])))
            else:
                records.append((name, TYPES[kind], rdata(kind, args)))
    return records, behaviour


def parse_query(data):
    if len(data) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or qd != 1:
        return None
    i, labels = 12, []
    while True:
        if i >= len(data):
            return None
        n = data[i]
        i += 1
        if n == 0:
            break
        if n > 63 or i + n > len(data):
            return None
        labels.append(data[i:i + n].decode("latin-1"))
        i += n
    if i + 4 > len(data):
        return None
    qtype, qclass = struct.unpack("!HH", data[i:i + 4])
    return qid, flags, ".".join(labels).lower(), qtype, data[12:i + 4]


def answer(data, zonefile):
    q = parse_query(data)
    if q is None:
        return None, "?", "?", "ignored"
    qid, flags, qname, qtype, question = q
    try:
        records, behaviour = load(zonefile)
    except (OSError, ValueError) as e:
        print("dns_server.py: %s: %s" % (zonefile, e), file=sys.stderr)
        records, behaviour = [], {("*", None): "SERVFAIL"}

    def reply(rcode, rrs=()):
        # QR, AA, RD copied, RA; the question echoed.
        hdr = struct.pack("!HHHHHH", qid, 0x8480 | (flags & 0x0100) | rcode, 1, len(rrs), 0, 0)
        body = b"".join(encode_name(n) + struct.pack("!HHIH", t, 1, 300, len(r)) + r
                        for n, t, r in rrs)
        return hdr + question + body

    tname = NAMES.get(qtype, str(qtype))
    for key in ((qname, qtype), (qname, None), ("*", None)):
        if key in behaviour:
            b = behaviour[key]
            if b == "NOANSWER":
                return None, qname, tname, "noanswer"
            return reply(2 if b == "SERVFAIL" else 5), qname, tname, b.lower()

    def exists(name):
        return any(n == name or n.endswith("." + name) for n, _, _ in records)

    rrs, name = [], qname
    for _ in range(10):
        own = [r for r in records if r[0] == name and r[1] == qtype]
        cname = [r for r in records if r[0] == name and r[1] == TYPES["CNAME"]]
        if own or not cname or qtype == TYPES["CNAME"]:
            rrs += own
            break
        rrs += cname[:1]
        target = cname[0][2]
        # the target's name, back from its wire form
        labels, i = [], 0
        while target[i]:
            labels.append(target[i + 1:i + 1 + target[i]].decode())
            i += 1 + target[i]
        name = ".".join(labels).lower()
    if not exists(name):    # the name asked, or the end of its CNAME chain
        return reply(3, rrs), qname, tname, "nxdomain"
    return reply(0, rrs), qname, tname, ("answer %d" % len(rrs)) if rrs else "nodata"


def main():
    zonefile, ready, logfile, addresses = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    sel = selectors.DefaultSelector()
    for a in addresses:
        family = socket.AF_INET6 if ":" in a else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((a, 53))
        sel.register(s, selectors.EVENT_READ)
    open(ready, "w").close()
    log = open(logfile, "a", buffering=1)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            data, peer = s.recvfrom(65535)
            out, qname, tname, result = answer(data, zonefile)
            log.write("%s %s %s %s\n" % (peer[0], qname, tname, result))
            if out is not None:
                s.sendto(out, peer)


main()
