// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), pure Swift for host and armv6m.
// Per-packet on a 133 MHz M0+, so the hot path keeps all state in fixed-size
// tuples (no heap, no per-byte appends) and compresses whole blocks straight
// from the caller's memory when it can.

/// Eight 32-bit words: the chaining state, and a digest before it is serialised.
typealias SHA256Words8 = (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)
/// Sixteen 32-bit words = one 64-byte block; used as raw bytes or as the schedule window.
typealias SHA256Words16 = (
    UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
    UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32
)

private let sha256Zero16: SHA256Words16 = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

/// FIPS 180-4 §5.3.3: fractional parts of the square roots of the first 8 primes.
private let sha256Initial: SHA256Words8 = (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)

/// FIPS 180-4 §4.2.2: first 32 bits of the fractional parts of the cube roots of the first 64 primes.
/// An InlineArray, so the table is constant data in flash (an Array was built
/// by code at start-up, on the heap: 580 B of code on the board).
private let sha256RoundConstants: InlineArray<64, UInt32> = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]

@inline(__always)
private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 {
    // Masking shifts: no overshift branch, and M0+ has a single-cycle ROR.
    (x &>> n) | (x &<< (32 &- n))
}

/// One SHA-256 round (FIPS 180-4 §6.2.2 step 3) on the working variables;
/// `kw` is K[t] + W[t]. Inlined into both schedule loops of `compress`.
@inline(__always)
private func sha256Round(_ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32, _ d: inout UInt32,
                         _ e: inout UInt32, _ f: inout UInt32, _ g: inout UInt32, _ h: inout UInt32,
                         _ kw: UInt32) {
    let sum1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
    let choose = (e & f) ^ (~e & g)
    let t1 = h &+ sum1 &+ choose &+ kw
    let sum0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
    let majority = (a & b) ^ (a & c) ^ (b & c)
    h = g; g = f; f = e; e = d &+ t1
    d = c; c = b; b = a; a = t1 &+ sum0 &+ majority
}

// Byte-wise on purpose: endian-neutral, and the M0+ faults on unaligned word loads.
@inline(__always)
private func loadBigEndian(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
    UInt32(p.load(fromByteOffset: offset, as: UInt8.self)) << 24
        | UInt32(p.load(fromByteOffset: offset + 1, as: UInt8.self)) << 16
        | UInt32(p.load(fromByteOffset: offset + 2, as: UInt8.self)) << 8
        | UInt32(p.load(fromByteOffset: offset + 3, as: UInt8.self))
}

@inline(__always)
private func storeBigEndian(_ v: UInt32, _ p: UnsafeMutableRawPointer, _ offset: Int) {
    p.storeBytes(of: UInt8(truncatingIfNeeded: v >> 24), toByteOffset: offset, as: UInt8.self)
    p.storeBytes(of: UInt8(truncatingIfNeeded: v >> 16), toByteOffset: offset + 1, as: UInt8.self)
    p.storeBytes(of: UInt8(truncatingIfNeeded: v >> 8), toByteOffset: offset + 2, as: UInt8.self)
    p.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: offset + 3, as: UInt8.self)
}

/// A CPU's own SHA-256 block function (state words in host order, data, block
/// count), installed once at start-up by a platform that has one: the Linux
/// host on x86-64 with the SHA extensions, where it is ~6x the Swift rounds and
/// makes the two HMACs of every frame a small part of an RPC. nil on the board.
public typealias SHA256BlockFunction = @convention(c) (UnsafeMutablePointer<UInt32>?, UnsafePointer<UInt8>?, Int) -> Void
nonisolated(unsafe) public var sha256HardwareBlocks: SHA256BlockFunction? = nil

/// Streaming SHA-256. `finalize()` returns the digest and resets the hasher.
public struct SHA256: Sendable {
    public static let digestCount = 32
    static let blockCount = 64

    private var state: SHA256Words8
    /// Bytes of a partial block waiting for more input; only `buffered` of them are meaningful.
    private var block: SHA256Words16
    private var buffered: Int
    /// Total message length in bytes (the padding needs it in bits, mod 2^64).
    private var length: UInt64

    public init() {
        state = sha256Initial
        block = sha256Zero16
        buffered = 0
        length = 0
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var n = bytes.count
        length &+= UInt64(truncatingIfNeeded: n)

        // Top up a partial block first.
        if buffered > 0 {
            let used = buffered
            let take = Swift.min(Self.blockCount - used, n)
            withUnsafeMutableBytes(of: &block) { dst in
                (dst.baseAddress! + used).copyMemory(from: p, byteCount: take)
            }
            buffered = used + take
            p += take
            n -= take
            if buffered < Self.blockCount { return }
            compressBuffered()
            buffered = 0
        }

        // Whole blocks straight from the caller's memory: no copy into `block`.
        if n >= Self.blockCount {
            let whole = n / Self.blockCount
            var s = state
            Self.compress(&s, p, blocks: whole)
            state = s
            p += whole * Self.blockCount
            n -= whole * Self.blockCount
        }

        if n > 0 {
            withUnsafeMutableBytes(of: &block) { dst in
                dst.baseAddress!.copyMemory(from: p, byteCount: n)
            }
            buffered = n
        }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Returns the 32-byte digest; the hasher is then reset to a fresh `SHA256()`.
    public mutating func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.digestCount)
        out.withUnsafeMutableBytes { finalize(into: $0.baseAddress!) }
        return out
    }

    /// Writes the digest to 32 bytes at `out` without allocating, then resets.
    mutating func finalize(into out: UnsafeMutableRawPointer) {
        var s = state
        let n = buffered
        withUnsafeBytes(of: &block) { b in
            SHA256.finish(&s, UnsafeRawBufferPointer(start: b.baseAddress!, count: n), prefixCount: length &- UInt64(n))
        }
        SHA256.store(s, out)
        self = SHA256()
    }

    /// The last bytes of a message (any count) and its padding into the state
    /// `s`, which has absorbed `prefixCount` bytes (a multiple of 64) before them.
    /// Whole blocks go straight from the caller's memory; the tail and the
    /// padding (0x80, zeros to 56 mod 64, the bit length) from one stack buffer.
    static func finish(_ s: inout SHA256Words8, _ bytes: UnsafeRawBufferPointer, prefixCount: UInt64) {
        var n = bytes.count
        let bitLength = (prefixCount &+ UInt64(truncatingIfNeeded: n)) &<< 3
        if n >= blockCount {
            let whole = n / blockCount
            compress(&s, bytes.baseAddress!, blocks: whole)
            n -= whole * blockCount
        }
        var pad: (SHA256Words16, SHA256Words16) = (sha256Zero16, sha256Zero16)
        withUnsafeMutableBytes(of: &pad) { p in
            if n > 0 { p.baseAddress!.copyMemory(from: bytes.baseAddress! + (bytes.count - n), byteCount: n) }
            p[n] = 0x80
            let end = n < 56 ? blockCount : 2 * blockCount
            storeBigEndian(UInt32(truncatingIfNeeded: bitLength >> 32), p.baseAddress!, end - 8)
            storeBigEndian(UInt32(truncatingIfNeeded: bitLength), p.baseAddress!, end - 4)
            compress(&s, p.baseAddress!, blocks: end / blockCount)
        }
    }

    /// The state as the 32 digest bytes at `out` (big-endian words).
    static func store(_ s: SHA256Words8, _ out: UnsafeMutableRawPointer) {
        withUnsafeBytes(of: s) { words in
            let w = words.baseAddress!.assumingMemoryBound(to: UInt32.self)
            #if arch(x86_64) || arch(arm64)
            // The host: one unaligned word store each (the M0+ would fault on them).
            for i in 0..<8 { out.storeBytes(of: w[i].bigEndian, toByteOffset: 4 * i, as: UInt32.self) }
            #else
            for i in 0..<8 { storeBigEndian(w[i], out, 4 * i) }
            #endif
        }
    }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var h = SHA256()
        h.update(bytes)
        return h.finalize()
    }

    private mutating func compressBuffered() {
        var s = state
        withUnsafeBytes(of: &block) { Self.compress(&s, $0.baseAddress!, blocks: 1) }
        state = s
    }

    /// `blocks` consecutive 64-byte blocks at `data`: the one place that
    /// chooses the CPU's SHA instructions or the Swift rounds.
    static func compress(_ h: inout SHA256Words8, _ data: UnsafeRawPointer, blocks: Int) {
        if let hardware = sha256HardwareBlocks {
            withUnsafeMutableBytes(of: &h) { words in
                hardware(words.baseAddress!.assumingMemoryBound(to: UInt32.self),
                         data.assumingMemoryBound(to: UInt8.self), blocks)
            }
            return
        }
        for i in 0..<blocks { compressBlock(&h, data + i &* blockCount) }
    }

    /// One 64-byte block. The message schedule is a rolling 16-word window on the
    /// stack (FIPS 180-4 §6.2.2 with W[t] kept at t mod 16), so no heap and 64 bytes of RAM.
    private static func compressBlock(_ h: inout SHA256Words8, _ block: UnsafeRawPointer) {
        var window = sha256Zero16
        var a = h.0, b = h.1, c = h.2, d = h.3, e = h.4, f = h.5, g = h.6, hh = h.7
        withUnsafeMutableBytes(of: &window) { raw in
            // A homogeneous tuple's memory is also bound to its element type.
            let w = raw.baseAddress!.assumingMemoryBound(to: UInt32.self)
            // Two loops, not one with a branch per round: rounds 0-15 read the
            // block, 16-63 extend the schedule (the compiler unrolls each better).
            for t in 0..<16 {
                let wt = loadBigEndian(block, 4 &* t)
                w[t] = wt
                sha256Round(&a, &b, &c, &d, &e, &f, &g, &hh, sha256RoundConstants[t] &+ wt)
            }
            for t in 16..<64 {
                let w15 = w[(t &- 15) & 15], w2 = w[(t &- 2) & 15]
                let s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 &>> 3)
                let s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 &>> 10)
                let wt = w[t & 15] &+ s0 &+ w[(t &- 7) & 15] &+ s1
                w[t & 15] = wt
                sha256Round(&a, &b, &c, &d, &e, &f, &g, &hh, sha256RoundConstants[t] &+ wt)
            }
        }
        h.0 &+= a; h.1 &+= b; h.2 &+= c; h.3 &+= d
        h.4 &+= e; h.5 &+= f; h.6 &+= g; h.7 &+= hh
    }
}

/// Precomputes the inner and outer padded-key SHA-256 states once per key (RFC 2104),
/// so a per-frame MAC costs only the message blocks plus 2 finalisation blocks.
/// Only the two chaining states are kept (64 bytes, not two whole hashers with
/// their block buffers): the key is copied and read on every frame.
public struct HMACSHA256Key: Sendable, BitwiseCopyable {
    /// SHA-256 state after absorbing key ^ ipad (one block).
    private let inner: SHA256Words8
    /// SHA-256 state after absorbing key ^ opad (one block).
    private let outer: SHA256Words8

    /// Keys longer than 64 bytes are hashed first, per RFC 2104; shorter ones are zero-padded.
    public init(key: [UInt8]) {
        var inner = sha256Initial
        var outer = sha256Initial
        var padded = sha256Zero16
        withUnsafeMutableBytes(of: &padded) { p in
            if key.count > SHA256.blockCount {
                // SHA-256 of the key in one `finish` (whole blocks, tail and
                // padding): no streaming hasher, whose `update` and
                // `finalize` a board image needs nowhere else (~0.3 KB).
                var h = sha256Initial
                key.withUnsafeBytes { SHA256.finish(&h, $0, prefixCount: 0) }
                SHA256.store(h, p.baseAddress!)
            } else {
                key.withUnsafeBytes { k in
                    if let base = k.baseAddress { p.baseAddress!.copyMemory(from: base, byteCount: k.count) }
                }
            }
            for i in 0..<SHA256.blockCount { p[i] ^= 0x36 }
            SHA256.compress(&inner, p.baseAddress!, blocks: 1)
            // Undo ipad and apply opad in one pass.
            for i in 0..<SHA256.blockCount { p[i] ^= 0x36 ^ 0x5c }
            SHA256.compress(&outer, p.baseAddress!, blocks: 1)
            // Best effort: do not leave the key block lying on the stack.
            for i in 0..<SHA256.blockCount { p[i] = 0 }
        }
        self.inner = inner
        self.outer = outer
    }

    public func mac(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: SHA256.digestCount)
        out.withUnsafeMutableBytes { mac(bytes, into: $0.baseAddress!) }
        return out
    }

    /// Writes the 32-byte MAC to `out`: no heap at all (two per frame on the RPC path).
    func mac(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        var h = inner
        SHA256.finish(&h, bytes, prefixCount: UInt64(SHA256.blockCount))
        // The inner digest goes from stack to the outer hash without touching the heap.
        var innerDigest: SHA256Words8 = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &innerDigest) { SHA256.store(h, $0.baseAddress!) }
        var o = outer
        withUnsafeBytes(of: &innerDigest) { SHA256.finish(&o, $0, prefixCount: UInt64(SHA256.blockCount)) }
        SHA256.store(o, out)
    }

    /// The MAC in a stack value (the 32 digest bytes in order).
    func macWords(_ bytes: UnsafeRawBufferPointer) -> SHA256Words8 {
        var digest: SHA256Words8 = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digest) { mac(bytes, into: $0.baseAddress!) }
        return digest
    }

    public func mac(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        bytes.withUnsafeBytes { mac($0) }
    }

    public func mac(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { mac($0) }
    }
}

public enum HMACSHA256 {
    /// One-shot HMAC; for many messages under one key, keep an `HMACSHA256Key`.
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        HMACSHA256Key(key: key).mac(message)
    }
}

/// `count` bytes at `a` and `b`, compared in time independent of where they differ.
/// Out of line: inlined into `Frame.decode` with its constant 16, the loop was
/// unrolled (~0.15 KB).
@inline(never)
func constantTimeEquals(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
    var diff: UInt8 = 0
    for i in 0..<count {
        diff |= a.load(fromByteOffset: i, as: UInt8.self) ^ b.load(fromByteOffset: i, as: UInt8.self)
    }
    return diff == 0
}

/// Compares the first `count` bytes in time independent of where they differ.
/// Returns false if either side is shorter than `count` (lengths are not secret).
public func constantTimeEquals(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>, count: Int) -> Bool {
    guard count >= 0, a.count >= count, b.count >= count else { return false }
    // OR-accumulate every difference; no early exit for a timing oracle to see.
    var diff: UInt8 = 0
    var i = a.startIndex
    var j = b.startIndex
    for _ in 0..<count {
        diff |= a[i] ^ b[j]
        i += 1
        j += 1
    }
    return diff == 0
}
