// The provisioning record (Firmware/Core/Runtime/ProvisionRecord.swift) and its
// UF2 (HostTools/Host/UF2.swift): what `tdos provision` writes and the board
// validates at boot.
import Testing
import TDOSCore
import TDOSHost

struct ProvisionTests {
    static func sample() -> ProvisionRecord {
        var r = ProvisionRecord(sequence: 7, nodeName: Array("temp-a".utf8), role: .sensor,
                                wifiSSID: Array("lab".utf8), wifiPassphrase: Array("correct horse".utf8),
                                keyID: 3, key: (0..<32).map { UInt8($0) }, nodeID: 0x0A0B_0C0D)
        r.wifiCountry = Array("GB".utf8)
        r.display = 1
        r.sensors = ProvisionRecord.sensorInternalTemperature | ProvisionRecord.sensorSHT3x
        r.services = [.init(kind: 1), .init(kind: 2, priority: 1)]
        return r
    }

    @Test func roundTrip() throws {
        let r = Self.sample()
        let bytes = r.encode()
        #expect(Array(bytes[0..<4]) == Array("TDCF".utf8))
        #expect(bytes[4] == ProvisionRecord.formatVersion)
        // As the board reads it: a whole 4 KB copy, erased after the record.
        let region = bytes + [UInt8](repeating: 0xFF, count: 4096 - bytes.count)
        #expect(try ProvisionRecord.decode(region) == r)
        // Defaults: open network, derived node id, no services listed.
        let minimal = ProvisionRecord(sequence: 1, nodeName: Array("k".utf8), role: .kernel, wifiSSID: Array("n".utf8),
                                      wifiPassphrase: [], keyID: 0, key: [UInt8](repeating: 9, count: 16))
        #expect(try ProvisionRecord.decode(minimal.encode()) == minimal)
    }

    @Test func theRuntimeConfigRecordReadsTheSameBytes() throws {
        // ConfigImage (runtime overlay) shares the format: it keeps keys 1-13 and
        // the provisioning decoder skips its keys 16 and 17.
        let r = Self.sample()
        var image = try ConfigImage.decode(r.encode())
        #expect(image.sequence == 7 && image.version == 0)
        image.sequence = 8
        image.version = 2
        let rewritten = try image.encode()
        var expected = r
        expected.sequence = 8
        #expect(try ProvisionRecord.decode(rewritten) == expected)
    }

    @Test func corruptionIsDetected() {
        let bytes = Self.sample().encode()
        for i in [0, 4, 7, 9, 20, bytes.count - 1] {
            var bad = bytes
            bad[i] ^= 0x01
            #expect(throws: ProvisionRecord.Failure.self) { try ProvisionRecord.decode(bad) }
        }
        var flipped = bytes
        flipped[30] ^= 0x40
        #expect(throws: ProvisionRecord.Failure.badChecksum) { try ProvisionRecord.decode(flipped) }
        var newer = bytes
        newer[4] = ProvisionRecord.formatVersion + 1
        #expect(throws: ProvisionRecord.Failure.unsupportedVersion) { try ProvisionRecord.decode(newer) }
        #expect(throws: ProvisionRecord.Failure.missing) { try ProvisionRecord.decode([UInt8](repeating: 0xFF, count: 4096)) }
        #expect(throws: ProvisionRecord.Failure.badLength) { try ProvisionRecord.decode(Array(bytes.prefix(bytes.count - 1))) }
        // A correct CRC over a body without the required keys.
        var w = CBORWriter()
        w.mapHeader(count: 1)
        w.unsigned(2); w.unsigned(2)
        var body = ProvisionRecord.magic + [ProvisionRecord.formatVersion, 0, 0, UInt8(w.bytes.count), 0, 0, 0, 1] + w.bytes
        let crc = ConfigImage.crc32(body[...])
        body += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        #expect(throws: ProvisionRecord.Failure.badBody) { try ProvisionRecord.decode(body) }
    }

    @Test func newestValidCopyWins() throws {
        let a = Self.sample()
        var b = a
        b.sequence = 8
        b.nodeName = Array("temp-b".utf8)
        #expect(try ProvisionRecord.newest(a: a.encode(), b: b.encode()).nodeName == Array("temp-b".utf8))
        var corruptB = b.encode()
        corruptB[14] ^= 1
        #expect(try ProvisionRecord.newest(a: a.encode(), b: corruptB) == a)
        #expect(try ProvisionRecord.newest(a: a.encode(), b: [UInt8](repeating: 0xFF, count: 4096)) == a)
        // A invalid: B, whatever its sequence; neither valid: A's failure; a tie: A.
        let blank = [UInt8](repeating: 0xFF, count: 4096)
        #expect(try ProvisionRecord.newest(a: corruptB, b: a.encode()) == a)
        #expect(throws: ProvisionRecord.Failure.badChecksum) { try ProvisionRecord.newest(a: corruptB, b: blank) }
        #expect(throws: ProvisionRecord.Failure.missing) { try ProvisionRecord.newest(a: blank, b: corruptB) }
        var tie = b
        tie.sequence = a.sequence
        #expect(try ProvisionRecord.newest(a: a.encode(), b: tie.encode()) == a)
    }

    @Test func effectiveServicesFollowTheSensors() {
        var r = Self.sample()
        #expect(r.effectiveServices == r.services)
        r.services = []
        let t = ProvisionRecord.sensorInternalTemperature, l = ProvisionRecord.sensorLight
        let s = ProvisionRecord.sensorSHT3x
        let cases: [(UInt8, [UInt8])] = [(0, []), (t, [1]), (l, [3]), (s, [1, 2]), (t | s, [1, 2]), (t | l, [1, 3]),
                                        (t | l | s, [1, 2, 3]), (0xF8, [])]
        for (bits, kinds) in cases {
            r.sensors = bits
            #expect(r.effectiveServices == kinds.map { ProvisionRecord.Service(kind: $0) })
        }
    }

    /// A record whose body is `entries` (key, CBOR value) after the required keys.
    static func record(extra entries: [(UInt64, [UInt8])]) -> [UInt8] {
        var w = CBORWriter()
        w.mapHeader(count: 5 + entries.count)
        w.unsigned(1); w.text(Array("n".utf8))
        w.unsigned(2); w.unsigned(2)
        w.unsigned(3); w.text(Array("s".utf8))
        w.unsigned(5); w.unsigned(1)
        w.unsigned(6); w.bytes([UInt8](repeating: 7, count: 16))
        for (k, v) in entries { w.unsigned(k); w.bytes.append(contentsOf: v) }
        let n = w.bytes.count
        var body = ProvisionRecord.magic + [ProvisionRecord.formatVersion, 0, UInt8(n >> 8), UInt8(n & 0xFF), 0, 0, 0, 1]
        body += w.bytes
        let crc = ConfigImage.crc32(body[...])
        return body + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
    }

    @Test func servicesKeyIsChecked() throws {
        // Key 13: (kind, priority) pairs; kinds 1-3, an even length.
        let two = try ProvisionRecord.decode(Self.record(extra: [(13, [0x44, 3, 0, 1, 2])]))
        #expect(two.services == [.init(kind: 3), .init(kind: 1, priority: 2)])
        // A repeated key appends its pairs to the list.
        let again = try ProvisionRecord.decode(Self.record(extra: [(13, [0x42, 2, 1]), (13, [0x42, 3, 0])]))
        #expect(again.services == [.init(kind: 2, priority: 1), .init(kind: 3)])
        let empty = try ProvisionRecord.decode(Self.record(extra: [(13, [0x40])]))
        #expect(empty.services.isEmpty)
        for bad: [UInt8] in [[0x42, 4, 0], [0x44, 1, 0, 0, 0], [0x43, 1, 0, 1], [0x41, 1]] {
            #expect(throws: ProvisionRecord.Failure.badBody) { try ProvisionRecord.decode(Self.record(extra: [(13, bad)])) }
        }
    }

    @Test func crc32IsZlibs() {
        #expect(ConfigImage.crc32(Array("123456789".utf8)[...]) == 0xCBF4_3926)
    }

    @Test func uf2WritesTheConfigRegion() throws {
        let record = Self.sample().encode()
        let uf2 = try UF2.provisioning(record: record)
        #expect(uf2.count == 2 * UF2.blockBytes)
        let report = try UF2.validate(uf2, requireBoot2: false, allowed: UF2.configRange)
        #expect(report.blocks == 2)
        #expect(report.boot2CRC == nil)
        func u32(_ i: Int) -> UInt32 {
            UInt32(uf2[i]) | UInt32(uf2[i + 1]) << 8 | UInt32(uf2[i + 2]) << 16 | UInt32(uf2[i + 3]) << 24
        }
        // Block 0: the record at config A, padded with 0xFF; block 1: config B cleared.
        #expect(u32(12) == 0x101F_E000 && u32(12) == UF2.configAAddress)
        #expect(u32(512 + 12) == 0x101F_F000 && u32(512 + 12) == UF2.configBAddress)
        for b in [0, 512] {
            #expect(u32(b) == UF2.magicStart0 && u32(b + 4) == UF2.magicStart1 && u32(b + 508) == UF2.magicEnd)
            #expect(u32(b + 28) == 0xE48B_FF56)  // RP2040 family id
            #expect(u32(b + 8) & UF2.flagFamilyIDPresent != 0)
            #expect(u32(b + 16) == 256)
        }
        #expect(Array(uf2[32..<(32 + record.count)]) == record)
        #expect(uf2[(32 + record.count)..<(32 + 256)].allSatisfy { $0 == 0xFF })
        #expect(uf2[(512 + 32)..<(512 + 32 + 256)].allSatisfy { $0 == 0xFF })
        // The board reads back what was written.
        #expect(try ProvisionRecord.decode(Array(uf2[32..<(32 + 256)])) == Self.sample())
        // A config UF2 is not an image, and stays out of the firmware's flash.
        #expect(throws: UF2.Failure.self) { try UF2.validate(uf2, requireBoot2: true) }
        #expect(throws: UF2.Failure.self) {
            try UF2.validate(uf2, requireBoot2: false, allowed: UF2.flashBase..<UF2.reservedStart)
        }
    }

    @Test func oversizedRecordIsRefused() {
        #expect(throws: UF2.Failure.self) { try UF2.provisioning(record: [UInt8](repeating: 0, count: 4097)) }
    }
}
