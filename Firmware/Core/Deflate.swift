// Raw DEFLATE (RFC 1951, no zlib/gzip wrapper) for compressed payloads.
// The inflater is full RFC 1951 and never traps on hostile input: every index is
// bounds-checked, every failure throws, and output never grows past the caller's limit.
// The compressor is a small LZ77 with fixed Huffman codes: payloads are 50..1500 bytes,
// where a dynamic-table header would cost more than it saves, and flash is scarce.

/// Why a raw DEFLATE stream was rejected.
public enum InflateError: Error, Equatable {
    /// The input ends before the final block does.
    case truncated
    /// Block type 3, which RFC 1951 reserves.
    case badBlockType
    /// A stored block whose LEN is not the one's complement of NLEN.
    case badStoredLength
    /// Dynamic code lengths that do not form a usable prefix code.
    case badHuffmanTable
    /// Bits that match no code, or a symbol the format never sends (286/287, 30/31).
    case badCode
    /// A back-reference to before the start of the output.
    case badDistance
    /// The output would exceed the caller's limit.
    case outputLimit
}

public enum Deflate {
    /// Longest back-reference the compressor emits; keeps its chain table at 8 KB at most.
    static let window = 4096
    /// Candidates tried per position: enough for CBOR keys, bounded for the M0+.
    static let maxChain = 16
    /// 512 hash heads (2 KB on the board): larger tables gained nothing on CBOR payloads.
    static let hashBits: UInt32 = 9

    /// Base length and extra-bit count of length symbol 257 + i (RFC 1951 3.2.5),
    /// computed rather than tabulated to save flash.
    static func lengthBase(_ i: Int) -> (base: Int, extra: Int) {
        if i < 8 { return (i + 3, 0) }
        if i == 28 { return (258, 0) }
        let extra = (i >> 2) - 1
        return (((4 | (i & 3)) << extra) + 3, extra)
    }

    /// Base distance and extra-bit count of distance code d.
    static func distanceBase(_ d: Int) -> (base: Int, extra: Int) {
        if d < 4 { return (d + 1, 0) }
        let extra = (d >> 1) - 1
        return (((2 | (d & 1)) << extra) + 1, extra)
    }

    /// Order in which code-length code lengths are sent (RFC 1951 3.2.7).
    static let codeLengthOrder: InlineArray<19, UInt8> = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    // MARK: Compression

    public static func compress(_ input: [UInt8]) -> [UInt8] { compress(input[...]) }

    public static func compress(_ input: ArraySlice<UInt8>) -> [UInt8] {
        let n = input.count
        let at = input.startIndex
        // Worst case of a fixed block is 9 bits per byte plus header and end code; the
        // stored fallback (n + 5 per 64 KB) also fits, so this is the only output allocation.
        var w = BitWriter(capacity: n + n / 8 + 16)
        w.put(0b011, 3)  // BFINAL = 1, BTYPE = 01 (fixed Huffman)

        var chainSize = 1
        while chainSize < n && chainSize < window { chainSize <<= 1 }
        let mask = chainSize - 1
        // head: newest position per hash; prev: distance to the previous position with the
        // same hash (0 = none). A chain slot is reused only after its position left the window.
        var head = [Int](repeating: -1, count: 1 << Int(hashBits))
        var prev = [UInt16](repeating: 0, count: chainSize)

        func hash(_ i: Int) -> Int {
            let v = UInt32(input[at + i]) | UInt32(input[at + i + 1]) << 8 | UInt32(input[at + i + 2]) << 16
            return Int((v &* 2_654_435_761) >> (32 - hashBits))
        }
        func insert(_ i: Int, _ h: Int) {
            let c = head[h]
            prev[i & mask] = c >= 0 && i - c <= window ? UInt16(i - c) : 0
            head[h] = i
        }

        var i = 0
        while i < n {
            var bestLen = 0
            var bestDist = 0
            if n - i >= 3 {
                let h = hash(i)
                let maxLen = min(258, n - i)
                var cand = head[h]
                var chain = maxChain
                while cand >= 0 && i - cand <= window && chain > 0 {
                    var l = 0
                    while l < maxLen && input[at + cand + l] == input[at + i + l] { l += 1 }
                    if l > bestLen {
                        bestLen = l
                        bestDist = i - cand
                        if l == maxLen { break }
                    }
                    let d = Int(prev[cand & mask])
                    if d == 0 { break }
                    cand -= d
                    chain -= 1
                }
                insert(i, h)
            }
            if bestLen >= 3 {
                w.match(length: bestLen, distance: bestDist)
                var j = i + 1
                i += bestLen
                while j < i && n - j >= 3 { insert(j, hash(j)); j += 1 }
            } else {
                w.symbol(Int(input[at + i]))
                i += 1
            }
        }
        w.symbol(256)
        w.flush()

        // Incompressible data: stored blocks cost 5 bytes per 65535 instead of 1 bit per byte.
        let storedSize = n + 5 * max(1, (n + 65534) / 65535)
        if w.bytes.count <= storedSize { return w.bytes }
        var out: [UInt8] = []
        swap(&out, &w.bytes)  // take the buffer uniquely, so clearing it keeps its storage
        out.removeAll(keepingCapacity: true)
        var from = 0
        repeat {
            let len = min(65535, n - from)
            out.append(from + len == n ? 1 : 0)  // BFINAL, BTYPE = 00, padding to the byte
            out.append(UInt8(truncatingIfNeeded: len))
            out.append(UInt8(truncatingIfNeeded: len >> 8))
            out.append(UInt8(truncatingIfNeeded: ~len))
            out.append(UInt8(truncatingIfNeeded: ~len >> 8))
            out.append(contentsOf: input[(at + from)..<(at + from + len)])
            from += len
        } while from < n
        return out
    }

    /// LSB-first bit packer for the compressor.
    struct BitWriter {
        var bytes: [UInt8]
        var acc: UInt32 = 0
        var count: UInt32 = 0

        init(capacity: Int) {
            bytes = []
            bytes.reserveCapacity(capacity)
        }

        /// Appends the low `n` bits of `v` (n <= 16), first bit first.
        mutating func put(_ v: Int, _ n: UInt32) {
            acc |= UInt32(truncatingIfNeeded: v) << count
            count += n
            while count >= 8 {
                bytes.append(UInt8(truncatingIfNeeded: acc))
                acc >>= 8
                count -= 8
            }
        }

        /// Huffman codes are sent most significant bit first, so reverse them.
        mutating func code(_ c: Int, _ n: UInt32) {
            var r = 0
            var v = c
            for _ in 0..<n {
                r = r << 1 | v & 1
                v >>= 1
            }
            put(r, n)
        }

        /// A literal/length symbol in the fixed code (RFC 1951 3.2.6).
        mutating func symbol(_ s: Int) {
            if s < 144 { code(0x30 + s, 8) }
            else if s < 256 { code(0x190 + s - 144, 9) }
            else if s < 280 { code(s - 256, 7) }
            else { code(0xC0 + s - 280, 8) }
        }

        mutating func match(length: Int, distance: Int) {
            // Invert lengthBase/distanceBase: the bucket follows from the highest set bit.
            var li = 28
            if length < 11 { li = length - 3 }
            else if length < 258 {
                let v = length - 3
                let extra = Int.bitWidth - 3 - v.leadingZeroBitCount
                li = (extra + 1) * 4 + (v >> extra) & 3
            }
            let (lb, le) = Deflate.lengthBase(li)
            symbol(257 + li)
            put(length - lb, UInt32(le))

            let v = distance - 1
            var d = v
            if v >= 4 {
                let extra = Int.bitWidth - 2 - v.leadingZeroBitCount
                d = (extra + 1) * 2 + (v >> extra) & 1
            }
            let (db, de) = Deflate.distanceBase(d)
            code(d, 5)
            put(distance - db, UInt32(de))
        }

        mutating func flush() {
            if count > 0 { bytes.append(UInt8(truncatingIfNeeded: acc)) }
            acc = 0
            count = 0
        }
    }

    // MARK: Decompression

    public static func decompress(_ input: [UInt8], maxOutputCount: Int) throws(InflateError) -> [UInt8] {
        try decompress(input[...], maxOutputCount: maxOutputCount)
    }

    public static func decompress(_ input: ArraySlice<UInt8>, maxOutputCount: Int) throws(InflateError) -> [UInt8] {
        var z = Inflater(input: input, limit: max(0, maxOutputCount))
        try z.run()
        return z.out
    }

    /// The whole inflater state in one value, so the steps are mutating methods that
    /// throw without anything to release, and every table lives in one array `t`:
    /// code lengths at 0..<320, build scratch (`offs`) at 320..<336, then each Huffman
    /// table as 16 counts per length followed by its symbols in code order (as in
    /// zlib's puff.c): literal/length at `litBase`, distance at `distBase`.
    struct Inflater {
        static let offsBase = 320
        static let litBase = 336
        static let distBase = 336 + 16 + 288
        static let tableSize = distBase + 16 + 30

        let input: ArraySlice<UInt8>
        var pos: Int
        var buf: UInt32 = 0
        var count = 0
        let limit: Int
        var out: [UInt8] = []
        var t: [UInt16]

        init(input: ArraySlice<UInt8>, limit: Int) {
            self.input = input
            pos = input.startIndex
            self.limit = limit
            // A modest first guess; `put` grows it without ever passing `limit`.
            out.reserveCapacity(min(limit, input.count &* 4 &+ 64))
            t = [UInt16](repeating: 0, count: Inflater.tableSize)
        }

        mutating func run() throws(InflateError) {
            var last = false
            while !last {
                last = try bits(1) == 1
                let type = try bits(2)
                if type == 0 {
                    // Stored: skip to the byte boundary (fewer than 8 bits are ever buffered).
                    buf = 0
                    count = 0
                    let len = try bits(16)
                    let nlen = try bits(16)
                    guard len == ~nlen & 0xFFFF else { throw .badStoredLength }
                    guard input.endIndex - pos >= len else { throw .truncated }
                    for _ in 0..<len {
                        try put(input[pos])
                        pos += 1
                    }
                    continue
                }
                if type == 1 {
                    for s in 0..<318 { set(s, s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : s < 288 ? 8 : 5) }
                    _ = build(0, 288, Inflater.litBase)
                    _ = build(288, 30, Inflater.distBase)  // incomplete on purpose: codes 30/31 are invalid
                } else if type == 2 {
                    try readTables()
                } else {
                    throw .badBlockType
                }
                try inflateCodes()
            }
        }

        /// Appends one output byte, growing capacity by doubling but never past `limit`,
        /// so hostile input cannot make the array allocate more than the caller allowed.
        @inline(never)
        mutating func put(_ byte: UInt8) throws(InflateError) {
            let n = out.count
            guard n < limit else { throw .outputLimit }
            if n == out.capacity {
                out.reserveCapacity(min(limit, max(n + 1, n &* 2)))
            }
            out.append(byte)
        }

        /// Reads a dynamic block's code lengths (RFC 1951 3.2.7) and builds both tables.
        mutating func readTables() throws(InflateError) {
            let nlen = try bits(5) + 257
            let ndist = try bits(5) + 1
            let ncode = try bits(4) + 4
            guard nlen <= 286 && ndist <= 30 else { throw .badHuffmanTable }
            for i in 0..<19 {
                set(Int(codeLengthOrder[i]), i < ncode ? UInt16(try bits(3)) : 0)
            }
            // The code-length code must be complete; the literal table is free scratch
            // until rebuilt below.
            guard build(0, 19, Inflater.litBase) == 0 else { throw .badHuffmanTable }
            let total = nlen + ndist
            var i = 0
            while i < total {
                let sym = try decode(Inflater.litBase)
                var value = UInt16(sym)
                var rep = 1
                if sym == 16 {
                    guard i > 0 else { throw .badHuffmanTable }
                    value = t[i - 1]
                    rep = 3 + (try bits(2))
                } else if sym == 17 {
                    value = 0
                    rep = 3 + (try bits(3))
                } else if sym == 18 {
                    value = 0
                    rep = 11 + (try bits(7))
                }
                guard rep <= total - i else { throw .badHuffmanTable }
                while rep > 0 {
                    set(i, value)
                    i += 1
                    rep -= 1
                }
            }
            guard t[256] != 0 else { throw .badHuffmanTable }  // no end-of-block code
            // Incomplete codes are refused except one code of length 1 (RFC 1951 3.2.7 allows
            // a lone distance code; zlib also accepts it for literal/length).
            guard usable(0, nlen, Inflater.litBase), usable(nlen, ndist, Inflater.distBase)
            else { throw .badHuffmanTable }
        }

        /// Builds a dynamic table: usable if complete, or a single code of length 1.
        mutating func usable(_ start: Int, _ n: Int, _ base: Int) -> Bool {
            let left = build(start, n, base)
            return left == 0 || (left == 1 << 14 && t[base + 1] == 1)
        }

        /// Decodes literal/length and distance codes until the end-of-block symbol.
        mutating func inflateCodes() throws(InflateError) {
            while true {
                let sym = try decode(Inflater.litBase)
                if sym < 256 {
                    try put(UInt8(truncatingIfNeeded: sym))
                } else if sym == 256 {
                    return
                } else {
                    guard sym < 286 else { throw .badCode }
                    let (lb, le) = lengthBase(sym - 257)
                    let len = lb + (try bits(le))
                    let d = try decode(Inflater.distBase)
                    guard d < 30 else { throw .badCode }
                    let (db, de) = distanceBase(d)
                    let distance = db + (try bits(de))
                    guard distance <= out.count else { throw .badDistance }
                    // Byte by byte: overlapping copies (distance < length) repeat the pattern.
                    for _ in 0..<len {
                        try put(out[out.count - distance])
                    }
                }
            }
        }

        /// Builds the table at `base` from the lengths t[start..<start+n] (each <= 15,
        /// n <= the table's symbols). Returns the unused code space in units of 2^-15:
        /// 0 = complete, negative = over-subscribed.
        mutating func build(_ start: Int, _ n: Int, _ base: Int) -> Int {
            let offs = Inflater.offsBase
            for i in base..<(base + 16) { set(i, 0) }  // a variable start: not unrolled 16 times
            for s in 0..<n { bump(base + Int(t[start + s])) }
            if Int(t[base]) == n { return 0 }  // no codes: valid until one is used
            var left = 1
            set(offs + 1, 0)
            for l in 1..<16 {
                left = left << 1 - Int(t[base + l])
                if left < 0 { return left }
                if l < 15 { set(offs + l + 1, t[offs + l] + t[base + l]) }
            }
            for s in 0..<n {
                let l = Int(t[start + s])
                if l != 0 {
                    set(base + 16 + Int(t[offs + l]), UInt16(s))
                    bump(offs + l)
                }
            }
            return left
        }

        /// Every table write goes through these two, so the array's uniqueness check
        /// is in one place rather than inlined at each store.
        @inline(never)
        mutating func set(_ i: Int, _ v: UInt16) { t[i] = v }

        mutating func bump(_ i: Int) { set(i, t[i] + 1) }

        /// Next `n` bits (n <= 16), first bit lowest. Refills a byte at a time, so the
        /// buffer never holds more than 23 bits and fewer than 8 stay after each call.
        mutating func bits(_ n: Int) throws(InflateError) -> Int {
            while count < n {
                guard pos < input.endIndex else { throw .truncated }
                buf |= UInt32(input[pos]) << UInt32(count)
                pos += 1
                count += 8
            }
            let v = buf & (UInt32(1) << UInt32(n) &- 1)
            buf >>= UInt32(n)
            count -= n
            return Int(v)
        }

        /// One symbol of the table at `base`, a bit at a time. `code - first` stays within
        /// this length's codes and `index` within the filled symbols, so no access leaves
        /// the table.
        mutating func decode(_ base: Int) throws(InflateError) -> Int {
            var code = 0
            var first = 0
            var index = base + 16
            for l in 1..<16 {
                code |= try bits(1)
                let c = Int(t[base + l])
                if code - first < c { return Int(t[index + code - first]) }
                index += c
                first = (first + c) << 1
                code <<= 1
            }
            throw .badCode
        }
    }
}
