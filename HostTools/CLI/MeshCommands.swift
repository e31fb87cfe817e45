// tdos nodes, services, read, watch: looking at a running mesh.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSNode
import TDOSHost

func nodesCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["wait", "broadcast", "port"]))
    let c = try client(args)
    let wait = try args.int("wait", default: UInt64(1500))
    c.discover(ms: wait)
    let peers = meshPeers(c)
    if peers.isEmpty { noMesh(args, waitedMs: wait) }
    if args.switches.contains("json") {
        print(json(peers.map { p -> [String: Any] in
            var o: [String: Any] = ["id": hexID(p.nodeID), "name": text(p.name), "address": addr(p.address),
                                    "state": "\(p.state.name)", "epoch": p.epoch, "services": p.serviceCount,
                                    "last_heard_ms_ago": monotonicMs() - min(p.lastHeardMs, monotonicMs())]
            if let hb = p.heartbeat {
                o["uptime_s"] = hb.uptimeS; o["free_memory_bytes"] = hb.freeMemoryBytes
                o["activity"] = hb.activity; o["load_percent"] = hb.loadPercent
            }
            if let r = p.relayVia { o["relay_via"] = hexID(r) }
            return o
        }))
        return 0
    }
    print(pad("NODE", 10) + pad("NAME", 12) + pad("ADDRESS", 17) + pad("STATE", 9) + pad("UPTIME", 9) + pad("SERVICES", 9) + "ACTIVITY")
    for p in peers {
        let up = p.heartbeat.map { "\($0.uptimeS)s" } ?? "-"
        let act = p.heartbeat.map { "\($0.activity)%" } ?? "-"
        print(pad(hexID(p.nodeID), 10) + pad(text(p.name), 12) + pad(addr(p.address), 17) + pad("\(p.state.name)", 9)
              + pad(up, 9) + pad("\(p.serviceCount)", 9) + act)
    }
    return 0
}

func servicesCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["wait", "broadcast", "port"]))
    let c = try client(args)
    let wait = try args.int("wait", default: UInt64(1500))
    c.discover(ms: wait)
    let instances = c.mesh.registry.filter { !$0.isLocal }
        .sorted { (text($0.descriptor.name), $0.descriptor.priority) < (text($1.descriptor.name), $1.descriptor.priority) }
    if instances.isEmpty { noMesh(args, waitedMs: wait) }
    let names = Dictionary(c.mesh.peers.map { ($0.nodeID, text($0.name)) }, uniquingKeysWith: { a, _ in a })
    if args.switches.contains("json") {
        print(json(instances.map { i -> [String: Any] in
            ["service": text(i.descriptor.name), "version": semver(i.descriptor.version), "node": hexID(i.node),
             "node_name": names[i.node] ?? "", "priority": i.descriptor.priority == 0 ? "primary" : "backup \(i.descriptor.priority)",
             "role": "\(i.descriptor.role.name)", "port": i.descriptor.port, "breaker": "\(i.breaker.name)"]
        }))
        return 0
    }
    print(pad("SERVICE", 17) + pad("VERSION", 9) + pad("NODE", 10) + pad("NAME", 12) + pad("PRIORITY", 10) + "BREAKER")
    for i in instances {
        print(pad(text(i.descriptor.name), 17) + pad(semver(i.descriptor.version), 9) + pad(hexID(i.node), 10)
              + pad(names[i.node] ?? "?", 12) + pad(i.descriptor.priority == 0 ? "primary" : "backup \(i.descriptor.priority)", 10)
              + "\(i.breaker.name)")
    }
    return 0
}

func parseSemVer(_ s: String) -> SemVer? {
    let p = s.split(separator: ".").map { UInt16($0) }
    guard !p.isEmpty, p.count <= 3, !p.contains(where: { $0 == nil }) else { return nil }
    return SemVer(p[0]!, p.count > 1 ? p[1]! : 0, p.count > 2 ? p[2]! : 0)
}

func readCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["timeout", "version", "broadcast", "port"]))
    guard args.positional.count == 1 else { throw UsageError(message: "read takes one SERVICE, e.g. `tdos read temp_sensor`") }
    let service = args.positional[0]
    guard let version = parseSemVer(args.value("version") ?? "1.0.0") else {
        throw UsageError(message: "--version expects MAJOR[.MINOR[.PATCH]], e.g. 1.2")
    }
    let timeout = try args.int("timeout", default: UInt32(5000))
    let c = try client(args)
    // Let the start-up query's answers arrive so the call can pick the primary
    // rather than whichever instance announced first; a call made before any
    // instance is known also waits for one, until its deadline.
    c.discover(ms: min(400, UInt64(timeout) / 4))
    let result = c.call(service: service, version: version, deadlineMs: timeout)
    let names = Dictionary(c.mesh.peers.map { ($0.nodeID, text($0.name)) }, uniquingKeysWith: { a, _ in a })
    switch result {
    case .value(let v):
        let unit = String(decoding: UnsafeBufferPointer(start: v.response.unit.symbol.utf8Start, count: v.response.unit.symbol.utf8CodeUnitCount), as: UTF8.self)
        let value = v.response.value ?? .nan
        if args.switches.contains("json") {
            var o: [String: Any] = ["service": service, "value": value, "unit": unit, "node": hexID(v.node),
                                    "node_name": names[v.node] ?? "", "version": semver(v.service.version),
                                    "priority": Int(v.service.priority), "age_ms": v.response.ageMs, "failovers": Int(v.failovers)]
            if let s = v.staleAgeMs { o["stale_age_ms"] = s }
            print(json(o))
        } else {
            let stale = v.staleAgeMs.map { " STALE (last known value, \($0 / 1000) s old)" } ?? ""
            let role = v.service.priority == 0 ? "primary" : "backup \(v.service.priority)"
            print("\(service) = \(String(format: "%.2f", value)) \(unit)  from \(names[v.node] ?? hexID(v.node)) (\(role), v\(semver(v.service.version)))\(stale)")
        }
        return v.isStale ? 4 : 0
    case .failed(let e):
        let why: String
        switch e {
        case .noInstance: why = "no node offers \(service) (no announce heard within \(timeout) ms). Is it running? `tdos services` lists what the mesh offers."
        case .incompatibleVersion(let have): why = "\(service) is offered only in version \(semver(have)), not compatible with ^\(semver(version)); pass --version"
        case .allBreakersOpen: why = "every instance of \(service) failed recently and its circuit breaker is open; retry in 30 s or check the nodes' logs"
        case .deadlineExceeded: why = "no answer from \(service) within \(timeout) ms; raise --timeout or check the node with `tdos nodes`"
        case .remoteError(let code): why = "the node answered with error \(code) (see docs/PROTOCOL.md, status codes)"
        default: why = "\(e.name)"
        }
        fail("read \(service) failed: \(why)", code: 3)
    }
}

func watchCommand(_ args: Args) throws -> Int32 {
    if !args.positional.isEmpty { return try watchServiceCommand(args) }
    try args.check(allowed: common.union(["interval", "broadcast", "port"]))
    let interval = try args.int("interval", default: UInt64(2000))
    let c = try client(args)
    installStopHandlers()
    c.discover(ms: 1200)
    var frame = 0
    while !isStopRequested {
        var lines: [String] = []
        lines.append("tdos watch — \(Date()) — refresh \(interval) ms, Ctrl-C to stop")
        lines.append("")
        lines.append(pad("NAME", 12) + pad("STATE", 9) + pad("UPTIME", 9) + pad("ACTIVITY", 9) + "SERVICES")
        for p in meshPeers(c) {
            let svcs = c.mesh.registry.filter { $0.node == p.nodeID }.map { text($0.descriptor.name) + ($0.descriptor.priority > 0 ? "(b)" : "") }
            lines.append(pad(text(p.name), 12) + pad("\(p.state.name)", 9) + pad(p.heartbeat.map { "\($0.uptimeS)s" } ?? "-", 9)
                         + pad(p.heartbeat.map { "\($0.activity)%" } ?? "-", 9) + svcs.joined(separator: ", "))
        }
        lines.append("")
        for svc in ["temp_sensor", "humidity_sensor", "light_sensor"] {
            switch c.call(service: svc, deadlineMs: 1500) {
            case .value(let v):
                let stale = v.staleAgeMs.map { "  (stale \($0 / 1000) s)" } ?? ""
                lines.append(pad(svc, 17) + String(format: "%9.2f", v.response.value ?? .nan) + stale)
            case .failed(let e): lines.append(pad(svc, 17) + "unavailable (\(e.name))")
            }
        }
        // Clear the screen and redraw in place.
        print("\u{1B}[H\u{1B}[2J" + lines.joined(separator: "\n"))
        fflush(stdout)
        frame += 1
        c.run(ms: interval)
    }
    return 0
}


/// `tdos watch SERVICE`: subscribes and prints every reading the publisher
/// pushes, following failover to a backup, until Ctrl-C (or --count N).
func watchServiceCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["version", "min-interval", "max-interval", "threshold", "lease", "count",
                                          "wait", "broadcast", "port"]))
    guard args.positional.count == 1 else {
        throw UsageError(message: "watch takes at most one SERVICE, e.g. `tdos watch temp_sensor`")
    }
    let service = args.positional[0]
    guard !service.isEmpty, service.utf8.count <= nameBytesMax else {
        throw UsageError(message: "SERVICE must be 1-\(nameBytesMax) bytes")
    }
    guard let version = parseSemVer(args.value("version") ?? "1.0.0") else {
        throw UsageError(message: "--version expects MAJOR[.MINOR[.PATCH]], e.g. 1.2")
    }
    let minMs = try args.int("min-interval", default: UInt32(1000))
    let maxMs = try args.int("max-interval", default: UInt32(10_000))
    let leaseMs = try args.int("lease", default: UInt32(30_000))
    let count = try args.int("count", default: 0)
    let waitMs = try args.int("wait", default: UInt64(5000))
    var threshold = 0.0
    if let t = args.value("threshold") {
        guard let v = Double(t), v >= 0, v.isFinite else {
            throw UsageError(message: "--threshold expects a number >= 0 (0: every new sample), got \"\(t)\"")
        }
        threshold = v
    }
    guard maxMs >= minMs, leaseMs >= 2000 else {
        throw UsageError(message: "need --max-interval >= --min-interval and --lease >= 2000 ms")
    }
    let asJSON = args.switches.contains("json")
    let c = try client(args)
    installStopHandlers()
    c.discover(ms: 400)
    var received = 0
    var following: UInt32?
    func name(_ node: UInt32) -> String { c.mesh.peer(node).map { text($0.name) } ?? hexID(node) }
    c.onSubscriptionEvent = { e in
        switch e {
        case .publisherChanged(_, let from, let to):
            following = to
            let msg: String
            switch (from, to) {
            case (nil, let t?): msg = "following \(name(t))"
            case (let f?, let t?): msg = "\(name(f)) stopped answering; now following \(name(t)) (failover)"
            case (let f?, nil): msg = "\(name(f)) stopped answering and no other instance of \(service) is known; still looking"
            case (nil, nil): msg = "no instance of \(service) is known yet; still looking"
            }
            FileHandle.standardError.write(("tdos watch: " + msg + "\n").data(using: .utf8)!)
        case .notification(let n):
            received += 1
            let unit = String(decoding: UnsafeBufferPointer(start: n.unit.symbol.utf8Start, count: n.unit.symbol.utf8CodeUnitCount), as: UTF8.self)
            let status = n.status == Status.ok.rawValue ? "ok" : (n.status == Status.unavailable.rawValue ? "unavailable" : "status \(n.status)")
            if asJSON {
                var o: [String: Any] = ["service": service, "node": hexID(n.publisher), "node_name": name(n.publisher),
                                        "sequence": n.sequence, "status": status, "unit": unit, "age_ms": n.ageMs,
                                        "time": ISO8601DateFormatter().string(from: Date())]
                if let v = n.value { o["value"] = v }
                print(json(o, line: true))
            } else {
                let value = n.value.map { String(format: "%.2f", $0) } ?? "-"
                let clock = DateFormatter.localizedString(from: Date(), dateStyle: .none, timeStyle: .medium)
                print("\(clock)  \(service) = \(value) \(unit)  from \(name(n.publisher))  #\(n.sequence)"
                      + (status == "ok" ? "" : "  (\(status))"))
            }
            fflush(stdout)
        }
    }
    guard let id = c.subscribe(service: service, version: version, minIntervalMs: minMs, maxIntervalMs: maxMs,
                               threshold: threshold, leaseMs: leaseMs) else {
        fail("could not subscribe: the client's subscription table is full", code: 1)
    }
    let start = monotonicMs()
    while !isStopRequested && (count == 0 || received < count) {
        c.run(ms: 200) { count > 0 && received >= count }
        if received == 0 && monotonicMs() - start > waitMs {
            if meshPeers(c).isEmpty { noMesh(args, waitedMs: waitMs) }
            let who = following.map { " (asked \(name($0)))" } ?? ""
            fail("no reading of \(service) within \(waitMs) ms\(who). `tdos services` lists what the mesh offers; "
                 + "a node older than protocol v1.2 cannot be watched (use `tdos read`).", code: 3)
        }
    }
    c.unsubscribe(id)
    c.run(ms: 50)
    return 0
}
