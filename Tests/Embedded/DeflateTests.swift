// Raw DEFLATE (RFC 1951) on the board: round trips through TDOS's own compressor,
// and streams made by zlib (all three block types), so the inflater is checked
// against an independent implementation, not only against itself.

import TDOSCore

func deflateTests() {
    deflateRoundTrips()
    inflateZlibVectors()
    inflateHostileInput()
}

/// "TDOS " + 6 x "the quick brown fox jumps over the lazy dog; " + bytes 0...31.
private func foxMessage() -> [UInt8] {
    var m = ascii("TDOS ")
    for _ in 0..<6 { m.append(contentsOf: ascii("the quick brown fox jumps over the lazy dog; ")) }
    for b in 0..<32 { m.append(UInt8(b)) }
    return m
}

/// 1000 letters with a skewed distribution, so zlib picks a dynamic-Huffman block.
private func skewedLetters() -> [UInt8] {
    var m: [UInt8] = []
    m.reserveCapacity(1000)
    for i in 0..<1000 { m.append(0x61 + UInt8((((i * i) >> 3) + i / 7) % 13)) }
    return m
}

private func deflateRoundTrips() {
    var pseudoRandom: [UInt8] = []
    var x: UInt32 = 12345
    for _ in 0..<600 {
        x = x &* 1_103_515_245 &+ 12345
        pseudoRandom.append(UInt8(truncatingIfNeeded: x >> 16))
    }
    var runs: [UInt8] = []
    for i in 0..<1500 { runs.append(UInt8(i / 100)) }
    let messages: [[UInt8]] = [[], [42], ascii("abcabcabcabcabcabc"), foxMessage(), skewedLetters(),
                               pseudoRandom, runs]
    for m in messages {
        let packed = Deflate.compress(m)
        let unpacked = expectNoThrow("deflate round trip inflates") { () throws(InflateError) in
            try Deflate.decompress(packed, maxOutputCount: 4096)
        }
        expectEqual(unpacked ?? [0xEE], m, "deflate round trip")
    }
    let fox = foxMessage()
    expect(Deflate.compress(fox).count < fox.count / 2, "deflate shrinks repetitive text")
}

private func inflateZlibVectors() {
    // python3: zlib.compressobj(6, zlib.DEFLATED, -15) of foxMessage() (fixed Huffman).
    let fixed = hex("""
        0b71f10f5628c94855282ccd4cce56482aca2fcf5348cbaf50c82acd2d2856c82f4b2d024be72456552aa4e4a7\
        5b0f7fc50c8c4ccc2cac6cec1c9c5cdc3cbc7cfc028242c222a262e2129252d232b272f200
        """)
    let fox = expectNoThrow("inflate zlib fixed-Huffman stream") { () throws(InflateError) in
        try Deflate.decompress(fixed, maxOutputCount: 1024)
    }
    expectEqual(fox ?? [], foxMessage(), "inflate zlib fixed-Huffman stream")

    // The same for skewedLetters() (dynamic Huffman).
    let dynamic = hex("""
        ed90b97104300c036be523feec3f35e8bb1e9c1852bab3208888455fd4907ad1cbd5249fd75a3ab6216d32a1d4\
        61cadb951997ec59568be117233e806c1e9ead731b9571a7c976ba3d15661658cc73482c87bdd95a827ced2c5c\
        6f212910e5279aaedff4d0696abfe5be905370eac455db8ac7273a13020beaadbc68d258fc579c1c1fc419d506\
        c4e48908a641f6a3c13989739a1d900092525c93ef0e0271136000b74b643546f05ab1222bc60ca575c8a36b87\
        6a8ee54e24302dfd6ffdbff51f6dfd03
        """)
    let letters = expectNoThrow("inflate zlib dynamic-Huffman stream") { () throws(InflateError) in
        try Deflate.decompress(dynamic, maxOutputCount: 1024)
    }
    expectEqual(letters ?? [], skewedLetters(), "inflate zlib dynamic-Huffman stream")

    // zlib level 0: one stored block.
    let stored = expectNoThrow("inflate zlib stored block") { () throws(InflateError) in
        try Deflate.decompress(hex("010d00f2ff73746f72656420626c6f636b21"), maxOutputCount: 64)
    }
    expectEqual(stored ?? [], ascii("stored block!"), "inflate zlib stored block")
}

private func inflateHostileInput() {
    let packed = Deflate.compress(foxMessage())
    expectThrows(InflateError.outputLimit, "inflate stops at maxOutputCount") { () throws(InflateError) in
        _ = try Deflate.decompress(packed, maxOutputCount: 100)
    }
    expectThrows(InflateError.truncated, "inflate of a cut stream") { () throws(InflateError) in
        _ = try Deflate.decompress(Array(packed[0..<(packed.count / 2)]), maxOutputCount: 4096)
    }
    expectThrows(InflateError.truncated, "inflate of nothing") { () throws(InflateError) in
        _ = try Deflate.decompress([UInt8](), maxOutputCount: 4096)
    }
    expectThrows(InflateError.badBlockType, "inflate of block type 3") { () throws(InflateError) in
        _ = try Deflate.decompress([0x07], maxOutputCount: 4096)
    }
    expectThrows(InflateError.badStoredLength, "inflate of a stored block with a bad NLEN") { () throws(InflateError) in
        _ = try Deflate.decompress(hex("010d00f3ff73746f72656420626c6f636b21"), maxOutputCount: 64)
    }
    // Fixed block: literal 'a', then length 3 at distance 2 (before the output's start).
    expectThrows(InflateError.badDistance, "inflate of a distance before the start") { () throws(InflateError) in
        _ = try Deflate.decompress(hex("4b044200"), maxOutputCount: 64)
    }
}
