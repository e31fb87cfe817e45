// CBOR (RFC 8949) subset for TDOS payloads: maps with small unsigned keys.
// The writer emits preferred (shortest) serialization. The reader never traps
// and never allocates from a claimed length: every length is checked against
// the bytes left first. Indefinite lengths (additional info 31) and the
// reserved additional info 28-30 are rejected as malformed: TDOS never emits
// them, and refusing them keeps the reader small and its memory bounded.

public enum CBORMajor: UInt8 {
    case unsigned = 0, negative = 1, bytes = 2, text = 3, array = 4, map = 5, tag = 6, simple = 7
}

public struct CBORWriter {
    public var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Initial byte plus the argument in the fewest bytes (0, 1, 2, 4 or 8).
    mutating func head(_ major: UInt8, _ v: UInt64) {
        let m = major << 5
        if v < 24 { bytes.append(m | UInt8(truncatingIfNeeded: v)); return }
        var n = 1
        var ai: UInt8 = 24
        while n < 8 && v >> UInt64(n * 8) != 0 { n <<= 1; ai += 1 }
        bytes.append(m | ai)
        put(v, n)
    }

    mutating func put(_ v: UInt64, _ n: Int) {
        var i = n
        while i > 0 { i -= 1; bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(i * 8))) }
    }

    public mutating func unsigned(_ v: UInt64) { head(0, v) }

    /// An unsigned key and an unsigned value: most map entries, one call each.
    @inline(never)
    public mutating func field(_ key: UInt8, _ v: UInt32) {
        head(0, UInt64(key))
        head(0, UInt64(v))
    }

    /// The same for a 64-bit value (the task report's counters). Named apart so
    /// an integer literal is not ambiguous; the 32-bit one is cheaper per call.
    @inline(never)
    public mutating func field64(_ key: UInt8, _ v: UInt64) {
        head(0, UInt64(key))
        head(0, v)
    }

    /// Negative n is major 1 with argument -1-n, which is ~n in two's complement.
    public mutating func int(_ v: Int64) {
        if v < 0 { head(1, UInt64(bitPattern: ~v)) } else { head(0, UInt64(v)) }
    }

    public mutating func bytes(_ v: ArraySlice<UInt8>) { head(2, UInt64(v.count)); self.bytes.append(contentsOf: v) }
    public mutating func bytes(_ v: [UInt8]) { head(2, UInt64(v.count)); self.bytes.append(contentsOf: v) }

    public mutating func text(_ v: StaticString) {
        head(3, UInt64(v.utf8CodeUnitCount))
        v.withUTF8Buffer { self.bytes.append(contentsOf: $0) }
    }
    public mutating func text(_ v: [UInt8]) { head(3, UInt64(v.count)); self.bytes.append(contentsOf: v) }
    public mutating func text(_ v: ArraySlice<UInt8>) { head(3, UInt64(v.count)); self.bytes.append(contentsOf: v) }

    public mutating func arrayHeader(count: Int) { head(4, UInt64(count)) }
    public mutating func mapHeader(count: Int) { head(5, UInt64(count)) }
    public mutating func bool(_ v: Bool) { bytes.append(v ? 0xF5 : 0xF4) }
    public mutating func null() { bytes.append(0xF6) }

    public mutating func float(_ v: Float) {
        if let h = cborHalf(v) { bytes.append(0xF9); put(UInt64(h), 2); return }
        bytes.append(0xFA)
        put(UInt64(v.bitPattern), 4)
    }

    public mutating func double(_ v: Double) {
        let f = Float(v)
        if v.isNaN || Double(f) == v { float(f); return }
        bytes.append(0xFB)
        put(v.bitPattern, 8)
    }
}

/// Half-precision bits of `f` if the half value is exactly `f`, else nil.
/// Done on bits because Float16 is not available on every target.
func cborHalf(_ f: Float) -> UInt16? {
    if f.isNaN { return 0x7E00 }  // canonical quiet NaN; payloads are not kept
    let b = f.bitPattern
    let sign = UInt16(truncatingIfNeeded: b >> 16) & 0x8000
    let exp = Int(b >> 23 & 0xFF)
    let mant = b & 0x7F_FFFF
    if exp == 0xFF { return sign | 0x7C00 }  // infinity
    if exp == 0 { return mant == 0 ? sign : nil }  // zero; single subnormals are below half range
    let e = exp - 127
    if e >= -14 && e <= 15 {  // half normal: low 13 mantissa bits must be zero
        guard mant & 0x1FFF == 0 else { return nil }
        return sign | UInt16(e + 15) << 10 | UInt16(truncatingIfNeeded: mant >> 13)
    }
    if e >= -24 && e < -14 {  // half subnormal: value = m * 2^-24, m = full >> (-e-1)
        let full = mant | 0x80_0000
        let s = UInt32(-e - 1)
        guard full & (1 << s - 1) == 0 else { return nil }
        return sign | UInt16(truncatingIfNeeded: full >> s)
    }
    return nil
}

/// Double value of half-precision bits (NaN payload and sign preserved).
func cborHalfToDouble(_ h: UInt16) -> Double {
    let sign = UInt64(h & 0x8000) << 48
    let e = UInt64(h >> 10 & 0x1F)
    let m = UInt64(h & 0x3FF)
    if e == 0 {  // zero or subnormal: m * 2^-24, exact in a Double
        let v = Double(m) * 0x1p-24
        return sign != 0 ? -v : v
    }
    let de: UInt64 = e == 31 ? 0x7FF : e + (1023 - 15)
    return Double(bitPattern: sign | de << 52 | m << 42)
}

/// Reads CBOR items between `start` and `end`. A typed read that throws leaves
/// `position` where it was, so the caller may try another type or skip().
public struct CBORReader {
    /// The whole buffer (a reader method owns the name `bytes`).
    public let data: [UInt8]
    public private(set) var position: Int
    let end: Int
    let depthMax: Int

    /// Out-of-range `start`/`end` are clamped rather than trapping.
    public init(_ bytes: [UInt8], start: Int = 0, end: Int? = nil, depthMax: Int = 8) {
        data = bytes
        self.end = min(max(end ?? bytes.count, 0), bytes.count)
        position = min(max(start, 0), self.end)
        self.depthMax = depthMax
    }

    public var isAtEnd: Bool { position >= end }

    /// Decodes the head at `p` without moving: major type, additional info,
    /// argument, and the offset just after the head.
    func head(at p: Int) throws(WireError) -> (major: UInt8, ai: UInt8, value: UInt64, next: Int) {
        guard p < end else { throw .truncated }
        let ib = data[p]
        let ai = ib & 31
        var v = UInt64(ai)
        var q = p + 1
        if ai >= 24 {
            guard ai <= 27 else { throw .malformedCBOR }  // 28-30 reserved, 31 indefinite
            let n = 1 << Int(ai - 24)
            guard end - q >= n else { throw .truncated }
            v = 0
            for _ in 0..<n { v = v << 8 | UInt64(data[q]); q += 1 }
            // RFC 8949 3.3: a two-byte simple value below 32 is not well-formed.
            if ib == 0xF8 && v < 32 { throw .malformedCBOR }
        }
        return (ib >> 5, ai, v, q)
    }

    public func peekMajor() throws(WireError) -> CBORMajor {
        guard position < end else { throw .truncated }
        return CBORMajor(rawValue: data[position] >> 5) ?? .simple
    }

    /// Consumes a head of the given major type and returns its argument.
    mutating func expect(_ major: UInt8) throws(WireError) -> (value: UInt64, next: Int) {
        let h = try head(at: position)
        guard h.major == major else { throw .malformedCBOR }
        return (h.value, h.next)
    }

    public mutating func unsigned() throws(WireError) -> UInt64 {
        let h = try expect(0)
        position = h.next
        return h.value
    }

    public mutating func int() throws(WireError) -> Int64 {
        let h = try head(at: position)
        guard h.major <= 1, h.value <= UInt64(Int64.max) else { throw .malformedCBOR }
        position = h.next
        let v = Int64(h.value)
        return h.major == 0 ? v : ~v
    }

    /// A string of `major`; its length is checked before anything is touched.
    mutating func string(_ major: UInt8) throws(WireError) -> (slice: ArraySlice<UInt8>, next: Int) {
        let h = try expect(major)
        guard h.value <= UInt64(end - h.next) else { throw .truncated }
        let e = h.next + Int(h.value)
        return (data[h.next..<e], e)
    }

    public mutating func bytes() throws(WireError) -> ArraySlice<UInt8> {
        let s = try string(2)
        position = s.next
        return s.slice
    }

    public mutating func text() throws(WireError) -> ArraySlice<UInt8> {
        let s = try string(3)
        guard cborValidUTF8(s.slice) else { throw .malformedCBOR }
        position = s.next
        return s.slice
    }

    /// Counts are checked against the bytes left (an element takes at least
    /// one byte, a map pair two), so a hostile count cannot drive a big loop
    /// or allocation in the caller.
    public mutating func arrayHeader() throws(WireError) -> Int {
        let h = try expect(4)
        guard h.value <= UInt64(end - h.next) else { throw .truncated }
        position = h.next
        return Int(h.value)
    }

    public mutating func mapHeader() throws(WireError) -> Int {
        let h = try expect(5)
        guard h.value <= UInt64((end - h.next) / 2) else { throw .truncated }
        position = h.next
        return Int(h.value)
    }

    public mutating func bool() throws(WireError) -> Bool {
        guard position < end else { throw .truncated }
        let b = data[position]
        guard b == 0xF4 || b == 0xF5 else { throw .malformedCBOR }
        position += 1
        return b == 0xF5
    }

    public mutating func isNull() throws(WireError) -> Bool {
        guard position < end else { throw .truncated }
        guard data[position] == 0xF6 else { return false }
        position += 1
        return true
    }

    public mutating func number() throws(WireError) -> Double {
        let h = try head(at: position)
        let v: Double
        switch (h.major, h.ai) {
        case (0, _): v = Double(h.value)
        case (1, _): v = -1 - Double(h.value)
        case (7, 25): v = cborHalfToDouble(UInt16(truncatingIfNeeded: h.value))
        case (7, 26): v = Double(Float(bitPattern: UInt32(truncatingIfNeeded: h.value)))
        case (7, 27): v = Double(bitPattern: h.value)
        default: throw .malformedCBOR
        }
        position = h.next
        return v
    }

    /// Skips one item and returns its encoding, unparsed (for opaque fields).
    public mutating func skipRaw() throws(WireError) -> ArraySlice<UInt8> {
        let start = position
        try skip()
        return data[start..<position]
    }

    /// Skips one well-formed item. Iterative: `left` counts items still due at
    /// the current level, `stack` holds the counts of the enclosing levels.
    /// Only arrays and maps add a level (at most depthMax); a tag just makes
    /// one more item due, so tag chains cost bytes, not memory. Text is not
    /// UTF-8 checked here: skipping needs well-formedness only.
    public mutating func skip() throws(WireError) {
        var p = position
        var left = 1
        var stack: [Int] = []  // allocates only when a non-empty container is entered
        while true {
            let h = try head(at: p)
            p = h.next
            left -= 1
            let room = UInt64(end - p)
            var children = 0
            switch h.major {
            case 2, 3:
                guard h.value <= room else { throw .truncated }
                p += Int(h.value)
            case 4:
                guard h.value <= room else { throw .truncated }
                children = Int(h.value)
            case 5:
                guard h.value <= room / 2 else { throw .truncated }
                children = Int(h.value) * 2
            case 6:
                left += 1
            default:
                break
            }
            if children > 0 {
                guard stack.count < depthMax else { throw .malformedCBOR }
                stack.append(left)
                left = children
            }
            while left == 0 {
                guard let up = stack.popLast() else { position = p; return }
                left = up
            }
        }
    }
}

/// Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
func cborValidUTF8(_ s: ArraySlice<UInt8>) -> Bool {
    var i = s.startIndex
    while i < s.endIndex {
        let b = s[i]
        i += 1
        if b < 0x80 { continue }
        var n = 1
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch b {
        case 0xC2...0xDF: break
        case 0xE0: n = 2; lo = 0xA0
        case 0xED: n = 2; hi = 0x9F
        case 0xE1...0xEF: n = 2
        case 0xF0: n = 3; lo = 0x90
        case 0xF4: n = 3; hi = 0x8F
        case 0xF1...0xF3: n = 3
        default: return false
        }
        guard s.endIndex - i >= n else { return false }
        // Only the first continuation byte has a narrowed range.
        while n > 0 {
            let c = s[i]
            guard c >= lo && c <= hi else { return false }
            lo = 0x80; hi = 0xBF
            i += 1; n -= 1
        }
    }
    return true
}
