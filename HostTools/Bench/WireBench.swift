import TDOSCore
import TDOSHost

/// Bytes on the wire and encode+authenticate+decode time for the four messages
/// the seed design measured in JSON (204, 184, 72 and 152 bytes, no auth).
func wireBench() {
    let keys = Keyring(id: 1, key: Array(repeating: 7, count: 32))
    let temp = ServiceDescriptor(name: Array("temp_sensor".utf8), version: SemVer(1, 2, 0), role: .sensor,
                                 capabilities: [.read, .subscribe], priority: 0, port: 4210)
    let cases: [(String, Int, Frame)] = [
        ("service announce", 204, Frame(type: .announce, sender: 0x0A0B0C0D, id: MessageID(epoch: 3, sequence: 1200),
                                         timestampMs: 86_400_000, payload: Announce(services: [temp], nodeName: Array("temp-a".utf8)).encode(), keyID: 1)),
        ("heartbeat+metrics", 184, Frame(type: .heartbeat, sender: 0x0A0B0C0D, id: MessageID(epoch: 3, sequence: 1201),
                                          timestampMs: 86_400_000, payload: Heartbeat(uptimeS: 86_400, freeMemoryBytes: 151_552, activity: 42,
                                                                                      loadPercent: 17, servicesDigest: 0xBEEF).encode(), keyID: 1)),
        ("rpc read request", 72, Frame(type: .request, sender: 0x01020304, id: MessageID(epoch: 9, sequence: 40_000),
                                        timestampMs: 86_400_000, payload: Request(service: serviceID("temp_sensor")).encode(),
                                        priority: .high, flags: [.ackRequested], keyID: 1)),
        ("rpc read response", 152, Frame(type: .response, sender: 0x0A0B0C0D, id: MessageID(epoch: 3, sequence: 1202),
                                          ref: MessageID(epoch: 9, sequence: 40_000), timestampMs: 86_400_000,
                                          payload: Response(value: 21.37, unit: .celsius, ageMs: 120).encode(), priority: .high, keyID: 1)),
    ]
    print("wire: message              bytes (seed JSON)   encode+auth+decode")
    for (name, json, frame) in cases {
        let wire = frame.encode(key: keys.sendKey)
        let iterations = 20_000
        var sink = 0
        let start = monotonicNs()
        for _ in 0..<iterations {
            let bytes = frame.encode(key: keys.sendKey)
            let back = try! Frame.decode(bytes, keys: keys)
            sink &+= back.payload.count
        }
        let perMessageUs = Double(monotonicNs() - start) / Double(iterations) / 1000
        precondition(sink == iterations * frame.payload.count)
        print("wire: \(name.rightPad(22)) \(String(wire.count).leftPad(5))   (\(json))          \(fmt(perMessageUs)) us")
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
    func rightPad(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

func fmt(_ v: Double, _ digits: Int = 2) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (v * p).rounded() / p
    return "\(r)"
}
