// CBOR (RFC 8949) on the board: the examples of RFC 8949 Appendix A that TDOS's
// subset covers, written by CBORWriter and read back by CBORReader.

import TDOSCore

func cborTests() {
    cborUnsigned()
    cborNegative()
    cborStrings()
    cborContainers()
    cborSimpleAndFloat()
    cborSkip()
    cborMalformed()
}

private func encodedUnsigned(_ v: UInt64) -> [UInt8] {
    var w = CBORWriter()
    w.unsigned(v)
    return w.bytes
}

private func cborUnsigned() {
    let cases: [(value: UInt64, encoded: StaticString)] = [
        (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"),
        (100, "1864"), (1000, "1903e8"), (1_000_000, "1a000f4240"),
        (1_000_000_000_000, "1b000000e8d4a51000"),
        (UInt64.max, "1bffffffffffffffff"),
    ]
    for c in cases {
        expectEqual(encodedUnsigned(c.value), hex(c.encoded), "cbor unsigned encoding")
        var r = CBORReader(hex(c.encoded))
        let v = expectNoThrow("cbor unsigned decodes") { () throws(WireError) in try r.unsigned() }
        expectEqual(v ?? 0, c.value, "cbor unsigned round trip")
        expect(r.isAtEnd, "cbor unsigned consumed")
    }
}

private func cborNegative() {
    let cases: [(value: Int64, encoded: StaticString)] = [
        (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
        (Int64.min, "3b7fffffffffffffff"),
    ]
    for c in cases {
        var w = CBORWriter()
        w.int(c.value)
        expectEqual(w.bytes, hex(c.encoded), "cbor negative encoding")
        var r = CBORReader(hex(c.encoded))
        let v = expectNoThrow("cbor negative decodes") { () throws(WireError) in try r.int() }
        expectEqual(v ?? 0, c.value, "cbor negative round trip")
    }
    // -2^64 is valid CBOR but no Int64: an error, not a trap.
    expectThrows(WireError.malformedCBOR, "cbor -2^64 is out of Int64 range") { () throws(WireError) in
        var r = CBORReader(hex("3bffffffffffffffff"))
        _ = try r.int()
    }
}

private func cborStrings() {
    var w = CBORWriter()
    w.text("")
    w.text("a")
    w.text("IETF")
    w.text(ascii("\"\\"))
    w.text(hex("c3bc"))  // "ü"
    w.text(hex("e6b0b4"))  // "水"
    w.bytes([UInt8]())
    w.bytes([1, 2, 3, 4])
    expectEqual(w.bytes, hex("60 6161 6449455446 62225c 62c3bc 63e6b0b4 40 4401020304"),
                "cbor strings (RFC 8949 appendix A)")

    var r = CBORReader(w.bytes)
    let texts = expectNoThrow("cbor strings decode") { () throws(WireError) -> [[UInt8]] in
        var out: [[UInt8]] = []
        for _ in 0..<6 { out.append(Array(try r.text())) }
        out.append(Array(try r.bytes()))
        out.append(Array(try r.bytes()))
        return out
    } ?? []
    expectEqual(texts.count, 8, "cbor strings count")
    if texts.count == 8 {
        expectEqual(texts[2], ascii("IETF"), "cbor text IETF")
        expectEqual(texts[5], hex("e6b0b4"), "cbor text with a 3-byte character")
        expectEqual(texts[7], [1, 2, 3, 4], "cbor byte string")
    }
    expect(r.isAtEnd, "cbor strings consumed")

    expectThrows(WireError.malformedCBOR, "cbor text that is not UTF-8") { () throws(WireError) in
        var bad = CBORReader(hex("62c328"))
        _ = try bad.text()
    }
    expectThrows(WireError.truncated, "cbor text longer than the input") { () throws(WireError) in
        var bad = CBORReader(hex("644945"))
        _ = try bad.text()
    }
}

private func cborContainers() {
    // {1: 2, 3: 4}
    var w = CBORWriter()
    w.mapHeader(count: 2)
    w.unsigned(1); w.unsigned(2)
    w.unsigned(3); w.unsigned(4)
    expectEqual(w.bytes, hex("a201020304"), "cbor map {1: 2, 3: 4}")

    var r = CBORReader(w.bytes)
    let pairs = expectNoThrow("cbor map decodes") { () throws(WireError) -> [UInt64] in
        var out: [UInt64] = []
        let n = try r.mapHeader()
        for _ in 0..<n {
            out.append(try r.unsigned())
            out.append(try r.unsigned())
        }
        return out
    } ?? []
    expectEqual(pairs, [1, 2, 3, 4], "cbor map round trip")

    // {"a": 1, "b": [2, 3]}
    var m = CBORWriter()
    m.mapHeader(count: 2)
    m.text("a"); m.unsigned(1)
    m.text("b"); m.arrayHeader(count: 2); m.unsigned(2); m.unsigned(3)
    expectEqual(m.bytes, hex("a26161016162820203"), "cbor map with an array value")

    // [1, [2, 3], [4, 5]] and the empty containers.
    var a = CBORWriter()
    a.arrayHeader(count: 3)
    a.unsigned(1)
    a.arrayHeader(count: 2); a.unsigned(2); a.unsigned(3)
    a.arrayHeader(count: 2); a.unsigned(4); a.unsigned(5)
    a.arrayHeader(count: 0)
    a.mapHeader(count: 0)
    expectEqual(a.bytes, hex("8301820203820405 80 a0"), "cbor nested arrays, empty containers")

    // 25 elements: the count needs a second byte.
    var long = CBORWriter()
    long.arrayHeader(count: 25)
    expectEqual(long.bytes, hex("9819"), "cbor array header of 25")
}

private func cborSimpleAndFloat() {
    var w = CBORWriter()
    w.bool(false)
    w.bool(true)
    w.null()
    w.float(0.0)
    w.float(1.5)
    w.float(65504.0)
    w.float(100000.0)
    w.double(1.1)
    w.float(-4.0)
    expectEqual(w.bytes, hex("f4 f5 f6 f90000 f93e00 f97bff fa47c35000 fb3ff199999999999a f9c400"),
                "cbor simple values and shortest floats")

    var r = CBORReader(w.bytes)
    let decoded = expectNoThrow("cbor simple values decode") { () throws(WireError) -> [Double] in
        let f = try r.bool(), t = try r.bool(), n = try r.isNull()
        guard !f, t, n else { return [] }
        var out: [Double] = []
        for _ in 0..<6 { out.append(try r.number()) }
        return out
    } ?? []
    expect(decoded == [0.0, 1.5, 65504.0, 100000.0, 1.1, -4.0], "cbor numbers round trip")
}

private func cborSkip() {
    // ["a", {"b": "c"}] then 7: skip() steps over the whole array.
    var r = CBORReader(hex("826161a161626163 07"))
    let raw = expectNoThrow("cbor skipRaw") { () throws(WireError) in Array(try r.skipRaw()) }
    expectEqual(raw ?? [], hex("826161a161626163"), "cbor skipRaw returns the item's bytes")
    let after = expectNoThrow("cbor read after skip") { () throws(WireError) in try r.unsigned() }
    expectEqual(after ?? 0, 7, "cbor skip lands on the next item")

    // A tag (1, epoch time) is skipped with its content.
    var tagged = CBORReader(hex("c11a514b67b0 01"))
    expectNoThrow("cbor skip tag") { () throws(WireError) in try tagged.skip() }
    expectEqual(expectNoThrow("cbor after tag") { () throws(WireError) in try tagged.unsigned() } ?? 0, 1,
                "cbor skip of a tagged item")

    // Nesting deeper than depthMax is refused, not recursed into.
    expectThrows(WireError.malformedCBOR, "cbor nesting beyond depthMax") { () throws(WireError) in
        var deep = CBORReader(hex("818181818101"), depthMax: 3)
        try deep.skip()
    }
}

private func cborMalformed() {
    expectThrows(WireError.malformedCBOR, "cbor indefinite length is refused") { () throws(WireError) in
        var r = CBORReader(hex("9f0102ff"))
        try r.skip()
    }
    expectThrows(WireError.malformedCBOR, "cbor reserved additional info") { () throws(WireError) in
        var r = CBORReader(hex("1c"))
        _ = try r.unsigned()
    }
    expectThrows(WireError.truncated, "cbor head cut short") { () throws(WireError) in
        var r = CBORReader(hex("1903"))
        _ = try r.unsigned()
    }
    expectThrows(WireError.truncated, "cbor map count beyond the input") { () throws(WireError) in
        var r = CBORReader(hex("bb00000000ffffffff01"))
        _ = try r.mapHeader()
    }
    expectThrows(WireError.malformedCBOR, "cbor wrong major type") { () throws(WireError) in
        var r = CBORReader(hex("6161"))
        _ = try r.unsigned()
    }
    // A failed typed read leaves the position alone.
    var r = CBORReader(hex("6161"))
    _ = try? r.unsigned()
    expectEqual(r.position, 0, "cbor failed read does not move")
}
