// SHA-256 (FIPS 180-4 examples) and HMAC-SHA256 (RFC 4231) on the board's
// instruction set: the 32-bit rotates and the tuple-based state are where a
// port would go wrong.

import TDOSCore

func cryptoTests() {
    sha256Vectors()
    sha256Streaming()
    hmacVectors()
    constantTimeCompare()
}

private func sha256Vectors() {
    expectEqual(SHA256.hash(ascii("abc")),
                hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
                "sha256(abc)")
    expectEqual(SHA256.hash([]),
                hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                "sha256(empty)")
    // 56 bytes: the padding spills into a second block.
    expectEqual(SHA256.hash(ascii("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
                hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
                "sha256 two-block message")
}

private func sha256Streaming() {
    // Pieces of every awkward size must give the one-shot digest.
    var message: [UInt8] = []
    for i in 0..<300 { message.append(UInt8(truncatingIfNeeded: i &* 7 &+ 3)) }
    let oneShot = SHA256.hash(message)
    var h = SHA256()
    var start = 0
    var piece = 1
    while start < message.count {
        let end = min(start + piece, message.count)
        h.update(message[start..<end])
        start = end
        piece = piece * 2 + 1  // 1, 3, 7, 15, 31, 63, 127, ...
    }
    expectEqual(h.finalize(), oneShot, "sha256 streamed in uneven pieces")
    // finalize() resets the hasher.
    h.update(ascii("abc"))
    expectEqual(h.finalize(),
                hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
                "sha256 reusable after finalize")
}

private func hmacVectors() {
    // RFC 4231 test case 1.
    expectEqual(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), message: ascii("Hi There")),
                hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
                "hmac rfc4231 case 1")
    // RFC 4231 test case 2.
    expectEqual(HMACSHA256.mac(key: ascii("Jefe"), message: ascii("what do ya want for nothing?")),
                hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
                "hmac rfc4231 case 2")
    // RFC 4231 test case 6: a key longer than a block is hashed first.
    expectEqual(HMACSHA256.mac(key: [UInt8](repeating: 0xaa, count: 131),
                               message: ascii("Test Using Larger Than Block-Size Key - Hash Key First")),
                hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
                "hmac rfc4231 case 6")
    // A precomputed key gives the same tag, any number of times.
    let key = HMACSHA256Key(key: ascii("Jefe"))
    let message = ascii("what do ya want for nothing?")
    expectEqual(key.mac(message), key.mac(message[...]), "hmac key reusable")
    expectEqual(key.mac(message),
                hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
                "hmac precomputed key")
}

private func constantTimeCompare() {
    let a: [UInt8] = [1, 2, 3, 4]
    expect(constantTimeEquals(a[...], [1, 2, 3, 4][...], count: 4), "equal bytes compare equal")
    expect(!constantTimeEquals(a[...], [1, 2, 3, 5][...], count: 4), "last byte differs")
    expect(constantTimeEquals(a[...], [1, 2, 9][...], count: 2), "only count bytes compared")
    expect(!constantTimeEquals(a[...], [1, 2][...], count: 3), "short side is not equal")
}
