// `tdos-bench runtime`: the node runtime's figures (issue 7) — scheduler
// cost per task switch and memory per task, and subscription fan-out: pushes
// per second a publisher produces for 1, 10 and 50 subscribers (each push is a
// notify frame encoded, signed with HMAC-SHA256 and queued for the socket).
// The armv6m flash of the runtime comes from scripts/runtime-size.sh (make bench).
import Foundation
import TDOSCore

func runtimeBench() {
    schedulerBench()
    fanoutBench()
}

func schedulerBench() {
    for tasks in [2, 8, 32] {
        var s = Scheduler(config: SchedulerConfig(taskCapacity: 32))
        var ticks = 0
        for _ in 0..<tasks {
            _ = try? s.spawn("spin") { _ in
                ticks += 1
                return .yield
            }
        }
        var now: UInt64 = 1
        for _ in 0..<1000 { now += 1; _ = s.runReady(nowUs: now) }  // warm up
        ticks = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var runs = 0
        while ticks < 3_000_000 {
            now += 1
            _ = s.runReady(nowUs: now)
            runs += 1
        }
        let ns = Double(DispatchTime.now().uptimeNanoseconds - start)
        print("runtime: scheduler task switch (\(tasks) ready tasks, each tick yields; \(ticks) ticks in \(runs) runReady calls): \(String(format: "%.1f", ns / Double(ticks))) ns per switch")
    }
    let perTask = Scheduler.bytesPerTask(priorityLevels: SchedulerConfig.standard.priorityLevels)
    let sixteen = Scheduler(config: SchedulerConfig(taskCapacity: 16)).storageBytes
    print("runtime: scheduler memory on this host (64-bit): \(perTask) B per task (record, ready rings, slot), a 16-task scheduler's tables \(sixteen) B; armv6m figures: scripts/runtime-size.sh")
}

/// One publisher and `n` subscriber mesh nodes in memory: datagrams are handed
/// over directly (no sockets), so the figure is the CPU cost of a push.
struct FanoutMesh {
    var nodes: [MeshNode] = []
    var pubsubs: [PubSub] = []
    var now: UInt64 = 0
    var timedSends = 0

    init(subscribers n: Int) {
        var mesh = MeshConfig()
        mesh.peersMax = 64
        mesh.instancesMax = 64
        var ps = PubSubConfig()
        ps.publicationsMax = 64
        let key = Keyring(id: 1, key: Array(0..<32))
        let temp = ServiceDescriptor(name: Array("temp_sensor".utf8), version: SemVer(1, 0, 0), role: .sensor,
                                     capabilities: [.read, .subscribe], priority: 0, port: 4210)
        for i in 0...n {
            nodes.append(MeshNode(config: mesh, nodeID: 0x100 + UInt32(i), name: Array("n\(i)".utf8), epoch: 1, keys: key,
                                  address: NodeAddress(host: 0x0A00_0001 + UInt32(i), port: 4210),
                                  services: i == 0 ? [temp] : [], rngSeed: UInt64(i)))
            pubsubs.append(PubSub(config: ps))
        }
        for i in nodes.indices { nodes[i].start(nowMs: now) }
        route()
        for i in 1...n {
            _ = pubsubs[i].subscribe(service: Array("temp_sensor".utf8), minIntervalMs: 100, maxIntervalMs: 3_600_000,
                                     leaseMs: 600_000, nowMs: now, mesh: &nodes[i])
        }
        route()
    }

    /// Delivers every pending datagram until the mesh is quiet.
    mutating func route() {
        var moved = true
        while moved {
            moved = false
            for i in nodes.indices {
                while let a = nodes[i].pollAction() {
                    moved = true
                    switch a {
                    case .send(let to, let bytes):
                        let j = Int(to.host - 0x0A00_0001)
                        nodes[j].handleDatagram(bytes, from: nodes[i].address, nowMs: now)
                    case .broadcast(let bytes):
                        for j in nodes.indices where j != i { nodes[j].handleDatagram(bytes, from: nodes[i].address, nowMs: now) }
                    case .deliver(let f):
                        pubsubs[i].handle(f, nowMs: now, mesh: &nodes[i])
                    case .event(let e):
                        pubsubs[i].handleMeshEvent(e, nowMs: now, mesh: &nodes[i])
                    case .serve, .complete:
                        break
                    }
                }
            }
        }
    }

    /// One new sample at the publisher, past the minimum interval: every
    /// subscriber gets a push. Returns the datagrams queued.
    mutating func publishOnce(_ value: Double) -> Int {
        now += 100
        pubsubs[0].publish(service: Array("temp_sensor".utf8), value: value, unit: .celsius, nowMs: now, mesh: &nodes[0])
        var sent = 0
        while let a = nodes[0].pollAction() {
            if case .send = a { sent += 1 }
        }
        return sent
    }
}

func fanoutBench() {
    for n in [1, 10, 50] {
        var m = FanoutMesh(subscribers: n)
        guard m.pubsubs[0].publicationCount == n else {
            print("runtime: fan-out to \(n): only \(m.pubsubs[0].publicationCount) subscriptions were set up (bench bug)")
            continue
        }
        for k in 0..<50 { _ = m.publishOnce(Double(k)) }  // warm up
        let rounds = max(200, 20_000 / n)
        var pushes = 0
        let start = DispatchTime.now().uptimeNanoseconds
        for k in 0..<rounds { pushes += m.publishOnce(Double(k % 7)) }
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print("runtime: subscription fan-out to \(n) subscriber\(n == 1 ? "" : "s"): \(String(format: "%.0f", Double(pushes) / s)) pushes/s (\(rounds) samples, \(pushes) notify frames encoded + signed, \(String(format: "%.1f", s * 1e6 / Double(rounds))) µs per sample)")
    }
}
