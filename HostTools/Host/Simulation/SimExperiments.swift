// Focused scenarios over the simulation, shared by the tests (Tests/CoreTests/
// Simulation*.swift) and the benchmarks (`tdos-bench sim`). Each is one seed,
// deterministic, and returns what it measured; the invariants of SimWorld
// are checked throughout (a failure shows in `failures`).
import TDOSCore
import TDOSNode

public enum SimExperiments {
    static func world(seed: UInt64, nodes: Int, mesh: MeshConfig, name: String) -> SimWorld {
        let configs = SimLayout.configs(seed: seed, nodeCount: nodes, mesh: mesh)
        return SimWorld(seed: seed, configs: configs, replayCommand: "swift test --filter \(name)  (seed \(seed))")
    }

    /// Mesh limits for large runs: peersMax is capped by WireLimits.replayPeersMax (64).
    public static func largeMesh(nodes: Int) -> MeshConfig {
        var m = MeshConfig()
        m.peersMax = min(WireLimits.replayPeersMax, max(m.peersMax, nodes + 2))
        m.instancesMax = max(m.instancesMax, 2 * nodes + 8)
        return m
    }

    public struct Detection {
        /// One per observer: crash to `peerDead` at that observer, ms.
        public var timesMs: [UInt64] = []
        public var failures: [String] = []
    }

    /// A node crashes at a seeded moment of a quiet mesh; how long each other node takes to declare it dead.
    public static func detection(seed: UInt64, nodes: Int = 6, mesh: MeshConfig = MeshConfig(), lossPercent: Double = 0) -> Detection {
        let w = world(seed: seed, nodes: nodes, mesh: mesh, name: "detection")
        w.faults.lossPercent = lossPercent
        var r = SeededRandom(seed: seed ^ 0xDE7E)
        let victim = 1 + Int(r.below(UInt64(nodes - 1)))
        let crashUs = 8_000_000 + r.below(2_000_000)
        var out = Detection()
        var seen = [Bool](repeating: false, count: nodes)
        w.onMeshEvent = { i, e in
            if case .peerDead(let id) = e, id == w.nodes[victim].nodeID, !seen[i], w.nowUs >= crashUs {
                seen[i] = true
                out.timesMs.append((w.nowUs - crashUs) / 1000)
            }
        }
        for i in 0..<nodes { w.boot(i) }
        w.schedule(atUs: crashUs) { w in w.crash(victim) }
        w.run(untilUs: crashUs + 8_000_000)
        out.failures = w.failures
        return out
    }

    public struct Evictions {
        public var evictions = 0
        public var suspicions = 0
        public var nodeHours = 0.0
        public var failures: [String] = []
    }

    /// Only packet loss (no crashes, no partitions): every `peerDead` is a false eviction.
    public static func falseEvictions(seed: UInt64, nodes: Int = 6, lossPercent: Double, durationMs: UInt64,
                                      mesh: MeshConfig = MeshConfig(), trace: ((String) -> Void)? = nil) -> Evictions {
        let w = world(seed: seed, nodes: nodes, mesh: mesh, name: "falseEvictions")
        if let trace { w.traceEnabled = true; w.traceSink = trace }
        w.faults.lossPercent = lossPercent
        var out = Evictions()
        w.onMeshEvent = { _, e in
            switch e {
            case .peerDead: out.evictions += 1
            case .peerSuspected: out.suspicions += 1
            default: break
            }
        }
        for i in 0..<nodes { w.boot(i) }
        w.run(untilUs: durationMs * 1000)
        out.nodeHours = Double(nodes) * Double(durationMs) / 3_600_000
        out.failures = w.failures
        return out
    }

    public struct Failover {
        public var completed = false
        public var onBackup = false
        public var fresh = false
        /// Primary crash to the call's completion, ms.
        public var failoverMs: UInt64 = 0
        public var withinDeadline = false
        public var result: CallResult?
        public var failures: [String] = []
    }

    /// Node 0 reads temp_sensor ^1.0; the primary (node 1) crashes as the
    /// request leaves; the backup (node 2, priority 1) must answer within the deadline.
    public static func failover(seed: UInt64, deadlineMs: UInt32, mesh: MeshConfig = MeshConfig()) -> Failover {
        let w = world(seed: seed, nodes: 3, mesh: mesh, name: "failover")
        var r = SeededRandom(seed: seed ^ 0xFA11)
        let atUs = 6_000_000 + r.below(2_000_000)
        var k: Int?
        for i in 0..<3 { w.boot(i) }
        w.schedule(atUs: atUs) { w in
            k = w.startCall(on: 0, service: bytes("temp_sensor"), version: SemVer(1, 0, 0), deadlineMs: deadlineMs)
            w.crash(1)
        }
        w.run(untilUs: atUs + UInt64(deadlineMs) * 1000 + 500_000)
        var out = Failover()
        out.failures = w.failures
        guard let k, let result = w.calls[k].result, let done = w.calls[k].completedUs else { return out }
        out.completed = true
        out.result = result
        out.failoverMs = (done - atUs) / 1000
        out.withinDeadline = done <= atUs + UInt64(deadlineMs) * 1000
        if case .value(let v) = result {
            out.onBackup = v.node == w.nodes[2].nodeID
            out.fresh = !v.isStale
        }
        return out
    }

    /// Time from a simultaneous start until every node sees every other node's
    /// services (nil if not by `limitMs`). Checked every 50 ms of virtual time.
    public static func discovery(seed: UInt64, nodes: Int, mesh: MeshConfig, limitMs: UInt64 = 60_000) -> (ms: UInt64?, failures: [String]) {
        let w = world(seed: seed, nodes: nodes, mesh: mesh, name: "discovery")
        var r = SeededRandom(seed: seed ^ 0xD15C)
        var expected = 0
        for n in w.nodes { expected += n.config.services.count }
        for i in 0..<nodes {
            w.schedule(atUs: r.below(100_000)) { w in w.boot(i) }
        }
        var t: UInt64 = 50_000
        while t <= limitMs * 1000 {
            w.run(untilUs: t)
            if !w.failures.isEmpty { return (nil, w.failures) }
            if w.nodes.allSatisfy({ $0.isUp && $0.runtime!.mesh.registry.count == expected }) { return (t / 1000, []) }
            t += 50_000
        }
        return (nil, w.failures)
    }

    /// Like `discovery`, but only asks that every node sees at least one
    /// instance of every replicated service name (run by 2 or more nodes: what
    /// a client needs) — the measure for meshes larger than the peer table
    /// (peersMax <= 64): a node tracks the first 64 peers it hears, so a
    /// service on one node only (the kernel) stays invisible to some nodes.
    public static func nameDiscovery(seed: UInt64, nodes: Int, mesh: MeshConfig, limitMs: UInt64 = 60_000) -> (ms: UInt64?, failures: [String]) {
        let w = world(seed: seed, nodes: nodes, mesh: mesh, name: "discovery")
        var r = SeededRandom(seed: seed ^ 0xD15C)
        var names: [[UInt8]] = []
        for n in w.nodes {
            for s in n.config.services where !names.contains(s.name) {
                let count = w.nodes.filter { $0.config.services.contains { $0.name == s.name } }.count
                if count >= 2 { names.append(s.name) }
            }
        }
        for i in 0..<nodes {
            w.schedule(atUs: r.below(100_000)) { w in w.boot(i) }
        }
        var t: UInt64 = 50_000
        while t <= limitMs * 1000 {
            w.run(untilUs: t)
            if !w.failures.isEmpty { return (nil, w.failures) }
            let all = w.nodes.allSatisfy { n in
                guard let rt = n.runtime else { return false }
                let reg = rt.mesh.registry
                return names.allSatisfy { name in reg.contains { $0.descriptor.name == name } }
            }
            if all { return (t / 1000, []) }
            t += 50_000
        }
        // Not converged: say what is missing, and what the first lacking node counted.
        var notes: [String] = []
        for name in names {
            let lacking = w.nodes.filter { n in !(n.runtime?.mesh.registry.contains { $0.descriptor.name == name } ?? false) }
            if let first = lacking.first, let m = first.runtime?.mesh {
                let c = m.counters
                notes.append("\(lacking.count) nodes lack \(String(decoding: name, as: UTF8.self)); e.g. n\(first.index): \(m.peers.count) peers, \(m.registry.count) instances, peerTableFull \(c.peerTableFull), registryFull \(c.registryFull), rateLimited \(c.rateLimited), actionsDropped \(c.actionsDropped)")
            }
        }
        return (nil, w.failures + notes)
    }

    /// Two halves cut apart for `cutMs` (long enough that each declares the
    /// other dead), then healed: time until every node sees every service
    /// again, with no operator action.
    public static func partitionHeal(seed: UInt64, nodes: Int = 6, cutMs: UInt64 = 15_000, oneWay: Bool = false,
                                     mesh: MeshConfig = MeshConfig()) -> (ms: UInt64?, failures: [String]) {
        let w = world(seed: seed, nodes: nodes, mesh: mesh, name: "partitionHeal")
        var r = SeededRandom(seed: seed ^ 0x9A27)
        for i in 0..<nodes { w.boot(i) }
        let cutUs = 5_000_000 + r.below(1_000_000)
        let a = Array(0..<(nodes / 2)), b = Array((nodes / 2)..<nodes)
        var links: [(Int, Int)] = []
        w.schedule(atUs: cutUs) { w in links = w.partition(a, b, oneWay: oneWay) }
        let healUs = cutUs + cutMs * 1000
        w.schedule(atUs: healUs) { w in w.heal(links) }
        w.run(untilUs: healUs)
        if !w.failures.isEmpty { return (nil, w.failures) }
        var t = healUs
        let bound = healUs + 60_000_000
        while t < bound {
            t += 50_000
            w.run(untilUs: t)
            if !w.failures.isEmpty { return (nil, w.failures) }
            if w.converged && w.checkConvergence(report: false) == 0 {
                let allAlive = w.nodes.allSatisfy { v in
                    w.nodes.allSatisfy { n in n.index == v.index || v.runtime!.mesh.peer(n.nodeID)?.state == .alive }
                }
                if allAlive { return ((t - healUs) / 1000, []) }
            }
        }
        return (nil, w.failures)
    }

    public struct Throughput {
        public var virtualS: Double
        public var steps: UInt64
        public var messagesPerNodePerS: Double
        public var deliveriesPerNodePerS: Double
        public var failures: [String]
    }

    /// A quiet mesh with the weather station and periodic client reads.
    public static func steadyRun(seed: UInt64, nodes: Int, durationMs: UInt64, mesh: MeshConfig) -> Throughput {
        let w = world(seed: seed, nodes: nodes, mesh: mesh, name: "steadyRun")
        for i in 0..<nodes { w.boot(i) }
        var t: UInt64 = 2_000_000
        var r = SeededRandom(seed: seed ^ 0x57EA)
        while t < durationMs * 1000 {
            let caller = Int(r.below(UInt64(nodes)))
            w.schedule(atUs: t) { w in
                w.startCall(on: caller, service: bytes("temp_sensor"), version: SemVer(1, 0, 0), deadlineMs: 3000)
            }
            t += 1_000_000
        }
        w.run(untilUs: durationMs * 1000)
        let s = Double(durationMs) / 1000
        return Throughput(virtualS: s, steps: w.steps,
                          messagesPerNodePerS: Double(w.messagesSentByNodes) / Double(nodes) / s,
                          deliveriesPerNodePerS: Double(w.datagramsDelivered) / Double(nodes) / s,
                          failures: w.failures)
    }
}

// MARK: - Subscriptions (issue 7)

extension SimExperiments {
    public struct SubscriptionRun {
        /// Notifications node 0 received: (virtual ms, publisher node index, sequence, value).
        public var notifications: [(atMs: UInt64, publisher: Int, sequence: UInt32, value: Double?)] = []
        /// Primary crash to the first notification from the backup, ms.
        public var failoverMs: UInt64?
        /// Largest gap between two notifications outside the failover, ms.
        public var steadyGapMaxMs: UInt64 = 0
        /// Subscriber crash to the backup dropping its entry, ms.
        public var lapseMs: UInt64?
        /// Publishers' subscription tables never grew past one entry for one subscriber.
        public var duplicatesAtPublisher = false
        /// Sequences from one publisher strictly increasing (no duplicate or reordered push delivered).
        public var ordered = true
        public var failures: [String] = []
    }

    /// Node 0 (kernel) subscribes to temp_sensor ^1.0 (min 500 ms, max 2 s,
    /// lease `leaseMs`); node 1 is the primary, node 2 the backup (priority 1),
    /// both sampling at 1 Hz. The primary crashes at a seeded moment; later the
    /// subscriber crashes and the backup must drop its entry within the lease.
    public static func subscription(seed: UInt64, lossPercent: Double = 0, leaseMs: UInt32 = 9_000,
                                    mesh: MeshConfig = MeshConfig()) -> SubscriptionRun {
        let w = world(seed: seed, nodes: 3, mesh: mesh, name: "subscription")
        w.faults.lossPercent = lossPercent
        var r = SeededRandom(seed: seed ^ 0x5B5C)
        let subscribeUs = 4_000_000 + r.below(1_000_000)
        let crashUs = subscribeUs + 6_000_000 + r.below(3_000_000)
        let subscriberCrashUs = crashUs + 12_000_000 + r.below(2_000_000)
        var out = SubscriptionRun()
        var lastSeq: [Int: UInt32] = [:]
        for i in 0..<3 { w.boot(i) }
        w.schedule(atUs: subscribeUs) { w in
            guard let rt = w.nodes[0].runtime else { return }
            rt.subscriptionObserver = { e in
                guard case .notification(let n) = e, let p = w.index(ofNodeID: n.publisher) else { return }
                if let last = lastSeq[p], n.sequence <= last, n.sequence != 1 { out.ordered = false }
                lastSeq[p] = n.sequence
                out.notifications.append((w.nowUs / 1000, p, n.sequence, n.value))
            }
            _ = rt.subscribe(service: bytes("temp_sensor"), minIntervalMs: 500, maxIntervalMs: 2_000, leaseMs: leaseMs)
            w.runNode(0)
        }
        w.schedule(atUs: crashUs) { w in w.crash(1) }
        w.schedule(atUs: subscriberCrashUs) { w in w.crash(0) }
        // Watch the backup's table every 10 ms of virtual time.
        var t = subscribeUs
        while t < subscriberCrashUs + UInt64(leaseMs) * 1000 + 2_000_000 {
            t += 10_000
            w.schedule(atUs: t) { w in
                guard let backup = w.nodes[2].runtime else { return }
                let n = backup.pubsub.publicationCount(subscriber: w.nodes[0].nodeID)
                if n > 1 { out.duplicatesAtPublisher = true }
                if w.nowUs > subscriberCrashUs, n == 0, out.lapseMs == nil {
                    out.lapseMs = (w.nowUs - subscriberCrashUs) / 1000
                }
            }
        }
        w.run(untilUs: t + 10_000)
        out.failures = w.failures
        if let first = out.notifications.first(where: { $0.publisher == 2 && $0.atMs * 1000 >= crashUs }) {
            out.failoverMs = first.atMs - crashUs / 1000
        }
        var prev: UInt64?
        for n in out.notifications {
            if let p = prev, !(p * 1000 < crashUs && n.atMs * 1000 >= crashUs) { out.steadyGapMaxMs = max(out.steadyGapMaxMs, n.atMs - p) }
            prev = n.atMs
        }
        return out
    }
}

// MARK: - Config updates (issue 7)

extension SimExperiments {
    public struct ConfigRun {
        /// Push start to the last ack, ms (nil: not every live node acked).
        public var allAckedMs: UInt64?
        public var answers: [ConfigPush.Answer] = []
        /// Live nodes running version 5 with the pushed value after the push.
        public var nodesAtNewVersion = 0
        public var liveNodes = 0
        /// After the stale push (version 3): nodes still at version 5 with its value.
        public var nodesKeptNewer = 0
        /// The node that was crashed and restarted after the push restored version 5 from its record.
        public var restoredAfterRestart = false
        public var failures: [String] = []
    }

    static func slaUpdate(version: UInt32, ms: Int64) -> ConfigUpdate {
        var w = CBORWriter()
        w.int(ms)
        return ConfigUpdate(version: version, entries: [ConfigUpdate.Entry(path: bytes("metrics.sla_target_ms"), value: w.bytes)])
    }

    /// Node 0 pushes version 5 (metrics.sla_target_ms = 250) to every other
    /// node over a lossy network, then an older version 3 (= 999); node 2 is
    /// crashed and restarted afterwards and must come back at version 5.
    public static func configPush(seed: UInt64, lossPercent: Double, nodes: Int = 6) -> ConfigRun {
        let w = world(seed: seed, nodes: nodes, mesh: MeshConfig(), name: "configPush")
        w.faults.lossPercent = lossPercent
        var out = ConfigRun()
        var push: ConfigPush?
        var startMs: UInt64 = 0
        w.onDeliver = { i, frame in
            guard i == 0, push != nil else { return }
            push!.handle(frame)
            if push!.isDone, out.allAckedMs == nil, push!.answers.allSatisfy({ $0 == .acked }), push!.payload == slaUpdate(version: 5, ms: 250).encode() {
                out.allAckedMs = w.nowUs / 1000 - startMs
            }
        }
        func drive(_ w: SimWorld) {
            guard let rt = w.nodes[0].runtime, var p = push, !p.isDone else { return }
            p.handleTimeout(nowMs: w.nowUs / 1000, mesh: &rt.mesh)
            push = p
            rt.flushMesh()
            w.runNode(0)
            w.schedule(afterMs: 50) { w in drive(w) }
        }
        func startPush(_ w: SimWorld, _ update: ConfigUpdate) {
            guard let rt = w.nodes[0].runtime else { return }
            var p = ConfigPush(update: update, targets: (1..<nodes).map { w.nodes[$0].nodeID }, retryMs: 500, attemptsMax: 10)
            startMs = w.nowUs / 1000
            p.start(nowMs: startMs, mesh: &rt.mesh)
            push = p
            rt.flushMesh()
            w.runNode(0)
            w.schedule(afterMs: 50) { w in drive(w) }
        }
        for i in 0..<nodes { w.boot(i) }
        w.schedule(atUs: 5_000_000) { w in startPush(w, slaUpdate(version: 5, ms: 250)) }
        w.schedule(atUs: 12_000_000) { w in
            out.answers = push.map { Array($0.answers) } ?? []
            out.liveNodes = nodes - 1
            for i in 1..<nodes {
                if let rt = w.nodes[i].runtime, rt.settings.version == 5, rt.settings.effective.value(at: bytes("metrics.sla_target_ms")) == .int(250) {
                    out.nodesAtNewVersion += 1
                }
            }
            startPush(w, slaUpdate(version: 3, ms: 999))
        }
        w.schedule(atUs: 19_000_000) { w in
            for i in 1..<nodes {
                if let rt = w.nodes[i].runtime, rt.settings.version == 5, rt.settings.effective.value(at: bytes("metrics.sla_target_ms")) == .int(250) {
                    out.nodesKeptNewer += 1
                }
            }
            w.crash(2)
        }
        w.schedule(atUs: 20_000_000) { w in
            w.restart(2)
            if let rt = w.nodes[2].runtime {
                out.restoredAfterRestart = rt.settings.version == 5
                    && rt.settings.effective.value(at: bytes("metrics.sla_target_ms")) == .int(250)
            }
        }
        w.run(untilUs: 21_000_000)
        out.failures = w.failures
        return out
    }
}

// MARK: - Storage log (issue 8)

extension SimExperiments {
    public struct StorageRun {
        /// Records the kernel's producer had acknowledged, and how many of them the log lost.
        public var acked: UInt64 = 0
        public var lost: [UInt64] = []
        public var inLog = 0
        public var storageCrashes = 0
        public var tornWrites = 0
        public var failures: [String] = []
    }

    /// The kernel (node 0) logs a weather record every 500 ms to the storage
    /// node (node 3), which crashes `crashes` times at seeded moments, half of
    /// them by a power cut in the middle of a flash write (a torn page). After
    /// every restart and at the end, every record the producer saw acked must be
    /// in the log, unchanged in number (no duplicates by (source, sequence)).
    public static func storageLog(seed: UInt64, crashes: Int = 4, lossPercent: Double = 0) -> StorageRun {
        var configs = SimLayout.configs(seed: seed, nodeCount: 4, mesh: MeshConfig())
        configs[0].weatherIntervalMs = 500
        configs[0].readDeadlineMs = 400
        let w = SimWorld(seed: seed, configs: configs, replayCommand: "swift test --filter StorageSimulation  (seed \(seed))")
        w.faults.lossPercent = lossPercent
        var r = SeededRandom(seed: seed ^ 0x5702)
        var out = StorageRun()
        let storage = 3
        func check(_ w: SimWorld) {
            guard let k = w.nodes[0].runtime, let s = w.nodes[storage].runtime, var log = s.log else { return }
            guard let records = try? log.allRecords() else {
                w.fail("storage log unreadable after recovery", node: storage)
                return
            }
            let source = w.nodes[0].nodeID
            var seen = Set<UInt64>()
            for rec in records where rec.source == source {
                if !seen.insert(rec.sequence).inserted { w.fail("record \(rec.sequence) stored twice", node: storage) }
            }
            let base = UInt64(k.mesh.epoch) << 32
            let last = k.producer.lastAckedSequence
            if last > base {
                for seq in (base + 1)...last where !seen.contains(seq) {
                    out.lost.append(seq)
                    w.fail("acked record \(seq - base) of kernel epoch \(k.mesh.epoch) is not in the log", node: storage)
                }
            }
            out.acked = k.producer.acked
            out.inLog = seen.count
        }
        for i in 0..<4 { w.boot(i) }
        var t: UInt64 = 5_000_000
        for c in 0..<crashes {
            t += 4_000_000 + r.below(4_000_000)
            let torn = c % 2 == 1
            let steps = Int(r.below(400))
            w.schedule(atUs: t) { w in
                if torn, w.nodes[storage].isUp {
                    w.powerCut(storage, afterSteps: steps, crashAfterMs: 700)
                    out.tornWrites += 1
                } else {
                    w.crash(storage)
                }
                out.storageCrashes += 1
            }
            w.schedule(atUs: t + 1_500_000 + r.below(2_000_000)) { w in
                w.restart(storage)
                check(w)
            }
            t += 4_000_000
        }
        w.run(untilUs: t + 8_000_000)
        check(w)
        out.failures = w.failures
        return out
    }
}

// MARK: - Config consensus (issue 8)

extension SimExperiments {
    public struct ConsensusRun {
        /// `config set` calls answered ok (committed), and those that failed.
        public var committedSets = 0
        public var failedSets = 0
        /// Versions seen applied on some node (a node's settings, or a replica's committed state).
        public var versionsChecked = 0
        public var storageCrashes = 0
        public var leaderPartitions = 0
        /// Heal (every fault stopped, every node up) -> a leader, and -> every node at the newest committed version.
        public var healToLeaderMs: UInt64?
        public var healToConvergedMs: UInt64?
        public var failures: [String] = []
    }

    /// Bound for `healToConvergedMs` (from the heal until every live node runs
    /// the newest committed config): an election (6 s timeout at most, a few
    /// rounds when votes split), the next distribution round (5 s) and its
    /// retransmissions.
    public static let consensusHealBoundMs: UInt64 = 25_000

    /// Six nodes: the kernel (0) and two sensors (1, 2), and three storage
    /// nodes (3, 4, 5) that are the config replicas. The kernel sets a new
    /// `metrics.sla_target_ms` every 1.5 s through the `config` service while,
    /// for `faultMs`, messages are lost, duplicated and reordered, storage nodes
    /// crash and restart at seeded moments, and the leader is cut off from
    /// every node for seconds at a time. Checked every 100 ms of simulated
    /// time: no two nodes ever run (or hold committed) different configs under
    /// the same version, and every set answered ok stays in the committed
    /// history with its value. After the faults stop: a leader within the
    /// bound, every live node at the newest committed version, and one more set commits.
    public static func configConsensus(seed: UInt64, faultMs: UInt64 = 40_000, lossPercent: Double? = nil) -> ConsensusRun {
        var configs = SimLayout.replicatedStorage(seed: seed)
        let replicas = SimLayout.storageReplicas
        configs[0].weatherIntervalMs = 60_000  // the kernel only sets config here
        let w = SimWorld(seed: seed, configs: configs, replayCommand: "swift run tdos-sim --consensus --seeds \(seed)..\(seed)")
        var r = SeededRandom(seed: seed ^ 0xC0_5E75)
        let loss = lossPercent ?? Double(r.below(11))
        var out = ConsensusRun()
        var byVersion: [UInt32: ConfigTree] = [:]
        var pending: [CallID: Int64] = [:]
        var acked: [(version: UInt32, value: Int64)] = []
        var nextValue: Int64 = 101
        var faultsOn = true

        func note(_ version: UInt32, _ tree: ConfigTree, _ who: Int, _ what: String) {
            guard version > 0 else { return }
            if let seen = byVersion[version] {
                if seen != tree { w.fail("config version \(version) differs between nodes (\(what))", node: who) }
            } else {
                byVersion[version] = tree
                out.versionsChecked += 1
            }
        }
        // At every step that changes a node's config (the runtime's hook), and every 100 ms.
        w.onBoot = { i, rt in
            rt.configObserver = { version, tree, committed in
                note(version, tree, i, committed ? "committed state" : "config in force")
            }
        }
        func checkAgreement(_ w: SimWorld) {
            for i in 0..<6 {
                guard let rt = w.nodes[i].runtime else { continue }
                note(rt.settings.version, rt.settings.remote, i, "config in force")
                if rt.raft != nil { note(rt.committed.version, rt.committed.remote, i, "committed state") }
            }
            for a in acked {
                guard let tree = byVersion[a.version] else { continue }
                if tree.value(at: bytes("metrics.sla_target_ms")) != .int(a.value) {
                    w.fail("set of sla_target_ms=\(a.value) was answered committed as version \(a.version), which holds another value")
                }
            }
            if w.failures.isEmpty { w.schedule(afterMs: 100) { w in checkAgreement(w) } }
        }
        var early: [CallID: CallResult] = [:]
        func judge(_ id: CallID, _ result: CallResult) {
            guard let value = pending.removeValue(forKey: id) else { return }
            if case .value(let v) = result, v.response.status == 0 {
                var rd = CBORReader(v.response.result)
                if let n = try? rd.mapHeader(), n == 1, (try? rd.unsigned()) == 1, let version = try? rd.unsigned() {
                    acked.append((UInt32(version), value))
                    out.committedSets += 1
                    return
                }
                w.fail("config set answered ok without a version")
            }
            out.failedSets += 1
        }
        func set(_ w: SimWorld, _ value: Int64) {
            let update = ConfigUpdate(version: 0, entries: [ConfigUpdate.Entry(path: bytes("metrics.sla_target_ms"),
                                                                               value: cborInt(value))])
            guard let id = w.startDrivenCall(on: 0, service: bytes("config"), version: SemVer(1, 0, 0),
                                             operation: .configSet, arguments: update.encode(), deadlineMs: 20_000) else { return }
            pending[id] = value
            if let r = early.removeValue(forKey: id) { judge(id, r) }
        }
        w.onComplete = { i, id, result in
            guard i == 0 else { return }
            if pending[id] == nil { early[id] = result } else { judge(id, result) }
        }
        func setLoop(_ w: SimWorld) {
            guard faultsOn else { return }
            set(w, nextValue)
            nextValue += 1
            w.schedule(afterMs: 1_500) { w in setLoop(w) }
        }
        func leaderIndex(_ w: SimWorld) -> Int? {
            replicas.first { w.nodes[$0].runtime?.raft?.role == .leader }
        }
        func faultLoop(_ w: SimWorld) {
            guard faultsOn else { return }
            switch r.below(3) {
            case 0:
                let victim = replicas[Int(r.below(3))]
                if w.nodes[victim].isUp {
                    w.crash(victim)
                    out.storageCrashes += 1
                    w.schedule(afterMs: 1_000 + r.below(4_000)) { w in w.restart(victim) }
                }
            case 1:
                if let l = leaderIndex(w) {
                    let links = w.partition([l], (0..<6).filter { $0 != l })
                    out.leaderPartitions += 1
                    w.schedule(afterMs: 2_000 + r.below(6_000)) { w in w.heal(links) }
                }
            default:
                break  // a quiet spell
            }
            w.schedule(afterMs: 2_000 + r.below(4_000)) { w in faultLoop(w) }
        }

        w.faults.lossPercent = loss
        w.faults.duplicatePercent = 2
        w.faults.reorderPercent = 5
        w.faults.reorderExtraUs = 20_000
        for i in 0..<6 { w.boot(i) }
        w.schedule(atUs: 100_000) { w in checkAgreement(w) }
        w.schedule(atUs: 4_000_000) { w in setLoop(w) }
        w.schedule(atUs: 8_000_000) { w in faultLoop(w) }
        let healUs = 8_000_000 + faultMs * 1000
        w.schedule(atUs: healUs) { w in
            faultsOn = false
            w.endFaults()
        }
        // After the heal: a leader, then every node at the newest committed version.
        func awaitConvergence(_ w: SimWorld) {
            let since = (w.nowUs - healUs) / 1000
            if out.healToLeaderMs == nil, leaderIndex(w) != nil { out.healToLeaderMs = since }
            if out.healToConvergedMs == nil, let l = leaderIndex(w), let lead = w.nodes[l].runtime, pending.isEmpty,
               (0..<6).allSatisfy({ w.nodes[$0].runtime?.settings.version == lead.committed.version }) {
                out.healToConvergedMs = since
            }
            if out.healToConvergedMs == nil && since < consensusHealBoundMs {
                w.schedule(afterMs: 100) { w in awaitConvergence(w) }
            }
        }
        w.schedule(atUs: healUs + 100_000) { w in awaitConvergence(w) }
        w.run(untilUs: healUs + consensusHealBoundMs * 1000 + 1_000_000)
        if w.failures.isEmpty {
            if out.healToLeaderMs == nil { w.fail("no leader within \(consensusHealBoundMs) ms of the heal") }
            if out.healToConvergedMs == nil {
                let versions = (0..<6).map { w.nodes[$0].runtime.map { String($0.settings.version) } ?? "down" }
                w.fail("nodes did not reach the newest committed config within \(consensusHealBoundMs) ms of the heal: versions \(versions)")
            }
        }
        // One more change after the heal commits and reaches every node.
        if w.failures.isEmpty {
            let final = nextValue + 1000
            set(w, final)
            w.run(forMs: 20_000)
            guard let (v, _) = acked.last, acked.last?.value == final else {
                w.fail("a config set after the heal did not commit within 20 s")
                out.failures = w.failures
                return out
            }
            for i in 0..<6 where w.nodes[i].runtime?.settings.version != v {
                w.fail("node \(i) did not receive version \(v) committed after the heal", node: i)
            }
        }
        out.failures = w.failures
        return out
    }

    static func cborInt(_ v: Int64) -> [UInt8] {
        var c = CBORWriter()
        c.int(v)
        return c.bytes
    }
}

// MARK: - Replicated log (issue 8)

extension SimExperiments {
    public struct ReplicatedLogRun {
        /// Records the producer saw acknowledged (all epochs of the kernel).
        public var acked: UInt64 = 0
        /// Acknowledged records found on fewer than a majority of the replicas' flash.
        public var underReplicated = 0
        /// At the end, acknowledged records missing on some replica (not caught up).
        public var notCaughtUp = 0
        public var primaryCrashes = 0
        public var backupCrashes = 0
        public var primaryPartitions = 0
        public var tornWrites = 0
        public var failures: [String] = []
    }

    /// The kernel (node 0) logs a weather record every 500 ms; three storage
    /// nodes (3, 4, 5) replicate the log. For `faultMs`, every 3-6 s: the
    /// primary is cut off from every node for 2-6 s (a quarter of the time), or
    /// a storage node crashes (the primary half the time, by a power cut
    /// mid-write half the time) and restarts 1.5-3.5 s later; `lossPercent` of
    /// messages are lost. Checked
    /// every second, on every replica's flash (read from a copy, as after a
    /// reboot): each acknowledged record is on a majority of the replicas.
    /// After the faults stop and 40 s more of records (longer than a breaker
    /// stays open): on every replica.
    public static func replicatedLog(seed: UInt64, faultMs: UInt64 = 30_000, lossPercent: Double = 0,
                                     trace: ((String) -> Void)? = nil) -> ReplicatedLogRun {
        var configs = SimLayout.replicatedStorage(seed: seed)
        let replicas = SimLayout.storageReplicas
        configs[0].weatherIntervalMs = 500
        configs[0].readDeadlineMs = 400
        let w = SimWorld(seed: seed, configs: configs, replayCommand: "swift run tdos-sim --replicated-log --seeds \(seed)..\(seed)")
        w.logSectors = 16  // 64 KB: every ack reads the three replicas' flash
        w.faults.lossPercent = lossPercent
        if let trace {
            w.traceEnabled = true
            w.traceSink = trace
        }
        var r = SeededRandom(seed: seed ^ 0x4E9_1CA7)
        var out = ReplicatedLogRun()
        var faultsOn = true

        /// Sequences of the kernel's records on replica `i`'s flash.
        func onFlash(_ i: Int) -> Set<UInt64>? {
            var ram = w.logFlash(i).ram
            ram.powerOn()  // what a reboot would read, even while the power is being cut
            guard var log = try? RecordLog(flash: SimLogFlash(ram)), let all = try? log.allRecords() else {
                return nil
            }
            let source = w.nodes[0].nodeID
            return Set(all.filter { $0.source == source }.map(\.sequence))
        }
        // Exactly the records whose batch the producer saw acknowledged (not the
        // ones it dropped from a full queue during a long outage).
        // Checked at the moment of each ack: the batch is on a majority's flash.
        var ackedSet = Set<UInt64>()
        w.onComplete = { i, id, result in
            guard i == 0, let k = w.nodes[0].runtime, k.producer.inFlight == id,
                  case .value(let v) = result, v.response.status == Status.ok.rawValue, !v.isStale else { return }
            let batch = k.producer.inFlightSequences
            ackedSet.formUnion(batch)
            let held = replicas.compactMap { onFlash($0) }
            for seq in batch where held.filter({ $0.contains(seq) }).count < 2 {
                out.underReplicated += 1
                w.fail("record \(seq & 0xFFFF_FFFF) was acknowledged while fewer than 2 of 3 replicas held it durably")
                return
            }
        }
        func ackedSequences() -> [UInt64] { ackedSet.sorted() }
        func check(_ w: SimWorld, final: Bool) {
            let acked = ackedSequences()
            out.acked = UInt64(acked.count)
            var held: [Set<UInt64>] = []
            for i in replicas {
                guard let s = onFlash(i) else {
                    w.fail("replica \(i)'s log does not recover", node: i)
                    return
                }
                held.append(s)
            }
            for seq in acked {
                let n = held.filter { $0.contains(seq) }.count
                if n < 2 {
                    out.underReplicated += 1
                    let have = held.map { h in h.isEmpty ? "none" : "\(h.count) records, \(h.min()! & 0xFFFF_FFFF)...\(h.max()! & 0xFFFF_FFFF)" }
                    w.fail("acked record \(seq & 0xFFFF_FFFF) is on \(n) of 3 replicas (a majority must hold it); they hold \(have) of epoch \(seq >> 32); producer dropped \(w.nodes[0].runtime?.producer.dropped ?? 0)")
                    return
                }
                if final && n < 3 {
                    out.notCaughtUp += 1
                    if out.notCaughtUp == 1 {
                        w.traceLine("not caught up: record \(seq & 0xFFFF_FFFF) missing on replicas \(replicas.indices.filter { !held[$0].contains(seq) }.map { replicas[$0] })")
                    }
                }
            }
            if final && out.notCaughtUp > 0 {
                w.fail("\(out.notCaughtUp) acked records are still missing on some replica 40 s after the faults stopped")
            }
        }
        func checkLoop(_ w: SimWorld) {
            check(w, final: false)
            if w.failures.isEmpty && faultsOn { w.schedule(afterMs: 1_000) { w in checkLoop(w) } }
        }
        func faultLoop(_ w: SimWorld) {
            guard faultsOn else { return }
            let primary = replicas.first { w.nodes[$0].runtime?.raft?.role == .leader }
            let victim = primary != nil && r.below(2) == 0 ? primary! : replicas[Int(r.below(3))]
            if let primary, r.below(4) == 0 {
                // The primary cut off from every node for 2-6 s: a new one is elected meanwhile.
                let links = w.partition([primary], (0..<6).filter { $0 != primary })
                out.primaryPartitions += 1
                w.schedule(afterMs: 2_000 + r.below(4_000)) { w in w.heal(links) }
            } else if replicas.allSatisfy({ w.nodes[$0].isUp }) {
                // One replica down at a time, so a majority stays up and the log keeps taking records.
                if victim == primary { out.primaryCrashes += 1 } else { out.backupCrashes += 1 }
                if r.below(2) == 0 {
                    w.powerCut(victim, afterSteps: Int(r.below(300)), crashAfterMs: 400)
                    out.tornWrites += 1
                } else {
                    w.crash(victim)
                }
                w.schedule(afterMs: 1_500 + r.below(2_000)) { w in
                    w.logFlash(victim).ram.powerOn()
                    w.restart(victim)
                }
            }
            w.schedule(afterMs: 3_000 + r.below(3_000)) { w in faultLoop(w) }
        }
        for i in 0..<6 { w.boot(i) }
        w.schedule(atUs: 6_000_000) { w in checkLoop(w) }
        w.schedule(atUs: 8_000_000) { w in faultLoop(w) }
        let healUs = 8_000_000 + faultMs * 1000
        w.schedule(atUs: healUs) { w in
            faultsOn = false
            w.endFaults()
        }
        w.run(untilUs: healUs + 40_000_000)
        if w.failures.isEmpty { check(w, final: true) }
        if w.failures.isEmpty && out.acked < 20 { w.fail("only \(out.acked) records acked: the replicated log made no progress") }
        out.failures = w.failures
        return out
    }
}

// MARK: - Consensus timings (make bench)

extension SimExperiments {
    public struct ConsensusTimings {
        /// From boot to the first leader.
        public var electionMs: UInt64?
        /// From the leader's crash to a new leader.
        public var failoverMs: UInt64?
        /// `config set` round trips (call to committed answer), no faults.
        public var commitMs: [UInt64] = []
        /// A committed version until every node runs it.
        public var appliedEverywhereMs: [UInt64] = []
        public var failures: [String] = []
    }

    /// Three storage replicas and three other nodes, 1 s heartbeats, 1-2 ms
    /// links: the first election, ten `config set`s from the kernel, then the
    /// leader crashes and the next one is timed.
    public static func consensusTimings(seed: UInt64) -> ConsensusTimings {
        var configs = SimLayout.replicatedStorage(seed: seed)
        let replicas = SimLayout.storageReplicas
        configs[0].weatherIntervalMs = 60_000
        let w = SimWorld(seed: seed, configs: configs, replayCommand: "tdos-bench sim (consensus timings, seed \(seed))")
        var out = ConsensusTimings()
        func leader() -> Int? { replicas.first { w.nodes[$0].runtime?.raft?.role == .leader } }
        for i in 0..<6 { w.boot(i) }
        while w.nowUs < 30_000_000, leader() == nil { w.run(forMs: 10) }
        guard leader() != nil else {
            out.failures = ["no leader within 30 s"]
            return out
        }
        out.electionMs = w.nowUs / 1000
        w.run(forMs: 2_000)  // every node has heard of the leader's no-op
        var started: [CallID: UInt64] = [:]
        var committedAt: [(version: UInt32, atUs: UInt64)] = []
        w.onComplete = { i, id, result in
            guard i == 0, let t = started.removeValue(forKey: id), case .value(let v) = result, v.response.status == 0 else { return }
            out.commitMs.append((w.nowUs - t) / 1000)
            var r = CBORReader(v.response.result)
            if (try? r.mapHeader()) == 1, (try? r.unsigned()) == 1, let version = try? r.unsigned() {
                committedAt.append((UInt32(version), w.nowUs))
            }
        }
        for k in 0..<10 {
            var c = CBORWriter()
            c.int(200 + Int64(k))
            let update = ConfigUpdate(version: 0, entries: [ConfigUpdate.Entry(path: bytes("metrics.sla_target_ms"), value: c.bytes)])
            if let id = w.startDrivenCall(on: 0, service: bytes("config"), version: SemVer(1, 0, 0), operation: .configSet,
                                          arguments: update.encode(), deadlineMs: 20_000) {
                started[id] = w.nowUs
            }
            // Until every node runs this one.
            let deadline = w.nowUs + 20_000_000
            while w.nowUs < deadline {
                w.run(forMs: 5)
                if let last = committedAt.last, committedAt.count == k + 1,
                   (0..<6).allSatisfy({ w.nodes[$0].runtime?.settings.version == last.version }) {
                    out.appliedEverywhereMs.append((w.nowUs - last.atUs) / 1000)
                    break
                }
            }
        }
        if let l = leader() {
            let crashAt = w.nowUs
            w.crash(l)
            while w.nowUs < crashAt + 30_000_000, leader() == nil { w.run(forMs: 10) }
            if leader() != nil { out.failoverMs = (w.nowUs - crashAt) / 1000 }
        }
        out.failures = w.failures
        return out
    }
}

extension SimLayout {
    /// Nodes 3, 4 and 5 of a six-node mesh: the storage replicas.
    public static let storageReplicas = [3, 4, 5]

    /// Six nodes: the kernel (0), two sensors (1, 2) and three storage nodes
    /// (3, 4, 5) that are each other's config and log replicas.
    public static func replicatedStorage(seed: UInt64) -> [NodeConfig] {
        var configs = SimLayout.configs(seed: seed, nodeCount: 6, mesh: MeshConfig())
        for i in storageReplicas {
            configs[i].role = .storage
            configs[i].sensors = []
            configs[i].configReplicas = storageReplicas.map { configs[$0].nodeID }
        }
        return configs
    }
}
