// tdos call, metrics, tasks: node operations (service 0 of one node: status,
// metrics, tasks, config get...) through node-targeted calls, which never fail
// over to another node. `tdos metrics --serve PORT` is a Prometheus scrape
// endpoint for the whole mesh, served by this process.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSNode
import TDOSHost

// MARK: - Naming nodes and operations

/// Operation names the CLI accepts (docs/PROTOCOL.md, "Operations"); a number is taken as is.
let operationNames: [(String, UInt32)] = [
    ("read", 1), ("subscribe", 2), ("unsubscribe", 3), ("status", 4), ("metrics", 5), ("tasks", 6),
    ("config-get", 7), ("log-append", 8), ("log-query", 9),
]

func parseOperation(_ s: String) throws -> TDOSCore.Operation {
    let key = s.lowercased().replacingOccurrences(of: "_", with: "-")
    if let (_, raw) = operationNames.first(where: { $0.0 == key || $0.0.replacingOccurrences(of: "-", with: "") == key }) {
        return TDOSCore.Operation(rawValue: raw)
    }
    if let raw = UInt32(s), raw > 0 { return TDOSCore.Operation(rawValue: raw) }
    throw UsageError(message: "unknown operation \(s); use one of \(operationNames.map(\.0).joined(separator: ", ")) or a number")
}

func operationName(_ op: TDOSCore.Operation) -> String {
    operationNames.first { $0.1 == op.rawValue }?.0 ?? "\(op.rawValue)"
}

func parseNodeID(_ s: String) -> UInt32? {
    let hex = s.hasPrefix("0x") ? String(s.dropFirst(2)) : s
    guard !hex.isEmpty, hex.count <= 8 else { return nil }
    return UInt32(hex, radix: 16)
}

/// Waits (up to --wait) until the node named `spec` (a name, or its id in hex) is
/// heard; exits with a what-to-do message when the mesh or the node is silent.
func resolveNode(_ c: MeshClient, _ spec: String, _ args: Args) throws -> PeerInfo {
    let wait = try args.int("wait", default: UInt64(1500))
    func find() -> PeerInfo? {
        let peers = meshPeers(c)
        if let p = peers.first(where: { text($0.name) == spec }) { return p }
        if let id = parseNodeID(spec), let p = peers.first(where: { $0.nodeID == id }) { return p }
        return nil
    }
    c.run(ms: wait) { find().map { $0.state == .alive || $0.state == .suspect } ?? false }
    let peers = meshPeers(c)
    guard let p = find() else {
        if peers.isEmpty { noMesh(args, waitedMs: wait) }
        fail("""
        no node \(spec) in the mesh (heard within \(wait) ms: \(peers.map { text($0.name) }.joined(separator: ", "))).
          Name a node as `tdos nodes` lists it, by name or id; if it was just started, wait longer with --wait MS.
        """, code: 3)
    }
    if p.state == .dead || p.state == .left {
        fail("node \(spec) is \(p.state.name): it stopped answering heartbeats. Start it again (`tdos sim restart \(spec)` for the simulator) and retry.", code: 3)
    }
    return p
}

func nodeLabel(_ p: PeerInfo) -> String { p.name.isEmpty ? hexID(p.nodeID) : text(p.name) }

/// Why a node call failed, and what to do about it.
func nodeCallFailure(_ e: CallError, node: String, op: String, timeoutMs: UInt32) -> String {
    switch e {
    case .unknownNode: return "node \(node) is not known to this client; `tdos nodes` lists the mesh"
    case .nodeDown: return "node \(node) died or left during the call; check `tdos nodes` and its log, restart it and retry"
    case .unreachable: return "node \(node) never answered (every retransmission lost); check its log and the network"
    case .deadlineExceeded: return "no answer from \(node) within \(timeoutMs) ms; raise --timeout or check the node with `tdos nodes`"
    case .remoteError(let code):
        switch code {
        case Status.unknownOperation.rawValue: return "node \(node) does not know operation \(op) (status 17): its firmware may be older"
        case Status.badArguments.rawValue: return "node \(node) refused the arguments of \(op) (status 21): for config-get, pass a dotted path from docs/CONFIG.md"
        case Status.busy.rawValue: return "node \(node) is busy (status 18, rate limited or serving too much); retry in a second"
        default: return "node \(node) answered with error \(code) (docs/PROTOCOL.md, status codes)"
        }
    default: return "\(e.name)"
    }
}

// MARK: - CBOR as JSON-like values

/// Any CBOR item as Foundation values (maps with unsigned keys get string keys).
func cborValue(_ r: inout CBORReader) throws -> Any {
    switch try r.peekMajor() {
    case .unsigned: return try r.unsigned()
    case .negative: return try r.int()
    case .bytes: return (try r.bytes()).map { String(format: "%02x", $0) }.joined()
    case .text: return String(decoding: try r.text(), as: UTF8.self)
    case .array:
        let n = try r.arrayHeader()
        var out: [Any] = []
        for _ in 0..<n { out.append(try cborValue(&r)) }
        return out
    case .map:
        let n = try r.mapHeader()
        var out: [String: Any] = [:]
        for _ in 0..<n {
            let k = try cborValue(&r)
            out["\(k)"] = try cborValue(&r)
        }
        return out
    case .tag:
        _ = try r.skipRaw()
        return NSNull()
    case .simple:
        if let b = try? r.bool() { return b }
        if (try? r.isNull()) == true { _ = try r.skipRaw(); return NSNull() }
        return try r.number()
    }
}

func cborJSON(_ bytes: [UInt8]) -> Any {
    guard !bytes.isEmpty else { return NSNull() }
    var r = CBORReader(bytes, depthMax: WireLimits.cborDepthMax + 2)
    return (try? cborValue(&r)) ?? bytes.map { String(format: "%02x", $0) }.joined()
}

/// A value printed plainly (strings unquoted, the rest as JSON).
func plain(_ v: Any) -> String {
    if let s = v as? String { return s }
    if v is [Any] || v is [String: Any] { return json(v) }
    if let d = v as? Double { return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)" }
    return "\(v)"
}

// MARK: - Metrics naming

let metricNames: [UInt16: String] = [
    1: "uptime_s", 2: "requests_served", 3: "requests_failed", 4: "frames_sent", 5: "frames_received",
    6: "frames_rejected", 7: "heap_in_use_bytes", 8: "heap_high_water_bytes", 9: "free_memory_bytes",
    10: "deadline_misses", 11: "task_restarts", 12: "active_services", 13: "stack_high_water_bytes",
    14: "boot_count", 15: "rate_limited_drops", 16: "config_version", 20: "sla_compliance",
    21: "response_p50_ms", 22: "response_p90_ms", 23: "response_p99_ms", 24: "response_time_sum_ms",
    25: "sla_target_ms",
]

let rejectReasonNames: [(UInt8, String)] = [
    (1, "truncated"), (2, "bad_version"), (3, "bad_tag"), (4, "replayed"), (5, "oversized"),
    (6, "malformed_header"), (7, "malformed_cbor"), (8, "bad_compression"),
]

let serviceFieldNames: [MetricID.ServiceField: String] = [
    .served: "served", .failed: "failed", .p50Ms: "p50_ms", .p90Ms: "p90_ms", .p99Ms: "p99_ms",
    .slaCompliance: "sla_compliance", .responseTimeSumMs: "response_time_sum_ms",
]

/// Service names by id, from the announces this client heard (0 = the node itself).
func serviceNames(_ c: MeshClient) -> [UInt32: String] {
    var names: [UInt32: String] = [0: "node"]
    for i in c.mesh.registry { names[i.serviceID] = text(i.descriptor.name) }
    return names
}

/// One node's report as JSON: named metrics, rejections by reason (every reason), services.
func metricsJSON(_ samples: [MetricsReport.Sample], names: [UInt32: String]) -> [String: Any] {
    var byID: [UInt16: Double] = [:]
    // Fractions travel in single precision: print them without the Double expansion's noise.
    for s in samples where byID[s.id] == nil {
        byID[s.id] = s.value == s.value.rounded() ? s.value : Double(String(format: "%.7g", s.value)) ?? s.value
    }
    var metrics: [String: Any] = [:]
    var other: [String: Any] = [:]
    var slots: [Int: [String: Any]] = [:]
    for (id, v) in byID {
        if let n = metricNames[id] {
            metrics[n] = v
        } else if let (slot, field) = MetricID.serviceField(id) {
            if field == .serviceID {
                let sid = UInt32(clamping: Int64(v))
                slots[slot, default: [:]]["service"] = names[sid] ?? prometheusHexID(sid)
                slots[slot, default: [:]]["service_id"] = prometheusHexID(sid)
            } else if let n = serviceFieldNames[field] {
                slots[slot, default: [:]][n] = v
            }
        } else if id < MetricID.rejectedBase || id >= MetricID.rejectedBase + 9 {
            other["\(id)"] = v
        }
    }
    var rejected: [String: Any] = [:]
    for (code, name) in rejectReasonNames { rejected[name] = byID[MetricID.rejected(code: code)] ?? 0 }
    var out: [String: Any] = ["metrics": metrics, "rejected": rejected,
                              "services": slots.keys.sorted().map { slots[$0]! }]
    if !other.isEmpty { out["other"] = other }
    return out
}

func prometheusHexID(_ v: UInt32) -> String { "0x" + hexID(v) }

// MARK: - tdos call

func callCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["wait", "timeout"]))
    guard args.positional.count >= 2, args.positional.count <= 3 else {
        throw UsageError(message: "call takes NODE OP [ARGS], e.g. `tdos call temp-a status` or `tdos call storage config-get rate_limit.burst`")
    }
    let spec = args.positional[0]
    let op = try parseOperation(args.positional[1])
    var arguments: [UInt8] = []
    if args.positional.count == 3 {
        let a = args.positional[2]
        var w = CBORWriter()
        if op != .configGet, let n = UInt64(a) { w.unsigned(n) } else { w.text(Array(a.utf8)) }
        arguments = w.bytes
    }
    let timeout = try args.int("timeout", default: UInt32(3000))
    let c = try client(args)
    let peer = try resolveNode(c, spec, args)
    let name = nodeLabel(peer)
    switch c.call(node: peer.nodeID, operation: op, arguments: arguments, deadlineMs: timeout) {
    case .failed(let e):
        fail("call \(name) \(operationName(op)) failed: \(nodeCallFailure(e, node: name, op: operationName(op), timeoutMs: timeout))", code: 3)
    case .value(let v):
        let r = v.response
        var result: Any = cborJSON(r.result)
        if op == .metrics, let report = try? MetricsReport.decode(r.result) {
            result = metricsJSON(report.samples, names: serviceNames(c))
        } else if op == .tasks, let report = try? TaskReport.decode(r.result) {
            result = report.entries.map(taskJSON)
        } else if op == .status, let s = try? NodeStatus.decode(r.result) {
            result = ["incarnation": s.incarnation, "uptime_s": s.uptimeS, "services_digest": String(format: "%04x", s.servicesDigest),
                      "free_memory_bytes": s.freeMemoryBytes, "load_percent": s.loadPercent, "activity": s.activity]
        }
        if args.switches.contains("json") {
            var o: [String: Any] = ["node": name, "id": hexID(peer.nodeID), "operation": operationName(op), "result": result]
            if let value = r.value { o["value"] = value }
            print(json(o))
            return 0
        }
        if let value = r.value { print("value: \(value)") }
        if op == .tasks, let report = try? TaskReport.decode(r.result) {
            printTasks(report)
        } else if let dict = result as? [String: Any] {
            for k in dict.keys.sorted() { print("\(k): \(plain(dict[k]!))") }
        } else if !(result is NSNull) {
            print(plain(result))
        }
        return 0
    }
}

// MARK: - tdos tasks

func taskJSON(_ e: TaskReport.Entry) -> [String: Any] {
    var o: [String: Any] = [
        "id": e.id, "name": text(e.name), "priority": e.priority, "state": "\(e.stateName)", "critical": e.critical,
        "ticks": e.totalTicks, "failures_total": e.totalFailures, "failures_consecutive": e.consecutiveFailures,
        "deadline_misses": e.deadlineMisses, "watchdog": "\(e.watchdogName)", "tick_rate_hz": e.tickRateHz,
        "restarts": e.restarts, "time_used_us": e.timeUsedTotalUs, "time_used_max_us": e.timeUsedMaxUs,
        "breaker": "\(e.breakerName)", "watchdog_timeout_us": e.watchdogTimeoutUs, "deadline_us": e.deadlineUs,
        "skipped_ticks": e.skippedTicks, "watchdog_stalls": e.watchdogStalls,
    ]
    if let f = e.faultName { o["fault"] = "\(f)" }
    return o
}

func printTasks(_ report: TaskReport) {
    print(pad("TASK", 12) + pad("PRI", 4) + pad("STATE", 17) + pad("TICKS", 9) + pad("FAIL", 7) + pad("MISSES", 7)
          + pad("WATCHDOG", 9) + pad("RATE", 6) + pad("RESTARTS", 9) + pad("TIME", 10) + "FLAGS")
    for e in report.entries {
        var flags: [String] = []
        if e.critical { flags.append("critical") }
        if e.breaker != TaskBreakerState.closed.rawValue { flags.append("breaker \(e.breakerName)") }
        if let f = e.faultName { flags.append("fault \(f)") }
        let time = String(format: "%.1fms", Double(e.timeUsedTotalUs) / 1000)
        print(pad(text(e.name), 12) + pad("\(e.priority)", 4) + pad("\(e.stateName)", 17) + pad("\(e.totalTicks)", 9)
              + pad("\(e.totalFailures)/\(e.consecutiveFailures)", 7) + pad("\(e.deadlineMisses)", 7)
              + pad("\(e.watchdogName)", 9) + pad(e.tickRateHz == 0 ? "-" : "\(e.tickRateHz)Hz", 6)
              + pad("\(e.restarts)", 9) + pad(time, 10) + flags.joined(separator: ", "))
    }
}

func tasksCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["wait", "timeout"]))
    guard args.positional.count == 1 else { throw UsageError(message: "tasks takes one NODE, e.g. `tdos tasks kernel`") }
    let timeout = try args.int("timeout", default: UInt32(3000))
    let c = try client(args)
    let peer = try resolveNode(c, args.positional[0], args)
    let name = nodeLabel(peer)
    switch c.call(node: peer.nodeID, operation: .tasks, deadlineMs: timeout) {
    case .failed(let e):
        fail("tasks of \(name) failed: \(nodeCallFailure(e, node: name, op: "tasks", timeoutMs: timeout))", code: 3)
    case .value(let v):
        guard let report = try? TaskReport.decode(v.response.result) else {
            fail("node \(name) answered tasks with a payload this CLI cannot read; update the CLI or the node", code: 3)
        }
        if args.switches.contains("json") {
            print(json(["node": name, "id": hexID(peer.nodeID), "tasks": report.entries.map(taskJSON)] as [String: Any]))
        } else {
            print("tasks of \(name) (\(hexID(peer.nodeID))):")
            printTasks(report)
        }
        return 0
    }
}

// MARK: - tdos metrics

/// Metrics of every live node (or of `only`), fetched in parallel: (peer, samples or the error).
func scrape(_ c: MeshClient, only: [PeerInfo]? = nil, timeoutMs: UInt32) -> [(PeerInfo, Result<[MetricsReport.Sample], CallError>)] {
    let targets = only ?? meshPeers(c).filter { $0.state == .alive || $0.state == .suspect }
    let results = c.call(nodes: targets.map(\.nodeID), operation: .metrics, deadlineMs: timeoutMs)
    var out: [(PeerInfo, Result<[MetricsReport.Sample], CallError>)] = []
    for (p, r) in zip(targets, results) {
        switch r {
        case .value(let v):
            if let report = try? MetricsReport.decode(v.response.result) {
                out.append((p, .success(report.samples)))
            } else {
                out.append((p, .failure(.remoteError(Status.internalError.rawValue))))
            }
        case .failed(let e): out.append((p, .failure(e)))
        }
    }
    return out
}

/// Prometheus text of a scrape, plus `tdos_node_up` (1 answered, 0 did not).
func prometheusScrape(_ c: MeshClient, _ results: [(PeerInfo, Result<[MetricsReport.Sample], CallError>)]) -> String {
    let names = serviceNames(c)
    var mesh: [(node: PrometheusNode, samples: [MetricsReport.Sample])] = []
    var up = "# HELP tdos_node_up Whether the node answered this scrape's metrics call.\n# TYPE tdos_node_up gauge\n"
    for (p, r) in results {
        let label = nodeLabel(p).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        switch r {
        case .success(let samples):
            mesh.append((PrometheusNode(name: nodeLabel(p), serviceNames: names), samples))
            up += "tdos_node_up{node=\"\(label)\"} 1\n"
        case .failure:
            up += "tdos_node_up{node=\"\(label)\"} 0\n"
        }
    }
    return prometheusText(mesh: mesh) + (results.isEmpty ? "" : up)
}

func metricsCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["wait", "timeout", "prometheus", "serve", "listen"]))
    guard args.positional.count <= 1 else { throw UsageError(message: "metrics takes at most one NODE") }
    let timeout = try args.int("timeout", default: UInt32(2000))
    if args.value("serve") != nil {
        guard args.positional.isEmpty else { throw UsageError(message: "--serve scrapes the whole mesh: drop the NODE") }
        return try serveMetrics(args, timeoutMs: timeout)
    }
    let c = try client(args)
    var only: [PeerInfo]? = nil
    if let spec = args.positional.first {
        only = [try resolveNode(c, spec, args)]
    } else {
        let wait = try args.int("wait", default: UInt64(1500))
        c.discover(ms: wait)
        if meshPeers(c).isEmpty { noMesh(args, waitedMs: wait) }
    }
    let results = scrape(c, only: only, timeoutMs: timeout)
    if let spec = args.positional.first, case .failure(let e) = results[0].1 {
        fail("metrics of \(spec) failed: \(nodeCallFailure(e, node: spec, op: "metrics", timeoutMs: timeout))", code: 3)
    }
    if args.switches.contains("prometheus") {
        print(prometheusScrape(c, results), terminator: "")
        return results.contains { if case .failure = $0.1 { return true } else { return false } } ? 3 : 0
    }
    let names = serviceNames(c)
    if args.switches.contains("json") {
        var list: [[String: Any]] = []
        for (p, r) in results {
            var o: [String: Any] = ["node": nodeLabel(p), "id": hexID(p.nodeID)]
            switch r {
            case .success(let samples): o.merge(metricsJSON(samples, names: names)) { a, _ in a }
            case .failure(let e): o["error"] = "\(e.name)"
            }
            list.append(o)
        }
        print(json(only == nil ? list as Any : list[0] as Any))
        return 0
    }
    print(pad("NODE", 10) + pad("UPTIME", 8) + pad("SERVED", 8) + pad("FAILED", 8) + pad("P50", 9) + pad("P99", 9)
          + pad("SENT", 8) + pad("RECV", 8) + pad("REJECTED", 22) + pad("RATELIM", 8) + pad("MISSES", 7) + "RESTARTS")
    for (p, r) in results {
        guard case .success(let samples) = r else {
            if case .failure(let e) = r { print(pad(nodeLabel(p), 10) + "no answer (\(e.name))") }
            continue
        }
        var byID: [UInt16: Double] = [:]
        for s in samples where byID[s.id] == nil { byID[s.id] = s.value }
        func n(_ id: UInt16) -> String { byID[id].map { plain($0) } ?? "-" }
        func ms(_ id: UInt16) -> String { byID[id].map { String(format: "%.3fms", $0) } ?? "-" }
        var reasons: [String] = []
        for (code, name) in rejectReasonNames {
            if let v = byID[MetricID.rejected(code: code)], v > 0 { reasons.append("\(name) \(plain(v))") }
        }
        let rejected = n(MetricID.framesRejected) + (reasons.isEmpty ? "" : " (" + reasons.joined(separator: ", ") + ")")
        print(pad(nodeLabel(p), 10) + pad(n(MetricID.uptimeS) + "s", 8) + pad(n(MetricID.requestsServed), 8)
              + pad(n(MetricID.requestsFailed), 8) + pad(ms(MetricID.responseP50Ms), 9) + pad(ms(MetricID.responseP99Ms), 9)
              + pad(n(MetricID.framesSent), 8) + pad(n(MetricID.framesReceived), 8) + pad(rejected, 22)
              + pad(n(MetricID.rateLimitedDrops), 8) + pad(n(MetricID.deadlineMisses), 7) + n(MetricID.taskRestarts))
    }
    return 0
}

/// `tdos metrics --serve PORT`: GET /metrics scrapes every live node. One
/// thread: the HTTP listener and the mesh client take turns in this loop, and a
/// scrape runs the mesh until every node answered or the timeout passed.
func serveMetrics(_ args: Args, timeoutMs: UInt32) throws -> Int32 {
    let port = try args.int("serve", default: UInt16(9464))
    let listen = args.value("listen") ?? "127.0.0.1"
    let c = try client(args)
    let server: MetricsHTTPServer
    do {
        server = try MetricsHTTPServer(port: port, bindAddress: listen) {
            prometheusScrape(c, scrape(c, timeoutMs: timeoutMs))
        }
    } catch {
        fail("cannot serve metrics on \(listen):\(port): \(error.description). Pick another port with --serve PORT.", code: 1)
    }
    installStopHandlers()
    c.discover(ms: 1200)
    print("tdos metrics: serving the whole mesh's metrics at http://\(listen):\(server.port)/metrics (Prometheus text); Ctrl-C to stop")
    if meshPeers(c).isEmpty {
        FileHandle.standardError.write("tdos: warning: no TDOS node heard yet; scrapes will be empty until one answers\n".data(using: .utf8)!)
    }
    while !isStopRequested {
        server.serveOne(timeoutMs: 50)
        c.run(ms: 50)
    }
    return 0
}
