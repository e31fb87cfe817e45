// Builds a line of text as bytes (for the display and the console) without
// String: StaticString pieces and numbers formatted here.
public struct StatusText {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 48) { bytes.reserveCapacity(capacity) }

    public mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func append(bytes more: [UInt8]) { bytes.append(contentsOf: more) }

    public mutating func append(_ value: UInt64) {
        var digits: [UInt8] = []
        var v = value
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(v % 10))
            v /= 10
        } while v > 0
        bytes.append(contentsOf: digits.reversed())
    }

    public mutating func append(_ value: UInt32) { append(UInt64(value)) }

    public mutating func append(signed value: Int64) {
        if value < 0 { append("-") }
        append(value < 0 ? UInt64(0) &- UInt64(bitPattern: value) : UInt64(value))
    }

    /// Hundredths as "12.34" (centi-degrees, centi-percent).
    public mutating func append(centi value: Int32) {
        if value < 0 { append("-") }
        let magnitude = UInt32(value < 0 ? -Int64(value) : Int64(value))
        append(magnitude / 100)
        append(".")
        let fraction = magnitude % 100
        if fraction < 10 { append("0") }
        append(fraction)
    }

    public mutating func append(ipv4 ip: UInt32) {
        append(ip >> 24); append(".")
        append((ip >> 16) & 0xFF); append(".")
        append((ip >> 8) & 0xFF); append(".")
        append(ip & 0xFF)
    }

    public mutating func append(hex value: UInt32) {
        let alphabet: StaticString = "0123456789abcdef"
        var shift: UInt32 = 28
        while true {
            bytes.append(alphabet.utf8Start[Int((value >> shift) & 0xF)])
            if shift == 0 { break }
            shift -= 4
        }
    }
}
