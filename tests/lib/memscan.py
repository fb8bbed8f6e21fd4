# postroom: ISC license, see LICENSE.
# memscan.scan(pid, traces): the lines "found TRACE in MAPPING" for each of the byte strings in
# traces found anywhere in the readable memory of process pid (/proc/PID/maps and mem; needs
# root or the same user), the kernel's pages and the sanitizers' huge reserved ranges left out.
def scan(pid, traces):
    found = []
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if fields[1][0] != "r" or "[v" in line or hi - lo > 1 << 28:
                continue
            try:
                mem.seek(lo)
                region = mem.read(hi - lo)
            except OSError:
                continue
            for t in traces:
                if t in region:
                    found.append("found %s in %s" % (t.decode(), line.strip()))
    return found
