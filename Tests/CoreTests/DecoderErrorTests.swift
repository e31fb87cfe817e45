import Testing
@testable import TDOSCore

/// The decoders read through `MapDecoder(deferring:)` (an error in the map's
/// header is thrown by `finish()`) and `ServiceDescriptor` reads into its
/// result: the errors and the required keys are what they were.
@Suite struct DecoderErrorTests {
    @Test func headerErrorsAreThrownAsBefore() throws {
        // Not a map, a truncated map head, a map with a missing entry.
        #expect(throws: WireError.malformedCBOR) { try Notify.decode([0x01]) }
        #expect(throws: WireError.truncated) { try Notify.decode([0xB8]) }
        #expect(throws: WireError.truncated) { try Heartbeat.decode([0xA1]) }
        #expect(throws: WireError.malformedCBOR) { try Request.decode([0x80]) }
        // An empty payload is an empty map: the required key is missing.
        #expect(throws: WireError.malformedCBOR) { try ErrorReply.decode([]) }
        #expect(try Leave.decode([]) == Leave())
        #expect(ProbeArguments.decode([0x01]) == nil)
    }

    private func descriptor(_ build: (inout CBORWriter) -> Void) throws(WireError) -> ServiceDescriptor {
        var w = CBORWriter()
        build(&w)
        var r = CBORReader(w.bytes)
        return try ServiceDescriptor.decode(&r)
    }

    @Test func serviceDescriptorRequiredKeys() throws {
        let name: [UInt8] = Array("temp".utf8)
        let full = try descriptor { w in
            w.mapHeader(count: 5)
            w.unsigned(1); w.text(name)
            w.unsigned(2); SemVer(1, 2, 3).encode(&w)
            w.field(3, 2)
            w.text("x"); w.unsigned(9)  // a non-integer key is skipped
            w.field(6, 5683)
        }
        #expect(full == ServiceDescriptor(name: name, version: SemVer(1, 2, 3), role: .sensor,
                                          capabilities: .read, priority: 0, port: 5683))
        // Each of keys 1, 2, 3 and 6 missing in turn.
        for missing: UInt8 in [1, 2, 3, 6] {
            #expect(throws: WireError.malformedCBOR) {
                try descriptor { w in
                    w.mapHeader(count: 4)
                    if missing != 1 { w.unsigned(1); w.text(name) } else { w.field(5, 1) }
                    if missing != 2 { w.unsigned(2); SemVer(1, 0, 0).encode(&w) } else { w.field(5, 1) }
                    if missing != 3 { w.field(3, 1) } else { w.field(5, 1) }
                    if missing != 6 { w.field(6, 1) } else { w.field(4, 1) }
                }
            }
        }
        // An empty or too long name, and an error after the name was read.
        #expect(throws: WireError.malformedCBOR) {
            try descriptor { w in w.mapHeader(count: 1); w.unsigned(1); w.text([UInt8]()) }
        }
        #expect(throws: WireError.malformedCBOR) {
            try descriptor { w in w.mapHeader(count: 1); w.unsigned(1); w.text([UInt8](repeating: 0x61, count: 25)) }
        }
        #expect(throws: WireError.truncated) {
            try descriptor { w in w.mapHeader(count: 2); w.unsigned(1); w.text(name) }
        }
    }

    /// `Announce` reads its services list in place (`readServices`) and
    /// `ConfigUpdate` keeps an entry's path as positions until its value is
    /// skipped: the lists, the repeated keys and the errors are as before.
    @Test func announceAndConfigUpdateLists() throws {
        let a = ServiceDescriptor(name: Array("temp".utf8), version: SemVer(1, 2, 3), role: .sensor,
                                  capabilities: .read, priority: 1, port: 5683)
        let b = ServiceDescriptor(name: Array("hum".utf8), version: SemVer(2, 0, 0), role: .sensor,
                                  capabilities: .read, priority: 0, port: 5684)
        #expect(try Announce.decode(Announce(services: [a, b], nodeName: Array("n1".utf8)).encode())
                == Announce(services: [a, b], nodeName: Array("n1".utf8)))
        #expect(try Announce.decode(Announce(services: [], nodeName: []).encode()).services.isEmpty)
        // Key 1 twice: the second list replaces the first.
        var w = CBORWriter()
        w.mapHeader(count: 2)
        w.unsigned(1); w.arrayHeader(count: 2); a.encode(&w); b.encode(&w)
        w.unsigned(1); w.arrayHeader(count: 1); b.encode(&w)
        #expect(try Announce.decode(w.bytes).services == [b])
        // Key 1 missing, too many services, a bad second descriptor.
        #expect(throws: WireError.malformedCBOR) { try Announce.decode([0xA1, 0x02, 0x61, 0x78]) }
        w = CBORWriter(); w.mapHeader(count: 1); w.unsigned(1); w.arrayHeader(count: 9)
        for _ in 0..<9 { a.encode(&w) }
        #expect(throws: WireError.malformedCBOR) { try Announce.decode(w.bytes) }
        w = CBORWriter(); w.mapHeader(count: 1); w.unsigned(1); w.arrayHeader(count: 2); a.encode(&w)
        w.mapHeader(count: 1); w.unsigned(1); w.text("x")
        #expect(throws: WireError.malformedCBOR) { try Announce.decode(w.bytes) }

        // ConfigUpdate: key 2 twice appends; paths and raw values kept.
        w = CBORWriter()
        w.mapHeader(count: 3)
        w.field(1, 7)
        w.unsigned(2); w.mapHeader(count: 2)
        w.text("a.b"); w.arrayHeader(count: 2); w.unsigned(1); w.text("z")
        w.text("c"); w.null()
        w.unsigned(2); w.mapHeader(count: 1); w.text("d.e"); w.unsigned(300)
        let u = try ConfigUpdate.decode(w.bytes)
        #expect(u.version == 7)
        #expect(Array(u.entries) == [
            ConfigUpdate.Entry(path: Array("a.b".utf8), value: [0x82, 0x01, 0x61, 0x7A]),
            ConfigUpdate.Entry(path: Array("c".utf8), value: [0xF6]),
            ConfigUpdate.Entry(path: Array("d.e".utf8), value: [0x19, 0x01, 0x2C]),
        ])
        // An empty path, a path over 48 bytes, invalid UTF-8, a truncated value, no version.
        for bad: [UInt8] in [[0xA2, 0x01, 0x01, 0x02, 0xA1, 0x60, 0x00],
                             [0xA2, 0x01, 0x01, 0x02, 0xA1, 0x78, 49] + [UInt8](repeating: 0x61, count: 49) + [0x00],
                             [0xA2, 0x01, 0x01, 0x02, 0xA1, 0x61, 0xFF, 0x00],
                             [0xA1, 0x02, 0xA0]] {
            #expect(throws: WireError.malformedCBOR) { try ConfigUpdate.decode(bad) }
        }
        #expect(throws: WireError.truncated) { try ConfigUpdate.decode([0xA2, 0x01, 0x01, 0x02, 0xA1, 0x61, 0x61, 0x19, 0x01]) }
    }
}
