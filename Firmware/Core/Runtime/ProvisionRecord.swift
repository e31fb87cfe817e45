// The node's provisioned configuration: what `tdos provision` writes into the
// config region (as a small UF2) and the node validates at boot. Shared by the
// host CLI and the board, so it lives here (no I/O, Embedded-clean). The same
// record carries the runtime config overlay (ConfigImage, keys 16 and 17),
// which this decoder skips like any unknown key.
//
// Record layout, at the start of config A or config B (4 KB each):
//
//   0   4  magic "TDCF"
//   4   1  format version (1); another value is refused (a newer layout)
//   5   1  reserved, 0
//   6   2  body length, u16 big-endian (<= bodyBytesMax)
//   8   4  sequence, u32 big-endian: of two valid copies the higher one wins
//   12  n  body: a CBOR map with unsigned keys (PROTOCOL.md's CBOR rules;
//          unknown keys are skipped, so later fields need no new version)
//   12+n 4 CRC-32 (IEEE 802.3, as zlib's crc32: ConfigImage.crc32) of bytes
//          0 ..< 12+n, big-endian
//
// Body keys: 1 node name (text, 1-24 bytes) *; 2 role (1 kernel, 2 sensor,
// 3 storage) *; 3 Wi-Fi SSID (text, 1-32 bytes) *; 4 Wi-Fi passphrase (text,
// 8-64 bytes; absent = open network); 5 key id (0-63) *; 6 key (bytes, 16-64) *;
// 7 node id (u32, nonzero; absent = derived from the board's unique id);
// 8 UDP port (absent = 4210); 9 Wi-Fi country (text, 2 letters; absent = "XX",
// worldwide); 10 display (0 none, 1 Pimoroni Pico Display; absent = 0);
// 11 sensors attached (bit 0 internal temperature, bit 1 light on GPIO26, bit 2
// SHT3x on I2C0 GPIO4/5; absent = 0); 12 Wi-Fi auth (0 open, 1 WPA2,
// 2 WPA2/WPA3; absent = 1); 13 services a sensor node offers (bytes: pairs of
// sensor kind (1 temperature, 2 humidity, 3 light) and priority (0 primary,
// n = n-th backup), at most servicesMax pairs; absent = one primary service per
// attached sensor). * = required.
public struct ProvisionRecord: Equatable {
    public static let magic: [UInt8] = [0x54, 0x44, 0x43, 0x46]  // "TDCF"
    public static let formatVersion: UInt8 = 1
    public static let headerBytes = 12
    public static let trailerBytes = 4
    /// Fits one 4 KB config copy with its header and CRC.
    public static let bodyBytesMax = 4096 - headerBytes - trailerBytes
    public static let defaultUDPPort: UInt16 = 4210
    public static let nameBytesMax = 24
    public static let servicesMax = 6

    /// Bits of `sensors`: the hardware attached to the board.
    public static let sensorInternalTemperature: UInt8 = 1 << 0
    public static let sensorLight: UInt8 = 1 << 1
    public static let sensorSHT3x: UInt8 = 1 << 2

    public enum Failure: Error, Equatable {
        /// No record (erased flash, or something else): the board is not provisioned.
        case missing
        /// A record from a newer `tdos provision`.
        case unsupportedVersion
        case badLength
        case badChecksum
        /// The body is not the CBOR this format wants, or a required key is missing.
        case badBody
    }

    /// One service of a sensor node: the sensor kind's raw value (SensorKind in
    /// TDOSNode: 1 temperature, 2 humidity, 3 light) and its priority.
    public struct Service: Equatable {
        public var kind: UInt8
        public var priority: UInt8
        public init(kind: UInt8, priority: UInt8 = 0) {
            self.kind = kind
            self.priority = priority
        }
    }

    public var sequence: UInt32
    public var nodeName: [UInt8]
    public var role: NodeRole
    public var wifiSSID: [UInt8]
    public var wifiPassphrase: [UInt8]
    public var wifiAuth: UInt8
    public var wifiCountry: [UInt8]
    public var keyID: UInt8
    public var key: [UInt8]
    public var nodeID: UInt32?
    public var udpPort: UInt16
    public var display: UInt8
    public var sensors: UInt8
    /// Empty: one primary service per attached sensor (see `effectiveServices`).
    public var services: [Service]

    public init(sequence: UInt32, nodeName: [UInt8], role: NodeRole, wifiSSID: [UInt8], wifiPassphrase: [UInt8],
                keyID: UInt8, key: [UInt8], nodeID: UInt32? = nil, udpPort: UInt16 = ProvisionRecord.defaultUDPPort,
                wifiCountry: [UInt8] = [0x58, 0x58], wifiAuth: UInt8 = 1, display: UInt8 = 0, sensors: UInt8 = 0,
                services: [Service] = []) {
        self.sequence = sequence
        self.nodeName = nodeName
        self.role = role
        self.wifiSSID = wifiSSID
        self.wifiPassphrase = wifiPassphrase
        self.wifiAuth = wifiAuth
        self.wifiCountry = wifiCountry
        self.keyID = keyID
        self.key = key
        self.nodeID = nodeID
        self.udpPort = udpPort
        self.display = display
        self.sensors = sensors
        self.services = services
    }

    /// The services a sensor node offers: the explicit list, else one primary
    /// per attached sensor (the SHT3x gives humidity, and temperature when the
    /// internal sensor is not enabled).
    public var effectiveServices: [Service] {
        if !services.isEmpty { return services }
        // Filled in one allocation of at most 3 (appends pulled in Array's
        // growth code for Service).
        let temperature = sensors & (ProvisionRecord.sensorInternalTemperature | ProvisionRecord.sensorSHT3x) != 0
        let humidity = sensors & ProvisionRecord.sensorSHT3x != 0
        let light = sensors & ProvisionRecord.sensorLight != 0
        return [Service](unsafeUninitializedCapacity: 3) { out, n in
            n = 0
            if temperature { out[n] = Service(kind: 1); n += 1 }
            if humidity { out[n] = Service(kind: 2); n += 1 }
            if light { out[n] = Service(kind: 3); n += 1 }
        }
    }

    // MARK: encoding (the host's `tdos provision`, and tests)

    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 128)
        var count = 5 + (wifiPassphrase.isEmpty ? 0 : 1) + (nodeID == nil ? 0 : 1) + (services.isEmpty ? 0 : 1)
        count += 5  // port, country, display, sensors, auth: always written, explicit beats defaults
        w.mapHeader(count: count)
        w.unsigned(1); w.text(nodeName)
        w.unsigned(2); w.unsigned(UInt64(role.rawValue))
        w.unsigned(3); w.text(wifiSSID)
        if !wifiPassphrase.isEmpty { w.unsigned(4); w.text(wifiPassphrase) }
        w.unsigned(5); w.unsigned(UInt64(keyID))
        w.unsigned(6); w.bytes(key)
        if let nodeID { w.unsigned(7); w.unsigned(UInt64(nodeID)) }
        w.unsigned(8); w.unsigned(UInt64(udpPort))
        w.unsigned(9); w.text(wifiCountry)
        w.unsigned(10); w.unsigned(UInt64(display))
        w.unsigned(11); w.unsigned(UInt64(sensors))
        w.unsigned(12); w.unsigned(UInt64(wifiAuth))
        if !services.isEmpty {
            var pairs: [UInt8] = []
            for s in services { pairs.append(s.kind); pairs.append(s.priority) }
            w.unsigned(13); w.bytes(pairs)
        }
        let body = w.bytes
        precondition(body.count <= ProvisionRecord.bodyBytesMax)
        var out = ByteWriter(capacity: ProvisionRecord.headerBytes + body.count + ProvisionRecord.trailerBytes)
        out.append(contentsOf: ProvisionRecord.magic)
        out.u8(ProvisionRecord.formatVersion)
        out.u8(0)
        out.u16(UInt16(body.count))
        out.u32(sequence)
        out.append(contentsOf: body)
        out.u32(ConfigImage.crc32(out.bytes[...]))
        return out.bytes
    }

    // MARK: decoding (the node at boot)

    /// Validates and decodes a record at the start of `bytes` (a config copy).
    public static func decode(_ bytes: [UInt8]) throws(Failure) -> ProvisionRecord {
        guard configRecordHasMagic(bytes) else { throw .missing }
        guard bytes[4] == formatVersion else { throw .unsupportedVersion }
        let end: Int
        switch configRecordFrame(bytes) {
        case .badLength: throw .badLength
        case .badChecksum: throw .badChecksum
        case .ok(let e): end = e
        }
        var record = ProvisionRecord(sequence: configRecordU32(bytes, at: 8), nodeName: [], role: .sensor,
                                     wifiSSID: [], wifiPassphrase: [], keyID: 0, key: [])
        guard decodeBody(bytes, start: headerBytes, end: end, into: &record) else { throw .badBody }
        return record
    }

    /// Reads the body's keys into `record`; false if the body is not valid.
    /// The record is filled in place and returned by the caller: returned
    /// from here, it was copied (an outlined copy and destroy of the record).
    static func decodeBody(_ bytes: [UInt8], start: Int, end: Int, into record: inout ProvisionRecord) -> Bool {
        var d: MapDecoder
        do { d = try MapDecoder(bytes, start: start, end: end) } catch { return false }
        // Every key read goes straight into the record; bit k of `seen` says
        // key k was there (optionals for the required keys were five more
        // values, three of them references, to release on every path).
        var seen: UInt32 = 0
        // MapDecoder: no throw site in the loop (see there); a bad value
        // calls d.fail() and ends it.
        while let k = d.next() {
            guard k >= 1 && k <= 13 else {
                d.skip()
                continue
            }
            // One read and one range check for every key (the value of an
            // integer, the length of text and bytes), then one store: a read
            // and its checks written out per key was 2.2 KB on the board.
            let v: UInt64
            let b: [UInt8]
            switch k {
            case 1, 3, 4, 9:
                b = Array(d.text())
                v = UInt64(b.count)
            case 6, 13:
                b = d.byteString()
                v = UInt64(b.count)
            default:
                b = []
                v = d.unsigned(max: .max)
            }
            let (low, high) = bodyKeyBounds(k)
            guard v >= low && v <= high else {
                d.fail()
                continue
            }
            switch k {
            case 1: record.nodeName = b
            case 2:
                if let parsed = NodeRole(rawValue: UInt8(v)) { record.role = parsed } else { d.fail() }
            case 3: record.wifiSSID = b
            case 4: record.wifiPassphrase = b
            case 5: record.keyID = UInt8(v)
            case 6: record.key = b
            case 7: record.nodeID = UInt32(v)
            case 8: record.udpPort = UInt16(v)
            case 9: record.wifiCountry = b
            case 10: record.display = UInt8(v)
            case 11: record.sensors = UInt8(v)
            case 12: record.wifiAuth = UInt8(v)
            default:  // 13: (kind, priority) pairs
                guard v % 2 == 0 else {
                    d.fail()
                    continue
                }
                // One allocation for the list (appends pulled in Array's growth
                // code for Service); a repeated key 13 appends to the list, as
                // appends did. A bad kind fails the body.
                let old = record.services
                var valid = true
                record.services = [Service](unsafeUninitializedCapacity: old.count + b.count / 2) { out, n in
                    n = 0
                    while n < old.count { out[n] = old[n]; n += 1 }
                    var i = 0
                    while i < b.count {
                        guard b[i] >= 1 && b[i] <= 3 else {
                            valid = false
                            break
                        }
                        out[n] = Service(kind: b[i], priority: b[i + 1])
                        n += 1
                        i += 2
                    }
                }
                if !valid { d.fail() }
            }
            seen |= 1 &<< UInt32(truncatingIfNeeded: k)
        }
        // Required: 1 name, 2 role, 3 SSID, 5 key id, 6 key.
        let required: UInt32 = 1 << 1 | 1 << 2 | 1 << 3 | 1 << 5 | 1 << 6
        return d.error == nil && seen & required == required
    }

    /// How a record's framing checks out (after its magic): `.ok` with where
    /// its body ends, or a length that runs past the copy or the 4 KB record,
    /// or a CRC mismatch. Shared by this decoder and ConfigImage's, which each
    /// check the magic and the format byte in their own order.
    enum Frame { case ok(end: Int), badLength, badChecksum }

    /// The allowed range of body key `k` (1...13): an integer's value, or the
    /// length in bytes of text and byte strings.
    static func bodyKeyBounds(_ k: UInt64) -> (low: UInt64, high: UInt64) {
        switch k {
        case 1: return (1, UInt64(nameBytesMax))  // node name
        case 2: return (1, 3)  // role
        case 3: return (1, 32)  // SSID
        case 4: return (8, 64)  // passphrase
        case 5: return (0, 63)  // key id
        case 6: return (16, 64)  // key
        case 7: return (1, UInt64(UInt32.max))  // node id
        case 8: return (1, 65535)  // UDP port
        case 9: return (2, 2)  // country
        case 10: return (0, 1)  // display
        case 11: return (0, 0xFF)  // sensors
        case 12: return (0, 2)  // Wi-Fi auth
        default: return (0, UInt64(2 * servicesMax))  // 13: services
        }
    }

    /// Of the two copies, the valid one with the higher sequence; if neither is
    /// valid, the failure of copy A (the one `tdos provision` writes).
    public static func newest(a: [UInt8], b: [UInt8]) throws(Failure) -> ProvisionRecord {
        try newestCopy(a, b, decode: { (bytes) throws(Failure) in try decode(bytes) },
                       sequence: { $0.sequence })
    }
}

/// See ProvisionRecord.Frame. Out of line: one copy for both record decoders.
@inline(never)
func configRecordFrame(_ bytes: [UInt8]) -> ProvisionRecord.Frame {
    let bodyCount = Int(bytes[6]) << 8 | Int(bytes[7])
    let end = ProvisionRecord.headerBytes + bodyCount
    guard bodyCount <= ProvisionRecord.bodyBytesMax, end + ProvisionRecord.trailerBytes <= bytes.count else {
        return .badLength
    }
    return ConfigImage.crc32(bytes[0..<end]) == configRecordU32(bytes, at: end) ? .ok(end: end) : .badChecksum
}

/// A record's size (at least its header and CRC) and magic, checked first
/// by both record decoders. Out of line, and the magic as one integer (not
/// an array to compare with).
@inline(never)
func configRecordHasMagic(_ bytes: [UInt8]) -> Bool {
    bytes.count >= ProvisionRecord.headerBytes + ProvisionRecord.trailerBytes
        && configRecordU32(bytes, at: 0) == 0x5444_4346  // ProvisionRecord.magic, "TDCF"
}

/// The big-endian u32 at `at` (the sequence, the CRC).
func configRecordU32(_ bytes: [UInt8], at i: Int) -> UInt32 {
    UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
}
