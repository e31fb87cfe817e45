// Payloads of every message type: CBOR maps keyed by small unsigned integers.
// Decoders skip keys (and key types) they do not know, so a newer minor version
// can add keys and an older receiver still reads the ones it knows. A required
// key that is missing or of the wrong type is `.malformedCBOR`.

/// A payload's top-level map read without throwing: the first error is kept
/// and every later read returns a zero value, so a decoder's key loop has no
/// throw sites (on armv6m each one carried its own release of every value
/// read so far) and `finish()` throws that first error, once. Same rules as
/// MapKeys: non-integer keys skipped, trailing bytes malformed.
struct MapDecoder {
    var keys: MapKeys
    var error: WireError? = nil

    /// Out of line: inlined, its callers built the keys in a temporary and
    /// copied them in.
    @inline(never)
    init(_ payload: [UInt8], start: Int = 0, end: Int? = nil) throws(WireError) {
        keys = try MapKeys(payload, start: start, end: end)
    }

    /// The map in `payload` (an empty payload is an empty map); an error in its
    /// header is kept like any later one and thrown by `finish()`. Not
    /// throwing, a decoder has one throw site less, and builds the decoder in
    /// place (a throwing init built it in a temporary and copied it in).
    @inline(never)
    init(deferring payload: [UInt8]) {
        keys = MapKeys(reader: CBORReader(payload, depthMax: WireLimits.cborDepthMax), left: 0)
        if payload.isEmpty { return }
        do { keys.left = try keys.reader.mapHeader() } catch { self.error = error }
    }

    /// The next integer key; nil after the last one or after an error.
    @inline(never)
    mutating func next() -> UInt64? {
        guard error == nil else { return nil }
        do { return try keys.next() } catch { self.error = error; return nil }
    }

    @inline(never)
    mutating func fail(_ e: WireError = .malformedCBOR) { if error == nil { error = e } }

    /// Throws the first error, if any (after the key loop). A decoder with
    /// required keys calls `fail()` first when one is missing: one throw site,
    /// so one cleanup path.
    @inline(__always)
    func finish() throws(WireError) {
        if let error { throw error }
    }

    @inline(never)
    mutating func unsigned(max: UInt64) -> UInt64 {
        guard error == nil else { return 0 }
        do {
            let v = try keys.reader.unsigned()
            if v <= max { return v }
            error = .malformedCBOR
        } catch { self.error = error }
        return 0
    }
    mutating func u32() -> UInt32 { UInt32(truncatingIfNeeded: unsigned(max: UInt64(UInt32.max))) }
    mutating func u16() -> UInt16 { UInt16(truncatingIfNeeded: unsigned(max: UInt64(UInt16.max))) }
    mutating func u8() -> UInt8 { UInt8(truncatingIfNeeded: unsigned(max: 255)) }

    /// `read` applied to the reader, for values with their own decoder.
    @inline(__always)
    mutating func read<T>(_ zero: T, _ read: (inout CBORReader) throws(WireError) -> T) -> T {
        guard error == nil else { return zero }
        do { return try read(&keys.reader) } catch { self.error = error; return zero }
    }

    @inline(never)
    mutating func name() -> [UInt8] { read([], readName) }
    @inline(never)
    mutating func number() -> Double { read(0) { (r: inout CBORReader) throws(WireError) in try r.number() } }
    @inline(never)
    mutating func item() -> [UInt8] { read([], rawItem) }
    @inline(never)
    mutating func text() -> ArraySlice<UInt8> { read([]) { (r: inout CBORReader) throws(WireError) in try r.text() } }
    @inline(never)
    mutating func byteString() -> [UInt8] {
        Array(read([]) { (r: inout CBORReader) throws(WireError) in try r.bytes() })
    }
    @inline(never)
    mutating func skip() { read(()) { (r: inout CBORReader) throws(WireError) in try r.skip() } }
}

/// Iterates the top-level map of a payload. An empty payload is an empty map.
/// Non-integer keys are skipped with their values; trailing bytes are malformed.
/// Inlined, so each decoder's `switch` sits in its own loop; the reading and
/// skipping shared by every decoder is in MapKeys, once (inlining all of it,
/// or letting the optimizer specialise this function per closure, put a copy
/// in each of ~20 decoders on the board).
@inline(__always)
func forEachKey(_ payload: [UInt8],
                _ body: (UInt64, inout CBORReader) throws(WireError) -> Void) throws(WireError) {
    var keys = try MapKeys(payload)
    while let key = try keys.next() {
        try body(key, &keys.reader)
    }
}

/// The keys of a payload's top-level map, in order (see forEachKey). After
/// `next()` returns a key, its value is next in `reader`: read or skip it.
struct MapKeys {
    var reader: CBORReader
    var left: Int

    /// The map in `payload[start..<end]` (default: all of it); an empty
    /// payload is an empty map, an empty range within one is malformed.
    @inline(never)
    init(_ payload: [UInt8], start: Int = 0, end: Int? = nil) throws(WireError) {
        reader = CBORReader(payload, start: start, end: end, depthMax: WireLimits.cborDepthMax)
        left = payload.isEmpty ? 0 : try reader.mapHeader()
    }

    /// The next integer key; nil after the last entry (the payload must end there).
    @inline(never)
    mutating func next() throws(WireError) -> UInt64? {
        if let key = try nextKey(&reader, &left) { return key }
        guard reader.isAtEnd else { throw .malformedCBOR }
        return nil
    }
}

extension MapKeys {
    init(reader: CBORReader, left: Int) {
        self.reader = reader
        self.left = left
    }
}

/// The next integer key of a map with `left` entries to go, skipping entries
/// whose key is not an integer; nil after the last entry. Shared by MapKeys
/// and the nested maps' decoders.
@inline(never)
func nextKey(_ r: inout CBORReader, _ left: inout Int) throws(WireError) -> UInt64? {
    while left > 0 {
        left -= 1
        if try r.peekMajor() != .unsigned {
            try r.skip()
            try r.skip()
            continue
        }
        return try r.unsigned()
    }
    return nil
}

@inline(__always)
func required<T>(_ value: T?) throws(WireError) -> T {
    guard let value else { throw .malformedCBOR }
    return value
}

func readU32(_ r: inout CBORReader) throws(WireError) -> UInt32 {
    let v = try r.unsigned()
    guard v <= UInt64(UInt32.max) else { throw .malformedCBOR }
    return UInt32(v)
}

func readU16(_ r: inout CBORReader) throws(WireError) -> UInt16 {
    let v = try r.unsigned()
    guard v <= UInt64(UInt16.max) else { throw .malformedCBOR }
    return UInt16(v)
}

func readU8(_ r: inout CBORReader) throws(WireError) -> UInt8 {
    let v = try r.unsigned()
    guard v <= 255 else { throw .malformedCBOR }
    return UInt8(v)
}

/// Longest service or node name, in UTF-8 bytes.
public let nameBytesMax = 24
/// Most services one node announces.
public let servicesPerNodeMax = 8

@inline(never)
func readName(_ r: inout CBORReader) throws(WireError) -> [UInt8] {
    let t = try r.text()
    guard !t.isEmpty && t.count <= nameBytesMax else { throw .malformedCBOR }
    return Array(t)
}

/// FNV-1a 32-bit of the service name: how a request names its service in 5 bytes.
public func serviceID<C: Collection>(_ name: C) -> UInt32 where C.Element == UInt8 {
    var h: UInt32 = 0x811C_9DC5
    for b in name {
        h ^= UInt32(b)
        h = h &* 0x0100_0193
    }
    return h
}

public func serviceID(_ name: StaticString) -> UInt32 {
    serviceID(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
}

/// Semantic version, encoded as the CBOR array [major, minor, patch].
public struct SemVer: Equatable, Comparable, BitwiseCopyable {
    public var major: UInt16
    public var minor: UInt16
    public var patch: UInt16
    public init(_ major: UInt16, _ minor: UInt16, _ patch: UInt16) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }
    public static func < (a: SemVer, b: SemVer) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }
    /// Caret rule (npm/cargo `^`): same major and not older; for 0.x the minor must match too.
    public func satisfies(caret req: SemVer) -> Bool {
        guard major == req.major, self >= req else { return false }
        return major != 0 || minor == req.minor
    }
    func encode(_ w: inout CBORWriter) {
        w.arrayHeader(count: 3)
        w.unsigned(UInt64(major))
        w.unsigned(UInt64(minor))
        w.unsigned(UInt64(patch))
    }
    static func decode(_ r: inout CBORReader) throws(WireError) -> SemVer {
        let n = try r.arrayHeader()
        guard n >= 3 else { throw .malformedCBOR }
        let v = SemVer(try readU16(&r), try readU16(&r), try readU16(&r))
        for _ in 3..<n { try r.skip() }  // a later minor may add pre-release parts
        return v
    }
}

public enum NodeRole: UInt8 {
    case kernel = 1, sensor = 2, storage = 3, client = 4
    public var name: StaticString {
        switch self {
        case .kernel: return "kernel"
        case .sensor: return "sensor"
        case .storage: return "storage"
        case .client: return "client"
        }
    }
}

public struct Capabilities: OptionSet, Equatable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let read = Capabilities(rawValue: 1 << 0)
    public static let subscribe = Capabilities(rawValue: 1 << 1)
    public static let write = Capabilities(rawValue: 1 << 2)
    public static let config = Capabilities(rawValue: 1 << 3)
    public static let log = Capabilities(rawValue: 1 << 4)
    public static let relay = Capabilities(rawValue: 1 << 5)
}

/// Physical units of a reading.
public enum Unit: UInt8, BitwiseCopyable {
    case none = 0, celsius = 1, percentRH = 2, lux = 3, hectopascal = 4, volt = 5
    public var symbol: StaticString {
        switch self {
        case .none: return ""
        case .celsius: return "C"
        case .percentRH: return "%RH"
        case .lux: return "lx"
        case .hectopascal: return "hPa"
        case .volt: return "V"
        }
    }
}

/// One service as announced. Key 1 name, 2 version, 3 role, 4 capabilities,
/// 5 priority (0 = primary, n = n-th backup), 6 UDP port.
public struct ServiceDescriptor: Equatable {
    public var name: [UInt8]
    public var version: SemVer
    public var role: NodeRole
    public var capabilities: Capabilities
    public var priority: UInt8
    public var port: UInt16

    public init(name: [UInt8], version: SemVer, role: NodeRole, capabilities: Capabilities,
                priority: UInt8, port: UInt16) {
        precondition(!name.isEmpty && name.count <= nameBytesMax)
        self.init(name: name, version: version, role: role, capabilities: capabilities,
                  priority: priority, port: port, unchecked: ())
    }

    public var id: UInt32 { serviceID(name) }

    @inline(never)  // else inlined into Announce.encode's loop, larger there
    func encode(_ w: inout CBORWriter) {
        w.mapHeader(count: 6)
        w.unsigned(1); w.text(name)
        w.unsigned(2); version.encode(&w)
        w.field(3, UInt32(role.rawValue))
        w.field(4, UInt32(capabilities.rawValue))
        w.field(5, UInt32(priority))
        w.field(6, UInt32(port))
    }

    static func decode(_ r: inout CBORReader) throws(WireError) -> ServiceDescriptor {
        var s = ServiceDescriptor.blank
        try s.read(&r)
        return s
    }

    /// Reads the map into `self`: the name read so far is the caller's to
    /// release, so the throw sites here have nothing of their own to release
    /// (held in a local, each site released it: 688 B). Keys 1, 2, 3 and 6
    /// are required.
    @inline(never)
    fileprivate mutating func read(_ r: inout CBORReader) throws(WireError) {
        var left = try r.mapHeader()
        var seen: UInt32 = 0
        while let key = try nextKey(&r, &left) {
            switch key {
            case 1: name = try readName(&r)
            case 2: version = try SemVer.decode(&r)
            case 3: role = NodeRole(rawValue: try readU8(&r)) ?? .client
            case 4: capabilities = Capabilities(rawValue: try readU32(&r))
            case 5: priority = try readU8(&r)
            case 6: port = try readU16(&r)
            default: try r.skip()
            }
            if key <= 6 { seen |= 1 << UInt32(key) }
        }
        guard seen & 0b100_1110 == 0b100_1110 else { throw .malformedCBOR }
    }
}

extension ServiceDescriptor {
    /// The zero descriptor a decoder reads a map into (`read` fills it).
    @inline(__always) static var blank: ServiceDescriptor {
        ServiceDescriptor(name: [], version: SemVer(0, 0, 0), role: .client, capabilities: .read,
                          priority: 0, port: 0, unchecked: ())
    }

    /// The fields as given, without the name check (`decode`'s starting value).
    fileprivate init(name: [UInt8], version: SemVer, role: NodeRole, capabilities: Capabilities,
                     priority: UInt8, port: UInt16, unchecked: Void) {
        self.name = name
        self.version = version
        self.role = role
        self.capabilities = capabilities
        self.priority = priority
        self.port = port
    }
}

/// `announce`: key 1 services (array), 2 node name (optional).
public struct Announce: Equatable {
    public var services: [ServiceDescriptor]
    public var nodeName: [UInt8]
    public init(services: [ServiceDescriptor], nodeName: [UInt8]) {
        self.services = services
        self.nodeName = nodeName
    }
    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 48)
        w.mapHeader(count: nodeName.isEmpty ? 1 : 2)
        w.unsigned(1)
        w.arrayHeader(count: services.count)
        for s in services { s.encode(&w) }
        if !nodeName.isEmpty { w.unsigned(2); w.text(nodeName) }
        return w.bytes
    }
    public static func decode(_ payload: [UInt8]) throws(WireError) -> Announce {
        var services: [ServiceDescriptor] = []
        var hasServices = false
        var nodeName: [UInt8] = []
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            switch key {
            case 1:
                hasServices = true
                d.read((), { (r: inout CBORReader) throws(WireError) in try readServices(&r, into: &services) })
            case 2: nodeName = d.name()
            default: d.skip()
            }
        }
        if !hasServices { d.fail() }
        try d.finish()
        return Announce(services: services, nodeName: nodeName)
    }

    /// The services array into `list` (replacing what an earlier key 1 left):
    /// each descriptor is appended zeroed and read in place, so the throw
    /// sites here hold nothing to release (the list is the caller's).
    @inline(never)
    static func readServices(_ r: inout CBORReader, into list: inout [ServiceDescriptor]) throws(WireError) {
        list = []
        let n = try r.arrayHeader()
        guard n <= servicesPerNodeMax else { throw .malformedCBOR }
        for i in 0..<n {
            list.append(.blank)
            try list[i].read(&r)
        }
    }
}

/// `query`: asks nodes to announce. Key 1 service name (absent = every
/// service), 2 lowest acceptable version (caret rule).
public struct Query: Equatable {
    public var name: [UInt8]
    public var version: SemVer?
    public init(name: [UInt8] = [], version: SemVer? = nil) {
        self.name = name
        self.version = version
    }
    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 24)
        w.mapHeader(count: (name.isEmpty ? 0 : 1) + (version == nil ? 0 : 1))
        if !name.isEmpty { w.unsigned(1); w.text(name) }
        if let version { w.unsigned(2); version.encode(&w) }
        return w.bytes
    }
    public static func decode(_ payload: [UInt8]) throws(WireError) -> Query {
        var q = Query()
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            switch key {
            case 1: q.name = d.name()
            case 2: q.version = d.read(SemVer(0, 0, 0), SemVer.decode)
            default: d.skip()
            }
        }
        try d.finish()
        return q
    }
}

/// Operations a request can name.
public struct Operation: RawRepresentable, Equatable, BitwiseCopyable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let read = Operation(rawValue: 1)
    public static let subscribe = Operation(rawValue: 2)
    public static let unsubscribe = Operation(rawValue: 3)
    public static let status = Operation(rawValue: 4)
    public static let metrics = Operation(rawValue: 5)
    public static let tasks = Operation(rawValue: 6)
    public static let configGet = Operation(rawValue: 7)
    public static let logAppend = Operation(rawValue: 8)
    public static let logQuery = Operation(rawValue: 9)
    /// Service `config` (the consensus leader): propose a change; answered once committed.
    public static let configSet = Operation(rawValue: 10)
    /// Service `config`: the committed log entries (version, term, changes).
    public static let configHistory = Operation(rawValue: 11)
    /// Storage replicas among themselves (service 0; Firmware/Core/Storage/LogReplication.swift).
    public static let logReplicate = Operation(rawValue: 12)
    public static let logHighWaters = Operation(rawValue: 13)
    public static let logFetch = Operation(rawValue: 14)
    /// 1...1023 are TDOS's; applications use 1024 and up.
}

/// `request`: key 1 service id (FNV-1a of the name; 0 = the node itself),
/// 2 operation (absent = read), 3 arguments (any CBOR item, kept raw),
/// 4 time left until the caller's deadline, ms.
public struct Request: Equatable {
    public var service: UInt32
    public var operation: Operation
    public var arguments: [UInt8]
    public var deadlineMs: UInt32?
    public init(service: UInt32, operation: Operation = .read, arguments: [UInt8] = [], deadlineMs: UInt32? = nil) {
        self.service = service
        self.operation = operation
        self.arguments = arguments
        self.deadlineMs = deadlineMs
    }
    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 16 + arguments.count)
        let hasOp = operation != .read
        w.mapHeader(count: 1 + (hasOp ? 1 : 0) + (arguments.isEmpty ? 0 : 1) + (deadlineMs == nil ? 0 : 1))
        w.field(1, UInt32(service))
        if hasOp { w.field(2, UInt32(operation.rawValue)) }
        if !arguments.isEmpty { w.unsigned(3); w.bytes.append(contentsOf: arguments) }
        if let deadlineMs { w.field(4, UInt32(deadlineMs)) }
        return w.bytes
    }
    public static func decode(_ payload: [UInt8]) throws(WireError) -> Request {
        var service: UInt32?
        var req = Request(service: 0)
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            switch key {
            case 1: service = d.u32()
            case 2: req.operation = Operation(rawValue: d.u32())
            case 3: req.arguments = d.item()
            case 4: req.deadlineMs = d.u32()
            default: d.skip()
            }
        }
        try d.finish()
        req.service = try required(service)
        return req
    }
}

/// Copies one complete CBOR item, unparsed (arguments and results are opaque here).
func rawItem(_ r: inout CBORReader) throws(WireError) -> [UInt8] {
    let start = r.position
    try r.skip()
    return Array(r.data[start..<r.position])
}

/// Outcome codes in `response` key 1 and `error` key 1.
public enum Status: UInt8 {
    case ok = 0
    // 1...8 mirror WireError.code: the peer rejected our frame.
    case unknownService = 16, unknownOperation = 17, busy = 18, unavailable = 19,
         deadlineExceeded = 20, badArguments = 21, internalError = 22, unsupportedVersion = 23,
         /// Consensus: this replica does not lead; result {1: the leader's node id} when it knows one.
         notLeader = 24,
         /// Consensus: no majority of the replicas answered in time; the change may
         /// still commit later (result {1: true}) or was never appended.
         noQuorum = 25
}

/// `response`: key 1 status (absent = ok), 2 value, 3 unit, 4 age of the value
/// in ms when sent (0 = sampled for this request), 5 result (any CBOR item).
public struct Response: Equatable {
    public var status: UInt8
    public var value: Double?
    public var unit: Unit
    public var ageMs: UInt32
    public var result: [UInt8]
    public init(status: UInt8 = Status.ok.rawValue, value: Double? = nil, unit: Unit = .none,
                ageMs: UInt32 = 0, result: [UInt8] = []) {
        self.status = status
        self.value = value
        self.unit = unit
        self.ageMs = ageMs
        self.result = result
    }
    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 24 + result.count)
        let n = (status == 0 ? 0 : 1) + (value == nil ? 0 : 1) + (unit == .none ? 0 : 1)
            + (ageMs == 0 ? 0 : 1) + (result.isEmpty ? 0 : 1)
        w.mapHeader(count: n)
        if status != 0 { w.field(1, UInt32(status)) }
        if let value { w.unsigned(2); w.double(value) }
        if unit != .none { w.field(3, UInt32(unit.rawValue)) }
        if ageMs != 0 { w.field(4, UInt32(ageMs)) }
        if !result.isEmpty { w.unsigned(5); w.bytes.append(contentsOf: result) }
        return w.bytes
    }
    public static func decode(_ payload: [UInt8]) throws(WireError) -> Response {
        var resp = Response()
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            switch key {
            case 1: resp.status = d.u8()
            case 2: resp.value = d.number()
            case 3: resp.unit = Unit(rawValue: d.u8()) ?? .none
            case 4: resp.ageMs = d.u32()
            case 5: resp.result = d.item()
            default: d.skip()
            }
        }
        try d.finish()
        return resp
    }
}

/// `heartbeat`: key 1 uptime s, 2 free memory bytes, 3 activity level 0-100,
/// 4 load 0-100 %, 5 digest of the sender's announced services (a receiver
/// whose copy differs sends a `query`: how a node that missed an announce, or
/// sat in another partition, catches up), 6 incarnation (SWIM refutation).
public struct Heartbeat: Equatable, BitwiseCopyable {
    public var uptimeS: UInt32
    public var freeMemoryBytes: UInt32
    public var activity: UInt8
    public var loadPercent: UInt8
    public var servicesDigest: UInt16
    public var incarnation: UInt32
    public init(uptimeS: UInt32, freeMemoryBytes: UInt32, activity: UInt8, loadPercent: UInt8,
                servicesDigest: UInt16, incarnation: UInt32 = 0) {
        self.uptimeS = uptimeS
        self.freeMemoryBytes = freeMemoryBytes
        self.activity = activity
        self.loadPercent = loadPercent
        self.servicesDigest = servicesDigest
        self.incarnation = incarnation
    }
    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 24)
        w.mapHeader(count: incarnation == 0 ? 5 : 6)
        w.field(1, UInt32(uptimeS))
        w.field(2, UInt32(freeMemoryBytes))
        w.field(3, UInt32(activity))
        w.field(4, UInt32(loadPercent))
        w.field(5, UInt32(servicesDigest))
        if incarnation != 0 { w.field(6, UInt32(incarnation)) }
        return w.bytes
    }
    public static func decode(_ payload: [UInt8]) throws(WireError) -> Heartbeat {
        var hb = Heartbeat(uptimeS: 0, freeMemoryBytes: 0, activity: 0, loadPercent: 0, servicesDigest: 0)
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            switch key {
            case 1: hb.uptimeS = d.u32()
            case 2: hb.freeMemoryBytes = d.u32()
            case 3: hb.activity = min(100, d.u8())
            case 4: hb.loadPercent = min(100, d.u8())
            case 5: hb.servicesDigest = d.u16()
            case 6: hb.incarnation = d.u32()
            default: d.skip()
            }
        }
        try d.finish()
        return hb
    }
}

/// `error`: key 1 code (Status or WireError.code), 2 detail text (optional),
/// 3 and 4 the lowest and highest supported major version (sent with
/// `unsupportedVersion` and `badVersion`).
public struct ErrorReply: Equatable {
    public var code: UInt8
    public var detail: [UInt8]
    public var majorMin: UInt8?
    public var majorMax: UInt8?
    public init(code: UInt8, detail: [UInt8] = [], majorMin: UInt8? = nil, majorMax: UInt8? = nil) {
        self.code = code
        self.detail = detail
        self.majorMin = majorMin
        self.majorMax = majorMax
    }
    public static func unsupportedVersion() -> ErrorReply {
        ErrorReply(code: Status.unsupportedVersion.rawValue,
                   majorMin: ProtocolVersion.majorMin, majorMax: ProtocolVersion.majorMax)
    }
    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 16 + detail.count)
        w.mapHeader(count: 1 + (detail.isEmpty ? 0 : 1) + (majorMin == nil ? 0 : 1) + (majorMax == nil ? 0 : 1))
        w.field(1, UInt32(code))
        if !detail.isEmpty { w.unsigned(2); w.text(detail) }
        if let majorMin { w.field(3, UInt32(majorMin)) }
        if let majorMax { w.field(4, UInt32(majorMax)) }
        return w.bytes
    }
    public static func decode(_ payload: [UInt8]) throws(WireError) -> ErrorReply {
        var code: UInt8?
        var e = ErrorReply(code: 0)
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            switch key {
            case 1: code = d.u8()
            case 2:
                let t = d.text()
                e.detail = Array(t.prefix(64))
            case 3: e.majorMin = d.u8()
            case 4: e.majorMax = d.u8()
            default: d.skip()
            }
        }
        try d.finish()
        e.code = try required(code)
        return e
    }
}

/// `config_update`: key 1 config version (monotonic; an older one never
/// replaces a newer one), 2 entries: a map of dotted path (text) to value (any
/// CBOR item, kept raw), applied in order (a path may come twice: a null that
/// clears a section, then its new contents; see ConfigManager.overlayUpdate).
public struct ConfigUpdate: Equatable {
    public struct Entry: Equatable {
        public var path: [UInt8]
        public var value: [UInt8]
        public init(path: [UInt8], value: [UInt8]) {
            self.path = path
            self.value = value
        }
    }
    public static let entriesMax = 32
    public static let pathBytesMax = 48
    public var version: UInt32
    /// A Table, not [Entry]: drops Array's per-type code for Entry.
    public var entries: Table<Entry>
    public init(version: UInt32, entries: Table<Entry>) {
        self.version = version
        self.entries = entries
    }
    /// From an array literal (host tools and tests).
    public init(version: UInt32, entries: [Entry]) {
        var t = Table<Entry>(capacity: entries.count)
        for e in entries { t.append(e) }
        self.init(version: version, entries: t)
    }
    public static func == (a: ConfigUpdate, b: ConfigUpdate) -> Bool {
        a.version == b.version && a.entries.elementsEqual(b.entries)
    }
    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 64)
        w.mapHeader(count: 2)
        w.field(1, UInt32(version))
        w.unsigned(2); w.mapHeader(count: entries.count)
        for e in entries {
            w.text(e.path)
            w.bytes.append(contentsOf: e.value)
        }
        return w.bytes
    }
    public static func decode(_ payload: [UInt8]) throws(WireError) -> ConfigUpdate {
        var version: UInt32?
        var entries = Table<Entry>()
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            switch key {
            case 1: version = d.u32()
            case 2: d.read((), { (r: inout CBORReader) throws(WireError) in try readEntries(&r, into: &entries) })
            default: d.skip()
            }
        }
        try d.finish()
        return ConfigUpdate(version: try required(version), entries: entries)
    }

    /// The entries map, appended to `entries`. Out of line, and the path is
    /// kept as positions until the value has been skipped too: the throw sites
    /// hold nothing to release (a path array held across `rawItem` was
    /// released on each).
    @inline(__always)
    static func readEntries(_ r: inout CBORReader, into entries: inout Table<Entry>) throws(WireError) {
        let n = try r.mapHeader()
        guard n <= entriesMax else { throw .malformedCBOR }
        for _ in 0..<n {
            let path: Range<Int>
            do {
                let p = try r.text()
                guard !p.isEmpty && p.count <= pathBytesMax else { throw WireError.malformedCBOR }
                path = p.indices
            }
            let valueStart = r.position
            try r.skip()
            entries.append(Entry(path: Array(r.data[path]), value: Array(r.data[valueStart..<r.position])))
        }
    }
}

/// `metrics`: the payload map itself: metric id (uint) -> number. Ids are
/// listed in docs/PROTOCOL.md; a receiver keeps the ones it knows.
public struct MetricsReport: Equatable {
    public struct Sample: Equatable {
        public var id: UInt16
        public var value: Double
        public init(id: UInt16, value: Double) {
            self.id = id
            self.value = value
        }
    }
    /// A full MetricsRegistry report has 94 (MetricsLimits.check()).
    public static let samplesMax = 128
    public var samples: [Sample]
    public init(samples: [Sample]) { self.samples = samples }
    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 8 + samples.count * 6)
        w.mapHeader(count: samples.count)
        for s in samples {
            w.unsigned(UInt64(s.id))
            if s.value >= 0 && s.value <= 4_294_967_295 && s.value == s.value.rounded(.towardZero) {
                w.unsigned(UInt64(s.value))
            } else {
                w.double(s.value)
            }
        }
        return w.bytes
    }
    public static func decode(_ payload: [UInt8]) throws(WireError) -> MetricsReport {
        var samples: [Sample] = []
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            guard key <= UInt64(UInt16.max), samples.count < samplesMax else { d.skip(); continue }
            samples.append(Sample(id: UInt16(key), value: d.number()))
        }
        try d.finish()
        return MetricsReport(samples: samples)
    }
}

/// `leave`: key 1 reason (0 shutdown, 1 restart, 2 low power).
public struct Leave: Equatable {
    public var reason: UInt8
    public init(reason: UInt8 = 0) { self.reason = reason }
    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 4)
        w.mapHeader(count: 1)
        w.field(1, UInt32(reason))
        return w.bytes
    }
    public static func decode(_ payload: [UInt8]) throws(WireError) -> Leave {
        var l = Leave()
        var d = MapDecoder(deferring: payload)
        while let key = d.next() {
            if key == 1 { l.reason = d.u8() } else { d.skip() }
        }
        try d.finish()
        return l
    }
}
