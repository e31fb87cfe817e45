// Raw DEFLATE: round trips, interop with python3's zlib in both directions, and
// hostile input (truncations, random bytes, bit flips, a zip bomb).
import Foundation
import Testing
@testable import TDOSCore

/// The shared seeded generator (TestSupport.swift), so a failure reproduces.
private typealias DeflateRNG = TestRNG

/// Test payloads of one size: random, all zero, a short period, and a small alphabet.
private func samples(size: Int, rng: inout DeflateRNG) -> [[UInt8]] {
    let random = rng.bytes(size)
    let zeros = [UInt8](repeating: 0, count: size)
    let period = (0..<size).map { UInt8(truncatingIfNeeded: $0 % 7 &* 31) }
    let alphabet: [UInt8] = Array("abcde {}:,\"".utf8)
    let text = (0..<size).map { _ in alphabet[rng.below(alphabet.count)] }
    return [random, zeros, period, text]
}

/// A CBOR-ish telemetry payload: a map of repeated short text keys and small values.
private func cborLike(count: Int) -> [UInt8] {
    var out: [UInt8] = [0xBF]
    var i = 0
    while out.count < count - 1 {
        for key in ["temp", "humidity", "node", "seq", "battery_mv"] {
            out.append(0x60 | UInt8(key.utf8.count))
            out.append(contentsOf: key.utf8)
            out.append(0x19)
            out.append(UInt8(truncatingIfNeeded: i >> 8))
            out.append(UInt8(truncatingIfNeeded: i &* 37))
            i += 1
        }
    }
    out = Array(out.prefix(count - 1))
    out.append(0xFF)
    return out
}

private struct PythonFailed: Error {}

/// Runs `script` with python3; `inputs` are written to files in0..inN, and the script
/// must write out0..outN into the same directory, given as argv[1].
private func python(_ script: String, _ inputs: [[UInt8]]) throws -> [[UInt8]] {
    let fm = FileManager.default
    let dir = fm.temporaryDirectory.appendingPathComponent("tdos-deflate-" + UUID().uuidString)
    try fm.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? fm.removeItem(at: dir) }
    for (i, input) in inputs.enumerated() {
        try Data(input).write(to: dir.appendingPathComponent("in" + String(i)))
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script, dir.path, String(inputs.count)]
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw PythonFailed() }
    return try (0..<inputs.count).map { i in
        [UInt8](try Data(contentsOf: dir.appendingPathComponent("out" + String(i))))
    }
}

private let pyPrologue = """
import sys, zlib, os
d, n = sys.argv[1], int(sys.argv[2])
def rd(i): return open(os.path.join(d, 'in%d' % i), 'rb').read()
def wr(i, b): open(os.path.join(d, 'out%d' % i), 'wb').write(b)

"""

private func pythonDeflate(_ inputs: [[UInt8]], level: Int) throws -> [[UInt8]] {
    try python(pyPrologue + "level = " + String(level) + "\n" + """
    for i in range(n):
        c = zlib.compressobj(level, zlib.DEFLATED, -15)
        wr(i, c.compress(rd(i)) + c.flush())
    """, inputs)
}

private func pythonInflate(_ inputs: [[UInt8]]) throws -> [[UInt8]] {
    // Also insists the stream ends exactly where the input does.
    try python(pyPrologue + """
    for i in range(n):
        o = zlib.decompressobj(-15)
        out = o.decompress(rd(i))
        assert o.eof and not o.unused_data, i
        wr(i, out)
    """, inputs)
}

private let sizes: [Int] = Array(0...40) + [63, 64, 65, 127, 255, 256, 257, 258, 259, 300, 511, 600, 1000,
                                            1499, 1500, 2048, 3000, 4095, 4096, 4097, 4500, 5000]

// MARK: Builders for hand-made streams

/// Canonical codes for code lengths (RFC 1951 3.2.2).
private func canonicalCodes(_ lengths: [Int]) -> [Int] {
    var blCount = [Int](repeating: 0, count: 16)
    for l in lengths where l > 0 { blCount[l] += 1 }
    var next = [Int](repeating: 0, count: 16)
    var code = 0
    for bits in 1..<16 {
        code = (code + blCount[bits - 1]) << 1
        next[bits] = code
    }
    return lengths.map { l in
        guard l > 0 else { return 0 }
        defer { next[l] += 1 }
        return next[l]
    }
}

/// One final dynamic block. The code-length code gives symbols 0...14 four bits and
/// 15/16 five bits, so any table (and a leading repeat) can be written. `body` writes
/// the data with the returned literal and distance codes.
private func dynamicBlock(lit: [Int], dist: [Int], lengthSymbols: [Int]? = nil,
                          body: (inout Deflate.BitWriter, [Int], [Int]) -> Void) -> [UInt8] {
    var w = Deflate.BitWriter(capacity: 256)
    w.put(1, 1)
    w.put(2, 2)
    w.put(lit.count - 257, 5)
    w.put(dist.count - 1, 5)
    w.put(15, 4)
    let clen = [Int](repeating: 4, count: 15) + [5, 5, 0, 0]
    for i in Deflate.codeLengthOrder.indices { w.put(clen[Int(Deflate.codeLengthOrder[i])], 3) }
    let clCodes = canonicalCodes(clen)
    for s in lengthSymbols ?? (lit + dist) { w.code(clCodes[s], UInt32(clen[s])) }
    let litCodes = canonicalCodes(lit)
    let distCodes = canonicalCodes(dist)
    body(&w, litCodes, distCodes)
    w.flush()
    return w.bytes
}

private func lengths(_ count: Int, _ set: [(Int, Int)]) -> [Int] {
    var l = [Int](repeating: 0, count: count)
    for (s, len) in set { l[s] = len }
    return l
}

private func inflateError(_ input: [UInt8], max: Int = 1 << 20) -> InflateError? {
    do {
        _ = try Deflate.decompress(input, maxOutputCount: max)
        return nil
    } catch {
        return error
    }
}

// MARK: Tests

@Suite struct DeflateTests {
    @Test func roundTripsManySizes() throws {
        var rng = DeflateRNG(state: 1)
        for size in sizes + (0..<20).map({ _ in rng.below(5001) }) {
            for data in samples(size: size, rng: &rng) {
                let packed = Deflate.compress(data)
                #expect(try Deflate.decompress(packed, maxOutputCount: size) == data)
                // Never worse than stored blocks.
                #expect(packed.count <= size + 5)
                if size > 0 {
                    #expect(inflateError(packed, max: size - 1) == .outputLimit)
                }
            }
        }
    }

    @Test func sliceInputsWork() throws {
        var rng = DeflateRNG(state: 2)
        let data = samples(size: 900, rng: &rng)[3]
        let packed = Deflate.compress(data[100..<700])
        #expect(try Deflate.decompress(packed, maxOutputCount: 600) == Array(data[100..<700]))
        let framed = [0xAA, 0xBB] + packed + [0xCC]
        let inner = framed[2..<(2 + packed.count)]
        #expect(try Deflate.decompress(inner, maxOutputCount: 600) == Array(data[100..<700]))
    }

    @Test func pythonInflatesOurOutput() throws {
        var rng = DeflateRNG(state: 3)
        var inputs: [[UInt8]] = []
        for size in sizes { inputs += samples(size: size, rng: &rng) }
        inputs.append(cborLike(count: 600))
        inputs.append(samples(size: 70_000, rng: &rng)[0])  // several stored blocks
        inputs.append(samples(size: 70_000, rng: &rng)[3])
        let packed = inputs.map { Deflate.compress($0) }
        #expect(try pythonInflate(packed) == inputs)
    }

    @Test(arguments: [0, 1, 6, 9])
    func weInflatePythonOutput(level: Int) throws {
        var rng = DeflateRNG(state: 4)
        var inputs: [[UInt8]] = []
        for size in sizes { inputs += samples(size: size, rng: &rng) }
        inputs.append(cborLike(count: 600))
        inputs.append(samples(size: 100_000, rng: &rng)[3])  // many dynamic or stored blocks
        inputs.append(samples(size: 100_000, rng: &rng)[2])  // long matches, distance 32 KB window
        let packed = try pythonDeflate(inputs, level: level)
        for (data, stream) in zip(inputs, packed) {
            #expect(try Deflate.decompress(stream, maxOutputCount: data.count) == data)
        }
    }

    @Test func cborLikeTextCompresses() throws {
        let payload = cborLike(count: 600)
        let ours = Deflate.compress(payload)
        let zlib6 = try pythonDeflate([payload], level: 6)[0]
        print("deflate 600-byte CBOR-ish:", ours.count, "bytes (zlib -6:", zlib6.count, ")")
        #expect(ours.count < payload.count / 2)
        // Fixed codes cost little at this size: within a quarter of zlib's dynamic blocks.
        #expect(ours.count * 4 <= zlib6.count * 5)
        #expect(try Deflate.decompress(ours, maxOutputCount: 600) == payload)
    }

    @Test func everyTruncationThrows() throws {
        var rng = DeflateRNG(state: 5)
        let cbor = cborLike(count: 700)
        let random = rng.bytes(300)
        var streams = [Deflate.compress(cbor), Deflate.compress(random), Deflate.compress([])]
        streams += try pythonDeflate([cbor, random], level: 6)  // dynamic and stored blocks
        streams += try pythonDeflate([cbor], level: 0)
        for stream in streams {
            #expect(try Deflate.decompress(stream, maxOutputCount: 1 << 20).count > 0 || stream.count <= 5)
            for cut in 0..<stream.count {
                #expect(inflateError(Array(stream[0..<cut])) == .truncated)
            }
        }
    }

    @Test func randomBytesNeverTrap() {
        var rng = DeflateRNG(state: 6)
        var accepted = 0
        for _ in 0..<10_000 {
            let input = rng.bytes(rng.below(200))
            let limit = rng.below(2048)
            if let out = try? Deflate.decompress(input, maxOutputCount: limit) {
                #expect(out.count <= limit)
                accepted += 1
            }
        }
        // Mostly garbage: if nearly everything were accepted the checks above would be vacuous.
        #expect(accepted < 5_000)
    }

    @Test func bitFlippedStreamsNeverTrap() throws {
        var rng = DeflateRNG(state: 7)
        let cbor = cborLike(count: 800)
        var streams = [Deflate.compress(cbor), Deflate.compress(rng.bytes(200))]
        streams += try pythonDeflate([cbor], level: 9)
        var rejected = 0
        for i in 0..<10_000 {
            var stream = streams[i % streams.count]
            for _ in 0...rng.below(3) {
                let bit = rng.below(stream.count * 8)
                stream[bit >> 3] ^= UInt8(1) << UInt8(bit & 7)
            }
            let limit = 256 + rng.below(1024)
            do {
                let out = try Deflate.decompress(stream, maxOutputCount: limit)
                #expect(out.count <= limit)
            } catch {
                rejected += 1
            }
        }
        #expect(rejected > 1_000)
    }

    @Test func zipBombHitsOutputLimit() throws {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let bomb = try pythonDeflate([zeros], level: 9)[0]
        #expect(bomb.count < 2_000)
        #expect(inflateError(bomb, max: 4096) == .outputLimit)
        let out = try Deflate.decompress(bomb, maxOutputCount: 1 << 20)
        #expect(out.count == 1 << 20)
        #expect(out.capacity < (1 << 20) + 8192)
        let ours = Deflate.compress(zeros)
        #expect(inflateError(ours, max: 4096) == .outputLimit)
    }

    @Test func malformedStreamsAreClassified() throws {
        // BFINAL = 1, BTYPE = 11.
        #expect(inflateError([0x07]) == .badBlockType)
        // Stored, LEN = 5, NLEN = 0 instead of ~5.
        #expect(inflateError([0x01, 0x05, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5]) == .badStoredLength)
        // Stored, LEN = 5 but only 2 bytes follow.
        #expect(inflateError([0x01, 0x05, 0x00, 0xFA, 0xFF, 1, 2]) == .truncated)
        // Empty input, and a non-final block with nothing after it.
        #expect(inflateError([]) == .truncated)
        #expect(inflateError([0x00, 0x00, 0x00, 0xFF, 0xFF]) == .truncated)

        // Fixed block: literal 'A', then length 3 at distance 2 (only 1 byte so far).
        var w = Deflate.BitWriter(capacity: 16)
        w.put(0b011, 3)
        w.symbol(0x41)
        w.match(length: 3, distance: 2)
        w.symbol(256)
        w.flush()
        #expect(inflateError(w.bytes) == .badDistance)
        // Same at distance 1 is fine: "AAAA".
        w = Deflate.BitWriter(capacity: 16)
        w.put(0b011, 3)
        w.symbol(0x41)
        w.match(length: 3, distance: 1)
        w.symbol(256)
        w.flush()
        #expect(try Deflate.decompress(w.bytes, maxOutputCount: 4) == Array("AAAA".utf8))
        // Fixed literal/length symbol 286 is never valid.
        w = Deflate.BitWriter(capacity: 16)
        w.put(0b011, 3)
        w.symbol(286)
        w.put(0, 16)
        w.flush()
        #expect(inflateError(w.bytes) == .badCode)
        // Fixed distance code 30 is never valid.
        w = Deflate.BitWriter(capacity: 16)
        w.put(0b011, 3)
        w.symbol(0x41)
        w.symbol(257)
        w.code(30, 5)
        w.put(0, 16)
        w.flush()
        #expect(inflateError(w.bytes) == .badCode)
    }

    @Test func dynamicTablesAreValidated() throws {
        // 'A' (1 bit), end (2), length-3 (2): complete. A single one-bit distance code.
        let lit = lengths(258, [(0x41, 1), (256, 2), (257, 2)])
        let aaaa: (inout Deflate.BitWriter, [Int], [Int]) -> Void = { w, lc, dc in
            w.code(lc[0x41], 1)
            w.code(lc[257], 2)
            w.code(dc[0], 1)
            w.code(lc[256], 2)
        }
        let ok = dynamicBlock(lit: lit, dist: [1], body: aaaa)
        #expect(try Deflate.decompress(ok, maxOutputCount: 16) == Array("AAAA".utf8))
        // Two distance codes of length 2 leave half the space unused: incomplete.
        #expect(inflateError(dynamicBlock(lit: lit, dist: [2, 2], body: aaaa)) == .badHuffmanTable)
        // Over-subscribed literal/length code.
        let over = lengths(258, [(0x41, 1), (256, 1), (257, 1)])
        #expect(inflateError(dynamicBlock(lit: over, dist: [1], body: aaaa)) == .badHuffmanTable)
        // Incomplete literal/length code with more than one code.
        let holes = lengths(258, [(0x41, 1), (256, 2)])
        #expect(inflateError(dynamicBlock(lit: holes, dist: [1]) { _, _, _ in }) == .badHuffmanTable)
        // No end-of-block code.
        let noEnd = lengths(258, [(0x41, 1), (257, 1)])
        #expect(inflateError(dynamicBlock(lit: noEnd, dist: [1], body: aaaa)) == .badHuffmanTable)
        // More than 286 literal/length codes.
        let tooMany = lengths(287, [(0x41, 1), (256, 2), (257, 2)])
        #expect(inflateError(dynamicBlock(lit: tooMany, dist: [1], body: aaaa)) == .badHuffmanTable)
        // Repeat-previous (16) as the very first length.
        let repeatFirst = dynamicBlock(lit: lit, dist: [1], lengthSymbols: [16] + lit + [1]) { w, _, _ in
            w.put(0, 2)
        }
        #expect(inflateError(repeatFirst) == .badHuffmanTable)
        // No distance codes at all is valid for a literal-only block, but using one is not.
        let literalOnly = dynamicBlock(lit: lit, dist: [0]) { w, lc, _ in
            w.code(lc[0x41], 1)
            w.code(lc[256], 2)
        }
        #expect(try Deflate.decompress(literalOnly, maxOutputCount: 16) == Array("A".utf8))
        let usesMissing = dynamicBlock(lit: lit, dist: [0]) { w, lc, dc in
            aaaa(&w, lc, dc)
            w.put(0, 16)  // so the 15-bit search for a code fails before the input ends
        }
        #expect(inflateError(usesMissing) == .badCode)
    }
}
