// Byte buffers for the wire: big-endian fixed fields and unsigned LEB128 varints.
// Readers never trap on hostile input: every read is bounds-checked and throws.

/// Appends encoded fields to a growable byte array.
public struct ByteWriter {
    public var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    public mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    public mutating func u32(_ v: UInt32) {
        var shift: UInt32 = 24
        while true {
            bytes.append(UInt8(truncatingIfNeeded: v >> shift))
            if shift == 0 { break }
            shift -= 8
        }
    }

    public mutating func u64(_ v: UInt64) {
        var shift: UInt64 = 56
        while true {
            bytes.append(UInt8(truncatingIfNeeded: v >> shift))
            if shift == 0 { break }
            shift -= 8
        }
    }

    /// Unsigned LEB128: 7 bits per byte, low group first, high bit = more follows.
    public mutating func varint(_ v: UInt64) {
        var rest = v
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: rest))
    }

    public mutating func append<C: Collection>(contentsOf other: C) where C.Element == UInt8 {
        bytes.append(contentsOf: other)
    }
}

/// Reads fields from a byte array without copying; `position` only moves forward.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var position: Int
    public let end: Int

    public init(_ bytes: [UInt8], start: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.position = start
        self.end = end ?? bytes.count
        precondition(start >= 0 && self.end <= bytes.count && start <= self.end)
    }

    public var remaining: Int { end - position }
    public var isAtEnd: Bool { position >= end }

    public mutating func u8() throws(WireError) -> UInt8 {
        guard position < end else { throw .truncated }
        let v = bytes[position]
        position += 1
        return v
    }

    public mutating func u16() throws(WireError) -> UInt16 {
        guard remaining >= 2 else { throw .truncated }
        let v = UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
        position += 2
        return v
    }

    public mutating func u32() throws(WireError) -> UInt32 {
        guard remaining >= 4 else { throw .truncated }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[position + i]) }
        position += 4
        return v
    }

    public mutating func u64() throws(WireError) -> UInt64 {
        guard remaining >= 8 else { throw .truncated }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[position + i]) }
        position += 8
        return v
    }

    /// LEB128 of at most `maxBytes` bytes (10 fits any UInt64); a longer or
    /// overflowing encoding is malformed, a cut-off one is truncated.
    public mutating func varint(maxBytes: Int = 10) throws(WireError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for _ in 0..<maxBytes {
            let byte = try u8()
            let group = UInt64(byte & 0x7F)
            if shift == 63 && group > 1 { throw .malformedHeader }
            result |= group << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw .malformedHeader
    }

    public mutating func take(_ count: Int) throws(WireError) -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else { throw .truncated }
        let slice = bytes[position..<(position + count)]
        position += count
        return slice
    }
}

extension UInt8 {
    static let hexDigits: StaticString = "0123456789abcdef"
}

/// Lower-case hex, used by logs, tests and the golden vectors.
public func hexString<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    let digits = UInt8.hexDigits.utf8Start
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0F)])
    }
    return out
}

/// Parses hex (whitespace ignored); nil on an odd digit count or a non-hex character.
public func bytesFromHex<C: Collection>(_ text: C) -> [UInt8]? where C.Element == UInt8 {
    var out: [UInt8] = []
    var high: UInt8? = nil
    for c in text {
        let nibble: UInt8
        switch c {
        case 0x30...0x39: nibble = c - 0x30
        case 0x61...0x66: nibble = c - 0x61 + 10
        case 0x41...0x46: nibble = c - 0x41 + 10
        case 0x20, 0x0A, 0x0D, 0x09: continue
        default: return nil
        }
        if let h = high { out.append(h << 4 | nibble); high = nil } else { high = nibble }
    }
    return high == nil ? out : nil
}
