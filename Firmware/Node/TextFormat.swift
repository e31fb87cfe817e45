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

    public mutating func append(_ v: UInt64) {
        // Most significant digit first: no digit buffer to reverse.
        var unit: UInt64 = 1
        while v / unit >= 10 { unit *= 10 }
        while unit > 0 {
            bytes.append(0x30 + UInt8(v / unit % 10))
            unit /= 10
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
        guard v.isFinite else { append(v.isNaN ? "nan" : (v < 0 ? "-inf" : "inf")); return }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (v.magnitude * scale).rounded()
        guard scaled < 9.0e18 else { append(v < 0 ? "-big" : "big"); return }
        let n = UInt64(scaled)
        if v < 0 && n != 0 { bytes.append(0x2D) }
        let unit = UInt64(scale)
        append(n / unit)
        if decimals > 0 {
            bytes.append(0x2E)
            var frac = TextLine()
            frac.append(n % unit)
            for _ in frac.bytes.count..<decimals { bytes.append(0x30) }
            bytes.append(contentsOf: frac.bytes)
        }
    }

    /// Pads with spaces to `width` bytes (UTF-8 multi-byte characters count per byte).
    public mutating func pad(to width: Int) {
        while bytes.count < width { bytes.append(0x20) }
    }
}
