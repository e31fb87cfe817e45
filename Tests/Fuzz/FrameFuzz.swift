// libFuzzer entry for the receive path (make fuzz). The first byte picks a mode:
// even: the datagram as it comes off the wire (mostly stops at the tag check);
// odd: the rest is signed first with the fuzz key, so header parsing,
// decompression and every payload decoder are reached by hostile bytes too.
// Anything that traps is a bug: bad input must only ever throw.
import TDOSCore

let fuzzKeyring = Keyring(id: 1, key: Array(repeating: 0x42, count: 32))
var replay = ReplayWindow(capacity: 8)
var clock: UInt64 = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    var datagram = Array(input.dropFirst())
    if input[0] & 1 == 1 && datagram.count >= 4 {
        datagram[3] = datagram[3] & 0xC0 | 1  // key id 1
        datagram.append(contentsOf: fuzzKeyring.sendKey.mac(datagram[...])[0..<WireLimits.tagBytes])
    }
    clock &+= 1
    guard let frame = try? Frame.decode(datagram, keys: fuzzKeyring) else { return 0 }
    _ = try? replay.accept(sender: frame.sender, id: frame.id, nowMs: clock)
    precondition(frame.payload.count <= WireLimits.payloadBytesMax)
    switch frame.type.rawValue % 11 {
    case 1: _ = try? Announce.decode(frame.payload)
    case 2: _ = try? Query.decode(frame.payload)
    case 3: _ = try? Request.decode(frame.payload)
    case 4: _ = try? Response.decode(frame.payload)
    case 6: _ = try? Heartbeat.decode(frame.payload)
    case 7: _ = try? ErrorReply.decode(frame.payload)
    case 8: _ = try? ConfigUpdate.decode(frame.payload)
    case 9: _ = try? MetricsReport.decode(frame.payload)
    case 10: _ = try? Leave.decode(frame.payload)
    default:
        var r = CBORReader(frame.payload, depthMax: WireLimits.cborDepthMax)
        while !r.isAtEnd { if (try? r.skip()) == nil { break } }
    }
    // A decoded frame re-encodes to a frame that decodes to the same thing.
    var again = try! Frame.decode(frame.encode(key: fuzzKeyring.sendKey), keys: fuzzKeyring)
    again.flags.remove(.compressed)
    var original = frame
    original.flags.remove(.compressed)
    precondition(again.payload == original.payload && again.id == original.id && again.ref == original.ref)
    return 0
}
