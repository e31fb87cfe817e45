// Wire additions of the mesh layer (docs/PROTOCOL.md, "Mesh behaviour (v1.1)").
// All of it is a v1.1 minor addition: a v1.0 receiver counts type 11 as unknown
// and drops it, and skips the status keys it does not know.

extension MessageType {
    /// Type 11 `relay`: "forward this frame to that node". Key 1 destination
    /// node id (u32), key 2 the complete inner frame (byte string). The inner
    /// frame is authenticated end to end by its own tag; it has the `relayed`
    /// flag set and the same sender as the envelope, and is never itself a relay.
    public static let relay = MessageType(rawValue: 11)
}

public struct RelayEnvelope: Equatable {
    public var destination: UInt32
    public var frame: [UInt8]

    public init(destination: UInt32, frame: [UInt8]) {
        self.destination = destination
        self.frame = frame
    }

    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 12 + frame.count)
        w.mapHeader(count: 2)
        w.field(1, UInt32(destination))
        w.unsigned(2); w.bytes(frame)
        return w.bytes
    }

    public static func decode(_ payload: [UInt8]) throws(WireError) -> RelayEnvelope {
        var destination: UInt32?
        var frame: [UInt8]?
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            switch key {
            case 1: destination = d.u32()
            case 2: frame = d.byteString()
            default: d.skip()
            }
        }
        try d.finish()
        return RelayEnvelope(destination: try required(destination), frame: try required(frame))
    }

    /// Cheap checks a relay makes on the inner frame without the key: a
    /// plausible size, the envelope's sender, the `relayed` flag, not a relay.
    public static func innerFrameIsForwardable(_ inner: [UInt8], envelopeSender: UInt32) -> Bool {
        guard inner.count >= WireLimits.frameBytesMin && inner.count <= WireLimits.frameBytesMax else { return false }
        guard inner[0] >> 4 == ProtocolVersion.major else { return false }
        guard inner[1] != MessageType.relay.rawValue else { return false }
        guard inner[2] & FrameFlags.relayed.rawValue != 0 else { return false }
        let sender = UInt32(inner[4]) << 24 | UInt32(inner[5]) << 16 | UInt32(inner[6]) << 8 | UInt32(inner[7])
        return sender == envelopeSender
    }
}

/// Arguments of a node `status` request (service 0, operation 4) when it is a
/// liveness probe: key 1, the incarnation at which the prober suspects the
/// target. A target that sees itself suspected at or above its own
/// incarnation raises it (and broadcasts a heartbeat carrying it): SWIM's refutation.
public struct ProbeArguments: Equatable {
    public var suspectedIncarnation: UInt32
    public init(suspectedIncarnation: UInt32) { self.suspectedIncarnation = suspectedIncarnation }

    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 8)
        w.mapHeader(count: 1)
        w.field(1, UInt32(suspectedIncarnation))
        return w.bytes
    }

    /// nil when the arguments are absent or not a probe's (a plain status request).
    public static func decode(_ item: [UInt8]) -> ProbeArguments? {
        guard !item.isEmpty else { return nil }
        var found: UInt32?
        do {
            var d = MapDecoder(deferring: item)
            while let key = d.next() {
                if key == 1 { found = d.u32() } else { d.skip() }
            }
            try d.finish()
        } catch {
            return nil
        }
        guard let found else { return nil }
        return ProbeArguments(suspectedIncarnation: found)
    }
}

/// Result (response key 5) of a node `status` request: key 1 incarnation,
/// 2 uptime s, 3 services digest, 4 free memory bytes, 5 load %, 6 activity.
public struct NodeStatus: Equatable {
    public var incarnation: UInt32
    public var uptimeS: UInt32
    public var servicesDigest: UInt16
    public var freeMemoryBytes: UInt32
    public var loadPercent: UInt8
    public var activity: UInt8

    public init(incarnation: UInt32, uptimeS: UInt32, servicesDigest: UInt16, freeMemoryBytes: UInt32,
                loadPercent: UInt8, activity: UInt8) {
        self.incarnation = incarnation
        self.uptimeS = uptimeS
        self.servicesDigest = servicesDigest
        self.freeMemoryBytes = freeMemoryBytes
        self.loadPercent = loadPercent
        self.activity = activity
    }

    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 24)
        w.mapHeader(count: 6)
        w.field(1, UInt32(incarnation))
        w.field(2, UInt32(uptimeS))
        w.field(3, UInt32(servicesDigest))
        w.field(4, UInt32(freeMemoryBytes))
        w.field(5, UInt32(loadPercent))
        w.field(6, UInt32(activity))
        return w.bytes
    }

    public static func decode(_ item: [UInt8]) throws(WireError) -> NodeStatus {
        var s = NodeStatus(incarnation: 0, uptimeS: 0, servicesDigest: 0, freeMemoryBytes: 0, loadPercent: 0, activity: 0)
        var digest: UInt16?
        var d = MapDecoder(deferring: item)
        while let key = d.next() {
            switch key {
            case 1: s.incarnation = d.u32()
            case 2: s.uptimeS = d.u32()
            case 3: digest = d.u16()
            case 4: s.freeMemoryBytes = d.u32()
            case 5: s.loadPercent = min(100, d.u8())
            case 6: s.activity = min(100, d.u8())
            default: d.skip()
            }
        }
        try d.finish()
        s.servicesDigest = try required(digest)
        return s
    }
}

/// Heartbeat key 5: FNV-1a-32 over the v1.0 fields of the announced services,
/// in announce order, folded to 16 bits (high half xor low half). Per service:
/// name length (1 byte), name, major, minor, patch (2 bytes each, big-endian),
/// role (1), capabilities (4, big-endian), priority (1), port (2, big-endian).
/// Keys a later minor adds to the service map are left out, so nodes of
/// different minors agree on the digest of the same services.
public func servicesDigest(_ services: [ServiceDescriptor]) -> UInt16 {
    // The fields are hashed in place, big-endian byte by byte (no buffer:
    // each append into one cost a uniqueness and capacity check).
    var h: UInt32 = 0x811C_9DC5
    for s in services {
        fnv1a(&h, UInt32(truncatingIfNeeded: s.name.count), bytes: 1)
        for b in s.name { fnv1a(&h, UInt32(b), bytes: 1) }
        fnv1a(&h, UInt32(s.version.major), bytes: 2)
        fnv1a(&h, UInt32(s.version.minor), bytes: 2)
        fnv1a(&h, UInt32(s.version.patch), bytes: 2)
        fnv1a(&h, UInt32(s.role.rawValue), bytes: 1)
        fnv1a(&h, s.capabilities.rawValue, bytes: 4)
        fnv1a(&h, UInt32(s.priority), bytes: 1)
        fnv1a(&h, UInt32(s.port), bytes: 2)
    }
    return UInt16(truncatingIfNeeded: h >> 16) ^ UInt16(truncatingIfNeeded: h)
}

/// FNV-1a-32 over the low `bytes` bytes of `value`, most significant first.
@inline(never)
func fnv1a(_ h: inout UInt32, _ value: UInt32, bytes: Int) {
    var shift = UInt32(bytes &* 8)
    while shift > 0 {
        shift &-= 8
        h ^= (value >> shift) & 0xFF
        h = h &* 0x0100_0193
    }
}
