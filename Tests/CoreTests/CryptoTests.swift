// SHA-256 / HMAC-SHA256: published vectors (FIPS 180-2, RFC 4231) plus a seeded
// randomized cross-check against Python's hashlib/hmac (Foundation: tests only).
import Foundation
import Testing
@testable import TDOSCore
import TDOSHost
import TDOSHostC

private func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The shared seeded generator (TestSupport.swift), so a failure reproduces.
private typealias SplitMix64 = TestRNG

/// Runs a Python script that reads one job per line from a temp file and prints one
/// hex digest per line. Returns nil (and records an issue) if Python is unavailable.
private func pythonDigests(script: String, input: [String]) -> [String]? {
    let dir = FileManager.default.temporaryDirectory
    let path = dir.appendingPathComponent("tdos-crypto-\(UUID().uuidString).txt")
    defer { try? FileManager.default.removeItem(at: path) }
    do {
        try (input.joined(separator: "\n") + "\n").write(to: path, atomically: true, encoding: .utf8)
    } catch {
        Issue.record("cannot write temp file: \(error)")
        return nil
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, path.path]
    let stdout = Pipe()
    process.standardOutput = stdout
    do {
        try process.run()
    } catch {
        Issue.record("cannot run python3: \(error)")
        return nil
    }
    // Read before waiting so a full pipe cannot deadlock the child.
    let data = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        Issue.record("python3 exited with \(process.terminationStatus)")
        return nil
    }
    let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    guard lines.count == input.count else {
        Issue.record("python3 returned \(lines.count) lines for \(input.count) jobs")
        return nil
    }
    return lines
}

@Suite struct CryptoTests {
    // MARK: SHA-256, FIPS 180-2 appendix B

    @Test func sha256Abc() {
        #expect(hex(SHA256.hash(ascii("abc")))
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func sha256TwoBlockMessage() {
        let message = ascii("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
        #expect(message.count == 56)  // 448 bits: the padding spills into a second block
        #expect(hex(SHA256.hash(message))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func sha256OneMillionA() {
        #expect(hex(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func sha256Empty() {
        #expect(hex(SHA256.hash([]))
            == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var h = SHA256()
        h.update([UInt8]())
        h.update(ArraySlice<UInt8>())
        #expect(hex(h.finalize())
            == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func sha256DigestCount() {
        #expect(SHA256.digestCount == 32)
        #expect(SHA256.hash(ascii("x")).count == SHA256.digestCount)
    }

    @Test func finalizeResetsHasher() {
        var h = SHA256()
        h.update(ascii("garbage that must not leak into the next digest"))
        _ = h.finalize()
        h.update(ascii("abc"))
        #expect(h.finalize() == SHA256.hash(ascii("abc")))
    }

    // MARK: Streaming

    @Test func streamingPiecesMatchOneShot() {
        var rng = SplitMix64(state: 0x5EED_0001)
        let message = rng.bytes(1000)
        let expected = SHA256.hash(message)
        // Fixed chunk sizes around the block size, then random splits.
        for chunk in [1, 3, 7, 31, 63, 64, 65, 127, 128, 129, 999, 1000] {
            var h = SHA256()
            var i = 0
            while i < message.count {
                let end = min(i + chunk, message.count)
                h.update(message[i..<end])
                i = end
            }
            #expect(h.finalize() == expected, "chunk \(chunk)")
        }
        for trial in 0..<50 {
            var h = SHA256()
            var i = 0
            while i < message.count {
                let end = min(i + rng.below(150), message.count)  // includes empty updates
                switch rng.below(3) {
                case 0: h.update(message[i..<end])
                case 1: h.update(Array(message[i..<end]))
                default: message[i..<end].withUnsafeBytes { h.update($0) }
                }
                i = end
            }
            #expect(h.finalize() == expected, "trial \(trial)")
        }
    }

    @Test func sliceWithNonZeroStartIndex() {
        let whole = ascii("xxabcxx")
        let slice = whole[2..<5]
        var h = SHA256()
        h.update(slice)
        #expect(h.finalize() == SHA256.hash(ascii("abc")))
        #expect(HMACSHA256Key(key: ascii("k")).mac(slice)
            == HMACSHA256.mac(key: ascii("k"), message: ascii("abc")))
    }

    // MARK: HMAC-SHA256, RFC 4231 section 4

    private static let rfc4231: [(key: [UInt8], data: [UInt8], mac: String)] = [
        // 1
        ([UInt8](repeating: 0x0b, count: 20), ascii("Hi There"),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        // 2: key shorter than the output
        (ascii("Jefe"), ascii("what do ya want for nothing?"),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        // 3
        ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        // 4
        (unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), [UInt8](repeating: 0xcd, count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        // 6: 131-byte key, hashed first
        ([UInt8](repeating: 0xaa, count: 131), ascii("Test Using Larger Than Block-Size Key - Hash Key First"),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        // 7: 131-byte key and a message longer than one block
        ([UInt8](repeating: 0xaa, count: 131),
         ascii("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    @Test(arguments: 0..<6)
    func hmacRFC4231(index: Int) {
        let v = Self.rfc4231[index]
        #expect(hex(HMACSHA256.mac(key: v.key, message: v.data)) == v.mac)
        let key = HMACSHA256Key(key: v.key)
        #expect(hex(key.mac(v.data)) == v.mac)
        #expect(hex(key.mac(v.data[...])) == v.mac)
        // The precomputed key is reusable: a second MAC must not see the first.
        #expect(hex(key.mac(v.data)) == v.mac)
    }

    @Test func hmacRFC4231Case5Truncated() {
        let mac = HMACSHA256.mac(key: [UInt8](repeating: 0x0c, count: 20), message: ascii("Test With Truncation"))
        #expect(hex(Array(mac.prefix(16))) == "a3b6167473100ee06e0c796c2955552b")
        #expect(constantTimeEquals(mac[...], unhex("a3b6167473100ee06e0c796c2955552b")[...], count: 16))
    }

    @Test func hmacKeyBoundaries() {
        // A 64-byte key is used as-is; a 65-byte key is hashed; a key equal to its own
        // hash padded out behaves like the long key (RFC 2104 equivalence).
        let long = [UInt8](repeating: 0x42, count: 65)
        let message = ascii("boundary")
        #expect(HMACSHA256.mac(key: long, message: message)
            == HMACSHA256.mac(key: SHA256.hash(long), message: message))
        let exact = [UInt8](repeating: 0x42, count: 64)
        #expect(HMACSHA256.mac(key: exact, message: message)
            != HMACSHA256.mac(key: SHA256.hash(exact), message: message))
        // Trailing zero bytes up to the block size do not change the key.
        #expect(HMACSHA256.mac(key: ascii("k"), message: message)
            == HMACSHA256.mac(key: ascii("k") + [0, 0, 0], message: message))
    }

    // MARK: constantTimeEquals

    @Test func constantTimeEqualsBehaviour() {
        let a: [UInt8] = [1, 2, 3, 4, 5]
        #expect(constantTimeEquals(a[...], a[...], count: 5))
        #expect(constantTimeEquals(a[...], [1, 2, 3, 9][...], count: 3))
        #expect(!constantTimeEquals(a[...], [1, 2, 3, 9][...], count: 4))
        #expect(!constantTimeEquals(a[...], [0, 2, 3, 4, 5][...], count: 5))
        #expect(!constantTimeEquals(a[...], [1, 2, 3, 4, 6][...], count: 5))
        #expect(constantTimeEquals(a[...], ArraySlice<UInt8>(), count: 0))
        #expect(!constantTimeEquals(a[...], a[...], count: 6))  // too short
        #expect(!constantTimeEquals(a[...], a[...], count: -1))
        // Slices with different start indices compare by position.
        #expect(constantTimeEquals(a[2...], [9, 3, 4, 5][1...], count: 3))
        #expect(!constantTimeEquals(a[2...], a[1...], count: 3))
    }

    // MARK: Cross-check against Python

    @Test func sha256EveryLength0To200MatchesPython() throws {
        var rng = SplitMix64(state: 0x5EED_0002)
        let messages = (0...200).map { rng.bytes($0) }
        let script = """
        import hashlib, sys
        for line in open(sys.argv[1]).read().split("\\n")[:-1]:
            print(hashlib.sha256(bytes.fromhex(line)).hexdigest())
        """
        let reference = try #require(pythonDigests(script: script, input: messages.map(hex)))
        for (i, message) in messages.enumerated() {
            #expect(hex(SHA256.hash(message)) == reference[i], "length \(message.count)")
        }
    }

    @Test func hmacRandomMatchesPython() throws {
        var rng = SplitMix64(state: 0x5EED_0003)
        let pairs = (0..<200).map { _ in (key: rng.bytes(rng.below(301)), message: rng.bytes(rng.below(301))) }
        let script = """
        import hashlib, hmac, sys
        for line in open(sys.argv[1]).read().split("\\n")[:-1]:
            k, m = line.split(" ")
            print(hmac.new(bytes.fromhex(k), bytes.fromhex(m), hashlib.sha256).hexdigest())
        """
        let jobs = pairs.map { hex($0.key) + " " + hex($0.message) }
        let reference = try #require(pythonDigests(script: script, input: jobs))
        for (i, pair) in pairs.enumerated() {
            let key = HMACSHA256Key(key: pair.key)
            #expect(hex(key.mac(pair.message)) == reference[i],
                    "key \(pair.key.count) bytes, message \(pair.message.count) bytes")
        }
    }
}

@Suite struct HostCryptoTests {
    /// On a CPU with the SHA extensions the host installs them only after
    /// they matched the Swift rounds; either way the digests stay the
    /// published ones (RFC 4231 case 1, FIPS 180-2 "abc").
    @Test func hardwareSHA256MatchesTheSwiftRounds() {
        let installed = installHostCrypto()
        if tdos_sha256_hw_available() != 0 && getenv("TDOS_SHA256_SOFTWARE") == nil { #expect(installed) }
        #expect(SHA256.hash(Array("abc".utf8)) == hexBytes("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
        let tag = HMACSHA256Key(key: Array(repeating: 0x0b, count: 20)).mac(Array("Hi There".utf8)[...])
        #expect(tag == hexBytes("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"))
    }
}

private func hexBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return out
}
