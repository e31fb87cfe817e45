import Testing
@testable import TDOSCore

/// Many seeds of a lossy, duplicating, reordering network with crashes and
/// reboots: invariants that must hold whatever happens. (The full many-seed
/// simulator lives elsewhere; this is the mesh's own smoke test.)
@Suite struct MeshStressTests {
    @Test(arguments: 1...12)
    func invariantsHoldUnderFaults(seed: Int) {
        var config = MeshConfig()
        config.rpcInitialTimeoutMs = 300
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0), priority: 0)],
                                         [meshService(meshTemp, SemVer(1, 3, 0), priority: 1)],
                                         [meshService(meshHumid, SemVer(1, 0, 0))], []],
                              config: config, seed: UInt64(seed))
        net.lossPercent = 10
        net.duplicatePercent = 5
        net.jitterMs = 30
        net.faultRNG = SeededRandom(seed: UInt64(seed) &* 7919)
        var rng = SeededRandom(seed: UInt64(seed))
        var started: [(node: Int, id: CallID, at: UInt64, deadline: UInt64, boot: Int)] = []
        var epochs = [UInt32](repeating: 1, count: 5)
        var crashes: [(node: Int, at: UInt64)] = []
        net.startAll()
        for step in 0..<120 {
            net.run(for: 500)
            // A call from a random live node.
            let caller = Int(rng.below(5))
            if !net.crashed.contains(caller) {
                let deadline = UInt32(500 + rng.below(4000))
                let name = rng.below(4) == 0 ? meshHumid : meshTemp
                let id = net.call(caller, name, SemVer(1, 0, 0), deadlineMs: deadline)
                started.append((caller, id, net.now, UInt64(deadline), net.boots[caller]))
            }
            // Now and then a server crashes, and later reboots with a new epoch.
            if step % 20 == 7 {
                let victim = 1 + Int(rng.below(3))
                net.crash(victim)
                crashes.append((victim, net.now))
            }
            if step % 20 == 15, let back = net.crashed.first {
                epochs[back] += 1
                net.boots[back] += 1
                let services = back == 1 ? [meshService(meshTemp, SemVer(1, 2, 0), priority: 0)]
                    : back == 2 ? [meshService(meshTemp, SemVer(1, 3, 0), priority: 1)]
                    : [meshService(meshHumid, SemVer(1, 0, 0))]
                net.nodes[back] = MeshNode(config: config, nodeID: meshNodeID(back), name: meshBytes("n"), epoch: epochs[back],
                                           keys: meshKeyring(), address: meshAddress(back), services: services,
                                           rngSeed: UInt64(seed * 100 + step))
                net.crashed.remove(back)
                net.start(back)
            }
        }
        net.run(for: 10_000)
        // Every call of a node that did not crash completed exactly once, by its deadline.
        for c in started where !crashes.contains(where: { $0.node == c.node && $0.at >= c.at }) {
            let done = net.completions.filter { $0.node == c.node && $0.id == c.id && $0.boot == c.boot }
            #expect(done.count == 1, "seed \(seed): call \(c.id.raw) on node \(c.node) completed \(done.count) times")
            if let d = done.first { #expect(d.at <= c.at + c.deadline, "seed \(seed): late completion") }
        }
        // Tables stay within their limits.
        for i in net.nodes.indices where !net.crashed.contains(i) {
            let n = net.nodes[i]
            #expect(n.peers.count <= config.peersMax && n.registry.count <= config.instancesMax + servicesPerNodeMax)
            #expect(n.callsInFlight <= config.callsInFlightMax && n.serveEntries <= config.dedupCacheMax + config.callsInFlightMax)
        }
        // Most calls got a value (fresh or stale): the mesh keeps working through the faults.
        let values = net.completions.filter { if case .value = $0.result { return true } else { return false } }.count
        #expect(values * 10 >= net.completions.count * 7, "seed \(seed): \(values) values of \(net.completions.count)")
        // Datagrams duplicated by the network were caught by the replay windows.
        #expect(net.nodes[0].counters.rejected(.replayed) > 0)
    }
}
