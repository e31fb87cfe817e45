// The golden wire vectors (Tests/Vectors, shared with the host tests) decoded and
// re-encoded on the target's instruction set, plus the receive-path rejections.
import TDOSCore

func staticHex(_ s: StaticString) -> [UInt8] {
    bytesFromHex(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)) ?? []
}

func goldenFrame(_ index: Int) -> [UInt8] { staticHex(goldenVectors[index].hex) }

func frameTests() {
    let keys = Keyring(id: goldenKeyID, key: staticHex(goldenKeyHex))
    expect(goldenVectors.count >= 10, "golden vectors present")
    for i in 0..<goldenVectors.count {
        let bytes = goldenFrame(i)
        guard let frame = expectNoThrow("golden vector decodes", { () throws(WireError) -> Frame in
            try Frame.decode(bytes, keys: keys)
        }) else { continue }
        expect(frame.keyID == 1, "golden key id")
        // The compressed vector was made by zlib; its re-encoding legitimately differs.
        if !frame.flags.contains(.compressed) && frame.versionMinor == 0 {
            expectEqual(frame.encode(key: keys.sendKey), bytes, "golden vector re-encodes byte for byte")
        }
        // Every truncation and a bit flip in every byte are rejected.
        var rejected = true
        for n in 0..<bytes.count {
            if (try? Frame.decode(Array(bytes[0..<n]), keys: keys)) != nil { rejected = false }
        }
        for b in 0..<bytes.count {
            var copy = bytes
            copy[b] ^= 0x10
            if (try? Frame.decode(copy, keys: keys)) != nil { rejected = false }
        }
        expect(rejected, "truncated and bit-flipped golden frames rejected")
    }

    // Field-level checks on three vectors: announce (0), request (2), response (3).
    if let a = try? Frame.decode(goldenFrame(0), keys: keys), let body = try? Announce.decode(a.payload) {
        expect(a.type == .announce && a.sender == 0x0A0B0C0D && a.id == MessageID(epoch: 1, sequence: 7), "announce header")
        expect(body.services.count == 1 && body.services[0].port == 4210 && body.services[0].version == SemVer(1, 2, 0), "announce service")
        expect(body.services[0].id == serviceID("temp_sensor"), "service id is FNV-1a of the name")
    } else { expect(false, "announce decodes") }
    if let q = try? Frame.decode(goldenFrame(2), keys: keys), let r = try? Frame.decode(goldenFrame(3), keys: keys),
       let resp = try? Response.decode(r.payload) {
        expect(r.ref == q.id, "response refers to the request")
        expect(resp.value == 21.5 && resp.unit == .celsius, "response value 21.5 C")
        expect(goldenFrame(2).count <= 40 && goldenFrame(1).count <= 64 && goldenFrame(0).count <= 80, "size budgets")
    } else { expect(false, "request/response decode") }

    // Forgery and replay.
    let wrong = Keyring(id: 1, key: [UInt8](repeating: 0x55, count: 32))
    expectThrows(WireError.badTag, "forged frame rejected") { () throws(WireError) in _ = try Frame.decode(goldenFrame(0), keys: wrong) }
    var window = ReplayWindow(capacity: 4)
    let id = MessageID(epoch: 1, sequence: 7)
    expect((try? window.accept(sender: 1, id: id, nowMs: 0)) != nil, "first copy accepted")
    expectThrows(WireError.replayed, "replayed frame rejected") { () throws(WireError) in try window.accept(sender: 1, id: id, nowMs: 1) }
    var future = goldenFrame(1)
    future[0] = 0x20
    expectThrows(WireError.badVersion(major: 2), "major 2 rejected, named") { () throws(WireError) in _ = try Frame.decode(future, keys: keys) }
}
