# postroom: ISC license, see LICENSE.
# cdbdump.py FILE: prints every record of the constant database FILE as one line,
# KEY<TAB>VALUE, with NUL bytes shown as \0 and other non-printables as \xNN.
# The format (D. J. Bernstein's cdb): 256 (position, length) pairs of little-endian 32-bit
# numbers, then the records (klen, dlen, key, data), then the hash tables.
import struct
import sys


def show(b):
    out = []
    for c in b:
        if c == 0:
            out.append('\\0')
        elif c == 0x5C:
            out.append('\\\\')
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append('\\x%02x' % c)
    return ''.join(out)


def main():
    data = open(sys.argv[1], 'rb').read()
    if len(data) < 2048:
        sys.exit('cdbdump.py: %s: too short for a cdb' % sys.argv[1])
    tables = [struct.unpack_from('<II', data, 8 * i) for i in range(256)]
    end = min(pos for pos, _ in tables)
    pos = 2048
    while pos < end:
        klen, dlen = struct.unpack_from('<II', data, pos)
        pos += 8
        key = data[pos:pos + klen]
        pos += klen
        val = data[pos:pos + dlen]
        pos += dlen
        print('%s\t%s' % (show(key), show(val)))


main()
