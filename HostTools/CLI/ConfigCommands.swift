// tdos config set|get|history: configuration changes agreed by the storage
// nodes' consensus (Raft) and delivered by its leader to every node;
// tdos config push: a versioned config_update sent straight to every live
// node, for a mesh without a storage node.
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

/// PATH=VALUE arguments as config entries.
func configEntries(_ assignments: ArraySlice<String>, verb: String) throws -> [ConfigUpdate.Entry] {
    guard !assignments.isEmpty else { throw UsageError(message: "config \(verb) needs at least one PATH=VALUE, e.g. metrics.sla_target_ms=250") }
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
    return entries
}

func configCommand(_ args: Args) throws -> Int32 {
    switch args.positional.first {
    case "set": return try configSetCommand(args)
    case "get": return try configGetCommand(args)
    case "history": return try configHistoryCommand(args)
    case "push": return try configPushCommand(args)
    default:
        throw UsageError(message: "config takes set PATH=VALUE..., get [PATH], history, or push PATH=VALUE... (a mesh without storage nodes)")
    }
}

func configPushCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["version", "timeout", "wait", "broadcast", "port"]))
    let entries = try configEntries(args.positional.dropFirst(), verb: "push")
    let timeout = try args.int("timeout", default: UInt32(5000))
    let waitMs = try args.int("wait", default: UInt64(1500))
    let c = try client(args)
    c.discover(ms: waitMs)
    if !c.mesh.instances(of: Array("config".utf8)).isEmpty {
        // Versions pushed around the consensus would compete with the committed ones.
        fail("this mesh keeps its config by consensus (a storage node offers `config`): use `tdos config set PATH=VALUE...`", code: 2)
    }
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

/// The error a `config` service call ended with, in words, with what to do.
func configCallFailure(_ e: CallError, _ what: String) -> String {
    switch e {
    case .noInstance:
        return "\(what): no storage node offers `config` (start one: `tdos sim up`, or `tdos node --role storage`; `tdos services` lists what runs)"
    case .remoteError(Status.noQuorum.rawValue):
        return "\(what): no majority of the config replicas is reachable (a leader needs more than half of them up and connected); nothing was changed unless the message below says otherwise"
    case .remoteError(Status.notLeader.rawValue):
        return "\(what): no replica is leading yet (an election is under way, or too few replicas are up); try again in a few seconds"
    case .remoteError(Status.badArguments.rawValue):
        return "\(what): the change was refused: a path is unknown, or a value is of the wrong type or out of range (docs/CONFIG.md lists the fields)"
    case .remoteError(Status.unavailable.rawValue):
        return "\(what): the replica cannot take changes (its consensus state could not be read or written, or its log is full): see its log"
    case .deadlineExceeded, .unreachable:
        return "\(what): no answer from the config replicas in time; the change may still commit: check with `tdos config history`"
    default:
        return "\(what): \(e.name)"
    }
}

func configSetCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["timeout", "wait", "broadcast", "port"]))
    let entries = try configEntries(args.positional.dropFirst(), verb: "set")
    // Long enough for an election (3-6 s) and the commit; the leader answers by 15 s.
    let timeout = try args.int("timeout", default: UInt32(20_000))
    let c = try client(args)
    c.discover(ms: try args.int("wait", default: UInt64(1500)))
    let arguments = ConfigUpdate(version: 0, entries: entries).encode()
    let start = monotonicMs()
    var result = CallResult.failed(.noInstance)
    // A follower answers not_leader and the call moves to the next replica; while
    // an election runs every replica may say so: ask again until the deadline.
    while monotonicMs() < start + UInt64(timeout) {
        let left = UInt32(start + UInt64(timeout) - monotonicMs())
        result = c.call(service: "config", operation: .configSet, arguments: arguments, deadlineMs: max(left, 100))
        guard case .failed(.remoteError(Status.notLeader.rawValue)) = result else { break }
        c.run(ms: 500)
    }
    switch result {
    case .failed(let e):
        if case .noInstance = e, meshPeers(c).isEmpty { noMesh(args, waitedMs: 1500) }
        fail(configCallFailure(e, "config set"), code: 3)
    case .value(let v):
        let version = configResultField(v.response.result, key: 1) ?? 0
        let ms = monotonicMs() - start
        if args.switches.contains("json") {
            print(json(["version": version, "committed_by": hexID(v.node), "ms": ms]))
        } else {
            print("config version \(version) committed (leader \(peerName(c, v.node))) in \(ms) ms; the leader delivers it to every node")
        }
        return 0
    }
}

/// An unsigned field of a CBOR map result.
func configResultField(_ bytes: [UInt8], key: UInt64) -> UInt64? {
    guard case let map as [String: Any] = cborJSON(bytes) else { return nil }
    return (map[String(key)] as? UInt64) ?? (map[String(key)] as? Int).map(UInt64.init)
}

func peerName(_ c: MeshClient, _ id: UInt32) -> String {
    c.mesh.peers.first { $0.nodeID == id }.map { text($0.name) } ?? hexID(id)
}

func configGetCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["timeout", "wait", "broadcast", "port"]))
    guard args.positional.count <= 2 else { throw UsageError(message: "config get takes at most one PATH, e.g. rate_limit.burst") }
    let c = try client(args)
    c.discover(ms: try args.int("wait", default: UInt64(1500)))
    let r = c.call(service: "config", operation: .configGet, deadlineMs: try args.int("timeout", default: UInt32(3000)))
    guard case .value(let v) = r else {
        if case .failed(let e) = r { fail(configCallFailure(e, "config get"), code: 3) }
        return 3
    }
    var reader = CBORReader(v.response.result)
    var version: UInt64 = 0, leader: UInt32?, commit: UInt64 = 0, term: UInt64 = 0
    var overlay = ConfigTree()
    do {
        let n = try reader.mapHeader()
        for _ in 0..<n {
            switch try reader.unsigned() {
            case 1: version = try reader.unsigned()
            case 2:
                let start = reader.position
                try reader.skip()
                overlay = try ConfigTree.decodeCBOR(Array(v.response.result[start..<reader.position]))
            case 3: leader = UInt32(truncatingIfNeeded: try reader.unsigned())
            case 4: commit = try reader.unsigned()
            case 5: term = try reader.unsigned()
            default: try reader.skip()
            }
        }
    } catch {
        fail("config get: the answer of \(peerName(c, v.node)) is malformed (\(error)); is it running this version of TDOS?", code: 3)
    }
    var leaves: [(String, String)] = []
    let prefix = args.positional.count == 2 ? args.positional[1] : ""
    overlay.forEachLeaf { path, value in
        let p = text(path)
        guard prefix.isEmpty || p == prefix || p.hasPrefix(prefix + ".") else { return }
        leaves.append((p, configValueText(value)))
    }
    if args.switches.contains("json") {
        var o: [String: Any] = ["version": version, "commit_index": commit, "term": term, "answered_by": hexID(v.node),
                                "values": Dictionary(uniqueKeysWithValues: leaves)]
        if let leader { o["leader"] = hexID(leader) }
        print(json(o))
    } else {
        print("config version \(version) (committed; term \(term), leader \(leader.map { peerName(c, $0) } ?? "none yet"), answered by \(peerName(c, v.node)))")
        if leaves.isEmpty {
            print(prefix.isEmpty ? "  no changes committed: every node runs its local config (docs/CONFIG.md)"
                                 : "  \(prefix): not changed by consensus (the node's local value is in force)")
        }
        for (p, val) in leaves { print("  \(p) = \(val)") }
    }
    return 0
}

func configValueText(_ v: ConfigValue) -> String {
    switch v {
    case .bool(let b): return b ? "true" : "false"
    case .int(let i): return String(i)
    case .number(let d): return String(d)
    case .text(let t): return "\"" + text(t) + "\""
    case .map: return "{}"
    }
}

func configHistoryCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["timeout", "wait", "broadcast", "port"]))
    let c = try client(args)
    c.discover(ms: try args.int("wait", default: UInt64(1500)))
    let r = c.call(service: "config", operation: .configHistory, deadlineMs: try args.int("timeout", default: UInt32(3000)))
    guard case .value(let v) = r else {
        if case .failed(let e) = r { fail(configCallFailure(e, "config history"), code: 3) }
        return 3
    }
    var rows: [[String: Any]] = []
    var reader = CBORReader(v.response.result)
    do {
        let n = try reader.mapHeader()
        for _ in 0..<n {
            guard try reader.unsigned() == 2 else { try reader.skip(); continue }
            let count = try reader.arrayHeader()
            for _ in 0..<count {
                guard try reader.arrayHeader() == 3 else { throw HostError("entry is not [index, term, data]") }
                let index = try reader.unsigned()
                let term = try reader.unsigned()
                let data = Array(try reader.bytes())
                var changes: [String: Any] = [:]
                if !data.isEmpty {
                    let u = try ConfigUpdate.decode(data)
                    for e in u.entries { changes[text(e.path)] = cborJSON(e.value) }
                }
                rows.append(["version": index, "term": term, "no_op": data.isEmpty, "changes": changes])
            }
        }
    } catch {
        fail("config history: the answer of \(peerName(c, v.node)) is malformed (\(error))", code: 3)
    }
    if args.switches.contains("json") {
        print(json(["answered_by": hexID(v.node), "entries": rows]))
        return 0
    }
    if rows.isEmpty { print("no committed entries yet") }
    for row in rows {
        let changes = (row["changes"] as! [String: Any]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let what = (row["no_op"] as! Bool) ? "(leader's no-op: a new term began)" : changes.joined(separator: " ")
        print(pad("v\(row["version"]!)", 6) + pad("term \(row["term"]!)", 9) + what)
    }
    return 0
}
