// One seed of the VOPR-style swarm: the seed picks the fault intensities of the
// run (loss, duplication, corruption, delay and reordering, per-link loss,
// partitions, crashes, restarts, clean leaves, forged frames), a fault window
// runs with client calls, then a quiet period in which every fault stops and
// the liveness checks run at their stated bounds.
import TDOSCore
import TDOSNode

public struct SimOptions {
    public var seed: UInt64 = 1
    public var nodeCount = 6
    /// Faults happen in [0, faultWindowMs); then the quiet period.
    public var faultWindowMs: UInt64 = 20_000
    /// nil: drawn from the seed (the swarm).
    public var lossPercent: Double?
    public var duplicatePercent: Double?
    public var corruptPercent: Double?
    public var crashCount: Int?
    public var partitionCount: Int?
    public var mesh = MeshConfig()
    public var trace = false
    public init() {}

    /// The command that replays this run.
    public var replayCommand: String {
        var s = "swift run tdos-sim --seed \(seed)"
        if nodeCount != 6 { s += " --nodes \(nodeCount)" }
        if faultWindowMs != 20_000 { s += " --window \(faultWindowMs / 1000)" }
        if let l = lossPercent { s += " --loss \(l)" }
        if let d = duplicatePercent { s += " --dup \(d)" }
        if let c = corruptPercent { s += " --corrupt \(c)" }
        if let c = crashCount { s += " --crashes \(c)" }
        if let p = partitionCount { s += " --partitions \(p)" }
        if mesh.breakerOpenMs != MeshConfig().breakerOpenMs { s += " --breaker-open-ms \(mesh.breakerOpenMs)" }
        return s
    }
}

/// The stated liveness bounds, from MeshConfig (docs/SIMULATION.md).
public enum SimBounds {
    /// Longest gap between two heartbeats of a node (interval plus jitter).
    public static func heartbeatLateMs(_ c: MeshConfig) -> UInt64 {
        UInt64(c.heartbeatIntervalMs) * UInt64(100 + c.heartbeatJitterPercent) / 100
    }

    /// After faults stop (network whole, nodes restarted) every live node sees
    /// every live node alive and every service it runs within this:
    /// the next heartbeat reaches every peer (<= heartbeatLate), a peer whose
    /// services digest differs or who was dead is asked with a `query`
    /// (rate-limited to one per queryIntervalMin) and answers with `announce`;
    /// a second heartbeat covers a query that hit the rate limit; and whatever
    /// else was lost, the periodic announce (<= announceInterval + jitter)
    /// repairs it. Plus the drain of datagrams still in flight from the fault
    /// period and two one-way delays.
    public static func discoveryMs(_ c: MeshConfig, inFlightMs: UInt64) -> UInt64 {
        let announceLate = UInt64(c.announceIntervalMs) * UInt64(100 + c.heartbeatJitterPercent) / 100
        return announceLate + 2 * heartbeatLateMs(c) + UInt64(c.queryIntervalMinMs) + inFlightMs + 100
    }

    /// Reads succeed from this long after the faults stop: calls started in
    /// the fault period have ended (their deadline), a breaker they opened has
    /// gone half-open (breakerOpenMs), and discovery has converged.
    public static func readsMs(_ c: MeshConfig, inFlightMs: UInt64, callDeadlineMaxMs: UInt64) -> UInt64 {
        callDeadlineMaxMs + UInt64(c.breakerOpenMs) + discoveryMs(c, inFlightMs: inFlightMs)
    }
}

/// The standard mesh: node 0 is the kernel (weather station); the others
/// cycle through sensor and storage roles, with primaries, backups and one
/// incompatible major version (temp_sensor 2.0.0) that ^1 reads must never use.
public enum SimLayout {
    public static func configs(seed: UInt64, nodeCount: Int, mesh: MeshConfig) -> [NodeConfig] {
        var out: [NodeConfig] = []
        for i in 0..<nodeCount {
            let role: NodeRole
            var sensors: [SensorService] = []
            if i == 0 {
                role = .kernel
            } else {
                switch (i - 1) % 5 {
                case 0:
                    role = .sensor
                    sensors = [SensorService(name: bytes("temp_sensor"), kind: .temperature, version: SemVer(1, 2, 0), priority: 0),
                               SensorService(name: bytes("humidity_sensor"), kind: .humidity, version: SemVer(1, 0, 0), priority: 0)]
                case 1:
                    role = .sensor
                    sensors = [SensorService(name: bytes("temp_sensor"), kind: .temperature, version: SemVer(1, 0, 1), priority: 1,
                                             calibrationOffset: 0.2),
                               SensorService(name: bytes("light_sensor"), kind: .light, version: SemVer(1, 1, 0), priority: 0)]
                case 2:
                    role = .storage
                case 3:
                    role = .sensor
                    sensors = [SensorService(name: bytes("temp_sensor"), kind: .temperature, version: SemVer(2, 0, 0), priority: 0)]
                default:
                    role = .sensor
                    sensors = [SensorService(name: bytes("humidity_sensor"), kind: .humidity, version: SemVer(1, 3, 0), priority: 1),
                               SensorService(name: bytes("light_sensor"), kind: .light, version: SemVer(1, 0, 0), priority: 1)]
                }
            }
            var c = NodeConfig(name: Array("n\(i)".utf8), nodeID: 0x1000 + UInt32(i), role: role, address: SimWorld.address(i),
                               keyID: 1, key: SimWorld.key, rngSeed: seed &* 1_000_003 &+ UInt64(i))
            c.sensors = sensors
            c.mesh = mesh
            out.append(c)
        }
        return out
    }

    /// Reads a client may ask for, with the caret version.
    public static let reads: [(name: [UInt8], version: SemVer)] = [
        (bytes("temp_sensor"), SemVer(1, 0, 0)), (bytes("humidity_sensor"), SemVer(1, 0, 0)),
        (bytes("light_sensor"), SemVer(1, 0, 0)), (bytes("temp_sensor"), SemVer(2, 0, 0)),
        (bytes("temp_sensor"), SemVer(1, 3, 0)), (bytes("absent_service"), SemVer(1, 0, 0)),
    ]

    /// Frames made with the wrong key (or an unknown key id), some spoofing a
    /// real node's id, plus garbage: every one must be rejected.
    public static func forgedFrames(seed: UInt64, spoofing realID: UInt32) -> [[UInt8]] {
        var out: [[UInt8]] = []
        let wrongKey = [UInt8](repeating: 0x42, count: 32)
        let evil = ServiceDescriptor(name: bytes("temp_sensor"), version: SemVer(1, 9, 9), role: .sensor,
                                     capabilities: [.read], priority: 0, port: SimWorld.basePort)
        for (id, keyID) in [(UInt32(0xBAD0), UInt8(1)), (realID, UInt8(1)), (UInt32(0xBAD1), UInt8(7))] {
            var m = MeshNode(config: MeshConfig(), nodeID: id, name: bytes("evil"), epoch: 999,
                             keys: Keyring(id: keyID, key: wrongKey), address: NodeAddress(host: 0x0A00_00FE, port: SimWorld.basePort),
                             services: [evil], rngSeed: seed)
            m.start(nowMs: 0)
            m.handleTimeout(nowMs: 1500)
            while let a = m.pollAction() {
                switch a {
                case .broadcast(let b), .send(_, let b): out.append(b)
                default: break
                }
            }
        }
        var r = SeededRandom(seed: seed ^ 0xF00D)
        out.append((0..<48).map { _ in UInt8(truncatingIfNeeded: r.next()) })
        if let first = out.first { out.append(Array(first.prefix(20))) }
        return out
    }
}

public struct SimRunResult {
    public var seed: UInt64
    public var failures: [String]
    public var traceHash: UInt64
    public var summary: [String]
    public var virtualMs: UInt64
    public var steps: UInt64
    public var ok: Bool { failures.isEmpty }
}

func pick<T>(_ r: inout SeededRandom, _ xs: [T]) -> T { xs[Int(r.below(UInt64(xs.count)))] }

/// Runs one seed of the swarm with every invariant checked; deterministic.
public func runSimulationSeed(_ options: SimOptions, traceSink: ((String) -> Void)? = nil) -> SimRunResult {
    let seed = options.seed
    let n = options.nodeCount
    precondition(n >= 2)
    let configs = SimLayout.configs(seed: seed, nodeCount: n, mesh: options.mesh)
    let world = SimWorld(seed: seed, configs: configs, replayCommand: options.replayCommand)
    world.traceEnabled = options.trace
    if let sink = traceSink { world.traceSink = sink }
    var r = SeededRandom(seed: seed ^ 0x5157_4A52_4D00_0001)

    // The swarm: this run's fault intensities.
    var f = LinkFaults()
    f.lossPercent = options.lossPercent ?? pick(&r, [0, 0, 1, 3, 5, 10, 20, 30])
    f.duplicatePercent = options.duplicatePercent ?? pick(&r, [0, 0, 1, 5, 10])
    f.corruptPercent = options.corruptPercent ?? pick(&r, [0, 0, 1, 3])
    f.perLinkLossSpreadPercent = pick(&r, [0, 0, 5, 15])
    f.delayMinUs = pick(&r, [200, 500, 1000])
    f.delayMaxUs = f.delayMinUs + pick(&r, [1000, 5000, 20_000, 50_000])
    f.reorderPercent = pick(&r, [0, 0, 5, 20])
    f.reorderExtraUs = pick(&r, [50_000, 200_000, 500_000])
    world.faults = f
    let window = options.faultWindowMs * 1000
    let inFlightMs = (f.delayMaxUs + f.reorderExtraUs) / 1000 + 1

    // Crashes, leaves and restarts.
    var permanent: [Bool] = Array(repeating: false, count: n)
    let crashCount = options.crashCount ?? Int(r.below(3))
    for _ in 0..<crashCount where window > 0 {
        let victim = Int(r.below(UInt64(n)))
        let at = r.below(window)
        let downUs = r.between(500_000, 10_000_000)
        let stays = r.below(4) == 0
        let clean = r.below(5) == 0
        if stays { permanent[victim] = true }
        world.schedule(atUs: at) { w in clean ? w.leave(victim) : w.crash(victim) }
        if !stays && at + downUs < window {
            world.schedule(atUs: at + downUs) { w in if !permanent[victim] { w.restart(victim) } }
        }
    }
    // Partitions: one node cut off, a random split, or a one-way cut.
    let partitionCount = options.partitionCount ?? Int(r.below(3))
    for _ in 0..<partitionCount where window > 0 {
        let at = r.below(window)
        let lengthUs = r.between(1_000_000, 12_000_000)
        var a: [Int] = [], b: [Int] = []
        let kind = r.below(3)
        if kind == 0 {
            let x = Int(r.below(UInt64(n)))
            a = [x]; b = (0..<n).filter { $0 != x }
        } else {
            for i in 0..<n { if r.below(2) == 0 { a.append(i) } else { b.append(i) } }
        }
        let oneWay = kind == 2
        world.schedule(atUs: at) { w in
            let links = w.partition(a, b, oneWay: oneWay)
            w.schedule(atUs: min(at + lengthUs, window)) { w in w.heal(links) }
        }
    }
    // Forged and garbage frames.
    let forged = SimLayout.forgedFrames(seed: seed, spoofing: configs[1 % n].nodeID)
    let forgedCount = 1 + Int(r.below(8))
    for _ in 0..<forgedCount where window > 0 {
        let at = r.below(window)
        let frame = forged[Int(r.below(UInt64(forged.count)))]
        let to = Int(r.below(UInt64(n)))
        let from = r.below(2) == 0 ? SimWorld.address(1 % n) : NodeAddress(host: 0x0A00_00FE, port: SimWorld.basePort)
        world.schedule(atUs: at) { w in w.inject(frame, to: to, from: from) }
    }
    // Client calls through the fault window.
    var t = r.between(300_000, 3_000_000)
    while t < window {
        let caller = Int(r.below(UInt64(n)))
        let read = SimLayout.reads[Int(r.below(UInt64(SimLayout.reads.count)))]
        let deadline = UInt32(r.between(500, 5000))
        world.schedule(atUs: t) { w in w.startCall(on: caller, service: read.name, version: read.version, deadlineMs: deadline) }
        t += r.between(300_000, 3_000_000)
    }
    // Registry scans now and then.
    var scan: UInt64 = 1_000_000
    let discoveryUs = SimBounds.discoveryMs(options.mesh, inFlightMs: inFlightMs) * 1000
    let readsUs = SimBounds.readsMs(options.mesh, inFlightMs: inFlightMs, callDeadlineMaxMs: 5000) * 1000
    let endUs = window + readsUs + 3_000_000 + 200_000
    while scan < endUs {
        world.schedule(atUs: scan) { w in w.checkRegistries(); w.checkCallsCompleted() }
        scan += 2_000_000
    }

    // Faults stop: whole network, every node that is coming back is back.
    world.schedule(atUs: window) { w in
        w.faults = LinkFaults.quiet
        w.healAll()
        for i in 0..<n where !permanent[i] { w.restart(i) }
        if w.traceEnabled { w.traceLine("QUIET: faults stop") }
    }
    world.schedule(atUs: window + discoveryUs) { w in
        w.checkRegistries()
        w.checkConvergence(report: true, context: " (discovery bound \(discoveryUs / 1000) ms after faults stopped)")
    }
    world.schedule(atUs: window + readsUs) { w in
        for i in 0..<n where w.nodes[i].isUp {
            for read in SimLayout.reads.prefix(4) {
                let available = w.nodes.contains { $0.isUp && $0.index != i &&
                    $0.config.services.contains { $0.name == read.name && $0.version.satisfies(caret: read.version) } }
                if available {
                    w.startCall(on: i, service: read.name, version: read.version,
                                deadlineMs: configs[0].readDeadlineMs, mustSucceed: true)
                }
            }
        }
    }
    world.schedule(atUs: endUs - 100_000) { w in
        w.checkCallsCompleted()
        w.checkRegistries()
        w.checkConvergence(report: true, context: " (end of run)")
        // Nodes down for good are gone from every view.
        for v in w.nodes where v.isUp {
            for inst in v.runtime!.mesh.registry {
                if let j = w.index(ofNodeID: inst.node), !w.nodes[j].isUp {
                    w.fail("liveness: n\(v.index) still lists \(String(decoding: inst.descriptor.name, as: UTF8.self)) of n\(j), down since the fault period", node: v.index)
                    return
                }
            }
        }
    }

    for i in 0..<n { world.boot(i) }
    world.run(untilUs: endUs)

    var summary: [String] = []
    summary.append("seed \(seed): \(n) nodes, \(Double(endUs) / 1e6) s virtual, \(world.steps) steps")
    summary.append("faults: loss \(f.lossPercent)% (+\(f.perLinkLossSpreadPercent)% per link), dup \(f.duplicatePercent)%, corrupt \(f.corruptPercent)%, delay \(f.delayMinUs)-\(f.delayMaxUs) us, reorder \(f.reorderPercent)% +\(f.reorderExtraUs) us; crashes \(world.crashes), leaves \(world.leaves), restarts \(world.restarts), partitions \(world.partitionsStarted), forged \(world.forgedInjected)")
    summary.append("network: \(world.datagramsSent) sent, \(world.datagramsDelivered) delivered, \(world.datagramsLost) lost, \(world.datagramsDuplicated) duplicated, \(world.datagramsCorrupted) corrupted, \(world.datagramsToDownNodes) to down nodes; \(world.liveRejectedTotal()) rejected by nodes")
    let ok = world.calls.filter { if case .value(let v)? = $0.result { return !v.isStale }; return false }.count
    let stale = world.calls.filter { if case .value(let v)? = $0.result { return v.isStale }; return false }.count
    summary.append("calls: \(world.calls.count) driven (\(ok) fresh, \(stale) stale, \(world.calls.count - ok - stale) failed or cut short), \(world.executions) executions; weather station \(world.weatherValues)/\(world.weatherResults) reads with a value")
    summary.append("bounds: discovery \(discoveryUs / 1000) ms, reads \(readsUs / 1000) ms after faults stop; false evictions \(world.falseEvictions)")
    summary.append("trace hash \(String(world.traceHash, radix: 16)); \(world.failures.isEmpty ? "OK" : "FAILED")")
    return SimRunResult(seed: seed, failures: world.failures, traceHash: world.traceHash, summary: summary,
                        virtualMs: endUs / 1000, steps: world.steps)
}
