// CBOR writer/reader tests: RFC 8949 Appendix A vectors, round trips, a
// cross-check against an independent Python decoder (Tests/tools/cbor_ref.py),
// and hostile input (truncations, random bytes, huge lengths, deep nesting).

import Foundation
import Testing
@testable import TDOSCore

// MARK: - Helpers

private func cborHex<C: Collection>(_ b: C) -> String where C.Element == UInt8 {
    String(decoding: hexString(b), as: UTF8.self)
}

private func cborUnhex(_ s: String) -> [UInt8] { bytesFromHex(Array(s.utf8))! }

private func cborHex64(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

/// The error a body throws, or nil if it returned.
/// (Closures infer `throws(any Error)`, so the WireError is recovered by cast;
/// any other error maps to a case the readers never throw, failing the test.)
private func cborError<T>(_ body: () throws -> T) -> WireError? {
    do { _ = try body(); return nil } catch let e as WireError { return e } catch { return .badCompression }
}

/// The shared seeded generator (TestSupport.swift), so a failure reproduces.
private typealias CBORTestRNG = TestRNG

/// Same text form as cbor_ref.py, built with the typed readers only.
private func cborDescribe(_ r: inout CBORReader) throws(WireError) -> String {
    switch try r.peekMajor() {
    case .unsigned: return String(try r.unsigned())
    case .negative: return String(try r.int())
    case .bytes: return "h'" + cborHex(try r.bytes()) + "'"
    case .text: return "t'" + cborHex(try r.text()) + "'"
    case .array:
        var parts: [String] = []
        for _ in 0..<(try r.arrayHeader()) { parts.append(try cborDescribe(&r)) }
        return "[" + parts.joined(separator: ",") + "]"
    case .map:
        var parts: [String] = []
        for _ in 0..<(try r.mapHeader()) {
            let k = try cborDescribe(&r)
            parts.append(k + ":" + (try cborDescribe(&r)))
        }
        return "{" + parts.joined(separator: ",") + "}"
    case .tag: throw .malformedCBOR  // the API has no tag reader; tags are only skipped
    case .simple:
        if try r.isNull() { return "null" }
        if let b = try? r.bool() { return b ? "true" : "false" }
        return "f" + cborHex64(try r.number().bitPattern)
    }
}

private func cborDescribeAll(_ bytes: [UInt8]) -> String? {
    var r = CBORReader(bytes)
    guard let d = try? cborDescribe(&r), r.isAtEnd else { return nil }
    return d
}

private let cborRefScript = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("tools/cbor_ref.py").path

/// Runs the Python reference decoder over hex lines; one output line per input.
private func cborPythonRef(_ mode: String, _ lines: [String]) throws -> [String] {
    let input = FileManager.default.temporaryDirectory
        .appendingPathComponent("cbor_ref_" + String(UInt64.random(in: 0...UInt64.max)) + ".txt")
    try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: input) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", cborRefScript, mode]
    p.standardInput = try FileHandle(forReadingFrom: input)
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
    return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        .dropLast().map(String.init)
}

// MARK: - RFC 8949 Appendix A

/// (encoding, text form, decodable with the typed readers)
private let cborAppendix: [(String, String, Bool)] = [
    ("00", "0", true), ("01", "1", true), ("0a", "10", true), ("17", "23", true),
    ("1818", "24", true), ("1819", "25", true), ("1864", "100", true), ("1903e8", "1000", true),
    ("1a000f4240", "1000000", true), ("1b000000e8d4a51000", "1000000000000", true),
    ("1bffffffffffffffff", "18446744073709551615", true),
    ("c249010000000000000000", "2(h'010000000000000000')", false),
    ("3bffffffffffffffff", "-18446744073709551616", false),
    ("c349010000000000000000", "3(h'010000000000000000')", false),
    ("20", "-1", true), ("29", "-10", true), ("3863", "-100", true), ("3903e7", "-1000", true),
    ("f90000", "f0000000000000000", true), ("f98000", "f8000000000000000", true),
    ("f93c00", "f3ff0000000000000", true), ("fb3ff199999999999a", "f3ff199999999999a", true),
    ("f93e00", "f3ff8000000000000", true), ("f97bff", "f40effc0000000000", true),
    ("fa47c35000", "f40f86a0000000000", true), ("fa7f7fffff", "f47efffffe0000000", true),
    ("fb7e37e43c8800759c", "f7e37e43c8800759c", true), ("f90001", "f3e70000000000000", true),
    ("f90400", "f3f10000000000000", true), ("f9c400", "fc010000000000000", true),
    ("fbc010666666666666", "fc010666666666666", true), ("f97c00", "f7ff0000000000000", true),
    ("f97e00", "f7ff8000000000000", true), ("f9fc00", "ffff0000000000000", true),
    ("fa7f800000", "f7ff0000000000000", true), ("fa7fc00000", "f7ff8000000000000", true),
    ("faff800000", "ffff0000000000000", true), ("fb7ff0000000000000", "f7ff0000000000000", true),
    ("fb7ff8000000000000", "f7ff8000000000000", true), ("fbfff0000000000000", "ffff0000000000000", true),
    ("f4", "false", true), ("f5", "true", true), ("f6", "null", true), ("f7", "undefined", false),
    ("f0", "simple(16)", false), ("f8ff", "simple(255)", false),
    ("c074323031332d30332d32315432303a30343a30305a",
     "0(t'323031332d30332d32315432303a30343a30305a')", false),
    ("c11a514b67b0", "1(1363896240)", false), ("c1fb41d452d9ec200000", "1(f41d452d9ec200000)", false),
    ("d74401020304", "23(h'01020304')", false), ("d818456449455446", "24(h'6449455446')", false),
    ("d82076687474703a2f2f7777772e6578616d706c652e636f6d",
     "32(t'687474703a2f2f7777772e6578616d706c652e636f6d')", false),
    ("40", "h''", true), ("4401020304", "h'01020304'", true),
    ("60", "t''", true), ("6161", "t'61'", true), ("6449455446", "t'49455446'", true),
    ("62225c", "t'225c'", true), ("62c3bc", "t'c3bc'", true), ("63e6b0b4", "t'e6b0b4'", true),
    ("64f0908591", "t'f0908591'", true),
    ("80", "[]", true), ("83010203", "[1,2,3]", true), ("8301820203820405", "[1,[2,3],[4,5]]", true),
    ("98190102030405060708090a0b0c0d0e0f101112131415161718181819",
     "[" + (1...25).map(String.init).joined(separator: ",") + "]", true),
    ("a0", "{}", true), ("a201020304", "{1:2,3:4}", true),
    ("a26161016162820203", "{t'61':1,t'62':[2,3]}", true),
    ("826161a161626163", "[t'61',{t'62':t'63'}]", true),
    ("a56161614161626142616361436164614461656145",
     "{t'61':t'41',t'62':t'42',t'63':t'43',t'64':t'44',t'65':t'45'}", true),
]

/// Appendix A cborIndefinite-length examples: TDOS rejects them.
private let cborIndefinite = [
    "5f42010243030405ff", "7f657374726561646d696e67ff", "9fff", "9f018202039f0405ffff",
    "9f01820203820405ff", "83018202039f0405ff", "83019f0203ff820405",
    "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
    "bf61610161629f0203ffff", "826161bf61626163ff", "bf6346756ef563416d7421ff",
]

@Test func cborAppendixDecode() throws {
    for (h, d, typed) in cborAppendix where typed {
        #expect(cborDescribeAll(cborUnhex(h)) == d, "decode \(h)")
    }
    // Spot checks of the scalar readers.
    var r = CBORReader(cborUnhex("3bffffffffffffffff"))
    #expect(cborError { try r.int() } == .malformedCBOR)
    #expect(try r.number() == -18446744073709551616.0)
    r = CBORReader(cborUnhex("c11a514b67b0"))
    #expect(try r.peekMajor() == .tag)
}

@Test func cborAppendixSkipAndPython() throws {
    for (h, _, _) in cborAppendix {
        var r = CBORReader(cborUnhex(h))
        #expect(cborError { try r.skip() } == nil, "skip \(h)")
        #expect(r.isAtEnd, "skip end \(h)")
    }
    // The reference decoder agrees with the cborAppendix text forms.
    #expect(try cborPythonRef("desc", cborAppendix.map { $0.0 }) == cborAppendix.map { $0.1 })
}

@Test func cborAppendixIndefiniteRejected() {
    for h in cborIndefinite {
        var r = CBORReader(cborUnhex(h))
        #expect(cborError { try r.skip() } == .malformedCBOR, "cborIndefinite \(h)")
        #expect(r.position == 0)
    }
}

@Test func cborAppendixEncode() {
    func enc(_ f: (inout CBORWriter) -> Void) -> String { var w = CBORWriter(); f(&w); return cborHex(w.bytes) }
    let uints: [(UInt64, String)] = [
        (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"), (100, "1864"),
        (1000, "1903e8"), (1_000_000, "1a000f4240"), (1_000_000_000_000, "1b000000e8d4a51000"),
        (UInt64.max, "1bffffffffffffffff"), (255, "18ff"), (256, "190100"), (65535, "19ffff"),
        (65536, "1a00010000"), (0xFFFF_FFFF, "1affffffff"), (0x1_0000_0000, "1b0000000100000000"),
    ]
    for (v, h) in uints { #expect(enc { $0.unsigned(v) } == h) }
    let ints: [(Int64, String)] = [
        (0, "00"), (1, "01"), (1000, "1903e8"), (-1, "20"), (-10, "29"), (-24, "37"), (-25, "3818"),
        (-100, "3863"), (-1000, "3903e7"), (Int64.min, "3b7fffffffffffffff"), (Int64.max, "1b7fffffffffffffff"),
    ]
    for (v, h) in ints { #expect(enc { $0.int(v) } == h) }
    let doubles: [(Double, String)] = [
        (0.0, "f90000"), (-0.0, "f98000"), (1.0, "f93c00"), (1.1, "fb3ff199999999999a"), (1.5, "f93e00"),
        (65504.0, "f97bff"), (100000.0, "fa47c35000"), (3.4028234663852886e+38, "fa7f7fffff"),
        (1.0e+300, "fb7e37e43c8800759c"), (5.960464477539063e-8, "f90001"), (0.00006103515625, "f90400"),
        (-4.0, "f9c400"), (-4.1, "fbc010666666666666"), (.infinity, "f97c00"), (.nan, "f97e00"),
        (-.infinity, "f9fc00"), (65520.0, "fa477ff000"), (2.98023223876953125e-8, "fa33000000"),
    ]
    for (v, h) in doubles { #expect(enc { $0.double(v) } == h, "double \(v)") }
    let floats: [(Float, String)] = [
        (0, "f90000"), (1.5, "f93e00"), (100000, "fa47c35000"), (Float.greatestFiniteMagnitude, "fa7f7fffff"),
        (1.1, "fa3f8ccccd"), (.nan, "f97e00"), (-.infinity, "f9fc00"), (5.960464477539063e-8, "f90001"),
    ]
    for (v, h) in floats { #expect(enc { $0.float(v) } == h, "float \(v)") }
    #expect(enc { $0.text("IETF") } == "6449455446")
    #expect(enc { $0.text("") } == "60")
    #expect(enc { $0.text("水") } == "63e6b0b4")
    #expect(enc { $0.text(Array("\"\\".utf8)) } == "62225c")
    #expect(enc { $0.text(Array("xü".utf8)[1...]) } == "62c3bc")
    #expect(enc { $0.bytes([1, 2, 3, 4]) } == "4401020304")
    #expect(enc { $0.bytes([9, 1, 2, 3, 4][1...]) } == "4401020304")
    #expect(enc { $0.bytes([UInt8]()) } == "40")
    #expect(enc { $0.bool(false); $0.bool(true); $0.null() } == "f4f5f6")
    #expect(enc { w in
        w.arrayHeader(count: 3); w.unsigned(1)
        w.arrayHeader(count: 2); w.unsigned(2); w.unsigned(3)
        w.arrayHeader(count: 2); w.unsigned(4); w.unsigned(5)
    } == "8301820203820405")
    #expect(enc { w in w.arrayHeader(count: 25); for i in 1...25 { w.unsigned(UInt64(i)) } }
        == "98190102030405060708090a0b0c0d0e0f101112131415161718181819")
    #expect(enc { w in w.mapHeader(count: 2); w.unsigned(1); w.unsigned(2); w.unsigned(3); w.unsigned(4) }
        == "a201020304")
    #expect(enc { w in
        w.mapHeader(count: 2); w.text("a"); w.unsigned(1); w.text("b")
        w.arrayHeader(count: 2); w.unsigned(2); w.unsigned(3)
    } == "a26161016162820203")
    #expect(enc { $0.arrayHeader(count: 0); $0.mapHeader(count: 0) } == "80a0")
}

// MARK: - Half precision (bit-level conversion against an exhaustive oracle)

@Test func cborHalfExhaustive() throws {
    var finite = Set<UInt32>()  // Float bit patterns of every non-NaN half value
    var lines: [String] = []
    for h in 0...0xFFFF {
        let bits = UInt16(h)
        let d = cborHalfToDouble(bits)
        lines.append("f9" + cborHex([UInt8(h >> 8), UInt8(h & 0xFF)]))
        if d.isNaN {
            #expect(bits & 0x7C00 == 0x7C00 && bits & 0x3FF != 0)
            continue
        }
        finite.insert(Float(d).bitPattern)
        #expect(Double(Float(d)) == d)
        #expect(cborHalf(Float(d)) == bits, "half \(h)")
        var w = CBORWriter()
        w.double(d)
        #expect(w.bytes == [0xF9, UInt8(h >> 8), UInt8(h & 0xFF)])
    }
    #expect(finite.count == 63490)  // all but the 2046 NaNs
    // Python's IEEE half decoding agrees on every pattern (NaNs only as NaN).
    let ref = try cborPythonRef("desc", lines)
    #expect(ref.count == 65536)
    for h in 0..<min(ref.count, 65536) {
        let d = cborHalfToDouble(UInt16(h))
        let mine = "f" + cborHex64(d.bitPattern)
        if d.isNaN { #expect(ref[h].hasPrefix("f7ff") || ref[h].hasPrefix("ffff")) } else { #expect(ref[h] == mine) }
    }
    // A Float becomes a half exactly when it is one of those values.
    var rng = CBORTestRNG(state: 7)
    for i in 0..<200_000 {
        var f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
        if i & 1 == 0 { f = Float(Int16(truncatingIfNeeded: rng.next())) * Float(sign: .plus, exponent: Int(rng.next() % 48) - 36, significand: 1) }
        if f.isNaN { continue }
        let h = cborHalf(f)
        #expect((h != nil) == finite.contains(f.bitPattern), "float \(f)")
        if let h { #expect(cborHalfToDouble(h) == Double(f)) }
    }
}

// MARK: - Round trips

@Test func cborRoundTripScalars() throws {
    var rng = CBORTestRNG(state: 1)
    let halfSet: Set<UInt32> = Set((0...0xFFFF).compactMap { h -> UInt32? in
        let d = cborHalfToDouble(UInt16(h)); return d.isNaN ? nil : Float(d).bitPattern
    })
    for i in 0..<20_000 {
        let shift = rng.next() % 64
        let u = rng.next() >> shift
        let s = Int64(bitPattern: rng.next()) >> Int64(shift)
        var d: Double
        switch i % 4 {
        case 0: d = Double(bitPattern: rng.next())
        case 1: d = Double(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())))
        case 2: d = Double(Int32(truncatingIfNeeded: rng.next()) >> Int32(shift % 32)) / 1024
        default: d = Double(Int16(truncatingIfNeeded: rng.next()) >> 5) * 0x1p-20
        }
        if d.isNaN { d = 0.25 }
        let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
        let blob = (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }

        var w = CBORWriter()
        w.unsigned(u); w.int(s); w.double(d); w.float(f); w.bytes(blob); w.bool(u & 1 == 0); w.null()
        var r = CBORReader(w.bytes)
        let headLen = w.bytes.count
        #expect(try r.unsigned() == u)
        #expect(try r.int() == s)
        let d2 = try r.number()
        #expect(d2.bitPattern == d.bitPattern)
        let f2 = try r.number()
        #expect(f.isNaN ? f2.isNaN : f2 == Double(f))
        #expect(Array(try r.bytes()) == blob)
        #expect(try r.bool() == (u & 1 == 0))
        #expect(try r.isNull())
        #expect(r.isAtEnd && r.position == headLen)

        // Preferred serialization: the shortest exact width, checked against
        // the set of half values rather than against the writer's own logic.
        var wd = CBORWriter(); wd.double(d)
        let single = Double(Float(d)) == d
        let want = single && halfSet.contains(Float(d).bitPattern) ? 3 : (single ? 5 : 9)
        #expect(wd.bytes.count == want, "width \(d)")
        var wu = CBORWriter(); wu.unsigned(u)
        let wantU = u < 24 ? 1 : u <= 0xFF ? 2 : u <= 0xFFFF ? 3 : u <= 0xFFFF_FFFF ? 5 : 9
        #expect(wu.bytes.count == wantU)
    }
}

/// A random TDOS-like value tree (no tags: the typed API has no tag reader).
private indirect enum CBORValue {
    case u(UInt64), i(Int64), b([UInt8]), t(String), bool(Bool), null, f(Float), d(Double)
    case arr([CBORValue]), map([(UInt64, CBORValue)])

    static func random(_ rng: inout CBORTestRNG, depth: Int) -> CBORValue {
        let pick = rng.next() % (depth < 4 ? 10 : 8)
        switch pick {
        case 0: return .u(rng.next() >> (rng.next() % 64))
        case 1: return .i(Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64))
        case 2: return .b((0..<Int(rng.next() % 12)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        case 3:
            let pools: [ClosedRange<UInt32>] = [0x20...0x7E, 0xA0...0x7FF, 0x800...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF]
            var s = ""
            for _ in 0..<(rng.next() % 8) {
                let pool = pools[Int(rng.next() % 5)]
                s.unicodeScalars.append(Unicode.Scalar(pool.lowerBound + UInt32(rng.next() % UInt64(pool.count)))!)
            }
            return .t(s)
        case 4: return .bool(rng.next() & 1 == 0)
        case 5: return .null
        case 6:
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            return .f(f.isNaN ? Float(rng.next() % 100) / 8 : f)
        case 7:
            let d = Double(bitPattern: rng.next())
            return .d(d.isNaN ? Double(rng.next() % 1000) / 16 : d)
        case 8: return .arr((0..<Int(rng.next() % 5)).map { _ in random(&rng, depth: depth + 1) })
        default: return randomMap(&rng, depth: depth + 1)
        }
    }

    static func randomMap(_ rng: inout CBORTestRNG, depth: Int) -> CBORValue {
        var keys = Set<UInt64>()
        for _ in 0..<(rng.next() % 7) { keys.insert(rng.next() % (rng.next() & 1 == 0 ? 24 : 70000)) }
        return .map(keys.sorted().map { ($0, random(&rng, depth: depth)) })
    }

    func encode(_ w: inout CBORWriter) {
        switch self {
        case .u(let v): w.unsigned(v)
        case .i(let v): w.int(v)
        case .b(let v): w.bytes(v)
        case .t(let v): w.text(Array(v.utf8))
        case .bool(let v): w.bool(v)
        case .null: w.null()
        case .f(let v): w.float(v)
        case .d(let v): w.double(v)
        case .arr(let a): w.arrayHeader(count: a.count); for x in a { x.encode(&w) }
        case .map(let m): w.mapHeader(count: m.count); for (k, x) in m { w.unsigned(k); x.encode(&w) }
        }
    }

    var text: String {
        switch self {
        case .u(let v): return String(v)
        case .i(let v): return String(v)
        case .b(let v): return "h'" + cborHex(v) + "'"
        case .t(let v): return "t'" + cborHex(Array(v.utf8)) + "'"
        case .bool(let v): return v ? "true" : "false"
        case .null: return "null"
        case .f(let v): return "f" + cborHex64(Double(v).bitPattern)
        case .d(let v): return "f" + cborHex64(v.bitPattern)
        case .arr(let a): return "[" + a.map(\.text).joined(separator: ",") + "]"
        case .map(let m): return "{" + m.map { String($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }
}

@Test func cborRandomMapsAgainstPython() throws {
    var rng = CBORTestRNG(state: 2)
    var encodings: [[UInt8]] = []
    var expected: [String] = []
    for _ in 0..<1500 {
        let v = CBORValue.randomMap(&rng, depth: 0)
        var w = CBORWriter()
        v.encode(&w)
        encodings.append(w.bytes)
        expected.append(v.text)
        #expect(cborDescribeAll(w.bytes) == v.text)
        var r = CBORReader(w.bytes)
        try r.skip()
        #expect(r.isAtEnd)
    }
    let ref = try cborPythonRef("desc", encodings.map { cborHex($0) })
    #expect(ref == expected)
}

/// How a receiver reads a newer payload: known keys by type, everything else skipped.
@Test func cborUnknownKeysSkipped() throws {
    var w = CBORWriter()
    w.mapHeader(count: 4)
    w.unsigned(1); w.unsigned(42)
    w.unsigned(9); w.arrayHeader(count: 2); w.mapHeader(count: 1); w.unsigned(0); w.double(1.1); w.text("x")
    w.unsigned(10); w.bytes([0xC0, 0x01])
    w.unsigned(2); w.text("ok")
    var r = CBORReader(w.bytes)
    var one: UInt64 = 0
    var two: [UInt8] = []
    for _ in 0..<(try r.mapHeader()) {
        switch try r.unsigned() {
        case 1: one = try r.unsigned()
        case 2: two = Array(try r.text())
        default: try r.skip()
        }
    }
    #expect(one == 42 && two == Array("ok".utf8) && r.isAtEnd)
    // skipRaw hands back an unknown value's exact encoding.
    r = CBORReader(cborUnhex("a2098201c1f6026161"))
    #expect(try r.mapHeader() == 2 && r.unsigned() == 9)
    #expect(cborHex(try r.skipRaw()) == "8201c1f6")
    #expect(r.data == cborUnhex("a2098201c1f6026161") && r.position == 6)
    r = CBORReader(cborUnhex("8201"))
    #expect(cborError { try r.skipRaw() } == .truncated && r.position == 0)
}

// MARK: - Hostile input

@Test func cborEveryTruncationThrows() {
    var all = cborAppendix.map { cborUnhex($0.0) }
    var rng = CBORTestRNG(state: 3)
    for _ in 0..<300 { var w = CBORWriter(); CBORValue.randomMap(&rng, depth: 0).encode(&w); all.append(w.bytes) }
    for full in all {
        for cut in 0..<full.count {
            let part = Array(full[..<cut])
            var r = CBORReader(part)
            // CBOR is prefix-free, so a cut item can only be truncated.
            #expect(cborError { try r.skip() } == .truncated, "cut \(cborHex(full)) at \(cut)")
            #expect(r.position == 0)
            var t = CBORReader(part)
            #expect(cborDescribeAll(part) == nil)
            _ = try? cborDescribe(&t)
            // The same cut inside a larger buffer, bounded by `end`.
            var e = CBORReader(full, end: cut)
            #expect(cborError { try e.skip() } == .truncated)
        }
    }
}

/// Runs every reader on `bytes`; checks that a failed typed read does not move
/// and a successful one moves forward within bounds. Returns skip's length or nil.
private func cborExercise(_ bytes: [UInt8], _ problems: inout Int) -> Int? {
    func check(_ body: (inout CBORReader) throws -> Void) {
        var r = CBORReader(bytes)
        let ok = cborError { try body(&r) } == nil
        if ok ? !(r.position > 0 && r.position <= bytes.count) : r.position != 0 { problems += 1 }
    }
    check { _ = try $0.unsigned() }
    check { _ = try $0.int() }
    check { _ = try $0.bytes() }
    check { _ = try $0.text() }
    check { _ = try $0.arrayHeader() }
    check { _ = try $0.mapHeader() }
    check { _ = try $0.bool() }
    check { r in if !(try r.isNull()) { throw WireError.malformedCBOR } }
    check { _ = try $0.number() }
    check { _ = try $0.peekMajor(); _ = try $0.unsigned() }
    var t = CBORReader(bytes)
    _ = try? cborDescribe(&t)
    var s = CBORReader(bytes)
    if cborError({ try s.skip() }) != nil {
        if s.position != 0 { problems += 1 }
        return nil
    }
    return s.position
}

@Test func cborRandomBytesNeverTrapAndMatchPython() throws {
    var rng = CBORTestRNG(state: 4)
    // Heads that open containers, tags, floats and long arguments, to get past the first byte often.
    let interesting: [UInt8] = [0x81, 0x82, 0x83, 0x9F, 0xA1, 0xA2, 0xBF, 0xC0, 0xD8, 0xF9, 0xFA, 0xFB,
                                0xF8, 0x18, 0x19, 0x1A, 0x1B, 0x5B, 0x7B, 0x9B, 0xBB, 0x41, 0x62, 0xFF, 0x00, 0xF6]
    var inputs: [[UInt8]] = []
    for _ in 0..<20_000 {
        let n = Int(rng.next() % 25)
        inputs.append((0..<n).map { _ in
            rng.next() % 2 == 0 ? interesting[Int(rng.next() % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: rng.next())
        })
    }
    // Mutated valid payloads reach deeper into nested structures.
    for _ in 0..<5_000 {
        var w = CBORWriter()
        CBORValue.randomMap(&rng, depth: 0).encode(&w)
        var b = w.bytes
        for _ in 0...(rng.next() % 3) where !b.isEmpty {
            b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next())
        }
        inputs.append(b)
    }
    var problems = 0
    let mine = inputs.map { cborExercise($0, &problems).map(String.init) ?? "E" }
    #expect(problems == 0)
    #expect(mine.filter { $0 != "E" }.count > 2_000)  // the corpus is not all garbage
    let ref = try cborPythonRef("skip", inputs.map { cborHex($0) })
    #expect(ref.count == inputs.count)
    var mismatches = 0
    for i in 0..<min(ref.count, mine.count) where ref[i] != mine[i] {
        mismatches += 1
        if mismatches < 5 { Issue.record("skip mismatch on \(cborHex(inputs[i])): swift \(mine[i]) python \(ref[i])") }
    }
    #expect(mismatches == 0)
}

@Test func cborHugeLengthsRejectedWithoutAllocating() {
    let cases = ["5bffffffffffffffff", "7bffffffffffffffff", "9bffffffffffffffff", "bbffffffffffffffff",
                 "5b000000010000000000", "5affffffff00", "9affffffff0000", "ba7fffffff000000",
                 "a2010203", "8301", "5b7fffffffffffffff01"]
    for h in cases {
        let b = cborUnhex(h)
        var r = CBORReader(b)
        #expect(cborError { try r.skip() } == .truncated, "skip \(h)")
        #expect(cborError { try r.bytes() } != nil)
        #expect(cborError { try r.text() } != nil)
        #expect(cborError { try r.arrayHeader() } != nil)
        #expect(cborError { try r.mapHeader() } != nil)
        #expect(r.position == 0)
    }
    var r = CBORReader(cborUnhex("5bffffffffffffffff"))
    #expect(cborError { try r.bytes() } == .truncated)
    r = CBORReader(cborUnhex("9bffffffffffffffff"))
    #expect(cborError { try r.arrayHeader() } == .truncated)
    // A map of n pairs needs 2n bytes: 2 pairs in 3 bytes is refused up front.
    r = CBORReader(cborUnhex("a2010203"))
    #expect(cborError { try r.mapHeader() } == .truncated)
    r = CBORReader(cborUnhex("a201020304"))
    #expect(try! r.mapHeader() == 2)
}

@Test func cborDepthLimit() {
    func nested(_ n: Int, _ open: [UInt8]) -> [UInt8] {
        var b: [UInt8] = []
        for _ in 0..<n { b += open }
        return b + [0x00]
    }
    for open in [[0x81], [0xA1, 0x01], [0x82, 0x00], [0xC6, 0x81]] as [[UInt8]] {
        var r = CBORReader(nested(100, open))
        #expect(cborError { try r.skip() } == .malformedCBOR)
        #expect(r.position == 0)
        r = CBORReader(nested(8, open))
        #expect(cborError { try r.skip() } == nil && r.isAtEnd)
        r = CBORReader(nested(9, open))
        #expect(cborError { try r.skip() } == .malformedCBOR)
        r = CBORReader(nested(100, open), depthMax: 100)
        #expect(cborError { try r.skip() } == nil && r.isAtEnd)
        r = CBORReader(nested(101, open), depthMax: 100)
        #expect(cborError { try r.skip() } == .malformedCBOR)
    }
    // 200,000 nested empty-ish levels: rejected quickly, no recursion.
    var r = CBORReader(nested(200_000, [0x81]))
    #expect(cborError { try r.skip() } == .malformedCBOR)
    // Tags wrap one item and add no depth, so a long tag chain only costs time.
    r = CBORReader(nested(100_000, [0xC1]))
    #expect(cborError { try r.skip() } == nil && r.isAtEnd)
    // Empty containers do not open a level.
    r = CBORReader(cborUnhex("8a80808080808080808080"))
    #expect(cborError { try r.skip() } == nil && r.isAtEnd)
}

@Test func cborMalformedHeadsAndTypes() throws {
    for h in ["1c", "3d", "5e", "7f", "9f", "bf", "df", "fc", "fd", "fe", "ff", "f800", "f81f"] {
        var r = CBORReader(cborUnhex(h))
        #expect(cborError { try r.skip() } == .malformedCBOR, "head \(h)")
    }
    var r = CBORReader(cborUnhex("f820"))
    try r.skip()
    #expect(r.isAtEnd)
    // Int64 bounds.
    r = CBORReader(cborUnhex("3b7fffffffffffffff"))
    #expect(try r.int() == Int64.min)
    r = CBORReader(cborUnhex("3b8000000000000000"))
    #expect(cborError { try r.int() } == .malformedCBOR)
    r = CBORReader(cborUnhex("1b8000000000000000"))
    #expect(cborError { try r.int() } == .malformedCBOR)
    #expect(try r.unsigned() == 0x8000_0000_0000_0000)
    // Non-preferred encodings are still well-formed and accepted.
    r = CBORReader(cborUnhex("1b0000000000000001f90000"))
    #expect(try r.int() == 1)
    #expect(try r.number() == 0)
    // A type mismatch leaves the position so the caller can skip.
    r = CBORReader(cborUnhex("6161f6f5"))
    #expect(cborError { try r.unsigned() } == .malformedCBOR)
    #expect(cborError { try r.bytes() } == .malformedCBOR)
    #expect(cborError { try r.number() } == .malformedCBOR)
    #expect(try !r.isNull())
    #expect(r.position == 0)
    #expect(Array(try r.text()) == [0x61])
    #expect(try r.isNull())
    #expect(try r.bool())
    #expect(cborError { try r.isNull() } == .truncated)
    #expect(cborError { try r.peekMajor() } == .truncated)
    // number() takes integers as well as floats.
    r = CBORReader(cborUnhex("1903e838630a"))
    #expect(try r.number() == 1000)
    #expect(try r.number() == -100)
    #expect(try r.number() == 10)
    // Invalid UTF-8 is refused by text() but skipped fine.
    for h in ["62c328", "62c080", "63eda080", "64f4908080", "61ff", "61c3", "63e08080", "64f0808080", "62e6b0"] {
        r = CBORReader(cborUnhex(h))
        #expect(cborError { try r.text() } == .malformedCBOR, "utf8 \(h)")
        #expect(r.position == 0)
        try r.skip()
        #expect(r.isAtEnd)
    }
    r = CBORReader(cborUnhex("6ff4808080efbfbded9fbfe0a080c280"))
    #expect(cborError { try r.text() } == nil)
    // start/end window, and out-of-range bounds clamp instead of trapping.
    r = CBORReader(cborUnhex("ff0102ff"), start: 1, end: 3)
    #expect(try r.unsigned() == 1 && r.unsigned() == 2 && r.isAtEnd)
    r = CBORReader([1], start: 5, end: -3)
    #expect(r.isAtEnd)
    r = CBORReader([1], start: -5, end: 9)
    #expect(try r.unsigned() == 1)
}

/// `field` is a key head then a value head, each in its shortest form; the
/// encoders that use it keep their bytes (pinned here for a heartbeat).
@Test func cborFieldIsKeyThenValue() {
    var w = CBORWriter()
    w.field(1, 0)
    w.field(5, 23)
    w.field(6, 24)
    w.field(2, 0x1234)
    w.field(3, 0x1234_5678)
    w.field64(4, 0x1_0000_0000)
    w.field64(7, 9)
    #expect(w.bytes == [0x01, 0x00, 0x05, 0x17, 0x06, 0x18, 0x18, 0x02, 0x19, 0x12, 0x34,
                        0x03, 0x1A, 0x12, 0x34, 0x56, 0x78,
                        0x04, 0x1B, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07, 0x09])
    let hb = Heartbeat(uptimeS: 3600, freeMemoryBytes: 176_688, activity: 7, loadPercent: 42,
                       servicesDigest: 0xBEEF, incarnation: 2)
    #expect(hb.encode() == [0xA6, 0x01, 0x19, 0x0E, 0x10, 0x02, 0x1A, 0x00, 0x02, 0xB2, 0x30,
                            0x03, 0x07, 0x04, 0x18, 0x2A, 0x05, 0x19, 0xBE, 0xEF, 0x06, 0x02])
}
