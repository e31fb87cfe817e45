// tdos config push: a versioned config_update delivered to every live node.
import Foundation
import TDOSCore
import TDOSHost

/// A command-line value as the CBOR item of a config entry: true/false, null
/// (reset the path to its local value), an integer, a number, or text.
func configValueItem(_ s: String) -> [UInt8] {
    var w = CBORWriter()
    if s == "true" || s == "false" {
        w.bool(s == "true")
    } else if s == "null" {
        w.bytes.append(0xF6)
    } else if let i = Int64(s) {
        w.int(i)
    } else if let d = Double(s), d.isFinite {
        w.double(d)
    } else {
        let t = s.hasPrefix("\"") && s.hasSuffix("\"") && s.count >= 2 ? String(s.dropFirst().dropLast()) : s
        w.text(Array(t.utf8))
    }
    return w.bytes
}

func configCommand(_ args: Args) throws -> Int32 {
    guard args.positional.first == "push" else {
        throw UsageError(message: "config takes `push PATH=VALUE...` (read a node's config with `tdos call NODE config-get [PATH]`)")
    }
    try args.check(allowed: common.union(["version", "timeout", "wait", "broadcast", "port"]))
    let assignments = args.positional.dropFirst()
    guard !assignments.isEmpty else { throw UsageError(message: "config push needs at least one PATH=VALUE, e.g. metrics.sla_target_ms=250") }
    var entries: [ConfigUpdate.Entry] = []
    for a in assignments {
        guard let eq = a.firstIndex(of: "="), eq != a.startIndex else {
            throw UsageError(message: "\"\(a)\" is not PATH=VALUE (e.g. rate_limit.burst=60, or PATH=null to reset)")
        }
        let path = Array(a[..<eq].utf8)
        guard path.count <= ConfigUpdate.pathBytesMax else { throw UsageError(message: "path \"\(a[..<eq])\" is longer than \(ConfigUpdate.pathBytesMax) bytes") }
        entries.append(ConfigUpdate.Entry(path: path, value: configValueItem(String(a[a.index(after: eq)...]))))
    }
    guard entries.count <= ConfigUpdate.entriesMax else { throw UsageError(message: "at most \(ConfigUpdate.entriesMax) entries per update") }
    let timeout = try args.int("timeout", default: UInt32(5000))
    let waitMs = try args.int("wait", default: UInt64(1500))
    let c = try client(args)
    c.discover(ms: waitMs)
    // Nodes (not other CLI clients): the peers that announce services.
    let targets = meshPeers(c).filter { ($0.state == .alive || $0.state == .suspect) && $0.serviceCount > 0 }
    if targets.isEmpty { noMesh(args, waitedMs: waitMs) }
    var version: UInt32
    if let v = args.value("version") {
        guard let n = UInt32(v), n > 0 else { throw UsageError(message: "--version expects a whole number > 0") }
        version = n
    } else {
        // One above the newest version any node runs (metric 16).
        version = 0
        for (_, r) in scrape(c, only: targets, timeoutMs: 2000) {
            if case .success(let samples) = r, let s = samples.first(where: { $0.id == MetricID.configVersion }) {
                version = max(version, UInt32(s.value))
            }
        }
        version += 1
    }
    var push = ConfigPush(update: ConfigUpdate(version: version, entries: entries), targets: targets.map(\.nodeID),
                          retryMs: 500, attemptsMax: max(1, Int(timeout / 500)))
    c.onDeliver = { frame in push.handle(frame) }
    push.start(nowMs: monotonicMs(), mesh: &c.mesh)
    c.pump()
    let end = monotonicMs() + UInt64(timeout) + 1000
    while !push.isDone && monotonicMs() < end {
        c.run(ms: 50) { push.isDone }
        push.handleTimeout(nowMs: monotonicMs(), mesh: &c.mesh)
        c.pump()
    }
    var rows: [[String: Any]] = []
    var allAcked = true
    for (p, answer) in zip(targets, push.answers) {
        let state: String
        switch answer {
        case .acked: state = "acked"
        case .refused(let code): state = "refused (status \(code): a field is unknown, out of range or of the wrong type; see docs/CONFIG.md)"; allAcked = false
        case .unreachable, .pending: state = "no answer (the node is down or unreachable; it keeps its config)"; allAcked = false
        }
        rows.append(["node": hexID(p.nodeID), "node_name": text(p.name), "result": state])
    }
    if args.switches.contains("json") {
        print(json(["version": version, "nodes": rows]))
    } else {
        print("config version \(version):")
        for r in rows { print("  " + pad(r["node_name"] as! String, 12) + pad(r["node"] as! String, 10) + (r["result"] as! String)) }
    }
    if !allAcked { fail("config version \(version) did not reach every node: see above", code: 3) }
    return 0
}
