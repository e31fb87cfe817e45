/// Why a datagram was rejected. Every case is counted by the receiver
/// (`RejectCounters`) and the datagram is dropped; none of them is fatal.
public enum WireError: Error, Equatable {
    /// The datagram ends before a field it announces.
    case truncated
    /// The major version is not one this build speaks (`supportedMajorMin...Max`).
    case badVersion(major: UInt8)
    /// The HMAC tag does not match, or the key id is unknown.
    case badTag
    /// An authentic frame whose message id was already seen (or is older than the window).
    case replayed
    /// The datagram, or a decompressed payload, is larger than the limit.
    case oversized
    /// A header field holds a value the format does not allow.
    case malformedHeader
    /// The payload is not well-formed CBOR, or a required key is missing or mistyped.
    case malformedCBOR
    /// The compressed payload is not valid raw DEFLATE.
    case badCompression

    /// Stable small index, used as a counter slot and as the wire error code.
    public var code: UInt8 {
        switch self {
        case .truncated: return 1
        case .badVersion: return 2
        case .badTag: return 3
        case .replayed: return 4
        case .oversized: return 5
        case .malformedHeader: return 6
        case .malformedCBOR: return 7
        case .badCompression: return 8
        }
    }

    public static let codeCount = 9

    public var name: StaticString {
        switch self {
        case .truncated: return "truncated"
        case .badVersion: return "bad_version"
        case .badTag: return "bad_tag"
        case .replayed: return "replayed"
        case .oversized: return "oversized"
        case .malformedHeader: return "malformed_header"
        case .malformedCBOR: return "malformed_cbor"
        case .badCompression: return "bad_compression"
        }
    }
}
