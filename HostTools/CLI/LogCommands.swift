// tdos logs: the storage node's durable record log.
import Foundation
import TDOSCore
import TDOSNode
import TDOSHost

/// "30s", "5m", "2h", "1d" or plain milliseconds.
func parseDurationMs(_ s: String) -> UInt64? {
    let units: [Character: UInt64] = ["s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
    if let u = s.last, let mul = units[u], let n = UInt64(s.dropLast()) { return n * mul }
    return UInt64(s)
}

struct LogRow {
    var source: UInt32, sequence: UInt64, timeMs: UInt64, kind: UInt8, payload: [UInt8]
}

/// One page of log_query: records, the cursor to continue from, the storage node's clock.
/// `replica`: ask that storage node (its log, as replicated there); nil: any replica.
func queryLog(_ c: MeshClient, args: [UInt8], timeoutMs: UInt32, replica: UInt32? = nil) -> Result<(rows: [LogRow], cursor: [UInt64]?, nowMs: UInt64), CallError> {
    let result = replica.map { c.call(node: $0, operation: .logQuery, arguments: args, deadlineMs: timeoutMs) }
        ?? c.call(service: "logger", operation: .logQuery, arguments: args, deadlineMs: timeoutMs)
    switch result {
    case .failed(let e): return .failure(e)
    case .value(let v):
        guard v.response.status == Status.ok.rawValue, !v.isStale else { return .failure(.remoteError(v.response.status)) }
        var rows: [LogRow] = [], cursor: [UInt64]?, now: UInt64 = 0
        do {
            var r = CBORReader(v.response.result)
            let n = try r.mapHeader()
            for _ in 0..<n {
                switch try r.unsigned() {
                case 1:
                    for _ in 0..<(try r.arrayHeader()) {
                        guard try r.arrayHeader() == 5 else { throw WireError.malformedCBOR }
                        let src = UInt32(truncatingIfNeeded: try r.unsigned()), seq = try r.unsigned(), t = try r.unsigned()
                        let k = UInt8(truncatingIfNeeded: try r.unsigned())
                        rows.append(LogRow(source: src, sequence: seq, timeMs: t, kind: k, payload: Array(try r.bytes())))
                    }
                case 2:
                    guard try r.arrayHeader() == 2 else { throw WireError.malformedCBOR }
                    cursor = [try r.unsigned(), try r.unsigned()]
                case 3: now = try r.unsigned()
                default: try r.skip()
                }
            }
        } catch {
            return .failure(.remoteError(Status.internalError.rawValue))
        }
        return .success((rows, cursor, now))
    }
}

/// A weather record's payload {1: °C, 2: %RH, 3: lux} as text; other kinds as hex.
func describeRecord(_ row: LogRow) -> (String, [String: Any]) {
    if row.kind == 1 {
        var parts: [String] = [], o: [String: Any] = [:]
        try? forEachCBORKey(row.payload) { key, r in
            let v = try r.number()
            switch key {
            case 1: parts.append(String(format: "temp %.2f C", v)); o["temperature_c"] = v
            case 2: parts.append(String(format: "humidity %.1f %%", v)); o["humidity_percent"] = v
            case 3: parts.append(String(format: "light %.0f lx", v)); o["light_lux"] = v
            default: break
            }
        }
        return ("weather: " + parts.joined(separator: ", "), o)
    }
    let hex = row.payload.map { String(format: "%02x", $0) }.joined()
    return ("kind \(row.kind): \(hex)", ["payload_hex": hex])
}

/// Weather-record payload keys of the sensor services (NodeRuntime.weatherRecordKind).
let weatherServiceKeys: [String: UInt64] = ["temp_sensor": 1, "humidity_sensor": 2, "light_sensor": 3]

func weatherValue(_ payload: [UInt8], key: UInt64) -> Double? {
    var out: Double?
    try? forEachCBORKey(payload) { k, r in
        if k == key { out = try r.number() } else { try r.skip() }
    }
    return out
}

func forEachCBORKey(_ payload: [UInt8], _ body: (UInt64, inout CBORReader) throws -> Void) throws {
    var r = CBORReader(payload)
    for _ in 0..<(try r.mapHeader()) {
        let k = try r.unsigned()
        try body(k, &r)
    }
}

func logsCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["node", "kind", "since", "limit", "follow", "timeout", "wait", "broadcast", "port", "replica",
                                          "service"]))
    guard args.positional.isEmpty else { throw UsageError(message: "logs takes options only, e.g. `tdos logs --since 5m --node kernel`") }
    let follow = args.switches.contains("follow")
    let asJSON = args.switches.contains("json")
    let limit = try args.int("limit", default: 0)
    let timeout = try args.int("timeout", default: UInt32(3000))
    var sinceMs: UInt64?
    if let s = args.value("since") {
        guard let d = parseDurationMs(s) else { throw UsageError(message: "--since expects a duration: 30s, 5m, 2h, 1d (or ms)") }
        sinceMs = d
    }
    var kind: UInt8?
    if let k = args.value("kind") {
        guard let v = k == "weather" ? 1 : UInt8(k) else { throw UsageError(message: "--kind expects a number 0-255 or `weather`") }
        kind = v
    }
    // --service: the readings of one sensor service, from the weather records (kind 1) that carry it.
    var serviceKey: UInt64?
    if let svc = args.value("service") {
        guard let k = weatherServiceKeys[svc] else {
            throw UsageError(message: "--service: the log holds readings of \(weatherServiceKeys.keys.sorted().joined(separator: ", "))")
        }
        guard kind == nil || kind == 1 else { throw UsageError(message: "--service reads weather records: leave out --kind") }
        serviceKey = k
        kind = 1
    }
    let c = try client(args)
    c.discover(ms: try args.int("wait", default: UInt64(400)))
    var source: UInt32?
    if let n = args.value("node") { source = try resolveNode(c, n, args).nodeID }
    let replica = try args.value("replica").map { try resolveNode(c, $0, args).nodeID }
    let names = Dictionary(c.mesh.peers.map { ($0.nodeID, text($0.name)) }, uniquingKeysWith: { a, _ in a })
    installStopHandlers()
    var cursor: [UInt64]?
    var fromMs: UInt64?
    var printed = 0
    // Follow mode re-asks from the last record's time: skip what was printed at that time.
    var boundary: (timeMs: UInt64, keys: Set<[UInt64]>) = (0, [])
    while true {
        var w = CBORWriter()
        let keys = (source == nil ? 0 : 1) + (kind == nil ? 0 : 1) + (fromMs == nil ? 0 : 1) + 1 + (cursor == nil ? 0 : 1)
        w.mapHeader(count: keys)
        if let source { w.unsigned(1); w.unsigned(UInt64(source)) }
        if let kind { w.unsigned(2); w.unsigned(UInt64(kind)) }
        if let fromMs { w.unsigned(3); w.unsigned(fromMs) }
        w.unsigned(5); w.unsigned(UInt64(LogService.queryRecordsMax))
        if let cursor { w.unsigned(6); w.arrayHeader(count: 2); w.unsigned(cursor[0]); w.unsigned(cursor[1]) }
        switch queryLog(c, args: w.bytes, timeoutMs: timeout, replica: replica) {
        case .failure(let e):
            if meshPeers(c).isEmpty { noMesh(args, waitedMs: 400) }
            let why = e == .noInstance ? "no storage node offers `logger` (is one running? `tdos services`)" : "\(e.name)"
            fail("log query failed: \(why)", code: 3)
        case .success(let page):
            if fromMs == nil, let since = sinceMs, cursor == nil {
                // Times are on the storage node's clock: ask again from (its now - since).
                fromMs = page.nowMs > since ? page.nowMs - since : 0
                continue
            }
            for row in page.rows {
                let key = [UInt64(row.source), row.sequence]
                if row.timeMs < boundary.timeMs || (row.timeMs == boundary.timeMs && boundary.keys.contains(key)) { continue }
                if row.timeMs > boundary.timeMs { boundary = (row.timeMs, []) }
                boundary.keys.insert(key)
                var (text, fields) = describeRecord(row)
                if let serviceKey {
                    guard let v = weatherValue(row.payload, key: serviceKey) else { continue }
                    let svc = weatherServiceKeys.first { $0.value == serviceKey }!.key
                    text = "\(svc) " + String(format: "%.2f", v)
                    fields = ["service": svc, "value": v]
                }
                let ago = Double(Int64(page.nowMs) - Int64(row.timeMs)) / 1000
                let who = names[row.source] ?? hexID(row.source)
                let seq = "\(row.sequence >> 32).\(row.sequence & 0xFFFF_FFFF)"
                if asJSON {
                    var o = fields
                    o["node"] = hexID(row.source); o["node_name"] = who; o["sequence"] = row.sequence
                    o["time_ms"] = row.timeMs; o["age_s"] = ago; o["kind"] = Int(row.kind)
                    print(json(o, line: true))
                } else {
                    print(pad(String(format: "-%.1fs", ago), 10) + pad(who, 10) + pad("#" + seq, 10) + text)
                }
                printed += 1
                if limit > 0 && printed >= limit { return 0 }
            }
            fflush(stdout)
            if let next = page.cursor {
                cursor = next
                continue
            }
            if !follow || isStopRequested { return 0 }
            // At the end: keep the position after the last record and poll.
            if let last = page.rows.last { fromMs = last.timeMs }
            cursor = nil
            c.run(ms: 1000)
            if isStopRequested { return 0 }
        }
    }
}
