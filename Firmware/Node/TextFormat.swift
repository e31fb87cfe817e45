// Text built as bytes, not String: on the board a single String interpolation
// costs ~20 KB of flash (DESIGN.md). Display lines, logs and CLI-facing text
// from node code are assembled with these.

public struct TextLine {
    public var bytes: [UInt8] = []
    public init() {}
    public init(_ s: StaticString) { append(s) }

    public mutating func append(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
    public mutating func append(bytes other: [UInt8]) { bytes.append(contentsOf: other) }

    public mutating func append(_ v: UInt64) { appendDigits(v, count: 1) }

    /// The decimal digits of `v`, zero-padded to at least `count` digits:
    /// written in place least significant first, then reversed (no array of
    /// digits per number).
    @inline(never)
    mutating func appendDigits(_ v: UInt64, count: Int) {
        let start = bytes.count
        var rest = v
        repeat {
            bytes.append(0x30 + UInt8(truncatingIfNeeded: rest % 10))
            rest /= 10
        } while rest > 0 || bytes.count - start < count
        var i = start, j = bytes.count - 1
        while i < j {
            bytes.swapAt(i, j)
            i += 1
            j -= 1
        }
    }

    public mutating func append(_ v: Int64) {
        if v < 0 { bytes.append(0x2D) }
        append(v.magnitude)
    }

    public mutating func append(_ v: Int) { append(Int64(v)) }

    /// Fixed-point with `decimals` digits, rounded half away from zero; NaN and
    /// infinities print as "nan"/"inf" rather than trapping.
    public mutating func append(_ v: Double, decimals: Int) {
        // The sign bit, not `v < 0` (a soft-float compare each on the board):
        // the same wherever it is read (never for a zero, which prints no sign).
        let negative = v.sign == .minus
        guard v.isFinite else { append(v.isNaN ? "nan" : (negative ? "-inf" : "inf")); return }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (v.magnitude * scale).rounded()
        guard scaled < 9.0e18 else { append(negative ? "-big" : "big"); return }
        let n = UInt64(scaled)
        if negative && n != 0 { bytes.append(0x2D) }
        let unit = UInt64(scale)
        append(n / unit)
        if decimals > 0 {
            bytes.append(0x2E)
            appendDigits(n % unit, count: decimals)
        }
    }

    /// Node ids print as 8 hex digits, as the CLI shows them: written in
    /// place (hexString's array and its generic copy were 0.3 KB).
    public mutating func appendHex32(_ v: UInt32) {
        let digits = ("0123456789abcdef" as StaticString).utf8Start
        var shift: UInt32 = 32
        while shift > 0 {
            shift -= 4
            bytes.append(digits[Int(v >> shift & 0xF)])
        }
    }

    /// Host-order IPv4 as dotted quad.
    public mutating func appendIPv4(_ ip: UInt32) {
        append(UInt64(ip >> 24)); append(".")
        append(UInt64((ip >> 16) & 0xFF)); append(".")
        append(UInt64((ip >> 8) & 0xFF)); append(".")
        append(UInt64(ip & 0xFF))
    }

    /// Pads with spaces to `width` bytes (UTF-8 multi-byte characters count per byte).
    public mutating func pad(to width: Int) {
        while bytes.count < width { bytes.append(0x20) }
    }
}
