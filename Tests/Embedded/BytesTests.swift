// ByteWriter / ByteReader and the hex helpers, on the board's instruction set.

import TDOSCore

func bytesTests() {
    varintRoundTrips()
    varintMalformed()
    fixedWidthBigEndian()
    truncatedReads()
    readerBounds()
    hexHelpers()
}

private func varintRoundTrips() {
    // Each boundary where the encoding gains a byte, with its exact bytes.
    let cases: [(value: UInt64, encoded: StaticString)] = [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (16383, "ff7f"),
        (16384, "808001"),
        (UInt64(UInt32.max), "ffffffff0f"),
        (UInt64.max, "ffffffffffffffffff01"),
    ]
    for c in cases {
        var w = ByteWriter()
        w.varint(c.value)
        expectEqual(w.bytes, hex(c.encoded), "varint encoding")
        var r = ByteReader(w.bytes)
        let decoded = expectNoThrow("varint decodes") { () throws(WireError) -> UInt64 in
            try r.varint()
        }
        expectEqual(decoded ?? 0, c.value, "varint round trip")
        expect(r.isAtEnd, "varint consumes exactly its bytes")
    }

    // Several in a row, as in a real header.
    var w = ByteWriter()
    for v: UInt64 in [0, 127, 128, 16383, 16384, .max] { w.varint(v) }
    var r = ByteReader(w.bytes)
    for v: UInt64 in [0, 127, 128, 16383, 16384, .max] {
        let decoded = expectNoThrow("varint sequence decodes") { () throws(WireError) -> UInt64 in
            try r.varint()
        }
        expectEqual(decoded ?? 0, v, "varint sequence")
    }
    expect(r.isAtEnd, "varint sequence consumed")
}

private func varintMalformed() {
    expectThrows(WireError.truncated, "varint cut after a continuation byte") { () throws(WireError) in
        var r = ByteReader([0x80])
        _ = try r.varint()
    }
    expectThrows(WireError.truncated, "varint of nothing") { () throws(WireError) in
        var r = ByteReader([])
        _ = try r.varint()
    }
    expectThrows(WireError.malformedHeader, "varint over 64 bits") { () throws(WireError) in
        var r = ByteReader(hex("ffffffffffffffffff02"))
        _ = try r.varint()
    }
    expectThrows(WireError.malformedHeader, "varint longer than 10 bytes") { () throws(WireError) in
        var r = ByteReader(hex("8080808080808080808000"))
        _ = try r.varint()
    }
    expectThrows(WireError.malformedHeader, "varint longer than maxBytes") { () throws(WireError) in
        var r = ByteReader(hex("808001"))
        _ = try r.varint(maxBytes: 2)
    }
}

private func fixedWidthBigEndian() {
    var w = ByteWriter(capacity: 15)
    w.u8(0xA5)
    w.u16(0x1234)
    w.u32(0xDEAD_BEEF)
    w.u64(0x0102_0304_0506_0708)
    expectEqual(w.bytes, hex("a5 1234 deadbeef 0102030405060708"), "u8/u16/u32/u64 are big-endian")

    var r = ByteReader(w.bytes)
    let fields = expectNoThrow("fixed-width fields decode") { () throws(WireError) -> (UInt8, UInt16, UInt32, UInt64) in
        (try r.u8(), try r.u16(), try r.u32(), try r.u64())
    }
    expectEqual(fields?.0 ?? 0, 0xA5, "u8 round trip")
    expectEqual(fields?.1 ?? 0, 0x1234, "u16 round trip")
    expectEqual(fields?.2 ?? 0, 0xDEAD_BEEF, "u32 round trip")
    expectEqual(fields?.3 ?? 0, 0x0102_0304_0506_0708, "u64 round trip")
    expect(r.isAtEnd, "fixed-width fields consumed")

    var extremes = ByteWriter()
    extremes.u16(.max)
    extremes.u32(0)
    extremes.u64(.max)
    var e = ByteReader(extremes.bytes)
    expectEqual(expectNoThrow("u16 max") { () throws(WireError) in try e.u16() } ?? 0, .max, "u16 max round trip")
    expectEqual(expectNoThrow("u32 zero") { () throws(WireError) in try e.u32() } ?? 1, 0, "u32 zero round trip")
    expectEqual(expectNoThrow("u64 max") { () throws(WireError) in try e.u64() } ?? 0, .max, "u64 max round trip")
}

private func truncatedReads() {
    expectThrows(WireError.truncated, "u8 of nothing") { () throws(WireError) in
        var r = ByteReader([])
        _ = try r.u8()
    }
    expectThrows(WireError.truncated, "u16 of 1 byte") { () throws(WireError) in
        var r = ByteReader([0x12])
        _ = try r.u16()
    }
    expectThrows(WireError.truncated, "u32 of 3 bytes") { () throws(WireError) in
        var r = ByteReader([1, 2, 3])
        _ = try r.u32()
    }
    expectThrows(WireError.truncated, "u64 of 7 bytes") { () throws(WireError) in
        var r = ByteReader([1, 2, 3, 4, 5, 6, 7])
        _ = try r.u64()
    }
    expectThrows(WireError.truncated, "take more than remains") { () throws(WireError) in
        var r = ByteReader([1, 2, 3, 4])
        _ = try r.take(5)
    }
    expectThrows(WireError.truncated, "take a negative count") { () throws(WireError) in
        var r = ByteReader([1, 2, 3, 4])
        _ = try r.take(-1)
    }

    // A failed read leaves the position alone, so the caller can report where.
    var r = ByteReader([0xAB, 0xCD, 0xEF])
    _ = try? r.u8()
    _ = try? r.u32()
    expectEqual(r.position, 1, "failed read does not move the position")
    expectEqual(r.remaining, 2, "failed read does not consume")
}

private func readerBounds() {
    let bytes: [UInt8] = [0, 1, 2, 3, 4, 5]
    var r = ByteReader(bytes, start: 2, end: 4)
    expectEqual(r.remaining, 2, "window remaining")
    let slice = expectNoThrow("take within the window") { () throws(WireError) in try r.take(2) }
    expectEqual(Array(slice ?? []), [2, 3], "take returns the window's bytes")
    expect(r.isAtEnd, "window consumed")
    expectThrows(WireError.truncated, "read past the window's end") { () throws(WireError) in
        _ = try r.u8()
    }
}

private func hexHelpers() {
    expectEqual(hexString([0x00, 0xAB, 0x7F, 0xFF]), ascii("00ab7fff"), "hexString is lower-case")
    expectEqual(hexString([UInt8]()), [], "hexString of nothing")
    expectEqual(bytesFromHex(ascii("00AB7f ff\n")) ?? [], [0x00, 0xAB, 0x7F, 0xFF], "bytesFromHex ignores case and whitespace")
    expect(bytesFromHex(ascii("abc")) == nil, "bytesFromHex rejects an odd digit count")
    expect(bytesFromHex(ascii("0g")) == nil, "bytesFromHex rejects a non-hex digit")
    expectEqual(WireError.truncated.code, 1, "truncated is wire code 1")
}
