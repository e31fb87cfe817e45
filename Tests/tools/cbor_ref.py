#!/usr/bin/env python3
"""Independent reference CBOR decoder for the Swift CBOR tests (no cbor2 needed).

Reads one hex string per line on stdin. Mode "desc" prints a canonical text
form of the single item on each line; mode "skip" prints how many bytes the
first item takes, or E if it is not well-formed under TDOS rules (no indefinite
lengths, arrays/maps nested at most DEPTH deep, tags do not count as depth).
Forms: ints decimal, h'..'/t'..' hex, [a,b], {k:v,...}, N(x), false/true/null/
undefined, simple(N), f<hex of IEEE double bits>.
"""
import struct
import sys

DEPTH = 8


def item(b, i, depth):
    ib = b[i]; i += 1
    mt, ai = ib >> 5, ib & 31
    if ai < 24:
        v = ai
    elif ai <= 27:
        n = 1 << (ai - 24)
        if i + n > len(b): raise IndexError
        v = int.from_bytes(b[i:i + n], 'big'); i += n
        if ib == 0xf8 and v < 32: raise ValueError('bad simple')
    else:
        raise ValueError('indefinite or reserved')
    if mt == 0: return str(v), i
    if mt == 1: return str(-1 - v), i
    if mt in (2, 3):
        if i + v > len(b): raise IndexError
        return ("h'" if mt == 2 else "t'") + b[i:i + v].hex() + "'", i + v
    if mt in (4, 5):
        if v and depth >= DEPTH: raise ValueError('too deep')
        parts = []
        for _ in range(v):
            k, i = item(b, i, depth + 1)
            if mt == 5:
                x, i = item(b, i, depth + 1); k = k + ':' + x
            parts.append(k)
        return ('[%s]' if mt == 4 else '{%s}') % ','.join(parts), i
    if mt == 6:
        x, i = item(b, i, depth)
        return '%d(%s)' % (v, x), i
    if ai in (25, 26, 27):
        fmt, n = {25: ('>e', 2), 26: ('>f', 4), 27: ('>d', 8)}[ai]
        x = struct.unpack(fmt, v.to_bytes(n, 'big'))[0]
        return 'f' + struct.pack('>d', x).hex(), i
    return {20: 'false', 21: 'true', 22: 'null', 23: 'undefined'}.get(v, 'simple(%d)' % v), i


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else 'desc'
    for line in sys.stdin:
        b = bytes.fromhex(line.strip())
        try:
            d, n = item(b, 0, 0)
            print(d if mode == 'desc' else n)
        except (IndexError, ValueError):
            print('E')


if __name__ == '__main__':
    main()
