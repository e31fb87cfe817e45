// The deterministic simulation: many real nodes (NodeRuntime: scheduler, mesh
// and role tasks) in one process on a virtual clock (µs), over a seeded
// simulated network. The event loop always advances to the earliest pending
// event: a node's wake time (from runOnce), a datagram delivery, or a
// scheduled action (fault, client call, check). Ties break by insertion order,
// so the same seed gives the same trace. Nothing here reads the wall clock or
// the system RNG, and no Dictionary/Set order reaches behaviour.
import TDOSCore
import TDOSNode

/// Faults applied to every datagram on a link (percentages 0-100).
public struct LinkFaults: Equatable {
    public var lossPercent: Double = 0
    /// Extra loss on each directed link, drawn per link from the seed in [0, this].
    public var perLinkLossSpreadPercent: Double = 0
    public var duplicatePercent: Double = 0
    /// A copy with 1-3 flipped bits (the tag must reject it).
    public var corruptPercent: Double = 0
    /// One-way delay, uniform in [min, max].
    public var delayMinUs: UInt64 = 500
    public var delayMaxUs: UInt64 = 2_000
    /// This share of datagrams gets up to `reorderExtraUs` more (overtaken by later ones).
    public var reorderPercent: Double = 0
    public var reorderExtraUs: UInt64 = 0
    public init() {}
    public static let quiet = LinkFaults()
}

/// A node slot: the config (what it runs: the ground truth) and, while it is
/// up, its platform and runtime.
public final class SimNode {
    public let index: Int
    public let config: NodeConfig
    public internal(set) var platform: SimPlatform?
    public internal(set) var runtime: NodeRuntime<SimPlatform>?
    public internal(set) var boots = 0
    var wakeGen: UInt64 = 0
    /// Cleared by a leave: the node is down but said so.
    public internal(set) var leftCleanly = false
    init(index: Int, config: NodeConfig) {
        self.index = index
        self.config = config
    }
    public var isUp: Bool { runtime != nil }
    public var nodeID: UInt32 { config.nodeID }
}

/// A call the simulation drives (besides the weather station's).
public struct SimCall {
    public var node: Int
    public var boot: Int
    public var id: CallID
    public var service: [UInt8]
    public var version: SemVer
    public var startUs: UInt64
    public var deadlineMs: UInt32
    /// Liveness: must complete with a fresh value.
    public var mustSucceed: Bool
    public var result: CallResult?
    public var completedUs: UInt64?
}

public final class SimWorld {
    public let seed: UInt64
    public internal(set) var nowUs: UInt64 = 0
    public private(set) var nodes: [SimNode] = []
    /// The simulation's disk: each node's persisted boot epoch.
    var disk: [UInt32]
    /// Each node's log flash (storage role), created on first use; survives crashes.
    var logFlashes: [Int: SimLogFlash] = [:]
    /// Sectors of the simulated log region (the board's: 64 x 4 KB).
    public var logSectors = 64
    func logFlash(_ i: Int) -> SimLogFlash {
        if let f = logFlashes[i] { return f }
        let f = SimLogFlash(RAMLogFlash(sectorCount: logSectors, sectorSize: 4096, pageSize: 256))
        logFlashes[i] = f
        return f
    }
    /// Each node's config record copies (survive crashes, like the epoch).
    public internal(set) var configDisk: [(a: [UInt8], b: [UInt8])]
    /// Each node's persisted consensus state (storage nodes).
    public internal(set) var consensusDisk: [[UInt8]]
    public var faults = LinkFaults()
    var rng: SeededRandom
    /// Directed cuts: blockCount[from * n + to] > 0 drops everything on the link.
    var blockCount: [UInt16]
    var heap = SimEventHeap()
    var actions: [(SimWorld) -> Void] = []
    public var replayCommand: String
    public private(set) var failures: [String] = []
    public var traceEnabled = false
    public var traceSink: (String) -> Void = { print($0) }
    /// FNV-1a over every event: same seed, same hash.
    public private(set) var traceHash: UInt64 = 0xcbf2_9ce4_8422_2325
    public var stopOnFailure = true
    /// Scenario hooks.
    public var onMeshEvent: ((Int, MeshEvent) -> Void)?
    public var onComplete: ((Int, CallID, CallResult) -> Void)?
    /// Frames a node's mesh delivers to its application (config_update, acks of its own messages...).
    public var onDeliver: ((Int, Frame) -> Void)?
    /// Sees each node's runtime as it boots, before it starts (to install hooks).
    public var onBoot: ((Int, NodeRuntime<SimPlatform>) -> Void)?

    // Instrumentation.
    public private(set) var steps: UInt64 = 0
    public private(set) var datagramsSent: UInt64 = 0
    public private(set) var datagramsDelivered: UInt64 = 0
    public private(set) var datagramsLost: UInt64 = 0
    public private(set) var datagramsToDownNodes: UInt64 = 0
    public private(set) var datagramsDuplicated: UInt64 = 0
    public private(set) var datagramsCorrupted: UInt64 = 0
    public private(set) var forgedInjected: UInt64 = 0
    public private(set) var messagesSentByNodes: UInt64 = 0
    public private(set) var crashes = 0
    public private(set) var restarts = 0
    public private(set) var leaves = 0
    public private(set) var partitionsStarted = 0
    public private(set) var weatherResults = 0
    public private(set) var weatherValues = 0
    public private(set) var falseEvictions = 0
    public private(set) var executions = 0
    public var calls: [SimCall] = []
    /// (server node, server boot, nonce) of every execution of a driven call.
    var executed = Set<ExecutionKey>()
    var nextNonce: UInt64 = 1
    /// Rejected-frame totals of nodes' previous boots (counters restart with a node).
    public private(set) var rejectedTotal: UInt64 = 0
    public private(set) var taintedTotal: UInt64 = 0

    struct ExecutionKey: Hashable { var server: Int; var boot: Int; var nonce: UInt64 }

    public static let basePort: UInt16 = 4210
    public static func address(_ i: Int) -> NodeAddress { NodeAddress(host: 0x0A00_0001 + UInt32(i), port: basePort) }
    public static let key: [UInt8] = Array(100..<132)
    static let nonceMagic: UInt8 = 0x5E

    public init(seed: UInt64, configs: [NodeConfig], replayCommand: String) {
        self.seed = seed
        rng = SeededRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 17)
        disk = Array(repeating: 0, count: configs.count)
        configDisk = Array(repeating: ([], []), count: configs.count)
        consensusDisk = Array(repeating: [], count: configs.count)
        blockCount = Array(repeating: 0, count: configs.count * configs.count)
        self.replayCommand = replayCommand
        for (i, c) in configs.enumerated() { nodes.append(SimNode(index: i, config: c)) }
    }

    public func index(of address: NodeAddress) -> Int? {
        guard address.port == Self.basePort, address.host >= 0x0A00_0001 else { return nil }
        let i = Int(address.host - 0x0A00_0001)
        return i < nodes.count ? i : nil
    }

    public func index(ofNodeID id: UInt32) -> Int? {
        let i = Int(id &- nodes[0].config.nodeID)
        return i >= 0 && i < nodes.count && nodes[i].nodeID == id ? i : nil
    }

    // MARK: - Trace and failures

    func mix(_ v: UInt64) {
        var h = traceHash
        var x = v
        for _ in 0..<8 { h = (h ^ (x & 0xFF)) &* 0x100_0000_01B3; x >>= 8 }
        traceHash = h
    }

    func mixBytes(_ b: [UInt8]) {
        var h = traceHash
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01B3 }
        traceHash = h
    }

    public func traceLine(_ s: String) {
        traceSink("\(Self.formatTime(nowUs)) \(s)")
    }

    public static func formatTime(_ us: UInt64) -> String {
        let frac = String(us % 1_000_000)
        return "\(us / 1_000_000).\(String(repeating: "0", count: 6 - frac.count))\(frac)"
    }

    public func fail(_ message: String, node: Int? = nil) {
        var text = "SIMULATION INVARIANT BROKEN at t=\(Self.formatTime(nowUs)) s, --seed \(seed): \(message)\n"
        text += "  replay: \(replayCommand)"
        if let n = node, let p = nodes[n].platform {
            text += "\n  last log lines of n\(n):"
            for l in p.logLines.suffix(8) { text += "\n    \(l)" }
        }
        failures.append(text)
        if traceEnabled { traceLine("FAIL \(message)") }
    }

    // MARK: - Scheduling

    public func schedule(atUs: UInt64, _ action: @escaping (SimWorld) -> Void) {
        actions.append(action)
        heap.push(atUs: max(atUs, nowUs), .action(actions.count - 1))
    }

    public func schedule(afterMs: UInt64, _ action: @escaping (SimWorld) -> Void) {
        schedule(atUs: nowUs + afterMs * 1000, action)
    }

    /// Runs events up to `endUs` (inclusive); stops early at the first failure if `stopOnFailure`.
    public func run(untilUs endUs: UInt64) {
        while let at = heap.peekTime, at <= endUs {
            if stopOnFailure && !failures.isEmpty { return }
            let e = heap.pop()
            nowUs = e.atUs
            steps &+= 1
            switch e.kind {
            case .wake(let i, let gen):
                guard nodes[i].wakeGen == gen else { continue }
                mix(1); mix(nowUs); mix(UInt64(i))
                runNode(i)
            case .deliver(let to, let from, let bytes, let tainted):
                deliver(to: to, from: from, bytes, tainted: tainted)
            case .deliverRaw(let to, let from, let bytes):
                deliver(to: to, fromAddress: from, bytes, tainted: true, fromIndex: index(of: from) ?? -1)
            case .action(let k):
                mix(3); mix(nowUs); mix(UInt64(k))
                let a = actions[k]
                actions[k] = { _ in }
                a(self)
            }
        }
        if failures.isEmpty || !stopOnFailure { nowUs = max(nowUs, endUs) }
    }

    public func run(forMs ms: UInt64) { run(untilUs: nowUs + ms * 1000) }

    // MARK: - Nodes

    public func boot(_ i: Int) {
        let node = nodes[i]
        precondition(node.runtime == nil)
        let platform = SimPlatform(world: self, index: i, seed: node.config.rngSeed &+ UInt64(node.boots) &* 7919)
        var config = node.config
        // A fresh random stream per boot, as a board seeds from its RNG at boot.
        config.rngSeed = node.config.rngSeed &+ UInt64(disk[i] + 1) &* 0x1000_0000_01B3
        let runtime = NodeRuntime(platform: platform, config: config)
        let boot = node.boots
        runtime.actionObserver = { [unowned self] action in self.observe(i, boot: boot, action) }
        node.platform = platform
        node.runtime = runtime
        node.leftCleanly = false
        node.boots += 1
        if traceEnabled { traceLine("n\(i) boot epoch \(runtime.mesh.epoch)") }
        mix(4); mix(UInt64(i))
        onBoot?(i, runtime)
        runtime.start()
        runNode(i)
    }

    /// The process dies: all state but the disk is gone.
    public func crash(_ i: Int) {
        guard let rt = nodes[i].runtime else { return }
        retire(i, rt)
        crashes += 1
        if traceEnabled { traceLine("n\(i) CRASH") }
        mix(5); mix(UInt64(i))
    }

    /// Clean leave, then the process exits.
    public func leave(_ i: Int) {
        guard let rt = nodes[i].runtime else { return }
        rt.stop()
        retire(i, rt)
        nodes[i].leftCleanly = true
        leaves += 1
        if traceEnabled { traceLine("n\(i) LEAVE") }
        mix(6); mix(UInt64(i))
    }

    func retire(_ i: Int, _ rt: NodeRuntime<SimPlatform>) {
        rejectedTotal &+= UInt64(rt.mesh.counters.rejectedTotal)
        taintedTotal &+= UInt64(nodes[i].platform?.taintedHandedOut ?? 0)
        rt.actionObserver = nil
        nodes[i].runtime = nil
        nodes[i].platform = nil
        nodes[i].wakeGen &+= 1
        // Its pending driven calls die with it.
        for k in calls.indices where calls[k].node == i && calls[k].result == nil { calls[k].mustSucceed = false; calls[k].completedUs = nowUs }
    }

    /// A power cut in the middle of node `i`'s flash writes: its log flash
    /// runs out of power after `steps` more operations (a torn write), and the
    /// node dies `afterMs` later; its flash keeps what was written.
    public func powerCut(_ i: Int, afterSteps steps: Int, crashAfterMs: UInt64) {
        logFlash(i).ram.powerBudgetSteps = steps
        schedule(afterMs: crashAfterMs) { w in
            w.crash(i)
            w.logFlash(i).ram.powerOn()
        }
    }

    /// The faults stop: links clean (no loss, duplication, reordering),
    /// partitions healed, every node that is down powered and booted again.
    public func endFaults() {
        faults.lossPercent = 0
        faults.duplicatePercent = 0
        faults.reorderPercent = 0
        healAll()
        for i in nodes.indices where !nodes[i].isUp {
            logFlash(i).ram.powerOn()
            restart(i)
        }
    }

    public func restart(_ i: Int) {
        guard nodes[i].runtime == nil else { return }
        restarts += 1
        boot(i)
    }

    func runNode(_ i: Int) {
        guard let rt = nodes[i].runtime else { return }
        let next = rt.runOnce()
        nodes[i].wakeGen &+= 1
        if let next { heap.push(atUs: max(next, nowUs + 1), .wake(i, nodes[i].wakeGen)) }
        if let p = nodes[i].platform, UInt64(p.taintedHandedOut) > UInt64(rt.mesh.counters.rejectedTotal) {
            fail("n\(i) accepted a corrupted or forged frame: \(p.taintedHandedOut) handed to it, only \(rt.mesh.counters.rejectedTotal) rejected", node: i)
        }
    }

    // MARK: - Network

    public func isBlocked(_ from: Int, _ to: Int) -> Bool { blockCount[from * nodes.count + to] > 0 }

    /// Cuts every link from `a` to `b` (and back unless `oneWay`); returns a handle for `heal`.
    public func partition(_ a: [Int], _ b: [Int], oneWay: Bool = false) -> [(Int, Int)] {
        var links: [(Int, Int)] = []
        for x in a { for y in b where x != y {
            links.append((x, y))
            if !oneWay { links.append((y, x)) }
        } }
        for (x, y) in links { blockCount[x * nodes.count + y] += 1 }
        partitionsStarted += 1
        if traceEnabled { traceLine("PARTITION \(a) \(oneWay ? "-/->" : "<-/->") \(b)") }
        mix(7); for (x, y) in links { mix(UInt64(x * nodes.count + y)) }
        return links
    }

    public func heal(_ links: [(Int, Int)]) {
        for (x, y) in links where blockCount[x * nodes.count + y] > 0 { blockCount[x * nodes.count + y] -= 1 }
        if traceEnabled { traceLine("HEAL \(links.count) links") }
        mix(8)
    }

    public func healAll() {
        for k in blockCount.indices { blockCount[k] = 0 }
        mix(9)
    }

    func unit() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
    func chance(_ percent: Double) -> Bool { percent > 0 && unit() * 100 < percent }

    func linkExtraLoss(_ from: Int, _ to: Int) -> Double {
        guard faults.perLinkLossSpreadPercent > 0 else { return 0 }
        var x = seed ^ (UInt64(from) << 32) ^ UInt64(to) &* 0x9E37_79B9_7F4A_7C15
        x = (x ^ (x >> 31)) &* 0xBF58_476D_1CE4_E5B9
        x ^= x >> 29
        return Double(x % 1000) / 1000 * faults.perLinkLossSpreadPercent
    }

    func transmit(from: Int, to address: NodeAddress, _ bytes: [UInt8]) {
        messagesSentByNodes &+= 1
        guard let to = index(of: address) else { return }
        send(from: from, to: to, bytes)
    }

    func transmitBroadcast(from: Int, _ bytes: [UInt8]) {
        messagesSentByNodes &+= 1
        for to in nodes.indices where to != from { send(from: from, to: to, bytes) }
    }

    func send(from: Int, to: Int, _ bytes: [UInt8]) {
        datagramsSent &+= 1
        if isBlocked(from, to) || chance(faults.lossPercent + linkExtraLoss(from, to)) {
            datagramsLost &+= 1
            return
        }
        let copies = chance(faults.duplicatePercent) ? 2 : 1
        if copies == 2 { datagramsDuplicated &+= 1 }
        for _ in 0..<copies {
            var b = bytes
            var tainted = false
            if chance(faults.corruptPercent), !b.isEmpty {
                // 1-3 distinct bits (two flips of one bit would give the frame back intact).
                let flips = 1 + Int(rng.below(3))
                var bits: [Int] = []
                while bits.count < min(flips, b.count * 8) {
                    let bit = Int(rng.below(UInt64(b.count * 8)))
                    if !bits.contains(bit) { bits.append(bit) }
                }
                for bit in bits { b[bit / 8] ^= UInt8(1 << (bit % 8)) }
                if traceEnabled { traceLine("corrupt n\(from) -> n\(to): bits \(bits) of \(b.count * 8)") }
                tainted = true
                datagramsCorrupted &+= 1
            }
            var delay = faults.delayMinUs
            if faults.delayMaxUs > faults.delayMinUs { delay += rng.below(faults.delayMaxUs - faults.delayMinUs + 1) }
            if chance(faults.reorderPercent), faults.reorderExtraUs > 0 { delay += rng.below(faults.reorderExtraUs) }
            heap.push(atUs: nowUs + delay, .deliver(to: to, from: from, bytes: b, tainted: tainted))
        }
    }

    /// Hands a forged or otherwise hostile datagram to node `to`, as if from `from`.
    public func inject(_ bytes: [UInt8], to: Int, from: NodeAddress, afterUs: UInt64 = 0) {
        forgedInjected &+= 1
        heap.push(atUs: nowUs + afterUs, .deliverRaw(to: to, from: from, bytes: bytes))
    }

    func deliver(to: Int, from: Int, _ bytes: [UInt8], tainted: Bool) {
        deliver(to: to, fromAddress: Self.address(from), bytes, tainted: tainted, fromIndex: from)
    }

    func deliver(to: Int, fromAddress: NodeAddress, _ bytes: [UInt8], tainted: Bool, fromIndex: Int) {
        mix(2); mix(nowUs); mix(UInt64(to)); mix(UInt64(bitPattern: Int64(fromIndex))); mixBytes(bytes)
        guard let p = nodes[to].platform, let rt = nodes[to].runtime else { datagramsToDownNodes &+= 1; return }
        datagramsDelivered &+= 1
        if traceEnabled { traceLine("deliver n\(fromIndex) -> n\(to) \(bytes.count) B\(tainted ? " TAINTED" : "")") }
        guard p.enqueue(bytes, from: fromAddress, tainted: tainted) else { return }
        rt.datagramsReady()
        runNode(to)
    }

    // MARK: - Driven calls

    /// Starts a read on node `i` with a unique nonce in its arguments (so
    /// executions can be counted at the servers).
    @discardableResult
    public func startCall(on i: Int, service: [UInt8], version: SemVer, deadlineMs: UInt32, mustSucceed: Bool = false) -> Int? {
        guard let rt = nodes[i].runtime else { return nil }
        // Arguments are one CBOR item: a 9-byte byte string (magic, nonce).
        var args: [UInt8] = [0x49, Self.nonceMagic]
        let nonce = nextNonce
        nextNonce += 1
        for k in 0..<8 { args.append(UInt8(truncatingIfNeeded: nonce >> (8 * UInt64(k)))) }
        let k = calls.count
        calls.append(SimCall(node: i, boot: nodes[i].boots - 1, id: CallID(raw: 0), service: service, version: version,
                             startUs: nowUs, deadlineMs: deadlineMs, mustSucceed: mustSucceed))
        callingNode = i
        let id = rt.call(service: service, version: version, arguments: args, deadlineMs: deadlineMs)
        callingNode = nil
        calls[k].id = id
        // A call that failed at once, or was served locally, completed inside
        // rt.call, before its id was known here.
        let early = earlyCompletions
        earlyCompletions.removeAll()
        for (cid, result) in early {
            handleCompletion(i, boot: nodes[i].boots - 1, cid, result)
        }
        runNode(i)
        return k
    }

    var callingNode: Int?
    var earlyCompletions: [(CallID, CallResult)] = []
    /// Calls an experiment makes itself (`startDrivenCall`): their outcome goes
    /// to `onComplete` only, with no check of the world's own.
    var drivenCalls: [(node: Int, boot: Int, id: CallID)] = []

    /// Starts any call (operation, arguments) on node `i` for an experiment,
    /// which judges its outcome in `onComplete`; nil when the node is down.
    public func startDrivenCall(on i: Int, service: [UInt8], version: SemVer, operation: Operation,
                                arguments: [UInt8], deadlineMs: UInt32) -> CallID? {
        guard let rt = nodes[i].runtime else { return nil }
        callingNode = i
        let id = rt.call(service: service, version: version, operation: operation, arguments: arguments,
                         deadlineMs: deadlineMs)
        callingNode = nil
        drivenCalls.append((i, nodes[i].boots - 1, id))
        let early = earlyCompletions
        earlyCompletions.removeAll()
        for (cid, result) in early { handleCompletion(i, boot: nodes[i].boots - 1, cid, result) }
        runNode(i)
        return id
    }

    func finishCall(_ k: Int, _ result: CallResult) {
        let c = calls[k]
        if c.result != nil {
            fail("n\(c.node) call \(c.id.raw) completed twice", node: c.node)
            return
        }
        calls[k].result = result
        calls[k].completedUs = nowUs
        let limitUs = c.startUs + UInt64(c.deadlineMs) * 1000 + Self.deadlineSlackUs
        if nowUs > limitUs {
            fail("n\(c.node) call \(c.id.raw) to \(String(decoding: c.service, as: UTF8.self)) completed \(nowUs - c.startUs) µs after it started, past its \(c.deadlineMs) ms deadline", node: c.node)
        }
        if case .value(let v) = result {
            checkValue(c.node, v, service: c.service, version: c.version)
        }
        if c.mustSucceed {
            switch result {
            case .value(let v) where !v.isStale: break
            default:
                fail("liveness: n\(c.node) read of \(String(decoding: c.service, as: UTF8.self)) ^\(c.version) after the faults stopped got \(result) (expected a fresh value)", node: c.node)
            }
        }
    }

    /// The mesh completes calls at their deadline (ms granularity) from a task the scheduler runs at once.
    public static let deadlineSlackUs: UInt64 = 10_000

    /// Checks calls that should have completed by now.
    public func checkCallsCompleted() {
        for c in calls where c.result == nil && c.completedUs == nil {
            if nowUs > c.startUs + UInt64(c.deadlineMs) * 1000 + Self.deadlineSlackUs {
                fail("n\(c.node) call \(c.id.raw) to \(String(decoding: c.service, as: UTF8.self)) never completed (deadline \(c.deadlineMs) ms)", node: c.node)
            }
        }
    }

    // MARK: - Observing the nodes (safety invariants, checked at every action)

    func observe(_ i: Int, boot: Int, _ action: MeshAction) {
        switch action {
        case .deliver(let frame):
            onDeliver?(i, frame)
        case .send, .broadcast:
            return
        case .serve(_, let request, _):
            let a = request.arguments
            if a.count == 10 && a[0] == 0x49 && a[1] == Self.nonceMagic {
                var nonce: UInt64 = 0
                for k in 0..<8 { nonce |= UInt64(a[2 + k]) << (8 * UInt64(k)) }
                executions += 1
                if !executed.insert(ExecutionKey(server: i, boot: boot, nonce: nonce)).inserted {
                    fail("n\(i) executed request nonce \(nonce) twice (duplicate suppression failed)", node: i)
                }
            }
        case .complete(let id, let result):
            mix(10); mix(UInt64(i)); mix(UInt64(id.raw))
            if traceEnabled { traceLine("n\(i) complete call \(id.raw): \(result)") }
            if callingNode == i {
                earlyCompletions.append((id, result))
            } else {
                handleCompletion(i, boot: boot, id, result)
            }
        case .event(let e):
            observeEvent(i, e)
        }
    }

    func handleCompletion(_ i: Int, boot: Int, _ id: CallID, _ result: CallResult) {
        if let d = drivenCalls.firstIndex(where: { $0.node == i && $0.boot == boot && $0.id == id }) {
            drivenCalls.remove(at: d)
        } else if let k = calls.lastIndex(where: { $0.node == i && $0.boot == boot && $0.id == id }) {
            finishCall(k, result)
        } else if nodes[i].runtime?.producer.inFlight == id || nodes[i].runtime?.isReplicationCall(id) == true {
            // The kernel's log shipper (LogProducer), a storage replica's calls to
            // the others: checked by the storage experiments (onComplete).
        } else {
            // The weather station's reads (^1.0.0 of its configured services).
            weatherResults += 1
            if case .value(let v) = result {
                weatherValues += 1
                guard let svc = nodes[i].config.weatherServices.first(where: { bytes($0.name) == v.service.name }) else {
                    fail("n\(i) weather station got a value from service \(String(decoding: v.service.name, as: UTF8.self)) it never asked for", node: i)
                    return
                }
                checkValue(i, v, service: v.service.name, version: svc.version)
            }
        }
        onComplete?(i, id, result)
    }

    func observeEvent(_ i: Int, _ e: MeshEvent) {
        do {
            if traceEnabled { traceLine("n\(i) \(e)") }
            switch e {
            case .peerJoined(let n), .peerRestarted(let n):
                if index(ofNodeID: n) == nil { fail("n\(i) admitted unknown node \(hex(n)) (forged?)", node: i) }
            case .serviceAdded(let n, let s):
                guard let j = index(ofNodeID: n) else {
                    fail("n\(i) registered service \(hex(s)) of unknown node \(hex(n)) (forged?)", node: i)
                    break
                }
                if !nodes[j].config.services.contains(where: { serviceID($0.name) == s }) {
                    fail("n\(i) registered service \(hex(s)) on n\(j), which does not run it", node: i)
                }
            case .peerDead(let n):
                if let j = index(ofNodeID: n), nodes[j].isUp, !isBlocked(j, i), !isBlocked(i, j) {
                    falseEvictions += 1
                }
            default: break
            }
            onMeshEvent?(i, e)
        }
    }

    /// Safety: a value comes only from a node that (really) runs an instance
    /// of the named service, as announced, with a caret-compatible version.
    func checkValue(_ i: Int, _ v: CallValue, service: [UInt8], version: SemVer) {
        let name = String(decoding: service, as: UTF8.self)
        guard v.service.name == service else {
            fail("n\(i) asked for \(name) but got a value from \(String(decoding: v.service.name, as: UTF8.self))", node: i)
            return
        }
        guard v.service.version.satisfies(caret: version) else {
            fail("n\(i) asked for \(name) ^\(version) but got a value from version \(v.service.version)", node: i)
            return
        }
        guard let j = index(ofNodeID: v.node) else {
            fail("n\(i) got a \(name) value from unknown node \(hex(v.node)) (forged?)", node: i)
            return
        }
        guard nodes[j].config.services.contains(v.service) else {
            fail("n\(i) got a \(name) value from n\(j), which does not run \(name) \(v.service.version) prio \(v.service.priority)", node: i)
            return
        }
    }

    // MARK: - Whole-mesh checks

    /// Safety, full scan: every registry entry of every live node names a real
    /// node and exactly the descriptor that node runs; every peer is a real node.
    public func checkRegistries() {
        for n in nodes {
            guard let rt = n.runtime else { continue }
            for inst in rt.mesh.registry {
                guard let j = index(ofNodeID: inst.node) else {
                    fail("n\(n.index) registry holds an instance of unknown node \(hex(inst.node))", node: n.index); return
                }
                if !nodes[j].config.services.contains(inst.descriptor) {
                    fail("n\(n.index) registry holds \(String(decoding: inst.descriptor.name, as: UTF8.self)) \(inst.descriptor.version) on n\(j), which does not run it", node: n.index); return
                }
            }
            for p in rt.mesh.peers where index(ofNodeID: p.nodeID) == nil {
                fail("n\(n.index) peer table holds unknown node \(hex(p.nodeID))", node: n.index); return
            }
        }
    }

    /// Liveness: every live node sees every live node alive and every service it runs.
    /// Returns the number of missing (viewer, instance) pairs; fails if `report`.
    @discardableResult
    public func checkConvergence(report: Bool, context: String = "") -> Int {
        var missing = 0
        for v in nodes {
            guard let rt = v.runtime else { continue }
            let registry = rt.mesh.registry
            for n in nodes where n.index != v.index && n.isUp {
                if report {
                    if let p = rt.mesh.peer(n.nodeID) {
                        if p.state != .alive {
                            fail("liveness\(context): n\(v.index) sees live n\(n.index) as \(p.state)", node: v.index); return missing + 1
                        }
                    } else {
                        fail("liveness\(context): n\(v.index) does not know live n\(n.index)", node: v.index); return missing + 1
                    }
                }
                for s in n.config.services where !registry.contains(where: { $0.node == n.nodeID && $0.descriptor == s }) {
                    missing += 1
                    if report {
                        fail("liveness\(context): n\(v.index) does not see \(String(decoding: s.name, as: UTF8.self)) \(s.version) on live n\(n.index)", node: v.index)
                        return missing
                    }
                }
            }
        }
        return missing
    }

    /// Whether every live node sees every service of every other live node.
    public var converged: Bool { checkConvergence(report: false) == 0 }

    /// Sum over live nodes of what must not grow in steady state.
    public func tableFootprint() -> [Int] {
        var out: [Int] = []
        for n in nodes {
            guard let rt = n.runtime else { out.append(-1); continue }
            out.append(rt.mesh.peers.count)
            out.append(rt.mesh.registry.count)
            out.append(rt.mesh.callsInFlight)
            out.append(rt.mesh.serveEntries)
            out.append(rt.scheduler.taskCount)
            out.append(rt.scheduler.storageBytes)
        }
        return out
    }

    public func liveRejectedTotal() -> UInt64 {
        var t = rejectedTotal
        for n in nodes { if let rt = n.runtime { t &+= UInt64(rt.mesh.counters.rejectedTotal) } }
        return t
    }
}

func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

// MARK: - Event queue

enum SimEventKind {
    case wake(Int, UInt64)
    case deliver(to: Int, from: Int, bytes: [UInt8], tainted: Bool)
    case deliverRaw(to: Int, from: NodeAddress, bytes: [UInt8])
    case action(Int)
}

struct SimEvent {
    var atUs: UInt64
    var seq: UInt64
    var kind: SimEventKind
}

/// A binary min-heap on (time, insertion order).
struct SimEventHeap {
    var items: [SimEvent] = []
    var seq: UInt64 = 0

    var peekTime: UInt64? { items.first?.atUs }
    var count: Int { items.count }

    @inline(__always) static func less(_ a: SimEvent, _ b: SimEvent) -> Bool {
        a.atUs < b.atUs || (a.atUs == b.atUs && a.seq < b.seq)
    }

    mutating func push(atUs: UInt64, _ kind: SimEventKind) {
        seq &+= 1
        items.append(SimEvent(atUs: atUs, seq: seq, kind: kind))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if Self.less(items[i], items[p]) { items.swapAt(i, p); i = p } else { break }
        }
    }

    mutating func pop() -> SimEvent {
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && Self.less(items[l], items[m]) { m = l }
                if r < n && Self.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
