import Foundation
import Testing
@testable import TDOSCore

let goldenKeyring = Keyring(id: goldenKeyID, key: unhex(goldenKeyHex))

func golden(_ name: String) -> [UInt8] {
    for v in goldenVectors where v.name.description == name { return unhex(v.hex) }
    fatalError("no golden vector \(name)")
}

@Suite struct FrameTests {
    @Test func limitsAreConsistent() { WireLimits.check() }

    @Test func goldenVectorsMatchThePythonReference() throws {
        let regenerated = try run("bash", ["Tests/tools/gen_golden_swift.sh"])
        let committed = try String(contentsOf: repoRoot.appendingPathComponent("Tests/Vectors/GoldenVectors.swift"), encoding: .utf8)
        #expect(regenerated == committed, "run Tests/tools/gen_golden_swift.sh > Tests/Vectors/GoldenVectors.swift")
    }

    @Test func goldenVectorsAreListedInProtocolDoc() throws {
        let doc = try String(contentsOf: repoRoot.appendingPathComponent("docs/PROTOCOL.md"), encoding: .utf8)
        let flat = doc.replacingOccurrences(of: "\n", with: "").replacingOccurrences(of: " ", with: "")
        for v in goldenVectors {
            #expect(flat.contains(v.hex.description), "docs/PROTOCOL.md lacks vector \(v.name)")
        }
    }

    /// Every vector decodes, and re-encoding the decoded frame gives the same bytes
    /// (except the compressed one: our DEFLATE output differs from zlib's, legitimately).
    @Test func goldenVectorsDecodeAndReencode() throws {
        for v in goldenVectors {
            let bytes = unhex(v.hex)
            let frame = try Frame.decode(bytes, keys: goldenKeyring)
            #expect(frame.keyID == 1)
            if v.name.description != "config_update_compressed" && v.name.description != "future_minor_unknown_keys" {
                #expect(frame.encode(key: goldenKeyring.sendKey) == bytes, "\(v.name)")
            }
        }
    }

    @Test func goldenAnnounceFields() throws {
        let f = try Frame.decode(golden("announce"), keys: goldenKeyring)
        #expect(f.type == .announce && f.sender == 0x0A0B0C0D && f.id == MessageID(epoch: 1, sequence: 7))
        #expect(f.timestampMs == 123456 && f.priority == .normal && f.ref == nil)
        let a = try Announce.decode(f.payload)
        #expect(a.nodeName == Array("temp-a".utf8))
        #expect(a.services == [ServiceDescriptor(name: Array("temp_sensor".utf8), version: SemVer(1, 2, 0),
                                                 role: .sensor, capabilities: [.read, .subscribe], priority: 0, port: 4210)])
    }

    @Test func goldenRequestResponseFields() throws {
        let req = try Frame.decode(golden("request_read"), keys: goldenKeyring)
        #expect(req.type == .request && req.flags.contains(.ackRequested) && req.priority == .high)
        let r = try Request.decode(req.payload)
        #expect(r.service == serviceID("temp_sensor") && r.operation == .read && r.deadlineMs == nil)
        let resp = try Frame.decode(golden("response_read"), keys: goldenKeyring)
        #expect(resp.ref == req.id)
        let body = try Response.decode(resp.payload)
        #expect(body.value == 21.5 && body.unit == .celsius && body.status == 0)
        let retx = try Frame.decode(golden("request_retransmit"), keys: goldenKeyring)
        #expect(retx.ref == req.id && retx.id != req.id)
        #expect(try Request.decode(retx.payload).deadlineMs == 3000)
    }

    @Test func goldenCompressedConfigDecodes() throws {
        let f = try Frame.decode(golden("config_update_compressed"), keys: goldenKeyring)
        #expect(f.flags.contains(.compressed))
        let c = try ConfigUpdate.decode(f.payload)
        #expect(c.version == 7 && c.entries.count == 6)
        #expect(c.entries[0].path == Array("sensors.temp_sensor.calibration_0".utf8))
        var r = CBORReader(c.entries[3].value)
        #expect(try r.number() == 0.75)
    }

    /// A newer minor (1.3) with keys this build does not know still decodes: unknown keys are skipped.
    @Test func newerMinorWithUnknownKeysInteroperates() throws {
        let f = try Frame.decode(golden("future_minor_unknown_keys"), keys: goldenKeyring)
        #expect(f.versionMajor == 1 && f.versionMinor == 3)
        let hb = try Heartbeat.decode(f.payload)
        #expect(hb.uptimeS == 3601 && hb.servicesDigest == 0xBEEF && hb.activity == 40)
    }

    @Test func budgetsWithTag() throws {
        #expect(golden("request_read").count <= 40)
        #expect(golden("heartbeat").count <= 64)
        #expect(golden("announce").count <= 80)
    }

    @Test func everyTruncationIsRejected() throws {
        for v in goldenVectors {
            let bytes = unhex(v.hex)
            for n in 0..<bytes.count {
                #expect(throws: WireError.self) { try Frame.decode(Array(bytes[0..<n]), keys: goldenKeyring) }
            }
        }
    }

    @Test func bitFlipsAreRejected() throws {
        var rng = TestRNG(seed: 7)
        for v in goldenVectors {
            let bytes = unhex(v.hex)
            for bit in 0..<(bytes.count * 8) {
                var copy = bytes
                copy[bit / 8] ^= 1 << UInt8(bit % 8)
                #expect(throws: WireError.self) { try Frame.decode(copy, keys: goldenKeyring) }
            }
            for _ in 0..<200 {
                var copy = bytes
                let flips = Int.random(in: 2...8, using: &rng)
                for _ in 0..<flips { copy[Int.random(in: 0..<copy.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng) }
                if copy == bytes { continue }
                #expect(throws: WireError.self) { try Frame.decode(copy, keys: goldenKeyring) }
            }
        }
    }

    @Test func forgedWithOtherKeyIsRejected() throws {
        let wrong = Keyring(id: 1, key: Array(repeating: 0x55, count: 32))
        #expect(throws: WireError.badTag) { try Frame.decode(golden("announce"), keys: wrong) }
        let otherID = Keyring(id: 2, key: unhex(goldenKeyHex))
        #expect(throws: WireError.badTag) { try Frame.decode(golden("announce"), keys: otherID) }
    }

    @Test func unsupportedMajorIsNamed() throws {
        var bytes = golden("heartbeat")
        bytes[0] = 0x20
        #expect(throws: WireError.badVersion(major: 2)) { try Frame.decode(bytes, keys: goldenKeyring) }
        #expect(frameMajorVersion(bytes) == 2)
        let e = try ErrorReply.decode(ErrorReply.unsupportedVersion().encode())
        #expect(e.code == Status.unsupportedVersion.rawValue && e.majorMin == 1 && e.majorMax == 1)
    }

    @Test func oversizedIsRejectedBeforeAnyWork() {
        let big = [UInt8](repeating: 0x10, count: WireLimits.frameBytesMax + 1)
        #expect(throws: WireError.oversized) { try Frame.decode(big, keys: goldenKeyring) }
    }

    @Test func randomFramesRoundTrip() throws {
        var rng = TestRNG(seed: 42)
        for i in 0..<2000 {
            let payloadLen = Int.random(in: 0...600, using: &rng)
            // Half the payloads are repetitive so that compression kicks in.
            let payload: [UInt8] = i % 2 == 0 ? rng.bytes(payloadLen)
                : (0..<payloadLen).map { UInt8(truncatingIfNeeded: $0 % 7) }
            let f = Frame(type: MessageType(rawValue: UInt8.random(in: 1...255, using: &rng)),
                          sender: UInt32.random(in: 0...UInt32.max, using: &rng),
                          id: MessageID(epoch: UInt32.random(in: 0...UInt32.max, using: &rng), sequence: UInt32.random(in: 0...UInt32.max, using: &rng)),
                          ref: Bool.random(using: &rng) ? MessageID(raw: UInt64.random(in: 0...UInt64.max, using: &rng)) : nil,
                          timestampMs: UInt32.random(in: 0...UInt32.max, using: &rng), payload: payload,
                          priority: Priority(rawValue: UInt8.random(in: 0...3, using: &rng))!,
                          flags: Bool.random(using: &rng) ? [.ackRequested] : [], keyID: 1)
            let wire = f.encode(key: goldenKeyring.sendKey)
            var decoded = try Frame.decode(wire, keys: goldenKeyring)
            decoded.flags.remove(.compressed)
            decoded.flags.remove(.hasRef)
            #expect(decoded == f)
            if i % 2 == 1 && payloadLen >= WireLimits.compressThresholdBytes {
                #expect(wire.count < payloadLen, "repetitive payload should have been compressed")
            }
        }
    }

    /// Frames encoded here decode in the independent Python implementation, and back.
    @Test func crossCheckWithPythonReference() throws {
        var rng = TestRNG(seed: 99)
        for _ in 0..<20 {
            let hb = Heartbeat(uptimeS: UInt32.random(in: 0...1_000_000, using: &rng), freeMemoryBytes: 150_000,
                               activity: 12, loadPercent: 3, servicesDigest: UInt16.random(in: 0...UInt16.max, using: &rng))
            let f = Frame(type: .heartbeat, sender: UInt32.random(in: 0...UInt32.max, using: &rng),
                          id: MessageID(epoch: 3, sequence: UInt32.random(in: 0...100_000, using: &rng)),
                          timestampMs: 77, payload: hb.encode(), keyID: 1)
            let out = try pythonRef(["decode", goldenKeyHex.description, hex(f.encode(key: goldenKeyring.sendKey))])
            let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
            #expect(json["sender"] as? UInt32 == f.sender)
            #expect((json["id"] as? [Int]) == [3, Int(f.id.sequence)])
            let payload = json["payload"] as! [String: Any]
            #expect(payload["1"] as? Int == Int(hb.uptimeS))
            #expect(payload["5"] as? Int == Int(hb.servicesDigest))

            let body = Request(service: serviceID("humidity_sensor"), deadlineMs: 1500).encode()
            let seq = UInt32.random(in: 0...1_000_000, using: &rng)
            let pyFrame = try pythonRef(["encode", goldenKeyHex.description, "3", "16909060", "2", "\(seq)", "99", hex(body)])
            let decoded = try Frame.decode(unhex(pyFrame.trimmingCharacters(in: .whitespacesAndNewlines)), keys: goldenKeyring)
            #expect(decoded.id.sequence == seq && decoded.sender == 16909060)
            #expect(try Request.decode(decoded.payload) == Request(service: serviceID("humidity_sensor"), deadlineMs: 1500))
        }
    }
}

@Suite struct ReplayTests {
    @Test func acceptsOnceRejectsRepeat() throws {
        var w = ReplayWindow()
        try w.accept(sender: 1, id: MessageID(epoch: 1, sequence: 10), nowMs: 0)
        #expect(throws: WireError.replayed) { try w.accept(sender: 1, id: MessageID(epoch: 1, sequence: 10), nowMs: 1) }
        // Out of order within the window is fine, once.
        try w.accept(sender: 1, id: MessageID(epoch: 1, sequence: 5), nowMs: 2)
        #expect(throws: WireError.replayed) { try w.accept(sender: 1, id: MessageID(epoch: 1, sequence: 5), nowMs: 3) }
        // Another sender has its own window.
        try w.accept(sender: 2, id: MessageID(epoch: 1, sequence: 10), nowMs: 3)
    }

    @Test func tooOldAndOldEpochAreReplays() throws {
        var w = ReplayWindow()
        try w.accept(sender: 1, id: MessageID(epoch: 4, sequence: 1000), nowMs: 0)
        #expect(throws: WireError.replayed) { try w.accept(sender: 1, id: MessageID(epoch: 4, sequence: 1000 - 64), nowMs: 0) }
        try w.accept(sender: 1, id: MessageID(epoch: 4, sequence: 1000 - 63), nowMs: 0)
        #expect(throws: WireError.replayed) { try w.accept(sender: 1, id: MessageID(epoch: 3, sequence: 5000), nowMs: 0) }
        // Reboot: new epoch restarts the sequence.
        try w.accept(sender: 1, id: MessageID(epoch: 5, sequence: 0), nowMs: 0)
        #expect(throws: WireError.replayed) { try w.accept(sender: 1, id: MessageID(epoch: 4, sequence: 1001), nowMs: 0) }
    }

    /// Against a model (a set of every id seen), over random traffic.
    @Test func matchesModel() throws {
        var rng = TestRNG(seed: 5)
        var w = ReplayWindow(capacity: 4)
        var highest: [UInt32: UInt32] = [:]
        var seen: Set<UInt64> = []
        for step in 0..<20_000 {
            let sender = UInt32.random(in: 0..<4, using: &rng)
            let top = highest[sender] ?? 0
            let seq = UInt32(max(0, Int(top) + Int.random(in: -80...20, using: &rng)))
            let key = UInt64(sender) << 32 | UInt64(seq)
            let fresh = !seen.contains(key) && (highest[sender] == nil || seq + 64 > top)
            do {
                try w.accept(sender: sender, id: MessageID(epoch: 1, sequence: seq), nowMs: UInt64(step))
                #expect(fresh, "accepted a replay at step \(step)")
                seen.insert(key)
                highest[sender] = max(top, seq)
            } catch {
                #expect(!fresh, "rejected a fresh id at step \(step)")
            }
        }
    }

    @Test func boundedAndEvictsLeastRecent() throws {
        var w = ReplayWindow(capacity: 3)
        for s in 0..<10 { try w.accept(sender: UInt32(s), id: MessageID(epoch: 1, sequence: 0), nowMs: UInt64(s)) }
        #expect(w.count == 3 && w.evictions == 7)
    }

    @Test func keyRotation() throws {
        var ring = Keyring(id: 1, key: Array(repeating: 1, count: 32))
        try ring.add(id: 2, key: Array(repeating: 2, count: 32))
        let old = Frame(type: .ack, sender: 9, id: MessageID(epoch: 1, sequence: 1), timestampMs: 0, payload: [], keyID: 1)
        let oldWire = old.encode(key: ring.key(id: 1)!)
        try ring.useForSending(id: 2)
        var new = old
        new.keyID = ring.sendKeyID
        let newWire = new.encode(key: ring.sendKey)
        #expect(try Frame.decode(oldWire, keys: ring).keyID == 1)
        #expect(try Frame.decode(newWire, keys: ring).keyID == 2)
        try ring.remove(id: 1)
        #expect(throws: WireError.badTag) { try Frame.decode(oldWire, keys: ring) }
        #expect(throws: Keyring.KeyringError.badID) { try ring.remove(id: 2) }
    }

    /// `add` with a known id replaces its key in place; a copy of the ring
    /// taken before keeps the old key (the keys are a copy-on-write table).
    @Test func keyReplacementAndCopies() throws {
        var ring = Keyring(id: 1, key: Array(repeating: 1, count: 32))
        let copy = ring
        try ring.add(id: 1, key: Array(repeating: 7, count: 32))
        let f = Frame(type: .ack, sender: 9, id: MessageID(epoch: 1, sequence: 1), timestampMs: 0, payload: [], keyID: 1)
        let oldWire = f.encode(key: HMACSHA256Key(key: Array(repeating: 1, count: 32)))
        let newWire = f.encode(key: HMACSHA256Key(key: Array(repeating: 7, count: 32)))
        #expect(throws: WireError.badTag) { try Frame.decode(oldWire, keys: ring) }
        #expect(try Frame.decode(newWire, keys: ring).keyID == 1)
        #expect(try Frame.decode(oldWire, keys: copy).keyID == 1)
        #expect(throws: WireError.badTag) { try Frame.decode(newWire, keys: copy) }
        for id in 2..<UInt8(WireLimits.keysMax + 1) { try ring.add(id: id, key: [id]) }
        #expect(throws: Keyring.KeyringError.full) { try ring.add(id: 63, key: [1]) }
        #expect(try Frame.decode(newWire, keys: ring).keyID == 1)
    }
}
