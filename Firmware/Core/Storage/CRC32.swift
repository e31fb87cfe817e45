/// CRC-32 (IEEE 802.3 / zlib: reflected polynomial 0xEDB88320, initial and
/// final XOR 0xFFFFFFFF; "123456789" -> 0xCBF43926). Four bits at a time over
/// a 16-entry table: 64 bytes of flash instead of zlib's 1 KB table.
public struct CRC32 {
    public private(set) var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    static let table: InlineArray<16, UInt32> = [  // constant data, not built at start-up
        0x0000_0000, 0x1DB7_1064, 0x3B6E_20C8, 0x26D9_30AC, 0x76DC_4190, 0x6B6B_51F4, 0x4DB2_6158, 0x5005_713C,
        0xEDB8_8320, 0xF00F_9344, 0xD6D6_A3E8, 0xCB61_B38C, 0x9B64_C2B0, 0x86D3_D2D4, 0xA00A_E278, 0xBDBD_F21C,
    ]

    public mutating func update(_ bytes: [UInt8], from start: Int, to end: Int) {
        var c = state
        var i = start
        while i < end {
            c ^= UInt32(bytes[i])
            c = (c >> 4) ^ CRC32.table[Int(c & 0x0F)]
            c = (c >> 4) ^ CRC32.table[Int(c & 0x0F)]
            i += 1
        }
        state = c
    }

    public var value: UInt32 { state ^ 0xFFFF_FFFF }

    public static func checksum(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) -> UInt32 {
        var c = CRC32()
        c.update(bytes, from: start, to: end ?? bytes.count)
        return c.value
    }
}
