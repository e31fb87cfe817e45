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
        let limit = max(0, maxOutputCount)
        var r = BitReader(input: input)
        var out: [UInt8] = []
        // A modest first guess; `room` grows it without ever passing `limit`.
        out.reserveCapacity(min(limit, input.count &* 4 &+ 64))
        var lit = Huffman(symbols: 288)
        var dist = Huffman(symbols: 30)
        var lengths = [UInt8](repeating: 0, count: 320)

        var last = false
        while !last {
            last = try r.bits(1) == 1
            switch try r.bits(2) {
            case 0:
                // Stored: skip to the byte boundary (fewer than 8 bits are ever buffered).
                r.buf = 0
                r.count = 0
                guard r.end - r.pos >= 4 else { throw .truncated }
                let len = Int(r.input[r.pos]) | Int(r.input[r.pos + 1]) << 8
                let nlen = Int(r.input[r.pos + 2]) | Int(r.input[r.pos + 3]) << 8
                r.pos += 4
                guard len == ~nlen & 0xFFFF else { throw .badStoredLength }
                guard r.end - r.pos >= len else { throw .truncated }
                try room(&out, len, limit)
                out.append(contentsOf: r.input[r.pos..<(r.pos + len)])
                r.pos += len
            case 1:
                for s in 0..<288 { lengths[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8 }
                for s in 288..<318 { lengths[s] = 5 }
                _ = lit.build(lengths, 0, 288)
                _ = dist.build(lengths, 288, 30)  // incomplete on purpose: codes 30/31 are invalid
                try inflateCodes(&r, &out, lit, dist, limit)
            case 2:
                try readTables(&r, &lengths, &lit, &dist)
                try inflateCodes(&r, &out, lit, dist, limit)
            default:
                throw .badBlockType
            }
        }
        return out
    }

    /// Makes room for `k` more bytes, growing capacity by doubling but never past `limit`,
    /// so hostile input cannot make the array allocate more than the caller allowed.
    static func room(_ out: inout [UInt8], _ k: Int, _ limit: Int) throws(InflateError) {
        guard k <= limit - out.count else { throw .outputLimit }
        let need = out.count + k
        if need > out.capacity {
            out.reserveCapacity(min(limit, max(need, out.capacity &* 2)))
        }
    }

    /// Reads a dynamic block's code lengths (RFC 1951 3.2.7) and builds both tables.
    static func readTables(_ r: inout BitReader, _ lengths: inout [UInt8],
                           _ lit: inout Huffman, _ dist: inout Huffman) throws(InflateError) {
        let nlen = try r.bits(5) + 257
        let ndist = try r.bits(5) + 1
        let ncode = try r.bits(4) + 4
        guard nlen <= 286 && ndist <= 30 else { throw .badHuffmanTable }
        for i in 0..<19 {
            lengths[Int(codeLengthOrder[i])] = i < ncode ? UInt8(try r.bits(3)) : 0
        }
        // The code-length code must be complete; `lit` is free scratch until rebuilt below.
        guard lit.build(lengths, 0, 19) == 0 else { throw .badHuffmanTable }
        let total = nlen + ndist
        var i = 0
        while i < total {
            let sym = try r.decode(lit)
            if sym < 16 {
                lengths[i] = UInt8(sym)
                i += 1
                continue
            }
            var value: UInt8 = 0
            var rep: Int
            if sym == 16 {
                guard i > 0 else { throw .badHuffmanTable }
                value = lengths[i - 1]
                rep = 3 + (try r.bits(2))
            } else if sym == 17 {
                rep = 3 + (try r.bits(3))
            } else {
                rep = 11 + (try r.bits(7))
            }
            guard rep <= total - i else { throw .badHuffmanTable }
            while rep > 0 {
                lengths[i] = value
                i += 1
                rep -= 1
            }
        }
        guard lengths[256] != 0 else { throw .badHuffmanTable }  // no end-of-block code
        // Incomplete codes are refused except one code of length 1 (RFC 1951 3.2.7 allows
        // a lone distance code; zlib also accepts it for literal/length).
        let a = lit.build(lengths, 0, nlen)
        guard a == 0 || (a == 1 << 14 && lit.count[1] == 1) else { throw .badHuffmanTable }
        let b = dist.build(lengths, nlen, ndist)
        guard b == 0 || (b == 1 << 14 && dist.count[1] == 1) else { throw .badHuffmanTable }
    }

    /// Decodes literal/length and distance codes until the end-of-block symbol.
    static func inflateCodes(_ r: inout BitReader, _ out: inout [UInt8],
                             _ lit: Huffman, _ dist: Huffman, _ limit: Int) throws(InflateError) {
        while true {
            let sym = try r.decode(lit)
            if sym < 256 {
                try room(&out, 1, limit)
                out.append(UInt8(truncatingIfNeeded: sym))
            } else if sym == 256 {
                return
            } else {
                guard sym < 286 else { throw .badCode }
                let (lb, le) = lengthBase(sym - 257)
                let len = lb + (try r.bits(le))
                let d = try r.decode(dist)
                guard d < 30 else { throw .badCode }
                let (db, de) = distanceBase(d)
                let distance = db + (try r.bits(de))
                guard distance <= out.count else { throw .badDistance }
                try room(&out, len, limit)
                // Byte by byte: overlapping copies (distance < length) repeat the pattern.
                var from = out.count - distance
                for _ in 0..<len {
                    out.append(out[from])
                    from += 1
                }
            }
        }
    }

    /// Canonical Huffman code as counts per length and symbols in code order (as in
    /// zlib's puff.c): small, and decoding never indexes past what `build` filled.
    struct Huffman {
        var count: [UInt16]
        var symbol: [UInt16]
        var offs: [UInt16]  // scratch for `build`, kept so rebuilding a table never allocates

        init(symbols: Int) {
            count = [UInt16](repeating: 0, count: 16)
            offs = count
            symbol = [UInt16](repeating: 0, count: symbols)
        }

        /// Builds from lengths[start..<start+n] (each <= 15, n <= symbol.count). Returns the
        /// unused code space in units of 2^-15: 0 = complete, negative = over-subscribed.
        mutating func build(_ lengths: [UInt8], _ start: Int, _ n: Int) -> Int {
            for l in 0..<16 { count[l] = 0 }
            for s in 0..<n { count[Int(lengths[start + s])] += 1 }
            if Int(count[0]) == n { return 0 }  // no codes: valid until one is used
            var left = 1
            offs[1] = 0
            for l in 1..<16 {
                left = left << 1 - Int(count[l])
                if left < 0 { return left }
                if l < 15 { offs[l + 1] = offs[l] + count[l] }
            }
            for s in 0..<n {
                let l = Int(lengths[start + s])
                if l != 0 {
                    symbol[Int(offs[l])] = UInt16(s)
                    offs[l] += 1
                }
            }
            return left
        }
    }

    /// LSB-first bit reader over the input; running out of bytes is `.truncated`.
    struct BitReader {
        let input: ArraySlice<UInt8>
        var pos: Int
        let end: Int
        var buf: UInt32 = 0
        var count = 0

        init(input: ArraySlice<UInt8>) {
            self.input = input
            pos = input.startIndex
            end = input.endIndex
        }

        /// Next `n` bits (n <= 16), first bit lowest. Refills a byte at a time, so the
        /// buffer never holds more than 23 bits and fewer than 8 stay after each call.
        mutating func bits(_ n: Int) throws(InflateError) -> Int {
            while count < n {
                guard pos < end else { throw .truncated }
                buf |= UInt32(input[pos]) << UInt32(count)
                pos += 1
                count += 8
            }
            let v = buf & (UInt32(1) << UInt32(n) &- 1)
            buf >>= UInt32(n)
            count -= n
            return Int(v)
        }

        /// One symbol, a bit at a time. `code - first` stays within this length's codes
        /// and `index` within the filled symbols, so no table access can go out of range.
        mutating func decode(_ h: Huffman) throws(InflateError) -> Int {
            var code = 0
            var first = 0
            var index = 0
            for l in 1..<16 {
                code |= try bits(1)
                let c = Int(h.count[l])
                if code - first < c { return Int(h.symbol[index + code - first]) }
                index += c
                first = (first + c) << 1
                code <<= 1
            }
            throw .badCode
        }
    }
}
