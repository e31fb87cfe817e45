// Serialization of config trees: CBOR nested maps with text keys (canonical:
// keys sorted bytewise, preferred number encodings), and the record kept in the
// board's config flash region (copies A and B) or a state file on Linux. The
// record is the provisioning record's (Firmware/Pico/ProvisionRecord.swift):
//
//   0    magic "TDCF"
//   4    format (1)
//   5    reserved (0)
//   6    body length n, u16 big-endian
//   8    sequence, u32 big-endian: of two valid copies the higher one wins
//   12   body: a CBOR map with unsigned keys
//   12+n CRC-32 (IEEE 802.3, as zlib's crc32) of bytes 0..<12+n, u32 big-endian
//
// Body keys 1-12 are the provisioning fields (node name, Wi-Fi, key, ...): kept
// here as they are, byte for byte. This file adds key 16, the config version
// (u32), and key 17, the config overlay: a byte string holding the tree's CBOR
// map (wrapped, so the provisioning decoder skips it without nesting limits).
//
// Erased flash (0xFF) or another format is `.noImage`; a CRC or length that does
// not check out is `.badChecksum`: the node keeps the config it has.

extension ConfigTree {
    /// The tree as one CBOR map (maps nested), keys in canonical order.
    public func encodeCBOR() -> [UInt8] {
        var w = CBORWriter(capacity: 32 + count * 12)
        encodeChildren(of: ConfigTree.root, &w)
        return w.bytes
    }

    func encodeChildren(of parent: Int, _ w: inout CBORWriter) {
        let children = sortedChildren(of: parent)
        w.mapHeader(count: children.count)
        for c in children {
            w.text(nodes[c].key)
            switch nodes[c].value {
            case .bool(let v): w.bool(v)
            case .int(let v): w.int(v)
            case .number(let v): w.double(v)
            case .text(let v): w.text(v)
            case .map: encodeChildren(of: c, &w)
            }
        }
    }

    /// Reads a tree from one CBOR map; trailing bytes are malformed. Values are
    /// not checked against the schema here (see ConfigSchema.validate/sanitize).
    public static func decodeCBOR(_ bytes: [UInt8]) throws(ConfigError) -> ConfigTree {
        var tree = ConfigTree()
        try tree.readCBOR(bytes)
        return tree
    }

    /// decodeCBOR into this (empty) tree, in place: ConfigImage.decode fills
    /// its image's tree without an optional tree (`try?` copied one through
    /// outlined functions). Out of line: one copy for both callers.
    @inline(never)
    mutating func readCBOR(_ bytes: [UInt8]) throws(ConfigError) {
        var r = CBORReader(bytes, depthMax: ConfigLimits.depthMax + 1)
        try decodeMap(&r, into: ConfigTree.root, depth: 0)
        guard r.isAtEnd else { throw .malformed }
    }

    /// Reads a CBOR map into the children of `parent` (merging: existing keys
    /// are replaced, maps on both sides merge).
    mutating func decodeMap(_ r: inout CBORReader, into parent: Int, depth: Int) throws(ConfigError) {
        guard depth < ConfigLimits.depthMax else { throw .badPath }
        let n: Int
        do { n = try r.mapHeader() } catch { throw .wrongType }
        for _ in 0..<n {
            let key: ArraySlice<UInt8>
            do { key = try r.text() } catch { throw .malformed }
            guard configValidKey(key) else { throw .badPath }
            if try ConfigTree.peekIsMap(&r) {
                let slot = try setChild(of: parent, key: key, .map)
                try decodeMap(&r, into: slot, depth: depth + 1)
            } else {
                _ = try setChild(of: parent, key: key, try ConfigTree.decodeScalar(&r))
            }
        }
    }

    static func peekIsMap(_ r: inout CBORReader) throws(ConfigError) -> Bool {
        do { return try r.peekMajor() == .map } catch { throw .malformed }
    }

    /// bool, integer, float or text; anything else (null, arrays, byte strings,
    /// tags) has no config kind.
    static func decodeScalar(_ r: inout CBORReader) throws(ConfigError) -> ConfigValue {
        let major: CBORMajor
        do { major = try r.peekMajor() } catch { throw .malformed }
        switch major {
        case .unsigned, .negative:
            do { return .int(try r.int()) } catch { throw .malformed }
        case .text:
            let t: ArraySlice<UInt8>
            do { t = try r.text() } catch { throw .malformed }
            guard t.count <= ConfigLimits.textBytesMax else { throw .outOfRange }
            return .text(Array(t))
        case .simple:
            let b = r.data[r.position]
            if b == 0xF4 || b == 0xF5 {
                do { return .bool(try r.bool()) } catch { throw .malformed }
            }
            if b >= 0xF9 && b <= 0xFB {
                do { return .number(try r.number()) } catch { throw .malformed }
            }
            throw .wrongType
        default:
            throw .wrongType
        }
    }
}

/// What the config flash region holds: a version and a tree (the overlay of
/// runtime updates, see ConfigManager), beside the provisioning fields.
public struct ConfigImage: Equatable {
    /// A body entry this file does not interpret (the provisioning fields).
    public struct Entry: Equatable {
        // value before key: no tail padding (size == stride == 16), so armv6m
        // reads a table entry's fields with word loads (docs/FIRMWARE.md, "Sizes").
        /// The value's CBOR item, unparsed.
        public var value: [UInt8]
        public var key: UInt64
        public init(key: UInt64, value: [UInt8]) {
            self.key = key
            self.value = value
        }
    }

    public static let format: UInt8 = 1
    public static let headerBytes = 12
    public static let checksumBytes = 4
    /// Body key of the config version (u32).
    public static let versionKey: UInt64 = 16
    /// Body key of the overlay (a byte string holding the tree's CBOR map).
    public static let overlayKey: UInt64 = 17

    /// Write counter of the region: the copy (A or B) with the higher one wins.
    public var sequence: UInt32
    public var version: UInt32
    public var tree: ConfigTree
    /// The other body entries, in key order.
    public var others: [Entry]

    public init(sequence: UInt32 = 0, version: UInt32, tree: ConfigTree, others: [Entry] = []) {
        self.sequence = sequence
        self.version = version
        self.tree = tree
        self.others = others
    }

    static func isOwnKey(_ key: UInt64) -> Bool { key == versionKey || key == overlayKey }

    /// The record bytes; `.full` if they would exceed ConfigLimits.imageBytesMax.
    public func encode() throws(ConfigError) -> [UInt8] {
        // The whole record in one buffer: the header (its body length filled
        // in below), the body, the CRC; not a body copied behind a header.
        var w = CBORWriter(capacity: 80 + tree.count * 12)
        w.bytes.append(contentsOf: ProvisionRecord.magic)
        w.put(UInt64(ConfigImage.format) << 56 | UInt64(sequence), 8)  // format, 0, length 0 for now, sequence
        // Two passes over `others` (count, then write) instead of a filtered
        // copy: a filter closure is a specialisation of its own.
        var mine = 0
        for e in others where !ConfigImage.isOwnKey(e.key) { mine += 1 }
        w.mapHeader(count: mine + 2)
        var wroteOwn = false
        func writeOwn(_ w: inout CBORWriter) {
            w.unsigned(ConfigImage.versionKey); w.unsigned(UInt64(version))
            w.unsigned(ConfigImage.overlayKey); w.bytes(tree.encodeCBOR())
        }
        for e in others where !ConfigImage.isOwnKey(e.key) {
            if !wroteOwn && e.key > ConfigImage.overlayKey { writeOwn(&w); wroteOwn = true }
            w.unsigned(e.key)
            w.bytes.append(contentsOf: e.value)
        }
        if !wroteOwn { writeOwn(&w) }
        let bodyCount = w.bytes.count - ConfigImage.headerBytes
        guard w.bytes.count + ConfigImage.checksumBytes <= ConfigLimits.imageBytesMax else { throw .full }
        w.bytes[6] = UInt8(truncatingIfNeeded: bodyCount >> 8)
        w.bytes[7] = UInt8(truncatingIfNeeded: bodyCount)
        w.put(UInt64(ConfigImage.crc32(w.bytes[...])), 4)
        return w.bytes
    }

    /// Reads a record from the start of `region` (bytes after it are ignored:
    /// the region is a whole flash sector). A record without keys 16 and 17 (as
    /// `tdos provision` writes it) has version 0 and an empty overlay.
    public static func decode(_ region: [UInt8]) throws(ConfigError) -> ConfigImage {
        guard configRecordHasMagic(region) else { throw .noImage }
        // A length that runs off the record is corruption too.
        guard case .ok(let end) = configRecordFrame(region) else { throw .badChecksum }
        guard region[4] == format else { throw .noImage }
        var image = ConfigImage(sequence: configRecordU32(region, at: 8), version: 0, tree: ConfigTree())
        // MapDecoder (Messages.swift): no throw site in the key loop, so no
        // cleanup path per site; a bad value calls d.fail() and ends the loop.
        // Non-integer keys are skipped with their values, trailing bytes fail.
        var d: MapDecoder
        do { d = try MapDecoder(region, start: headerBytes, end: end) } catch { throw .malformed }
        var sawVersion = false, sawOverlay = false
        while let key = d.next() {
            switch key {
            case versionKey:
                if sawVersion { d.fail() }
                sawVersion = true
                image.version = d.u32()
            case overlayKey:
                if sawOverlay { d.fail() }
                sawOverlay = true
                do { try image.tree.readCBOR(d.byteString()) } catch { d.fail() }
            default:
                image.others.append(Entry(key: key, value: d.item()))
            }
        }
        guard d.error == nil else { throw .malformed }
        return image
    }

    /// Of the two copies of the region, the valid one with the higher sequence
    /// (A on a tie); if neither is valid, the error of copy A.
    public static func newest(a: [UInt8], b: [UInt8]) throws(ConfigError) -> ConfigImage {
        try newestCopy(a, b, decode: { (bytes) throws(ConfigError) in try decode(bytes) },
                       sequence: { $0.sequence })
    }

    /// The sequence of a valid record (header, CRC and body decode), nil otherwise.
    public static func sequence(_ r: [UInt8]) -> UInt32? {
        do { return try decode(r).sequence } catch { return nil }  // not try?: no optional image
    }

    /// Which copy a new record goes to (false: A, true: B): the one not holding
    /// the newest valid record, so a power cut mid-write leaves that one intact.
    /// The provisioning record counts too (it has no overlay keys but the same
    /// header and CRC, and its body decodes here).
    public static func writeToB(a: [UInt8], b: [UInt8]) -> Bool {
        switch (sequence(a), sequence(b)) {
        case let (x?, y?): return y <= x
        case (_?, nil): return true
        case (nil, _): return false
        }
    }

    /// CRC-32 (reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF),
    /// bit by bit: no table in flash, and records are read once per boot.
    public static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 {
                crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1
            }
        }
        return ~crc
    }
}

/// Flash records kept as two copies (A/B) so a cut write never loses both:
/// the valid copy with the higher sequence wins (A on a tie); when neither
/// decodes, copy A's error says why. Each record is moved, never copied, and
/// never held in an optional (`try?` made one per copy, a whole record
/// copied through outlined functions to test and unwrap it).
func newestCopy<Record, Failure: Error>(_ a: [UInt8], _ b: [UInt8], decode: ([UInt8]) throws(Failure) -> Record,
                                        sequence: (Record) -> UInt32) throws(Failure) -> Record {
    let ra: Record
    do { ra = try decode(a) } catch {
        let errorA = error
        do { return try decode(b) } catch { throw errorA }
    }
    do {
        let rb = try decode(b)
        if sequence(rb) > sequence(ra) { return rb }
    } catch {}
    return ra
}
