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
}
