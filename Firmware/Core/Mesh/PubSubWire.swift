// Wire additions of subscriptions (docs/PROTOCOL.md, "Subscriptions (v1.2)"):
// types 12 `subscribe` and 13 `notify`, in the range reserved for the mesh.
// A v1.1 receiver counts them as unknown and drops them, so a subscriber that
// gets no answer moves on to another instance (or the CLI says so).

extension MessageType {
    /// Type 12 `subscribe`: create, renew (same id) or cancel (lease 0) a
    /// subscription to one of the receiver's services. Answered by a `notify`.
    public static let subscribe = MessageType(rawValue: 12)
    /// Type 13 `notify`: a reading pushed to a subscriber, or the answer to its `subscribe`.
    public static let notify = MessageType(rawValue: 13)
}

/// `subscribe`: key 1 subscription id (u32, chosen by the subscriber, unique
/// among its subscriptions), 2 service name, 3 version required (caret rule),
/// 4 minimum interval ms between pushes, 5 maximum interval ms (a push at least
/// this often, changed or not), 6 change threshold (a number: a new sample is
/// pushed when it differs from the last one pushed by at least this much; absent
/// or 0 = every new sample), 7 lease ms (absent or 0 = cancel; a cancel may
/// leave out keys 2-6).
public struct Subscribe: Equatable {
    public var id: UInt32
    public var service: [UInt8]
    public var version: SemVer
    public var minIntervalMs: UInt32
    public var maxIntervalMs: UInt32
    public var threshold: Double
    public var leaseMs: UInt32

    public init(id: UInt32, service: [UInt8], version: SemVer = SemVer(1, 0, 0), minIntervalMs: UInt32 = 1000,
                maxIntervalMs: UInt32 = 10_000, threshold: Double = 0, leaseMs: UInt32 = 30_000) {
        self.id = id
        self.service = service
        self.version = version
        self.minIntervalMs = minIntervalMs
        self.maxIntervalMs = maxIntervalMs
        self.threshold = threshold
        self.leaseMs = leaseMs
    }

    public var isCancel: Bool { leaseMs == 0 }

    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 40 + service.count)
        if isCancel {
            w.mapHeader(count: 1)
            w.field(1, UInt32(id))
            return w.bytes
        }
        w.mapHeader(count: 6 + (threshold == 0 ? 0 : 1))
        w.field(1, UInt32(id))
        w.unsigned(2); w.text(service)
        w.unsigned(3); version.encode(&w)
        w.field(4, UInt32(minIntervalMs))
        w.field(5, UInt32(maxIntervalMs))
        if threshold != 0 { w.unsigned(6); w.double(threshold) }
        w.field(7, UInt32(leaseMs))
        return w.bytes
    }

    public static func decode(_ payload: [UInt8]) throws(WireError) -> Subscribe {
        var id: UInt32?
        var service: [UInt8]?
        var s = Subscribe(id: 0, service: [], version: SemVer(0, 0, 0), minIntervalMs: 0, maxIntervalMs: 0, leaseMs: 0)
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            switch key {
            case 1: id = d.u32()
            case 2: service = d.name()
            case 3: s.version = d.read(s.version, SemVer.decode)
            case 4: s.minIntervalMs = d.u32()
            case 5: s.maxIntervalMs = d.u32()
            case 6:
                let t = d.number()
                // NaN or a negative threshold would make "changed enough" meaningless.
                if t >= 0 && t.isFinite { s.threshold = t } else { d.fail() }
            case 7: s.leaseMs = d.u32()
            default: d.skip()
            }
        }
        try d.finish()
        s.id = try required(id)
        // A cancel is matched by (sender, id) alone: a subscriber cancelling a
        // stray subscription may not know its service.
        if s.leaseMs != 0 || service != nil { s.service = try required(service) }
        return s
    }
}

/// `notify`: key 1 subscription id, 2 sequence (u32, per subscription, from 1;
/// a subscriber drops one not above the last it took), 3 status (absent = ok;
/// unknown_service, unsupported_version, busy when the publisher's table is
/// full, unavailable when it has no sample), 4 value, 5 unit, 6 age of the
/// value in ms, 7 lease ms granted: present only in the answer to a `subscribe`.
public struct Notify: Equatable {
    public var id: UInt32
    public var sequence: UInt32
    public var status: UInt8
    public var value: Double?
    public var unit: Unit
    public var ageMs: UInt32
    public var leaseMs: UInt32

    public init(id: UInt32, sequence: UInt32, status: UInt8 = Status.ok.rawValue, value: Double? = nil,
                unit: Unit = .none, ageMs: UInt32 = 0, leaseMs: UInt32 = 0) {
        self.id = id
        self.sequence = sequence
        self.status = status
        self.value = value
        self.unit = unit
        self.ageMs = ageMs
        self.leaseMs = leaseMs
    }

    /// The answer to a `subscribe` (lease granted), not a push.
    public var isAnswer: Bool { leaseMs != 0 }

    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 32)
        w.mapHeader(count: 2 + (status == 0 ? 0 : 1) + (value == nil ? 0 : 1) + (unit == .none ? 0 : 1)
                    + (ageMs == 0 ? 0 : 1) + (leaseMs == 0 ? 0 : 1))
        w.field(1, UInt32(id))
        w.field(2, UInt32(sequence))
        if status != 0 { w.field(3, UInt32(status)) }
        if let value { w.unsigned(4); w.double(value) }
        if unit != .none { w.field(5, UInt32(unit.rawValue)) }
        if ageMs != 0 { w.field(6, UInt32(ageMs)) }
        if leaseMs != 0 { w.field(7, UInt32(leaseMs)) }
        return w.bytes
    }

    public static func decode(_ payload: [UInt8]) throws(WireError) -> Notify {
        var id: UInt32?
        var sequence: UInt32?
        var n = Notify(id: 0, sequence: 0)
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            switch key {
            case 1: id = d.u32()
            case 2: sequence = d.u32()
            case 3: n.status = d.u8()
            case 4: n.value = d.number()
            case 5: n.unit = Unit(rawValue: d.u8()) ?? .none
            case 6: n.ageMs = d.u32()
            case 7: n.leaseMs = d.u32()
            default: d.skip()
            }
        }
        try d.finish()
        n.id = try required(id)
        n.sequence = try required(sequence)
        return n
    }
}
