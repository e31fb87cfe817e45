#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSHostC

/// Uses the CPU's SHA-256 instructions for every hash and HMAC of this process
/// when it has them (x86-64 SHA extensions): a block in ~0.1 µs instead of
/// ~0.4 µs, four HMACs per RPC round trip. Call once at start-up, before other
/// threads hash. Returns whether they are in use: only if they give the same
/// digests as the portable Swift rounds (the board's) on a self-test of every
/// padding case. `TDOS_SHA256_SOFTWARE=1` keeps the Swift rounds, to measure them.
@discardableResult
public func installHostCrypto() -> Bool {
    guard tdos_sha256_hw_available() != 0, getenv("TDOS_SHA256_SOFTWARE") == nil else { return false }
    sha256HardwareBlocks = nil
    let software = hostCryptoSelfTestDigests()
    sha256HardwareBlocks = tdos_sha256_hw_blocks
    guard hostCryptoSelfTestDigests() == software else {
        sha256HardwareBlocks = nil
        return false
    }
    return true
}

/// SHA-256 of lengths around every block and padding boundary, and an HMAC.
func hostCryptoSelfTestDigests() -> [[UInt8]] {
    var out: [[UInt8]] = []
    for n in [0, 1, 3, 55, 56, 63, 64, 65, 119, 120, 128, 200, 1000] {
        out.append(SHA256.hash((0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) }))
    }
    out.append(HMACSHA256Key(key: Array(repeating: 0x0b, count: 20)).mac(Array("Hi There".utf8)[...]))
    return out
}
