/// Every bound of the wire layer in one place, with their relations checked by
/// `WireLimits.check()` (called from tests and at node start).
public enum WireLimits {
    /// Largest datagram sent or accepted. Fits one 1500-byte Ethernet/Wi-Fi
    /// frame after IPv4+UDP headers with room to spare, so nothing fragments.
    public static let frameBytesMax = 1200
    /// Truncated HMAC-SHA256 tag length (RFC 2104 section 5 allows truncation to >= 80 bits).
    public static let tagBytes = 16
    /// version, type, flags, key byte, sender(4), epoch(1), sequence(1), timestamp(4).
    public static let headerBytesMin = 14
    /// Smallest frame: minimal header, empty payload, tag.
    public static let frameBytesMin = headerBytesMin + tagBytes
    /// Largest payload after decompression: the inflater stops here.
    public static let payloadBytesMax = 4096
    /// Payloads at least this long are offered to DEFLATE; the result is only
    /// used when it is smaller.
    public static let compressThresholdBytes = 96
    /// Keys a node holds at once (current + the ones being rotated out).
    public static let keysMax = 4
    /// Key ids fit the low 6 bits of header byte 3.
    public static let keyIDMax: UInt8 = 63
    /// Senders whose replay state is tracked; the least recently seen is evicted.
    public static let replayPeersMax = 64
    /// Width of the per-sender sliding replay window, in sequence numbers.
    public static let replayWindowBits: UInt32 = 64
    /// CBOR nesting accepted in payloads.
    public static let cborDepthMax = 6

    public static func check() {
        precondition(frameBytesMin < frameBytesMax)
        precondition(frameBytesMax <= 1472, "must fit one IPv4 UDP datagram on a 1500 MTU")
        precondition(payloadBytesMax >= frameBytesMax, "an uncompressed payload must always fit")
        precondition(compressThresholdBytes < frameBytesMax)
        precondition(tagBytes >= 10 && tagBytes <= 32)
        precondition(keysMax >= 2, "rotation needs the old and the new key at once")
        precondition(replayWindowBits == 64, "the window is one UInt64 bitmap")
    }
}

/// Protocol version this build speaks. Minor versions of one major interoperate
/// (unknown payload keys are skipped); another major is rejected with an error
/// reply that names `majorMin...majorMax`.
public enum ProtocolVersion {
    public static let major: UInt8 = 1
    public static let minor: UInt8 = 2  // v1.2: subscribe/notify (types 12, 13)
    public static let majorMin: UInt8 = 1
    public static let majorMax: UInt8 = 1
}
