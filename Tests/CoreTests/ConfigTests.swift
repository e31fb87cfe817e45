// Local config in Core: the schema's defaults, dotted-path get, deep merge,
// versioned runtime updates (old never wins, equal is idempotent), the flash
// image (round trip, every corruption detected).

import Foundation
import Testing
@testable import TDOSCore

func cfgPath(_ s: String) -> [UInt8] { Array(s.utf8) }

/// The CBOR encoding of one value, as a `config_update` entry carries it.
func cborItem(_ body: (inout CBORWriter) -> Void) -> [UInt8] {
    var w = CBORWriter()
    body(&w)
    return w.bytes
}

func configEntry(_ path: String, int v: Int64) -> ConfigUpdate.Entry {
    ConfigUpdate.Entry(path: cfgPath(path), value: cborItem { $0.int(v) })
}

@Suite struct ConfigTreeTests {
    @Test func limitsAreConsistent() {
        ConfigLimits.check()
        MetricsLimits.check()
    }

    /// `subtree(at:)`: the leaves under the prefix with relative paths, maps
    /// only where a leaf is under them (an empty map is left out), slots
    /// taken in canonical order; pinned against setting each leaf's path
    /// (how it was built before it copied node by node).
    @Test func subtreeKeepsLeavesOnly() throws {
        var t = ConfigTree()
        try t.set(cfgPath("a.z"), .int(1))
        try t.set(cfgPath("a.b.y"), .text(cfgPath("hi")))
        try t.set(cfgPath("a.b.x"), .bool(true))
        try t.set(cfgPath("a.empty"), .map)
        try t.set(cfgPath("a.c.d.e"), .map)
        try t.set(cfgPath("a.m"), .number(2.5))
        try t.set(cfgPath("ab.q"), .int(9))
        try t.set(cfgPath("top"), .int(3))
        func expected(_ prefix: [UInt8]) throws -> ConfigTree {
            var sub = ConfigTree()
            var leaves: [([UInt8], ConfigValue)] = []
            t.forEachLeaf { path, value in leaves.append((path, value)) }
            for (path, value) in leaves
            where path.count > prefix.count + 1 && path[prefix.count] == 0x2E && Array(path[..<prefix.count]) == prefix {
                try sub.set(Array(path[(prefix.count + 1)...]), value)
            }
            return sub
        }
        let a = t.subtree(at: cfgPath("a"))
        #expect(a == (try expected(cfgPath("a"))))
        #expect(a.count == 5 && a.leafCount == 4)  // z, b, b.x, b.y, m: no empty maps
        #expect(a.value(at: cfgPath("b.y")) == .text(cfgPath("hi")))
        #expect(a.value(at: cfgPath("empty")) == nil && a.value(at: cfgPath("c")) == nil)
        #expect(a.keys(under: []) == (try expected(cfgPath("a"))).keys(under: []))
        #expect(a.keys(under: cfgPath("b")) == [cfgPath("x"), cfgPath("y")])
        #expect(a.encodeCBOR() == (try expected(cfgPath("a"))).encodeCBOR())
        for prefix in ["a.b", "a.c", "ab", "top", "a.z", "nope", "a.", ""] {
            let p = cfgPath(prefix)
            #expect(t.subtree(at: p) == (try expected(p)), "prefix \(prefix)")
            #expect(t.subtree(at: p).count == (try expected(p)).count, "prefix \(prefix)")
        }
    }

    /// Every outcome of `validate` and which error wins when a value has
    /// several problems (pinned when validate was restructured for size).
    @Test func validateOutcomesAndPrecedence() {
        func check(_ path: [UInt8], _ value: ConfigValue) -> Result<ConfigValue, ConfigError> {
            do { return .success(try ConfigSchema.validate(path, value)) } catch { return .failure(error) }
        }
        let port = cfgPath("discovery.port")  // int 1...65535
        let backoff = cfgPath("network.backoff_multiplier")  // number 1...10
        let level = cfgPath("logging.level")  // text, at most 8 bytes
        let cases: [([UInt8], ConfigValue, Result<ConfigValue, ConfigError>)] = [
            (port, .int(4000), .success(.int(4000))),
            (port, .number(4000), .success(.int(4000))),
            (port, .int(0), .failure(.outOfRange)),
            (port, .number(70000.5), .failure(.wrongType)),  // a fraction before the range
            (port, .number(.nan), .failure(.wrongType)),
            (port, .number(.infinity), .failure(.outOfRange)),
            (port, .number(-0.0), .failure(.outOfRange)),
            (port, .text(cfgPath("1")), .failure(.wrongType)),
            (port, .bool(true), .failure(.wrongType)),
            (port, .map, .failure(.wrongType)),
            (backoff, .int(2), .success(.number(2))),
            (backoff, .number(1.5), .success(.number(1.5))),
            (backoff, .number(10.5), .failure(.outOfRange)),
            (backoff, .number(.nan), .failure(.outOfRange)),
            (backoff, .int(Int64.max), .failure(.outOfRange)),
            (cfgPath("sensors.temp.calibration_offset"), .int(-3), .success(.number(-3))),
            (cfgPath("power.enable_sleep"), .bool(true), .success(.bool(true))),
            (cfgPath("power.enable_sleep"), .int(1), .failure(.wrongType)),
            (level, .text(cfgPath("DEBUG")), .success(.text(cfgPath("DEBUG")))),
            (level, .text(cfgPath("VERBOSE!!")), .failure(.outOfRange)),
            (level, .text([0xFF]), .failure(.outOfRange)),
            (cfgPath("network.ssid"), .text([UInt8](repeating: 0x41, count: 32)), .success(.text([UInt8](repeating: 0x41, count: 32)))),
            (cfgPath("network.ssid"), .text([UInt8](repeating: 0x41, count: 33)), .failure(.outOfRange)),
            (cfgPath("discovery"), .map, .success(.map)),
            (cfgPath("sensors.temp"), .map, .success(.map)),
            (cfgPath("discovery"), .int(1), .failure(.wrongType)),
            (cfgPath("discovery.gossip"), .int(1), .failure(.unknownField)),
            (cfgPath("discovery.port.x"), .int(1), .failure(.unknownField)),
            (cfgPath("discovery..port"), .int(0), .failure(.badPath)),
            (cfgPath("discovery.port."), .int(1), .failure(.badPath)),
            (cfgPath(""), .map, .failure(.badPath)),
            (cfgPath("a.b.c.d.e"), .int(1), .failure(.badPath)),
            (cfgPath("sensors.") + [0xFF] + cfgPath(".calibration_offset"), .number(1), .failure(.badPath)),
            (cfgPath("sensors.") + [0xC3] + cfgPath(".calibration_offset"), .number(1), .failure(.badPath)),
            (cfgPath("sensors.\u{E9}.calibration_offset"), .number(1), .success(.number(1))),
        ]
        for (path, value, expected) in cases {
            #expect(check(path, value) == expected, "\(String(decoding: path, as: UTF8.self)) \(value)")
        }
    }

    /// sanitize counts each dropped subtree once and keeps what validates.
    @Test func sanitizeDropsBadSubtreesOnce() throws {
        var t = ConfigTree()
        try t.set("discovery.port", .number(4001))
        try t.set("discovery.gossip.fanout", .int(3))
        try t.set("discovery.gossip.period", .int(3))
        try t.set("network.ssid", .int(1))
        try t.set("display.brightness_percent.x", .int(1))
        try t.set("sensors.temp.calibration_offset", .int(2))
        #expect(ConfigSchema.sanitize(&t) == 3)
        #expect(t.count == 7)  // the maps discovery, network (now empty), display and sensors.temp stay
        #expect(t.value(at: "discovery.port") == .int(4001))
        #expect(t.value(at: "sensors.temp.calibration_offset") == .number(2))
        #expect(t.value(at: "discovery.gossip") == nil && t.value(at: "network.ssid") == nil)
        #expect(t.value(at: "display.brightness_percent") == nil && t.value(at: "display") == .map)
    }

    /// validate(tree) normalizes every value and throws the first problem in
    /// canonical pre-order, dropping nothing.
    @Test func validateTreeNormalizesOrThrowsTheFirstProblem() throws {
        var t = ConfigTree()
        try t.set("discovery.port", .number(4001))
        try t.set("sensors.temp.calibration_offset", .int(2))
        let v = try ConfigSchema.validate(t)
        #expect(v.count == t.count)
        #expect(v.value(at: "discovery.port") == .int(4001) && t.value(at: "discovery.port") == .number(4001))
        #expect(v.value(at: "sensors.temp.calibration_offset") == .number(2))
        var bad = t
        try bad.set("network.ssid", .int(1))  // wrong type
        try bad.set("display.x", .int(1))  // unknown, after "discovery" and before "network"
        #expect(throws: ConfigError.unknownField) { try ConfigSchema.validate(bad) }
        try bad.set("display.x", .map)  // a map where no field is: still unknown
        #expect(throws: ConfigError.unknownField) { try ConfigSchema.validate(bad) }
        let removed = bad.remove(Array("display.x".utf8))
        #expect(removed)
        #expect(throws: ConfigError.wrongType) { try ConfigSchema.validate(bad) }
        #expect(bad.value(at: "network.ssid") == .int(1))
    }

    @Test func defaultsHoldTheSeedsKeys() {
        let d = ConfigSchema.defaults()
        #expect(d.int("discovery.heartbeat_interval_ms", default: 0) == 5000)
        #expect(d.int("discovery.service_timeout_ms", default: 0) == 15000)
        #expect(d.int("discovery.port", default: 0) == 4000)
        #expect(d.int("fault_tolerance.max_retries", default: 0) == 3)
        #expect(d.int("fault_tolerance.breaker_threshold", default: 0) == 5)
        #expect(d.int("fault_tolerance.breaker_timeout_ms", default: 0) == 30000)
        #expect(d.number("network.backoff_multiplier", default: 0) == 1.5)
        #expect(d.text("network.ssid", default: []) == cfgPath("TDOS"))
        #expect(d.bool("power.enable_adaptive_polling", default: false) == true)
        #expect(d.bool("power.enable_sleep", default: true) == false)
        #expect(d.bool("security.require_auth", default: false) == true)
        #expect(d.int("display.brightness_percent", default: 0) == 80)
        #expect(d.value(at: "sensors") == .map)
        #expect(d.value(at: "discovery") == .map)
        // Every non-wildcard field is present with its default, and nothing else.
        var leaves = 0
        d.forEachLeaf { path, value in
            leaves += 1
            #expect(ConfigSchema.defaultValue(for: path) == value, "\(String(decoding: path, as: UTF8.self))")
        }
        #expect(leaves == ConfigSchema.fields.filter { !$0.hasWildcard }.count)
        #expect(d.count < ConfigLimits.nodesMax / 2, "room for sensors and updates")
    }

    @Test func dottedGetAndTypedGetters() throws {
        var t = ConfigSchema.defaults()
        // Missing paths and wrong kinds give the default.
        #expect(t.int("discovery.nope", default: 7) == 7)
        #expect(t.int("network.ssid", default: 7) == 7)
        #expect(t.bool("discovery.port", default: true) == true)
        #expect(t.int("discovery", default: 9) == 9)  // a map is not an int
        #expect(t.value(at: "discovery.port.x") == nil)  // below a leaf
        #expect(t.value(at: "") == nil && t.value(at: "a..b") == nil && t.value(at: ".a") == nil)
        // Widening and integral narrowing.
        #expect(t.number("discovery.port", default: 0) == 4000)
        try t.set("network.backoff_multiplier", .number(2))
        #expect(t.int("network.backoff_multiplier", default: 0) == 2)
        try t.set("network.backoff_multiplier", .number(2.5))
        #expect(t.int("network.backoff_multiplier", default: -1) == -1)
        // Wildcard fields: per-sensor keys, default when absent.
        try t.set("sensors.temp_sensor.calibration_offset", .number(-0.5))
        #expect(t.number("sensors.temp_sensor.calibration_offset", default: 0) == -0.5)
        #expect(t.number("sensors.humidity.calibration_offset", default: 0.25) == 0.25)
        #expect(Set(t.keys(under: cfgPath("sensors"))) == [cfgPath("temp_sensor")])
        #expect(ConfigSchema.kind(at: "sensors.anything.calibration_offset") == .number)
        #expect(ConfigSchema.kind(at: "sensors.anything") == .map)
        #expect(ConfigSchema.kind(at: "sensors.anything.other") == nil)
    }

    @Test func setRejectsBadPathsAndKeepsTheTree() {
        var t = ConfigSchema.defaults()
        let before = t
        for bad in ["", ".", "a.", ".a", "a..b", "a.b.c.d.e", String(repeating: "k", count: 25),
                    String(repeating: "ab.", count: 20) + "x"] {
            #expect(throws: ConfigError.badPath) { try t.set(cfgPath(bad), .int(1)) }
        }
        #expect(throws: ConfigError.outOfRange) { try t.set("network.ssid", .text(Array(repeating: 0x41, count: 65))) }
        #expect(throws: ConfigError.outOfRange) { try t.set("network.ssid", .text([0xFF])) }
        #expect(t == before)
    }

    @Test func treeCapacityIsFixedAndFullIsAnError() throws {
        var t = ConfigTree(capacity: 8)
        try t.set("a.b", .int(1))
        try t.set("a.c", .int(2))
        #expect(t.count == 3)
        try t.set("x.y.z", .int(3))  // 3 more
        #expect(t.count == 6)
        let before = t
        #expect(throws: ConfigError.full) { try t.set("p.q.r", .int(4)) }  // needs 3, 2 left
        #expect(t == before, "a refused set changes nothing")
        try t.set("a.d", .int(5))
        #expect(t.count == 7 && t.capacity == 8)
        // Replacing a map by a scalar frees its children.
        try t.set("x", .int(0))
        #expect(t.count == 5 && t.value(at: "x.y") == nil)
        #expect(t.remove(cfgPath("a")) && t.count == 1)
    }

    /// The seeds' deep_merge: maps merge key by key, anything else is replaced.
    @Test func deepMerge() throws {
        var base = ConfigSchema.defaults()
        var over = ConfigTree()
        try over.set("discovery.heartbeat_interval_ms", .int(2000))
        try over.set("sensors.temp_sensor.calibration_offset", .number(-0.5))
        try over.set("network.ssid", .text(cfgPath("lab")))
        try base.merge(over)
        #expect(base.int("discovery.heartbeat_interval_ms", default: 0) == 2000)
        #expect(base.int("discovery.service_timeout_ms", default: 0) == 15000, "siblings kept")
        #expect(base.int("discovery.port", default: 0) == 4000)
        #expect(base.number("sensors.temp_sensor.calibration_offset", default: 9) == -0.5)
        #expect(base.text("network.ssid", default: []) == cfgPath("lab"))
        #expect(base.text("network.password", default: [1]) == [])

        // Generic trees: a scalar replaces a map and a map replaces a scalar.
        var a = ConfigTree()
        try a.set("m.x", .int(1))
        try a.set("m.y", .int(2))
        try a.set("s", .int(3))
        var b = ConfigTree()
        try b.set("m", .bool(true))
        try b.set("s.k", .int(4))
        var merged = a
        try merged.merge(b)
        #expect(merged.value(at: "m") == .bool(true) && merged.value(at: "m.x") == nil)
        #expect(merged.value(at: "s") == .map && merged.int("s.k", default: 0) == 4)
        #expect(merged.count == 3)
        // Merging is all or nothing.
        var small = ConfigTree(capacity: 4)
        try small.set("a.b", .int(1))
        let before = small
        var big = ConfigTree()
        try big.set("c.d", .int(1))
        try big.set("c.e", .int(1))
        #expect(throws: ConfigError.full) { try small.merge(big) }
        #expect(small == before)
    }

    @Test func equalityIgnoresSlotOrder() throws {
        var a = ConfigTree()
        try a.set("x.a", .int(1))
        try a.set("y", .bool(true))
        var b = ConfigTree()
        try b.set("y", .bool(true))
        try b.set("x.a", .int(1))
        #expect(a == b)
        #expect(a.encodeCBOR() == b.encodeCBOR(), "canonical encoding")
        try b.set("x.a", .int(2))
        #expect(a != b)
    }

    // MARK: Flash image

    /// The record's bytes, built here from the documented layout (header,
    /// body map in key order with 16 and 17 among the others, CRC).
    @Test func flashImageBytesFollowTheLayout() throws {
        var tree = ConfigTree()
        try tree.set("discovery.port", .int(4001))
        let others = [ConfigImage.Entry(key: 1, value: cborItem { $0.text(cfgPath("n1")) }),
                      ConfigImage.Entry(key: 30, value: cborItem { $0.unsigned(7) })]
        let bytes = try ConfigImage(sequence: 0x0102_0304, version: 5, tree: tree, others: others).encode()
        var body = CBORWriter()
        body.mapHeader(count: 4)
        body.unsigned(1); body.text(cfgPath("n1"))
        body.unsigned(16); body.unsigned(5)
        body.unsigned(17); body.bytes(tree.encodeCBOR())
        body.unsigned(30); body.unsigned(7)
        var expected: [UInt8] = [0x54, 0x44, 0x43, 0x46, 1, 0, 0, UInt8(body.bytes.count), 1, 2, 3, 4] + body.bytes
        let crc = ConfigImage.crc32(expected[...])
        expected += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        #expect(bytes == expected)
    }

    @Test func flashImageRoundTrip() throws {
        var t = ConfigSchema.defaults()
        try t.set("sensors.temp_sensor.calibration_offset", .number(-0.5))
        try t.set("network.ssid", .text(cfgPath("réseau")))
        try t.set("discovery.port", .int(65535))
        try t.set("network.backoff_multiplier", .number(1.1))
        let image = ConfigImage(version: 42, tree: t)
        let bytes = try image.encode()
        #expect(Array(bytes[0..<4]) == cfgPath("TDCF") && bytes[4] == 1)
        #expect(bytes.count < ConfigLimits.imageBytesMax)
        let back = try ConfigImage.decode(bytes)
        #expect(back == image)
        // The region is a whole erased sector: bytes after the image are ignored.
        #expect(try ConfigImage.decode(bytes + Array(repeating: 0xFF, count: 4096 - bytes.count)) == image)
        // CRC-32 is zlib's.
        #expect(ConfigImage.crc32(cfgPath("123456789")[...]) == 0xCBF4_3926)
        // A blank sector is not an image.
        #expect(throws: ConfigError.noImage) { try ConfigImage.decode(Array(repeating: 0xFF, count: 4096)) }
        #expect(throws: ConfigError.noImage) { try ConfigImage.decode([]) }
    }

    /// Every single-bit flip and every truncation of an image is refused.
    @Test func flashCorruptionIsDetected() throws {
        var t = ConfigSchema.defaults()
        try t.set("sensors.light.calibration_offset", .number(3.25))
        let bytes = try ConfigImage(version: 7, tree: t).encode()
        for i in 0..<bytes.count {
            for bit in 0..<8 {
                var c = bytes
                c[i] ^= 1 << bit
                #expect(throws: ConfigError.self, "flip byte \(i) bit \(bit)") { try ConfigImage.decode(c) }
                if i >= 4 {  // past the magic, a flip is corruption, not "no image"
                    do { _ = try ConfigImage.decode(c) } catch {
                        #expect(error == .badChecksum, "flip byte \(i) bit \(bit): \(error)")
                    }
                }
            }
        }
        for n in 0..<bytes.count {
            #expect(throws: ConfigError.self) { try ConfigImage.decode(Array(bytes[0..<n])) }
        }
    }

    @Test func restoreDropsUnknownFieldsAndSurvivesCorruption() throws {
        // An overlay written by another firmware: one known field, one unknown.
        var overlay = ConfigTree()
        try overlay.set("discovery.heartbeat_interval_ms", .int(1000))
        try overlay.set("discovery.gossip_fanout", .int(3))
        let region = try ConfigImage(version: 9, tree: overlay).encode()
        var m = ConfigManager()
        #expect(m.restore(image: region) == .restored(version: 9, dropped: 1))
        #expect(m.version == 9)
        #expect(m.effective.int("discovery.heartbeat_interval_ms", default: 0) == 1000)
        #expect(m.effective.value(at: "discovery.gossip_fanout") == nil)

        // A corrupt region leaves the config in force alone.
        var corrupt = region
        corrupt[region.count - 6] ^= 0x40
        let before = m.effective
        #expect(m.restore(image: corrupt) == .corrupt(.badChecksum))
        #expect(m.effective == before && m.version == 9)
        var blank = ConfigManager()
        #expect(blank.restore(image: Array(repeating: 0xFF, count: 64)) == .noImage)
    }

    /// A record as `tdos provision` writes it (Firmware/Pico/ProvisionRecord.swift's
    /// layout: the same header, body keys 1-12), built here byte by byte.
    static func provisionRecord(sequence: UInt32) -> [UInt8] {
        var w = CBORWriter()
        w.mapHeader(count: 10)
        w.unsigned(1); w.text(cfgPath("temp-a"))
        w.unsigned(2); w.unsigned(2)
        w.unsigned(3); w.text(cfgPath("lab-wifi"))
        w.unsigned(4); w.text(cfgPath("passphrase"))
        w.unsigned(5); w.unsigned(1)
        w.unsigned(6); w.bytes(Array(repeating: 0x42, count: 32))
        w.unsigned(8); w.unsigned(4210)
        w.unsigned(9); w.text(cfgPath("XX"))
        w.unsigned(11); w.unsigned(5)
        w.unsigned(12); w.unsigned(1)
        var out = cfgPath("TDCF") + [1, 0, UInt8(w.bytes.count >> 8), UInt8(w.bytes.count & 0xFF)]
        out += [UInt8(sequence >> 24), UInt8(sequence >> 16 & 0xFF), UInt8(sequence >> 8 & 0xFF), UInt8(sequence & 0xFF)]
        out += w.bytes
        let crc = ConfigImage.crc32(out[...])
        out += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        return out
    }

    /// The config region holds the provisioning record: the overlay and its
    /// version ride in it (keys 16, 17) and the provisioning fields survive
    /// every update byte for byte.
    @Test func overlayRidesInTheProvisioningRecord() throws {
        let provisioned = Self.provisionRecord(sequence: 3)
        var m = ConfigManager()
        #expect(m.restore(image: provisioned + Array(repeating: 0xFF, count: 100)) == .restored(version: 0, dropped: 0))
        #expect(m.sequence == 3 && m.provisioning.map(\.key) == [1, 2, 3, 4, 5, 6, 8, 9, 11, 12])
        #expect(m.effective == ConfigSchema.defaults())
        // With nothing applied, the record written back is the provisioned one plus an empty overlay.
        let original = try ConfigImage.decode(provisioned)
        #expect(original.others == m.provisioning && original.version == 0 && original.tree.isEmpty)

        #expect(m.apply(ConfigUpdate(version: 2, entries: [configEntry("discovery.port", int: 4300)])) == .applied(version: 2, entries: 1))
        #expect(m.sequence == 4, "each applied update is a newer copy")
        let written = m.image()
        let back = try ConfigImage.decode(written)
        #expect(back.sequence == 4 && back.version == 2)
        #expect(back.others == original.others, "provisioning fields kept byte for byte")
        #expect(back.tree.int("discovery.port", default: 0) == 4300)
        // Keys 1-12 then 16, 17: the provisioning decoder's order and key set.
        var r = CBORReader(Array(written[12..<(written.count - 4)]))
        let n = try r.mapHeader()
        var keys: [UInt64] = []
        for _ in 0..<n { keys.append(try r.unsigned()); try r.skip() }
        #expect(keys == [1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 16, 17])

        // A/B: the newer valid copy wins; a corrupt newer copy falls back to the older.
        var ab = ConfigManager()
        #expect(ab.restore(regionA: provisioned, regionB: written) == .restored(version: 2, dropped: 0))
        #expect(ab.restore(regionA: written, regionB: provisioned) == .restored(version: 2, dropped: 0))
        var broken = written
        broken[20] ^= 1
        var fallback = ConfigManager()
        #expect(fallback.restore(regionA: provisioned, regionB: broken) == .restored(version: 0, dropped: 0))
        var none = ConfigManager()
        #expect(none.restore(regionA: Array(repeating: 0xFF, count: 64), regionB: broken) == .noImage)
    }

    // MARK: Runtime updates

    @Test func updateVersioning() throws {
        var m = ConfigManager()
        #expect(m.version == 0)
        let v5 = ConfigUpdate(version: 5, entries: [configEntry("discovery.heartbeat_interval_ms", int: 2000)])
        let o = m.apply(v5)
        #expect(o == .applied(version: 5, entries: 1) && o.persist && o.acknowledge && o.replyStatus == .ok)
        #expect(m.int("discovery.heartbeat_interval_ms", default: 0) == 2000)
        let image5 = m.image()

        // Equal version: idempotent, even with other content (the first one wins).
        let again = m.apply(v5)
        #expect(again == .duplicate(version: 5) && again.acknowledge && !again.persist)
        let impostor = ConfigUpdate(version: 5, entries: [configEntry("discovery.heartbeat_interval_ms", int: 9000)])
        #expect(m.apply(impostor) == .duplicate(version: 5))
        #expect(m.int("discovery.heartbeat_interval_ms", default: 0) == 2000)
        #expect(m.image() == image5)

        // Older: never wins.
        let old = ConfigUpdate(version: 4, entries: [configEntry("discovery.heartbeat_interval_ms", int: 100)])
        let stale = m.apply(old)
        #expect(stale == .stale(current: 5) && stale.acknowledge && !stale.persist)
        #expect(m.int("discovery.heartbeat_interval_ms", default: 0) == 2000)

        // Newer: applied on top, earlier overlay entries kept.
        let v6 = ConfigUpdate(version: 6, entries: [configEntry("fault_tolerance.breaker_threshold", int: 7)])
        #expect(m.apply(v6) == .applied(version: 6, entries: 1))
        #expect(m.int("fault_tolerance.breaker_threshold", default: 0) == 7)
        #expect(m.int("discovery.heartbeat_interval_ms", default: 0) == 2000)
        #expect(m.updatesApplied == 2 && m.updatesIgnored == 3)

        // Across a reboot: the persisted image carries the version; old still never wins.
        var rebooted = ConfigManager()
        #expect(rebooted.restore(image: m.image()) == .restored(version: 6, dropped: 0))
        #expect(rebooted.apply(old) == .stale(current: 6))
        #expect(rebooted.apply(v5) == .stale(current: 6))
        #expect(rebooted.effective == m.effective)
    }

    /// Whatever order a set of updates arrives in, the newest one's values win.
    @Test func updatesInAnyOrderConverge() throws {
        var rng = TestRNG(seed: 7)
        let updates = (1...20).map { v in
            ConfigUpdate(version: UInt32(v), entries: [configEntry("discovery.heartbeat_interval_ms", int: Int64(1000 + v))])
        }
        for _ in 0..<50 {
            var m = ConfigManager()
            var order = updates.shuffled(using: &rng)
            order += order.prefix(5)  // duplicates too
            for u in order { _ = m.apply(u) }
            #expect(m.version == 20)
            #expect(m.int("discovery.heartbeat_interval_ms", default: 0) == 1020)
        }
    }

    @Test func updateEntriesAreCheckedAllOrNothing() throws {
        var m = ConfigManager()
        let good = configEntry("discovery.heartbeat_interval_ms", int: 2000)
        let cases: [(ConfigUpdate.Entry, ConfigError)] = [
            (configEntry("discovery.heartbeat_interval", int: 5), .unknownField),
            (configEntry("discovery.heartbeat_interval_ms", int: 5), .outOfRange),
            (ConfigUpdate.Entry(path: cfgPath("discovery.port"), value: cborItem { $0.text(cfgPath("fast")) }), .wrongType),
            (ConfigUpdate.Entry(path: cfgPath("discovery.port"), value: cborItem { $0.double(1.5) }), .wrongType),
            (ConfigUpdate.Entry(path: cfgPath("discovery.port"), value: cborItem { $0.arrayHeader(count: 0) }), .wrongType),
            (ConfigUpdate.Entry(path: cfgPath("discovery"), value: cborItem { $0.int(1) }), .wrongType),
            (ConfigUpdate.Entry(path: cfgPath("discovery..port"), value: cborItem { $0.int(1) }), .badPath),
            (ConfigUpdate.Entry(path: cfgPath("discovery.port"), value: [0x19, 0x01]), .malformed),
        ]
        for (bad, reason) in cases {
            let u = ConfigUpdate(version: 3, entries: [good, bad])
            let before = m.effective
            let o = m.apply(u)
            #expect(o == .rejected(entry: 1, reason: reason), "\(String(decoding: bad.path, as: UTF8.self))")
            #expect(!o.acknowledge && o.replyStatus == .badArguments)
            #expect(m.effective == before && m.version == 0, "nothing applied")
        }
        // The same version, fixed, still applies: a rejected update consumes no version.
        #expect(m.apply(ConfigUpdate(version: 3, entries: [good])) == .applied(version: 3, entries: 1))
    }

    @Test func updateValuesMapsAndNull() throws {
        var m = ConfigManager()
        // A map value deep-merges under the path; ints become numbers where needed.
        let mapValue = cborItem { w in
            w.mapHeader(count: 2)
            w.text(cfgPath("temp_sensor")); w.mapHeader(count: 1); w.text(cfgPath("calibration_offset")); w.int(-2)
            w.text(cfgPath("light")); w.mapHeader(count: 1); w.text(cfgPath("calibration_offset")); w.double(0.5)
        }
        let u1 = ConfigUpdate(version: 1, entries: [ConfigUpdate.Entry(path: cfgPath("sensors"), value: mapValue),
                                                    ConfigUpdate.Entry(path: cfgPath("power.enable_sleep"), value: cborItem { $0.bool(true) })])
        #expect(m.apply(u1) == .applied(version: 1, entries: 2))
        #expect(m.effective.value(at: "sensors.temp_sensor.calibration_offset") == .number(-2))
        #expect(m.number("sensors.light.calibration_offset", default: 0) == 0.5)
        #expect(m.bool("power.enable_sleep", default: false))
        // null resets a path to the local value.
        let u2 = ConfigUpdate(version: 2, entries: [ConfigUpdate.Entry(path: cfgPath("power.enable_sleep"), value: [0xF6])])
        #expect(m.apply(u2) == .applied(version: 2, entries: 1))
        #expect(m.bool("power.enable_sleep", default: true) == false)
        #expect(m.remote.value(at: "power.enable_sleep") == nil)
    }

    /// Through the wire: the golden compressed config_update decodes, and its
    /// paths (made up for the compression vector) are unknown, so it is refused.
    @Test func goldenConfigUpdateIsCheckedAgainstTheSchema() throws {
        let f = try Frame.decode(golden("config_update_compressed"), keys: goldenKeyring)
        let u = try ConfigUpdate.decode(f.payload)
        #expect(u.version == 7 && u.entries.count == 6)
        var m = ConfigManager()
        #expect(m.apply(u) == .rejected(entry: 0, reason: .unknownField))
        // A real one round-trips the wire format and applies.
        let real = ConfigUpdate(version: 8, entries: [
            ConfigUpdate.Entry(path: cfgPath("sensors.temp_sensor.calibration_offset"), value: cborItem { $0.double(-0.5) }),
        ])
        #expect(m.apply(try ConfigUpdate.decode(real.encode())) == .applied(version: 8, entries: 1))
    }

    /// The effective tree (defaults + overlay) has a fixed number of slots: an
    /// update that would overflow it is refused whole.
    @Test func updateThatOverflowsTheTreeIsRejected() throws {
        var m = ConfigManager()
        func sensors(_ r: Range<Int>) -> [ConfigUpdate.Entry] {
            r.map { i in ConfigUpdate.Entry(path: cfgPath("sensors.s\(i).calibration_offset"), value: cborItem { $0.double(0.5) }) }
        }
        #expect(m.apply(ConfigUpdate(version: 1, entries: sensors(0..<10))) == .applied(version: 1, entries: 10))
        let before = m.effective
        let o = m.apply(ConfigUpdate(version: 2, entries: sensors(10..<42)))
        guard case .rejected(_, .full) = o else {
            Issue.record("expected .full, got \(o)")
            return
        }
        #expect(m.version == 1 && m.remote.count == 1 + 20 && m.effective == before)
        #expect(m.effective.capacity == ConfigLimits.nodesMax)
    }

    @Test func replaceLocalKeepsTheOverlayOnTop() throws {
        var m = ConfigManager()
        #expect(m.apply(ConfigUpdate(version: 1, entries: [configEntry("discovery.port", int: 4100)])).persist)
        var local = ConfigSchema.defaults()
        try local.set("discovery.port", .int(5000))
        try local.set("display.brightness_percent", .int(10))
        try m.replaceLocal(local)
        #expect(m.int("discovery.port", default: 0) == 4100, "the update still wins")
        #expect(m.int("display.brightness_percent", default: 0) == 10)
        // A local layer with an unknown key is refused; the config in force stays.
        var bad = local
        try bad.set("display.nope", .int(1))
        let before = m.effective
        #expect(throws: ConfigError.unknownField) { try m.replaceLocal(bad) }
        #expect(m.effective == before)
    }
}
