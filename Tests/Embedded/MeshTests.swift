// The mesh state machine on the target's instruction set: two MeshNodes joined
// by a tiny in-test wire (a queue of datagrams and a virtual clock). Discovery,
// a read served by the other node, heartbeats over a few seconds, a forged
// frame, a crash detected by the failure detector, and the stale-value tier.
//
// Stack: reading a property of `nodes[i]` copies the whole MeshNode (~400 B
// here) into the caller's frame, one slot per access site. So every access is
// in a small @inline(never) helper, and the phases are separate functions.
import TDOSCore

/// The wire: datagrams in flight, one virtual millisecond per hop.
struct MeshWire {
    var nodes: [MeshNode] = []
    var queue: [(to: Int, from: NodeAddress, bytes: [UInt8])] = []
    var now: UInt64 = 0
    var crashed = -1
    var result: CallResult?
    var served = 0
    var deadEvents = 0

    static func address(_ i: Int) -> NodeAddress { NodeAddress(host: 0x0A00_0001 + UInt32(i), port: 4210) }

    @inline(never)
    mutating func add(_ config: MeshConfig, id: UInt32, name: [UInt8], services: [ServiceDescriptor]) {
        let key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
        nodes.append(MeshNode(config: config, nodeID: id, name: name, epoch: 1, keys: Keyring(id: 1, key: key),
                              address: MeshWire.address(nodes.count), services: services, rngSeed: UInt64(id)))
    }

    @inline(never)
    mutating func start(_ i: Int) {
        nodes[i].start(nowMs: now)
        drain(i)
    }

    @inline(never)
    mutating func callTemp(from i: Int, deadlineMs: UInt32) {
        result = nil
        _ = nodes[i].call(service: "temp_sensor", version: SemVer(1, 0, 0), deadlineMs: deadlineMs, nowMs: now)
        drain(i)
    }

    @inline(never)
    mutating func inject(_ bytes: [UInt8], to i: Int, from: NodeAddress) {
        nodes[i].handleDatagram(bytes, from: from, nowMs: now)
        drain(i)
    }

    @inline(never)
    mutating func drain(_ i: Int) {
        while let action = nodes[i].pollAction() {
            if i == crashed { continue }
            switch action {
            case .send(let to, let bytes):
                for j in nodes.indices where MeshWire.address(j) == to { queue.append((j, MeshWire.address(i), bytes)) }
            case .broadcast(let bytes):
                for j in nodes.indices where j != i { queue.append((j, MeshWire.address(i), bytes)) }
            case .serve(let handle, let request, _):
                served += 1
                let ok = request.service == serviceID("temp_sensor") && request.operation == .read
                nodes[i].respond(handle, ok ? Response(value: 21.5, unit: .celsius) : Response(status: 17), nowMs: now)
            case .complete(_, let r):
                result = r
            case .event(let e):
                if case .peerDead = e { deadEvents += 1 }
            case .deliver:
                break
            }
        }
    }

    @inline(never)
    func nextTimeout(_ i: Int) -> UInt64? { nodes[i].nextTimeoutMs }

    @inline(never)
    mutating func deliverQueued() {
        now += 1
        let batch = queue
        queue.removeAll()
        for d in batch where d.to != crashed {
            nodes[d.to].handleDatagram(d.bytes, from: d.from, nowMs: now)
            drain(d.to)
        }
    }

    @inline(never)
    mutating func fireTimers() {
        for i in nodes.indices where i != crashed {
            if let t = nextTimeout(i), t <= now {
                nodes[i].handleTimeout(nowMs: now)
                drain(i)
            }
        }
    }

    /// Delivers everything in flight, then runs the timers due, until `end`.
    @inline(never)
    mutating func run(until end: UInt64) {
        var steps = 0
        while steps < 100_000 {
            steps += 1
            if !queue.isEmpty {
                deliverQueued()
                continue
            }
            var next = UInt64.max
            for i in nodes.indices where i != crashed {
                if let t = nextTimeout(i) { next = min(next, t) }
            }
            if next > end { break }
            now = max(now, next)
            fireTimers()
        }
        expect(steps < 100_000, "mesh wire: time advances")
        now = max(now, end)
    }

    // Views, one MeshNode copy each.
    @inline(never) func registry(_ i: Int) -> [ServiceInstanceInfo] { nodes[i].registry }
    @inline(never) func peer(_ i: Int, _ node: UInt32) -> PeerInfo? { nodes[i].peer(node) }
    @inline(never) func counters(_ i: Int) -> MeshCounters { nodes[i].counters }
}

@inline(never)
func meshDiscovery(_ wire: inout MeshWire) {
    wire.start(0)
    wire.start(1)
    wire.run(until: 10)
    let registry = wire.registry(0)
    expect(registry.count == 1, "mesh: kernel discovers one service")
    if registry.count == 1 {
        expectEqual(registry[0].descriptor.name, ascii("temp_sensor"), "mesh: discovered service name")
        expect(registry[0].node == 2 && registry[0].descriptor.version == SemVer(1, 2, 0), "mesh: instance node and version")
    }
    expect(wire.peer(0, 2)?.state == .alive && wire.peer(1, 1)?.state == .alive, "mesh: peers alive")
    expectEqual(wire.peer(0, 2)?.name ?? [], ascii("temp-a"), "mesh: peer name from announce")
}

@inline(never)
func meshRead(_ wire: inout MeshWire) {
    wire.callTemp(from: 0, deadlineMs: 2000)
    wire.run(until: wire.now + 10)
    if case .value(let v)? = wire.result {
        expect(v.node == 2 && v.response.value == 21.5 && v.response.unit == .celsius, "mesh: read value")
        expect(!v.isStale && v.failovers == 0, "mesh: fresh, no failover")
    } else {
        expect(false, "mesh: read completes with a value")
    }
    expectEqual(wire.served, 1, "mesh: served once")
}

@inline(never)
func meshHeartbeatsAndForgery(_ wire: inout MeshWire) {
    wire.run(until: 8000)
    expect(wire.peer(0, 2)?.state == .alive, "mesh: alive after 8 s of heartbeats")
    expect(wire.counters(1).heartbeatsSent >= 6, "mesh: heartbeats sent")
    expectEqual(wire.counters(0).rejectedTotal, 0, "mesh: nothing rejected")
    var forged = hex("100600410a0b0c0d01080001e460a501190e10021a0002500003182a04110519beefdafcc24286f3ab7d800853dbde1f4394")
    forged[20] ^= 1
    wire.inject(forged, to: 0, from: MeshWire.address(5))
    expectEqual(wire.counters(0).rejected(.badTag), 1, "mesh: forged frame counted")
}

@inline(never)
func meshCrashAndStale(_ wire: inout MeshWire) {
    wire.crashed = 1
    let crashAt = wire.now
    wire.run(until: crashAt + 3100)
    expectEqual(wire.deadEvents, 1, "mesh: crash detected within 3.1 s")
    expect(wire.registry(0).isEmpty, "mesh: dead node's service removed")
    wire.callTemp(from: 0, deadlineMs: 300)
    wire.run(until: wire.now + 400)
    if case .value(let v)? = wire.result {
        expect(v.isStale && v.degradedBecause == .noInstance && v.response.value == 21.5, "mesh: stale tier")
    } else {
        expect(false, "mesh: stale value after the crash")
    }
}

func meshTests() {
    // Small tables: two nodes on a 64 KB board.
    var config = MeshConfig()
    config.peersMax = 4
    config.instancesMax = 8
    config.callsInFlightMax = 2
    config.dedupCacheMax = 4
    config.staleCacheMax = 2
    config.probesMax = 4
    config.indirectProbeCount = 1
    config.actionQueueMax = 24
    config.versionReplySourcesMax = 2
    config.check()

    var wire = MeshWire()
    wire.add(config, id: 1, name: ascii("kernel"), services: [])
    wire.add(config, id: 2, name: ascii("temp-a"), services: [
        ServiceDescriptor(name: ascii("temp_sensor"), version: SemVer(1, 2, 0), role: .sensor, capabilities: .read,
                          priority: 0, port: 4210),
    ])
    meshDiscovery(&wire)
    meshRead(&wire)
    meshHeartbeatsAndForgery(&wire)
    meshCrashAndStale(&wire)
}
