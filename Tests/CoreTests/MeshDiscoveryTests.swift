import Testing
@testable import TDOSCore

let meshTemp = "temp_sensor"
let meshHumid = "humidity_sensor"

/// kernel (no services), temp-a (temp_sensor 1.2.0 primary), humid (humidity_sensor 1.0.0)
func threeNodeNet(config: MeshConfig = MeshConfig(), seed: UInt64 = 1) -> MeshTestNet {
    MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))], [meshService(meshHumid, SemVer(1, 0, 0))]],
                config: config, seed: seed, names: ["kernel", "temp-a", "humid"])
}

@Suite struct MeshDiscoveryTests {
    @Test func configDefaultsAreConsistent() {
        let c = MeshConfig()
        c.check()
        #expect(c.heartbeatIntervalMs == 1000 && c.rpcInitialTimeoutMs == 2000 && c.rpcBackoffFactor == 2)
        #expect(c.rpcRetransmitMax == 4 && c.rpcRandomFactorPercent == 150)
        #expect(c.breakerFailureThreshold == 3 && c.breakerOpenMs == 30_000 && c.indirectProbeCount == 3)
        #expect(c.retransmitSpanMaxMs == 93_000)
    }

    /// init builds the node through the memberwise initialiser and reserves
    /// its tables empty (reservedTable): each must be empty, hold its
    /// configured capacity, and the node's identity must be what was given.
    @Test func initReservesEveryTableEmpty() {
        var c = MeshConfig()
        c.staleCacheMax = 0
        c.rateLimit = RateLimiterConfig(ratePerS: 5, burst: 10)
        let node = MeshNode(config: c, nodeID: 7, name: meshBytes("n7"), epoch: 3, keys: meshKeyring(),
                            address: meshAddress(7), services: [meshService(meshTemp, SemVer(1, 0, 0))], rngSeed: 9)
        #expect(node.nodeID == 7 && node.epoch == 3 && node.name == meshBytes("n7") && node.address == meshAddress(7))
        #expect(node.services.count == 1 && node.incarnation == 0 && node.counters == MeshCounters())
        #expect(node.localDigest == servicesDigest(node.services) && node.rateLimiter != nil && !node.isRunning)
        #expect(node.nextCallRaw == 1 && node.nextServeRaw == 1 && node.client == nil)
        #expect(node.peerNames.isEmpty && node.peerNames.capacity >= c.peersMax)
        #expect(node.instanceDescriptors.isEmpty && node.instanceDescriptors.capacity >= c.instancesMax)
        #expect(node.callNames.isEmpty && node.callNames.capacity >= c.callsInFlightMax)
        #expect(node.callArguments.isEmpty && node.callArguments.capacity >= c.callsInFlightMax)
        #expect(node.callDescriptors.isEmpty && node.callDescriptors.capacity >= c.callsInFlightMax)
        #expect(node.triedNodes.isEmpty && node.triedNodes.capacity == 2 * c.callsInFlightMax)
        #expect(node.servePayloads.isEmpty && node.servePayloads.capacity >= c.dedupCacheMax + c.callsInFlightMax)
        #expect(node.staleValues.isEmpty)
        #expect(node.peerTable.isEmpty && node.peerTable.capacity == c.peersMax)
        #expect(node.actions.count == 0)
        let bare = MeshNode(nodeID: 8, name: [], epoch: 1, keys: meshKeyring(), address: meshAddress(8), services: [],
                            rngSeed: 1)
        #expect(bare.rateLimiter == nil && bare.staleValues.capacity >= MeshConfig().staleCacheMax)
    }

    @Test func everyNodeDiscoversEveryServiceAtStart() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 50)
        for i in 0..<3 {
            let names = net.nodes[i].registry.map { String(decoding: $0.descriptor.name, as: UTF8.self) }.sorted()
            #expect(names == [meshHumid, meshTemp], "node \(i) sees \(names)")
            #expect(net.nodes[i].peers.count == 2)
            #expect(net.nodes[i].peers.allSatisfy { $0.state == .alive })
        }
        #expect(net.nodes[0].peer(meshNodeID(1))?.name == meshBytes("temp-a"))
        #expect(net.hasEvent(0, .serviceAdded(node: meshNodeID(1), service: serviceID(meshBytes(meshTemp)))))
        #expect(net.hasEvent(0, .peerJoined(meshNodeID(2))))
    }

    @Test func lateJoinerLearnsEverythingAndIsLearned() {
        var net = threeNodeNet()
        net.start(0)
        net.start(1)
        net.run(for: 5000)
        net.start(2)
        net.run(for: 50)
        #expect(net.nodes[2].instances(of: meshBytes(meshTemp)).count == 1)
        #expect(net.nodes[0].instances(of: meshBytes(meshHumid)).count == 1)
        #expect(net.nodes[1].instances(of: meshBytes(meshHumid)).count == 1)
    }

    /// The start announce is lost: the first heartbeat from an unknown sender
    /// triggers a query, answered by a unicast announce.
    @Test func missedAnnounceIsRecoveredByQueryWithinAHeartbeat() {
        var net = threeNodeNet()
        net.dropIf = { from, _, frame in from == 1 && frame.type == .announce }
        net.startAll()
        net.run(for: 100)
        #expect(net.nodes[0].instances(of: meshBytes(meshTemp)).isEmpty)
        net.dropIf = nil
        net.run(for: 1200)
        #expect(net.nodes[0].instances(of: meshBytes(meshTemp)).count == 1)
        #expect(net.sent(0, .query).contains { $0.to == 1 })
    }

    /// After a partition heals every node rediscovers every live service with no operator action.
    @Test func partitionHealRediscoversServices() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 2000)
        net.cutLink(0, 1)
        net.cutLink(0, 2)
        net.run(for: 10_000)
        #expect(net.nodes[0].registry.isEmpty)
        #expect(net.nodes[0].peers.allSatisfy { $0.state == .dead })
        #expect(net.nodes[1].peer(meshNodeID(0))?.state == .dead)
        net.healLink(0, 1)
        net.healLink(0, 2)
        net.run(for: 1500)
        #expect(net.nodes[0].registry.count == 2)
        #expect(net.nodes[0].peers.allSatisfy { $0.state == .alive })
        #expect(net.nodes[1].peer(meshNodeID(0))?.state == .alive)
        #expect(net.eventTimes(0) { $0 == .peerJoined(meshNodeID(1)) }.count == 2)
    }

    @Test func cleanLeaveRemovesAtOnce() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 3000)
        let t = net.now
        net.nodes[1].leave(nowMs: t)
        net.drain(1)
        #expect(net.nodes[1].nextTimeoutMs == nil)
        net.run(for: 5)
        for i in [0, 2] {
            #expect(net.eventTimes(i) { $0 == .peerLeft(meshNodeID(1)) } == [t + 1])
            #expect(net.hasEvent(i, .serviceRemoved(node: meshNodeID(1), service: serviceID(meshBytes(meshTemp)), reason: .left)))
            #expect(net.nodes[i].instances(of: meshBytes(meshTemp)).isEmpty)
            #expect(net.nodes[i].peer(meshNodeID(1))?.state == .left)
        }
        // A left node stays quiet: no dead declaration later.
        net.run(for: 10_000)
        #expect(net.eventTimes(0) { $0 == .peerDead(meshNodeID(1)) }.isEmpty)
    }

    /// An instance that stops being confirmed (its node's digest changed and the
    /// new announce never arrives) expires serviceTTLMs after its own last confirmation.
    @Test func unconfirmedInstanceExpiresOnItsOwnTimer() {
        var net = threeNodeNet()
        net.startAll()
        net.run(for: 4000)
        let confirmed = net.nodes[0].instances(of: meshBytes(meshTemp))[0].confirmedMs
        // temp-a changes version; its announces to the kernel are lost from now on.
        net.dropIf = { from, to, frame in from == 1 && to == 0 && frame.type == .announce }
        net.nodes[1].setServices([meshService(meshTemp, SemVer(1, 3, 0))], nowMs: net.now)
        net.drain(1)
        net.run(for: 40_000)
        let ttl = UInt64(MeshConfig().serviceTTLMs)
        let removed = net.eventTimes(0) { $0 == .serviceRemoved(node: meshNodeID(1), service: serviceID(meshBytes(meshTemp)), reason: .expired) }
        #expect(removed == [confirmed + ttl])
        // The node itself stays alive, and the humidity instance (confirmed by digest) is untouched.
        #expect(net.nodes[0].peer(meshNodeID(1))?.state == .alive)
        #expect(net.nodes[0].instances(of: meshBytes(meshHumid)).count == 1)
        // Node 2 got the new announce.
        #expect(net.nodes[2].instances(of: meshBytes(meshTemp)).first?.descriptor.version == SemVer(1, 3, 0))
    }

    @Test func servicesDigestCoversV10FieldsAndOrder() {
        let a = meshService(meshTemp, SemVer(1, 2, 0))
        let b = meshService(meshHumid, SemVer(1, 0, 0))
        #expect(servicesDigest([a, b]) != servicesDigest([b, a]))
        var a2 = a
        a2.priority = 1
        #expect(servicesDigest([a]) != servicesDigest([a2]))
        #expect(servicesDigest([a]) == servicesDigest([meshService(meshTemp, SemVer(1, 2, 0))]))
    }
}
