// The TDOS frame: one UDP datagram. Layout (docs/PROTOCOL.md is the reference):
//
//   0     version   major << 4 | minor
//   1     type      MessageType
//   2     flags     Flags
//   3     key byte  priority << 6 | key id
//   4..7  sender    node id, u32 big-endian
//   ...   message id: ULEB128 boot epoch, ULEB128 sequence
//   ...   ref id (only with Flags.hasRef): same encoding
//   ...   timestamp u32 big-endian, sender's clock in ms
//   ...   payload   CBOR map (raw DEFLATE of it with Flags.compressed)
//   last 16 bytes   tag = HMAC-SHA256(key[key id], every byte before it)[0..<16]

/// Message kinds. A struct, not an enum, so a receiver can hold (and count) a
/// type a newer sender invented.
public struct MessageType: RawRepresentable, Equatable, Hashable, BitwiseCopyable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let announce = MessageType(rawValue: 1)
    public static let query = MessageType(rawValue: 2)
    public static let request = MessageType(rawValue: 3)
    public static let response = MessageType(rawValue: 4)
    public static let ack = MessageType(rawValue: 5)
    public static let heartbeat = MessageType(rawValue: 6)
    public static let error = MessageType(rawValue: 7)
    public static let configUpdate = MessageType(rawValue: 8)
    public static let metrics = MessageType(rawValue: 9)
    public static let leave = MessageType(rawValue: 10)
    /// Types 11...127 are reserved for this protocol; 128...255 for applications.
    public static let lastDefined = leave
}

public struct FrameFlags: OptionSet, Equatable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// The payload is raw DEFLATE (RFC 1951) of the CBOR map.
    public static let compressed = FrameFlags(rawValue: 1 << 0)
    /// The receiver answers with an ack (or a response) referring to this id.
    public static let ackRequested = FrameFlags(rawValue: 1 << 1)
    /// A ref id follows the message id.
    public static let hasRef = FrameFlags(rawValue: 1 << 2)
    /// Forwarded by a relay on behalf of `sender`; the relay re-sends it unchanged.
    public static let relayed = FrameFlags(rawValue: 1 << 3)
    /// Bits a v1.0 sender understands; others are ignored on receipt (a newer
    /// minor may define them) and sent as zero.
    public static let known: FrameFlags = [.compressed, .ackRequested, .hasRef, .relayed]
}

public enum Priority: UInt8 {
    case low = 0, normal = 1, high = 2, critical = 3
}

/// Never repeats for a sender: `epoch` is a boot counter the node persists
/// (flash on the board, a state file on Linux) and bumps at every start, and
/// `sequence` counts frames within that boot.
public struct MessageID: Equatable, Hashable, Comparable, BitwiseCopyable {
    public var epoch: UInt32
    public var sequence: UInt32
    public init(epoch: UInt32, sequence: UInt32) {
        self.epoch = epoch
        self.sequence = sequence
    }
    /// The 64-bit form used in logs and APIs.
    public var raw: UInt64 { UInt64(epoch) << 32 | UInt64(sequence) }
    public init(raw: UInt64) {
        self.init(epoch: UInt32(truncatingIfNeeded: raw >> 32), sequence: UInt32(truncatingIfNeeded: raw))
    }
    public static func < (a: MessageID, b: MessageID) -> Bool { a.raw < b.raw }
}

public struct Frame: Equatable {
    public var versionMajor: UInt8 = ProtocolVersion.major
    public var versionMinor: UInt8 = ProtocolVersion.minor
    public var type: MessageType
    public var flags: FrameFlags
    public var priority: Priority
    public var keyID: UInt8
    public var sender: UInt32
    public var id: MessageID
    /// Response/ack/error: the request answered. Retransmitted request: its first id.
    public var ref: MessageID?
    public var timestampMs: UInt32
    /// The CBOR payload, always uncompressed here.
    public var payload: [UInt8]

    public init(type: MessageType, sender: UInt32, id: MessageID, ref: MessageID? = nil,
                timestampMs: UInt32, payload: [UInt8], priority: Priority = .normal,
                flags: FrameFlags = [], keyID: UInt8 = 0) {
        self.type = type
        self.flags = flags
        self.priority = priority
        self.keyID = keyID
        self.sender = sender
        self.id = id
        self.ref = ref
        self.timestampMs = timestampMs
        self.payload = payload
    }
}

/// The first byte alone says whether a datagram is a frame this build speaks;
/// used to answer an unsupported major with an error naming the supported range.
public func frameMajorVersion(_ datagram: [UInt8]) -> UInt8? {
    datagram.isEmpty ? nil : datagram[0] >> 4
}

extension Frame {
    /// Encodes and authenticates with `key`. The payload is compressed when
    /// `compress` is set, it is at least `WireLimits.compressThresholdBytes`
    /// long and DEFLATE makes the frame smaller (never in a board image). Traps (a caller bug, not
    /// input) if the result would exceed `WireLimits.frameBytesMax`; callers
    /// check `payload.count` against `payloadBytesMaxUncompressed` first.
    public func encode(key: HMACSHA256Key, compress: Bool = true) -> [UInt8] {
        precondition(keyID <= WireLimits.keyIDMax)
        var body = payload
        var wireFlags = flags.intersection(FrameFlags.known)
        wireFlags.remove(.compressed)
        if ref != nil { wireFlags.insert(.hasRef) } else { wireFlags.remove(.hasRef) }
        // The board images are built with TDOS_NO_DEFLATE_COMPRESSOR: they send
        // every payload uncompressed (compression is the sender's choice,
        // PROTOCOL.md "Compression") and keep only the inflater, ~2 KB less flash.
        #if !TDOS_NO_DEFLATE_COMPRESSOR
        if compress && payload.count >= WireLimits.compressThresholdBytes {
            let packed = Deflate.compress(payload)
            if packed.count < payload.count {
                body = packed
                wireFlags.insert(.compressed)
            }
        }
        #endif
        // The header into a stack buffer, then the datagram at its exact size in
        // three copies: appending byte by byte checked uniqueness and capacity at
        // every byte. (Not Array(unsafeUninitializedCapacity:): on the host that
        // looks the array's type metadata up at run time, on every call.)
        let head = FrameHeader(version: versionMajor << 4 | (versionMinor & 0x0F), type: type.rawValue,
                               flags: wireFlags.rawValue, keyByte: priority.rawValue << 6 | keyID, sender: sender,
                               id: id, ref: ref, timestampMs: timestampMs)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(FrameHeader.bytesMax + body.count + WireLimits.tagBytes)
        var headBuffer: SHA256Words8 = (0, 0, 0, 0, 0, 0, 0, 0)  // 32 bytes = FrameHeader.bytesMax
        withUnsafeMutableBytes(of: &headBuffer) { p in
            let n = head.write(to: p.baseAddress!.assumingMemoryBound(to: UInt8.self))
            bytes.append(contentsOf: UnsafeBufferPointer(start: p.baseAddress!.assumingMemoryBound(to: UInt8.self), count: n))
        }
        bytes.append(contentsOf: body)
        // The tag from a stack digest: no array for it.
        let digest = bytes.withUnsafeBytes { key.macWords($0) }
        withUnsafeBytes(of: digest) {
            bytes.append(contentsOf: UnsafeBufferPointer(start: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: WireLimits.tagBytes))
        }
        precondition(bytes.count <= WireLimits.frameBytesMax, "frame over frameBytesMax: split the payload")
        return bytes
    }

    /// Largest payload that always fits, even when it does not compress.
    public static var payloadBytesMaxUncompressed: Int {
        WireLimits.frameBytesMax - WireLimits.tagBytes - 4 - 4 - 10 - 10 - 4
    }

    /// Decodes and authenticates one datagram. Checks, in this order: size,
    /// major version, header, key id and tag (before the payload is looked at),
    /// then decompression. Replay is checked by `ReplayWindow`, after this.
    public static func decode(_ datagram: [UInt8], keys: Keyring) throws(WireError) -> Frame {
        guard datagram.count <= WireLimits.frameBytesMax else { throw .oversized }
        guard datagram.count >= 1 else { throw .truncated }
        let major = datagram[0] >> 4
        guard major >= ProtocolVersion.majorMin && major <= ProtocolVersion.majorMax else {
            throw .badVersion(major: major)
        }
        guard datagram.count >= WireLimits.frameBytesMin else { throw .truncated }
        let bodyEnd = datagram.count - WireLimits.tagBytes
        // The header through a pointer: one end test per byte, not an array's
        // bounds check and a reader's end test (same checks, same errors).
        var headerError = WireError.truncated
        let header: FrameHeader? = datagram.withUnsafeBufferPointer { buf in
            var r = HeaderCursor(buf.baseAddress!, end: bodyEnd)
            do throws(WireError) {
                return try r.header()
            } catch {
                headerError = error
                return nil
            }
        }
        guard let header else { throw headerError }
        let version = header.version
        let type = MessageType(rawValue: header.type)
        let flags = FrameFlags(rawValue: header.flags)
        let keyByte = header.keyByte
        let sender = header.sender
        let id = header.id
        let ref = header.ref
        let timestampMs = header.timestampMs
        let payloadStart = header.count

        let keyID = keyByte & 0x3F
        let tagMatches = datagram.withUnsafeBytes { raw in
            guard let expected = keys.macWords(id: keyID, UnsafeRawBufferPointer(rebasing: raw[0..<bodyEnd])) else {
                return false  // an unknown key id is a bad tag
            }
            return withUnsafeBytes(of: expected) { e in
                constantTimeEquals(e.baseAddress!, raw.baseAddress! + bodyEnd, count: WireLimits.tagBytes)
            }
        }
        guard tagMatches else { throw .badTag }

        var payload = Array(datagram[payloadStart..<bodyEnd])
        if flags.contains(.compressed) {
            do {
                payload = try Deflate.decompress(payload, maxOutputCount: WireLimits.payloadBytesMax)
            } catch .outputLimit {
                throw .oversized
            } catch {
                throw .badCompression
            }
        }
        var frame = Frame(type: type, sender: sender, id: id, ref: ref, timestampMs: timestampMs,
                          payload: payload, priority: Priority(rawValue: keyByte >> 6)!,
                          flags: flags.intersection(FrameFlags.known), keyID: keyID)
        frame.versionMajor = version >> 4
        frame.versionMinor = version & 0x0F
        return frame
    }
}

/// The header of a frame being encoded, written to a stack buffer at once.
struct FrameHeader {
    /// 4 fixed bytes, the sender, two ids of two ULEB128 u32s (5 bytes each at most), the timestamp.
    static let bytesMax = 4 + 4 + 10 + 10 + 4

    var version: UInt8
    var type: UInt8
    var flags: UInt8
    var keyByte: UInt8
    var sender: UInt32
    var id: MessageID
    var ref: MessageID?
    var timestampMs: UInt32
    /// Its length, when decoded (the payload's offset).
    var count = 0

    /// Writes the header at `start` (room for bytesMax); returns its length.
    func write(to start: UnsafeMutablePointer<UInt8>) -> Int {
        var p = start
        func u8(_ v: UInt8) { p.pointee = v; p += 1 }
        func u32(_ v: UInt32) {
            u8(UInt8(truncatingIfNeeded: v >> 24)); u8(UInt8(truncatingIfNeeded: v >> 16))
            u8(UInt8(truncatingIfNeeded: v >> 8)); u8(UInt8(truncatingIfNeeded: v))
        }
        func varint(_ v: UInt32) {
            var rest = v
            while rest >= 0x80 {
                u8(UInt8(truncatingIfNeeded: rest) | 0x80)
                rest >>= 7
            }
            u8(UInt8(truncatingIfNeeded: rest))
        }
        u8(version); u8(type); u8(flags); u8(keyByte)
        u32(sender)
        varint(id.epoch); varint(id.sequence)
        if let ref { varint(ref.epoch); varint(ref.sequence) }
        u32(timestampMs)
        return p - start
    }
}

/// Reads a frame's header from a datagram's bytes, up to `end` (the tag).
struct HeaderCursor {
    let p: UnsafePointer<UInt8>
    let end: Int
    var i = 0

    init(_ p: UnsafePointer<UInt8>, end: Int) {
        self.p = p
        self.end = end
    }

    mutating func u8() throws(WireError) -> UInt8 {
        guard i < end else { throw .truncated }
        let v = p[i]
        i += 1
        return v
    }

    mutating func u32() throws(WireError) -> UInt32 {
        guard end - i >= 4 else { throw .truncated }
        let v = UInt32(p[i]) << 24 | UInt32(p[i + 1]) << 16 | UInt32(p[i + 2]) << 8 | UInt32(p[i + 3])
        i += 4
        return v
    }

    /// ULEB128 of at most 5 bytes (35 bits).
    mutating func varint35() throws(WireError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for _ in 0..<5 {
            let byte = try u8()
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw .malformedHeader
    }

    /// Epoch and sequence; anything above UInt32 is malformed (checked after both, as before).
    mutating func id() throws(WireError) -> MessageID {
        let epoch = try varint35()
        let sequence = try varint35()
        guard epoch <= UInt64(UInt32.max), sequence <= UInt64(UInt32.max) else { throw .malformedHeader }
        return MessageID(epoch: UInt32(epoch), sequence: UInt32(sequence))
    }

    mutating func header() throws(WireError) -> FrameHeader {
        let version = try u8()
        let type = try u8()
        let flags = try u8()
        let keyByte = try u8()
        let sender = try u32()
        let id = try id()
        let ref: MessageID? = FrameFlags(rawValue: flags).contains(.hasRef) ? try self.id() : nil
        let timestampMs = try u32()
        return FrameHeader(version: version, type: type, flags: flags, keyByte: keyByte, sender: sender, id: id,
                           ref: ref, timestampMs: timestampMs, count: i)
    }
}
