import Testing
@testable import TDOSCore

@Suite struct MeshWireTests {
    @Test func forgedAndReplayedFramesAreCountedAndDropped() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 1500)
        // A heartbeat really sent by temp-a, captured off the wire.
        let hb = net.sent(1, .heartbeat).last!.frame
        let genuine = hb.encode(key: meshKeyring().sendKey)
        let peersBefore = net.nodes[0].peers
        net.inject(genuine, to: 0, from: meshAddress(1))
        #expect(net.nodes[0].counters.rejected(.replayed) == 1)
        // Forged: one payload byte flipped; or signed with another key.
        var forged = genuine
        forged[20] ^= 0x01
        net.inject(forged, to: 0, from: meshAddress(1))
        var impostor = hb
        impostor.sender = 0xBAD
        net.inject(impostor.encode(key: HMACSHA256Key(key: [UInt8](repeating: 7, count: 32))), to: 0, from: meshAddress(5))
        #expect(net.nodes[0].counters.rejected(.badTag) == 2)
        net.inject([0x10, 0x06], to: 0, from: meshAddress(5))
        #expect(net.nodes[0].counters.rejected(.truncated) == 1)
        #expect(net.nodes[0].peers == peersBefore, "nothing rejected moves any state")
        #expect(net.nodes[0].peer(0xBAD) == nil)
        #expect(net.hasEvent(0, .frameRejected(.badTag, from: meshAddress(5))))
        #expect(net.nodes[0].counters.rejectedTotal == 4)
        // The node carries on.
        net.run(for: 3000)
        #expect(net.nodes[0].peers.allSatisfy { $0.state == .alive })
    }

    @Test func unsupportedMajorGetsARateLimitedVersionError() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 100)
        var v2 = [UInt8](repeating: 0, count: 40)
        v2[0] = 0x20
        let stranger = NodeAddress(host: 0x0A00_00FE, port: 4210)
        let sentBefore = net.nodes[0].counters.versionErrorsSent
        net.inject(v2, to: 0, from: stranger)
        net.inject(v2, to: 0, from: stranger)
        #expect(net.nodes[0].counters.rejected(.badVersion(major: 2)) == 2)
        #expect(net.nodes[0].counters.versionErrorsSent == sentBefore + 1)
        #expect(net.nodes[0].counters.versionErrorsSuppressed == 1)
        net.run(for: 1000)
        net.inject(v2, to: 0, from: stranger)
        #expect(net.nodes[0].counters.versionErrorsSent == sentBefore + 2)
    }

    /// A node of another major answers our frames with a v1 version error: an
    /// event, no peer entry, no query ping-pong.
    @Test func versionErrorFromAnotherMajorDoesNotCreateAPeer() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 100)
        let stranger = NodeAddress(host: 0x0A00_00FE, port: 4210)
        let err = Frame(type: .error, sender: 0xF00D, id: MessageID(epoch: 1, sequence: 1), timestampMs: 0,
                        payload: ErrorReply(code: Status.unsupportedVersion.rawValue, majorMin: 2, majorMax: 3).encode(),
                        keyID: 1)
        net.inject(err.encode(key: meshKeyring().sendKey), to: 0, from: stranger)
        #expect(net.hasEvent(0, .versionMismatch(from: stranger, majorMin: 2, majorMax: 3)))
        #expect(net.nodes[0].peer(0xF00D) == nil)
    }

    /// A frame sent before a node's leave but delivered after it does not bring it back.
    @Test func aFrameDelayedPastTheLeaveDoesNotReviveTheNode() {
        var net = threeNodeNet()
        var held: Frame?
        net.startAll()
        net.run(for: 1500)
        net.dropIf = { from, to, frame in
            guard from == 1 && to == 0 && frame.type == .heartbeat && held == nil else { return false }
            held = frame
            return true
        }
        net.run(for: 1500)
        net.dropIf = nil
        net.nodes[1].leave(nowMs: net.now)
        net.drain(1)
        net.run(for: 10)
        #expect(net.nodes[0].peer(meshNodeID(1))?.state == .left)
        net.inject(held!.encode(key: meshKeyring().sendKey), to: 0, from: meshAddress(1))
        #expect(net.nodes[0].peer(meshNodeID(1))?.state == .left)
        #expect(net.nodes[0].counters.staleFrames == 1)
    }

    @Test func versionErrorReplyIsTheProtocolOne() {
        var node = MeshNode(nodeID: 1, name: meshBytes("n"), epoch: 1, keys: meshKeyring(), address: meshAddress(0),
                            services: [], rngSeed: 1)
        node.start(nowMs: 0)
        while node.pollAction() != nil {}
        node.handleDatagram([0x20, 0x01, 0x02], from: meshAddress(9), nowMs: 5)
        var reply: [UInt8]?
        while let a = node.pollAction() {
            if case .send(let to, let bytes) = a, to == meshAddress(9) { reply = bytes }
        }
        let frame = try? Frame.decode(reply ?? [], keys: meshKeyring())
        #expect(frame?.type == .error && frame?.versionMajor == 1)
        #expect((try? ErrorReply.decode(frame?.payload ?? [])) == ErrorReply.unsupportedVersion())
    }

    @Test func relayEnvelopeRoundTripsAndChecksTheInnerFrame() throws {
        let env = RelayEnvelope(destination: 0x0102_0304, frame: [1, 2, 3])
        #expect(try RelayEnvelope.decode(env.encode()) == env)
        var inner = Frame(type: .request, sender: 7, id: MessageID(epoch: 1, sequence: 1), timestampMs: 0,
                          payload: Request(service: 0, operation: .status).encode(), flags: [.relayed], keyID: 1)
        let bytes = inner.encode(key: meshKeyring().sendKey)
        #expect(RelayEnvelope.innerFrameIsForwardable(bytes, envelopeSender: 7))
        #expect(!RelayEnvelope.innerFrameIsForwardable(bytes, envelopeSender: 8), "sender must match")
        inner.flags = []
        #expect(!RelayEnvelope.innerFrameIsForwardable(inner.encode(key: meshKeyring().sendKey), envelopeSender: 7))
        #expect(!RelayEnvelope.innerFrameIsForwardable([0x10, 3, 8], envelopeSender: 7))
    }

    /// A relay does not forward an envelope whose inner frame claims another sender.
    @Test func relayRefusesSpoofedInnerSender() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 100)
        let spoofed = Frame(type: .request, sender: meshNodeID(1), id: MessageID(epoch: 1, sequence: 999),
                            timestampMs: 0, payload: Request(service: 0, operation: .status).encode(),
                            flags: [.relayed], keyID: 1).encode(key: meshKeyring().sendKey)
        let env = Frame(type: .relay, sender: meshNodeID(0), id: MessageID(epoch: 1, sequence: 5000), timestampMs: 0,
                        payload: RelayEnvelope(destination: meshNodeID(1), frame: spoofed).encode(), keyID: 1)
        net.inject(env.encode(key: meshKeyring().sendKey), to: 2, from: meshAddress(0))
        #expect(net.nodes[2].counters.relaysDropped == 1 && net.nodes[2].counters.relaysForwarded == 0)
    }

    @Test func probeArgumentsAndStatusRoundTrip() throws {
        #expect(ProbeArguments.decode(ProbeArguments(suspectedIncarnation: 9).encode()) == ProbeArguments(suspectedIncarnation: 9))
        #expect(ProbeArguments.decode([]) == nil)
        let s = NodeStatus(incarnation: 3, uptimeS: 100, servicesDigest: 0xBEEF, freeMemoryBytes: 1000, loadPercent: 5, activity: 7)
        #expect(try NodeStatus.decode(s.encode()) == s)
    }

    @Test func seededRandomIsDeterministicAndBounded() {
        var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42)
        for _ in 0..<100 { #expect(a.next() == b.next()) }
        var r = SeededRandom(seed: 1)
        for _ in 0..<1000 {
            let v = r.between(2000, 3000)
            #expect(v >= 2000 && v <= 3000)
        }
        // SplitMix64 reference value for seed 0.
        var z = SeededRandom(seed: 0)
        #expect(z.next() == 0xE220_A839_7B1D_CDAF)
    }

    /// Bounded tables: a full peer table refuses new peers (counted) but still serves their requests.
    @Test func tablesAreBounded() {
        var config = MeshConfig()
        config.peersMax = 2
        config.indirectProbeCount = 1
        var net = MeshTestNet(services: [[meshService(meshTemp, SemVer(1, 0, 0))], [], [], []], config: config)
        net.startAll()
        net.run(for: 100)
        #expect(net.nodes[0].peers.count == 2)
        #expect(net.nodes[0].counters.peerTableFull > 0)
        let id = net.call(3, meshTemp, SemVer(1, 0, 0))
        net.run(for: 10)
        // Node 3 is one of the two peers node 0 does not track (or is): either way it is served.
        #expect(meshValue(net.result(3, id))?.node == meshNodeID(0) || !net.nodes[3].peers.contains { $0.nodeID == meshNodeID(0) })
    }
}

@Suite struct MeshDeliveryTests {
    /// Frames the mesh does not consume reach the application; `send` reaches one peer or all.
    @Test func otherTypesAreDeliveredAndSendable() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 100)
        let update = ConfigUpdate(version: 3, entries: []).encode()
        let sentUpdate = net.nodes[0].send(.configUpdate, payload: update, to: meshNodeID(1), flags: [.ackRequested], nowMs: net.now)
        let sentApp = net.nodes[0].send(MessageType(rawValue: 200), payload: [0xA0], to: nil, nowMs: net.now)
        let sentNowhere = net.nodes[0].send(.metrics, payload: [0xA0], to: 0xDEAD, nowMs: net.now)
        net.drain(0)
        #expect(sentUpdate && sentApp)
        #expect(!sentNowhere, "no route to an unknown node")
        var delivered: [(Int, UInt8)] = []
        // Re-run the wire, capturing deliveries (the harness ignores them).
        for _ in 0..<3 {
            net.now += 1
            let due = net.queue
            net.queue.removeAll()
            for d in due {
                net.nodes[d.to].handleDatagram(d.bytes, from: d.from, nowMs: net.now)
                while let a = net.nodes[d.to].pollAction() {
                    if case .deliver(let f) = a { delivered.append((d.to, f.type.rawValue)) }
                }
            }
        }
        #expect(delivered.contains { $0 == (1, 8) })
        #expect(delivered.contains { $0 == (1, 200) } && delivered.contains { $0 == (2, 200) })
        #expect(!delivered.contains { $0 == (2, 8) })
    }

    /// The digest is on the wire (heartbeat key 5): nodes built from different
    /// code must agree. Checked against the documented byte layout, FNV-1a-32
    /// written out here independently of servicesDigest.
    @Test func servicesDigestFollowsTheDocumentedLayout() {
        let services = [
            ServiceDescriptor(name: Array("temp_sensor".utf8), version: SemVer(1, 2, 0x0304),
                              role: .sensor, capabilities: [.read, .subscribe], priority: 7, port: 4210),
            ServiceDescriptor(name: Array("logger".utf8), version: SemVer(2, 0, 1),
                              role: .storage, capabilities: Capabilities(rawValue: 0xA1B2_C3D4), priority: 0, port: 0xFFFE),
        ]
        var layout: [UInt8] = []
        for s in services {
            layout.append(UInt8(s.name.count))
            layout += s.name
            for v in [s.version.major, s.version.minor, s.version.patch] { layout += [UInt8(v >> 8), UInt8(v & 0xFF)] }
            layout.append(s.role.rawValue)
            let c = s.capabilities.rawValue
            layout += [UInt8(c >> 24), UInt8((c >> 16) & 0xFF), UInt8((c >> 8) & 0xFF), UInt8(c & 0xFF)]
            layout.append(s.priority)
            layout += [UInt8(s.port >> 8), UInt8(s.port & 0xFF)]
        }
        var h: UInt32 = 0x811C_9DC5
        for b in layout { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        #expect(servicesDigest(services) == UInt16(h >> 16) ^ UInt16(h & 0xFFFF))
        #expect(servicesDigest([]) == UInt16(0x811C) ^ UInt16(0x9DC5))
    }
}
