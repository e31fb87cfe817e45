// A tiny deterministic "wire" for driving a few MeshNodes by hand: a virtual
// clock, per-link latency, directed link cuts, crashes, a drop filter, and an
// application per node that answers `.serve` as told. Every datagram sent is
// decoded (with the shared key) into `log`, so tests can assert on the wire.
import Testing
@testable import TDOSCore

let meshTestKey: [UInt8] = Array(0..<32)
func meshKeyring() -> Keyring { Keyring(id: 1, key: meshTestKey) }
func meshAddress(_ i: Int) -> NodeAddress { NodeAddress(host: 0x0A00_0001 + UInt32(i), port: 4210) }
func meshNodeID(_ i: Int) -> UInt32 { 0x100 + UInt32(i) }
func meshBytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func meshService(_ name: String, _ version: SemVer, priority: UInt8 = 0, role: NodeRole = .sensor) -> ServiceDescriptor {
    ServiceDescriptor(name: meshBytes(name), version: version, role: role, capabilities: [.read], priority: priority, port: 4210)
}

/// How a node's application answers `.serve`.
enum MeshServeMode {
    case answer(Response)
    case later(UInt64, Response)
    case never
}

struct MeshWireRecord {
    var at: UInt64
    var from: Int
    /// nil: broadcast.
    var to: Int?
    var frame: Frame
    /// For a relay envelope: the frame inside it.
    var inner: Frame?
}

struct MeshTestNet {
    var nodes: [MeshNode] = []
    var now: UInt64 = 0
    var latencyMs: UInt64 = 1
    var crashed: Set<Int> = []
    /// Directed cuts: [from, to].
    var cut: Set<[Int]> = []
    /// Return true to drop a datagram (from, to, decoded frame).
    var dropIf: ((Int, Int, Frame) -> Bool)? = nil
    var serveModes: [MeshServeMode] = []
    var served: [[Request]] = []
    var completions: [(node: Int, id: CallID, result: CallResult, at: UInt64, boot: Int)] = []
    /// Bumped by tests that replace a node (a reboot): CallIDs restart with it.
    var boots: [Int] = []
    var events: [(node: Int, event: MeshEvent, at: UInt64)] = []
    var log: [MeshWireRecord] = []
    var queue: [(at: UInt64, seq: Int, to: Int, from: NodeAddress, bytes: [UInt8])] = []
    var laterResponds: [(at: UInt64, node: Int, handle: ServeHandle, response: Response)] = []
    var seq = 0
    var actionCount = 0
    /// Optional faults, drawn from `faultRNG`: loss and duplication in percent,
    /// extra latency in 0...jitterMs (reorders datagrams).
    var lossPercent: UInt64 = 0
    var duplicatePercent: UInt64 = 0
    var jitterMs: UInt64 = 0
    var faultRNG = SeededRandom(seed: 0)
    /// Subscriptions beside each node's mesh (PubSub), fed its deliveries and events.
    var pubsubs: [PubSub] = []
    var pubsubEvents: [(node: Int, event: PubSubEvent, at: UInt64)] = []

    init(services: [[ServiceDescriptor]], config: MeshConfig = MeshConfig(), seed: UInt64 = 1,
         names: [String]? = nil, pubsub: PubSubConfig = PubSubConfig()) {
        for (i, list) in services.enumerated() {
            pubsubs.append(PubSub(config: pubsub))
            nodes.append(MeshNode(config: config, nodeID: meshNodeID(i), name: meshBytes(names?[i] ?? "node-\(i)"),
                                  epoch: 1, keys: meshKeyring(), address: meshAddress(i), services: list,
                                  rngSeed: seed &* 1000 &+ UInt64(i)))
            serveModes.append(.answer(Response(value: 20.0 + Double(i), unit: .celsius)))
            boots.append(0)
            served.append([])
        }
    }

    func index(of address: NodeAddress) -> Int? { (0..<nodes.count).first { meshAddress($0) == address } }

    mutating func startAll() {
        for i in nodes.indices { start(i) }
    }

    mutating func start(_ i: Int) {
        nodes[i].start(nowMs: now)
        drain(i)
    }

    mutating func crash(_ i: Int) { crashed.insert(i) }

    mutating func cutLink(_ a: Int, _ b: Int) {
        cut.insert([a, b])
        cut.insert([b, a])
    }

    mutating func healLink(_ a: Int, _ b: Int) {
        cut.remove([a, b])
        cut.remove([b, a])
    }

    mutating func call(_ i: Int, _ name: String, _ version: SemVer, operation: TDOSCore.Operation = .read,
                       deadlineMs: UInt32 = 5000) -> CallID {
        let id = nodes[i].call(service: meshBytes(name), version: version, operation: operation, deadlineMs: deadlineMs,
                               nowMs: now)
        drain(i)
        return id
    }

    func result(_ node: Int, _ id: CallID) -> CallResult? {
        completions.first { $0.node == node && $0.id == id }?.result
    }

    func completedAt(_ node: Int, _ id: CallID) -> UInt64? {
        completions.first { $0.node == node && $0.id == id }?.at
    }

    func eventTimes(_ node: Int, _ match: (MeshEvent) -> Bool) -> [UInt64] {
        events.filter { $0.node == node && match($0.event) }.map { $0.at }
    }

    func hasEvent(_ node: Int, _ event: MeshEvent) -> Bool {
        events.contains { $0.node == node && $0.event == event }
    }

    /// Frames node `from` sent of a type (relayed ones looked into).
    func sent(_ from: Int, _ type: MessageType) -> [MeshWireRecord] {
        log.filter { $0.from == from && ($0.frame.type == type || $0.inner?.type == type) }
    }

    mutating func drain(_ i: Int) {
        while let action = nodes[i].pollAction() {
            actionCount += 1
            if crashed.contains(i) { continue }
            switch action {
            case .send(let to, let bytes):
                guard let j = index(of: to) else { continue }
                transmit(bytes, from: i, to: j)
            case .broadcast(let bytes):
                for j in nodes.indices where j != i { transmit(bytes, from: i, to: j, broadcast: true) }
            case .serve(let handle, let request, let from):
                served[i].append(request)
                _ = from
                switch serveModes[i] {
                case .answer(let response):
                    nodes[i].respond(handle, response, nowMs: now)
                case .later(let delay, let response):
                    laterResponds.append((now + delay, i, handle, response))
                case .never:
                    break
                }
            case .complete(let id, let result):
                completions.append((i, id, result, now, boots[i]))
            case .deliver(let frame):
                pubsubs[i].handle(frame, nowMs: now, mesh: &nodes[i])
            case .event(let e):
                events.append((i, e, now))
                pubsubs[i].handleMeshEvent(e, nowMs: now, mesh: &nodes[i])
            }
        }
        while let e = pubsubs[i].pollEvent() { pubsubEvents.append((i, e, now)) }
    }

    mutating func subscribe(_ i: Int, _ name: String, version: SemVer = SemVer(1, 0, 0), minMs: UInt32 = 1000,
                            maxMs: UInt32 = 10_000, threshold: Double = 0, leaseMs: UInt32 = 30_000) -> SubscriptionID? {
        let id = pubsubs[i].subscribe(service: meshBytes(name), version: version, minIntervalMs: minMs,
                                      maxIntervalMs: maxMs, threshold: threshold, leaseMs: leaseMs, nowMs: now,
                                      mesh: &nodes[i])
        drain(i)
        return id
    }

    mutating func publish(_ i: Int, _ name: String, _ value: Double) {
        pubsubs[i].publish(service: meshBytes(name), value: value, unit: .celsius, nowMs: now, mesh: &nodes[i])
        drain(i)
    }

    /// Notifications node `i` received, in order.
    func notifications(_ i: Int) -> [(n: SubscriptionNotification, at: UInt64)] {
        pubsubEvents.compactMap { e in
            guard e.node == i, case .notification(let n) = e.event else { return nil }
            return (n, e.at)
        }
    }

    mutating func transmit(_ bytes: [UInt8], from i: Int, to j: Int, broadcast: Bool = false) {
        if let frame = try? Frame.decode(bytes, keys: meshKeyring()) {
            var inner: Frame?
            if frame.type == .relay, let env = try? RelayEnvelope.decode(frame.payload) {
                inner = try? Frame.decode(env.frame, keys: meshKeyring())
            }
            if !broadcast || j == (i == 0 ? 1 : 0) {  // log a broadcast once
                log.append(MeshWireRecord(at: now, from: i, to: broadcast ? nil : j, frame: frame, inner: inner))
            }
            if let dropIf, dropIf(i, j, frame) { return }
        }
        if cut.contains([i, j]) || crashed.contains(j) { return }
        if lossPercent > 0 && faultRNG.below(100) < lossPercent { return }
        let copies = duplicatePercent > 0 && faultRNG.below(100) < duplicatePercent ? 2 : 1
        for _ in 0..<copies {
            seq += 1
            let extra = jitterMs > 0 ? faultRNG.below(jitterMs + 1) : 0
            queue.append((now + latencyMs + extra, seq, j, meshAddress(i), bytes))
        }
    }

    /// A datagram from outside (forged, replayed, another major...).
    mutating func inject(_ bytes: [UInt8], to j: Int, from address: NodeAddress) {
        nodes[j].handleDatagram(bytes, from: address, nowMs: now)
        drain(j)
    }

    mutating func run(until end: UInt64) {
        var steps = 0
        while true {
            steps += 1
            if steps > 2_000_000 {
                Issue.record("simulation does not advance at \(now)")
                return
            }
            var next = UInt64.max
            for q in queue { next = min(next, q.at) }
            for r in laterResponds { next = min(next, r.at) }
            for i in nodes.indices where !crashed.contains(i) {
                if let t = nodes[i].nextTimeoutMs { next = min(next, t) }
                if let t = pubsubs[i].nextTimeoutMs { next = min(next, t) }
            }
            guard next <= end else { break }
            now = max(now, next)
            // Deliveries due, in send order.
            let due = queue.filter { $0.at <= now }.sorted { $0.seq < $1.seq }
            queue.removeAll { $0.at <= now }
            for d in due where !crashed.contains(d.to) {
                nodes[d.to].handleDatagram(d.bytes, from: d.from, nowMs: now)
                drain(d.to)
            }
            let responds = laterResponds.filter { $0.at <= now }
            laterResponds.removeAll { $0.at <= now }
            for r in responds where !crashed.contains(r.node) {
                nodes[r.node].respond(r.handle, r.response, nowMs: now)
                drain(r.node)
            }
            for i in nodes.indices where !crashed.contains(i) {
                if let t = nodes[i].nextTimeoutMs, t <= now {
                    nodes[i].handleTimeout(nowMs: now)
                    drain(i)
                    if let t2 = nodes[i].nextTimeoutMs, t2 <= now {
                        Issue.record("node \(i): nextTimeoutMs \(t2) still due after handleTimeout at \(now)")
                        return
                    }
                }
                if let t = pubsubs[i].nextTimeoutMs, t <= now {
                    pubsubs[i].handleTimeout(nowMs: now, mesh: &nodes[i])
                    drain(i)
                    if let t2 = pubsubs[i].nextTimeoutMs, t2 <= now {
                        Issue.record("node \(i): pubsub nextTimeoutMs \(t2) still due after handleTimeout at \(now)")
                        return
                    }
                }
            }
        }
        now = max(now, end)
    }

    mutating func run(for ms: UInt64) { run(until: now + ms) }
}
