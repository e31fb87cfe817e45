import Testing
@testable import TDOSCore

@Suite struct MeshHealthTests {
    /// touch's per-peer bookkeeping (Peer.heard), branch by branch.
    @Test func peerHeardSortsFramesByEpochAndState() {
        typealias H = MeshNode.Peer.Heard
        func peer(_ state: PeerState, epoch: UInt32 = 5) -> MeshNode.Peer {
            var p = MeshNode.Peer(nodeID: 9, epoch: epoch, lastHeardMs: 0)
            p.state = state
            p.incarnation = 4
            p.announcedDigest = 0x1234
            p.relayVia = 3
            p.heardDirectMs = 7
            return p
        }
        var p = peer(.alive)
        #expect(p.heard(MessageID(epoch: 4, sequence: 9)).rawValue == H.stale.rawValue)
        #expect(p.epoch == 5 && p.incarnation == 4 && p.announcedDigest == 0x1234)
        #expect(p.heard(MessageID(epoch: 5, sequence: 9)).rawValue == 0 && p.state == .alive)
        #expect(p.heard(MessageID(epoch: 6, sequence: 0)).rawValue
                == H.newEpoch.rawValue | H.restarted.rawValue | H.needsQuery.rawValue)
        #expect(p.epoch == 6 && p.incarnation == 0 && p.announcedDigest == nil && p.relayVia == 3)
        p = peer(.suspect)
        #expect(p.heard(MessageID(epoch: 5, sequence: 1)).rawValue == H.recovered.rawValue && p.state == .alive)
        p = peer(.dead)
        #expect(p.heard(MessageID(epoch: 6, sequence: 1)).rawValue
                == H.newEpoch.rawValue | H.joined.rawValue | H.needsQuery.rawValue)
        #expect(p.state == .alive && p.announcedDigest == nil && p.relayVia == nil && p.heardDirectMs == nil)
        p = peer(.left)
        p.leaveID = MessageID(epoch: 5, sequence: 10)
        #expect(p.heard(MessageID(epoch: 5, sequence: 9)).rawValue == H.stale.rawValue && p.state == .left)
        #expect(p.heard(MessageID(epoch: 5, sequence: 11)).rawValue == H.joined.rawValue | H.needsQuery.rawValue)
        #expect(p.state == .alive && p.epoch == 5 && p.incarnation == 4)
    }

    /// Crash at 10 offsets across a heartbeat period: declared dead <= 3 s after
    /// the crash every time, 2.5 s median (deadAfterMs after the last heartbeat).
    @Test func crashedNodeIsDetectedWithinThreeSeconds() {
        var latencies: [UInt64] = []
        for offset in 0..<10 {
            var net = threeNodeNet(seed: UInt64(offset))
            net.startAll()
            net.run(for: 5000 + UInt64(offset) * 100)
            let crashAt = net.now
            net.crash(1)
            net.run(for: 6000)
            let dead = net.eventTimes(0) { $0 == .peerDead(meshNodeID(1)) }
            let suspected = net.eventTimes(0) { $0 == .peerSuspected(meshNodeID(1)) }
            #expect(dead.count == 1 && suspected.count == 1)
            guard let d = dead.first, let s = suspected.first else { continue }
            #expect(d - s == 500, "suspect at last-heard + 2.5 s, dead at + 3 s")
            latencies.append(d - crashAt)
            #expect(net.hasEvent(0, .serviceRemoved(node: meshNodeID(1), service: serviceID(meshBytes(meshTemp)), reason: .dead)))
            #expect(net.nodes[0].instances(of: meshBytes(meshTemp)).isEmpty)
        }
        latencies.sort()
        #expect(latencies.last! <= 3001)
        let median = (latencies[4] + latencies[5]) / 2
        #expect(median <= 3000)
        #expect(latencies.first! >= 1800)
    }

    /// One broken link (kernel <-> temp-a) while the third node hears both:
    /// probes through it refute every suspicion, the peers route through it,
    /// and nobody is evicted. Calls go through the relay.
    @Test func indirectProbesPreventEvictionOverOneBrokenLink() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 3000)
        net.cutLink(0, 1)
        net.run(for: 30_000)
        #expect(net.eventTimes(0) { $0 == .peerDead(meshNodeID(1)) }.isEmpty)
        #expect(net.eventTimes(1) { $0 == .peerDead(meshNodeID(0)) }.isEmpty)
        #expect(net.nodes[0].peer(meshNodeID(1))?.state == .alive)
        #expect(net.nodes[0].peer(meshNodeID(1))?.relayVia == meshNodeID(2))
        #expect(net.nodes[1].peer(meshNodeID(0))?.relayVia == meshNodeID(2))
        #expect(net.hasEvent(0, .relayUsed(target: meshNodeID(1), via: meshNodeID(2))))
        #expect(net.nodes[2].counters.relaysForwarded > 0)
        // The service stays registered (relayed status answers confirm its digest).
        #expect(net.nodes[0].instances(of: meshBytes(meshTemp)).count == 1)
        // A call crosses the relay: the request arrives flagged `relayed`.
        let id = net.call(0, meshTemp, SemVer(1, 0, 0))
        net.run(for: 100)
        guard case .value(let v)? = net.result(0, id) else {
            Issue.record("no value: \(String(describing: net.result(0, id)))")
            return
        }
        #expect(v.node == meshNodeID(1) && !v.isStale)
        #expect(net.sent(0, .request).contains { $0.frame.type == .relay && $0.inner?.flags.contains(.relayed) == true })
        // The link heals: back to the direct path.
        net.healLink(0, 1)
        net.run(for: 1500)
        #expect(net.nodes[0].peer(meshNodeID(1))?.relayVia == nil)
        #expect(net.hasEvent(0, .directPathRestored(meshNodeID(1))))
    }

    /// kernel reaches temp-a through helper B; then B's own link to temp-a
    /// breaks and only helper C reaches it: the route moves to C after one
    /// suspicion, nobody is declared dead, and the route does not flap.
    @Test func aRelayThatStopsWorkingIsReplaced() {
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))], [], []], seed: 3)
        net.startAll()
        net.run(for: 2000)
        net.cutLink(0, 1)
        net.run(for: 5000)
        let firstVia = net.nodes[0].peer(meshNodeID(1))?.relayVia
        #expect(firstVia == meshNodeID(2) || firstVia == meshNodeID(3))
        let other = firstVia == meshNodeID(2) ? 3 : 2
        net.cutLink(Int(firstVia! - 0x100), 1)
        net.run(for: 20_000)
        #expect(net.nodes[0].peer(meshNodeID(1))?.relayVia == meshNodeID(other))
        #expect(net.nodes[0].peer(meshNodeID(1))?.state == .alive)
        #expect(net.eventTimes(0) { $0 == .peerDead(meshNodeID(1)) }.isEmpty)
        let suspicions = net.eventTimes(0) { $0 == .peerSuspected(meshNodeID(1)) }
        #expect(suspicions.count <= 2, "\(suspicions)")
        #expect(net.nodes[0].instances(of: meshBytes(meshTemp)).count == 1)
    }

    /// The link breaks while a call waits for its answer: as soon as a relay
    /// route is found the request goes out again through it, long before the
    /// next scheduled retransmission.
    @Test func aCallInFlightFollowsTheNewRelayRoute() {
        var net = threeNodeNet()
        net.serveModes[1] = .later(500, Response(value: 9))
        net.startAll()
        net.run(for: 2000)
        let t0 = net.now
        let id = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 10_000)
        net.run(for: 100)
        net.cutLink(0, 1)  // the answer (due at +500 ms) is lost
        net.run(for: 10_000)
        #expect(meshValue(net.result(0, id))?.response.value == 9)
        let relayAt = net.eventTimes(0) { $0 == .relayUsed(target: meshNodeID(1), via: meshNodeID(2)) }.first
            ?? net.eventTimes(1) { $0 == .relayUsed(target: meshNodeID(0), via: meshNodeID(2)) }.first ?? 0
        #expect(relayAt > 0)
        #expect(net.completedAt(0, id)! < t0 + 6000, "the 6 s retransmission was not needed")
        #expect(net.served[1].count == 1)
    }

    /// The same broken link with nobody to relay: the peer is evicted.
    @Test func withoutAHelperTheBrokenLinkEvicts() {
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))]])
        net.startAll()
        net.run(for: 3000)
        net.cutLink(0, 1)
        net.run(for: 5000)
        #expect(net.eventTimes(0) { $0 == .peerDead(meshNodeID(1)) }.count == 1)
    }

    /// Heartbeats from temp-a to the kernel are lost for a while, but unicast
    /// works: the kernel suspects it and probes it directly; temp-a refutes by
    /// raising its incarnation (and broadcasting it).
    @Test func suspectedNodeRefutesWithAHigherIncarnation() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 2000)
        net.dropIf = { from, _, frame in from == 1 && frame.type == .heartbeat }
        net.run(for: 2800)
        net.dropIf = nil
        #expect(net.eventTimes(0) { $0 == .peerSuspected(meshNodeID(1)) }.count >= 1)
        #expect(net.eventTimes(0) { $0 == .peerRecovered(meshNodeID(1)) }.count >= 1)
        #expect(net.eventTimes(0) { $0 == .peerDead(meshNodeID(1)) }.isEmpty)
        #expect(net.nodes[1].incarnation >= 1)
        #expect(net.hasEvent(1, .refuted(incarnation: 1)))
        net.run(for: 1500)
        #expect(net.nodes[0].peer(meshNodeID(1))?.incarnation == net.nodes[1].incarnation)
        #expect(net.nodes[2].peer(meshNodeID(1))?.incarnation == net.nodes[1].incarnation)
    }

    /// A rebooted node (new epoch) is recognised at once: restart event, services re-queried.
    @Test func rebootWithANewEpochIsRecognised() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 2000)
        net.nodes[1] = MeshNode(nodeID: meshNodeID(1), name: meshBytes("temp-a"), epoch: 2, keys: meshKeyring(),
                                address: meshAddress(1), services: [meshService(meshTemp, SemVer(1, 4, 0))], rngSeed: 99)
        net.start(1)
        net.run(for: 100)
        #expect(net.hasEvent(0, .peerRestarted(meshNodeID(1))))
        #expect(net.nodes[0].peer(meshNodeID(1))?.epoch == 2)
        #expect(net.nodes[0].instances(of: meshBytes(meshTemp)).first?.descriptor.version == SemVer(1, 4, 0))
        #expect(net.eventTimes(0) { $0 == .peerDead(meshNodeID(1)) }.isEmpty)
    }

    @Test func sameSeedSameTraceDifferentSeedDifferentTrace() {
        func trace(_ seed: UInt64) -> [UInt8] {
            var net = threeNodeNet(seed: seed)
            net.startAll()
            net.run(for: 4000)
            net.crash(2)
            _ = net.call(0, meshTemp, SemVer(1, 0, 0))
            net.run(for: 6000)
            var out: [UInt8] = []
            for r in net.log {
                out.append(contentsOf: withUnsafeBytes(of: r.at.bigEndian) { Array($0) })
                out.append(contentsOf: r.frame.encode(key: meshKeyring().sendKey))
            }
            return out
        }
        #expect(trace(7) == trace(7))
        #expect(trace(7) != trace(8))
    }
}
