// tdos: inspect and drive a TDOS mesh, real or simulated. Every command that
// talks to the mesh joins it as a client node speaking the authenticated
// protocol (key: --key-file, $TDOS_KEY_FILE or $TDOS_KEY; the simulator's
// development key otherwise, with a warning).
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSNode
import TDOSHost

let usage = """
usage: tdos <command> [options]

mesh inspection (any mesh on this machine's loopback range, or --broadcast):
  tdos nodes [--json] [--wait MS]             nodes, their state, uptime and services
  tdos services [--json] [--wait MS]          every service instance, primary and backups
  tdos read SERVICE [--timeout MS] [--version X.Y.Z] [--json]
                                              read a sensor through the mesh (failover included)
  tdos watch [--interval MS]                  live view of nodes and readings (Ctrl-C to stop)

running nodes:
  tdos node --role kernel|sensor|storage --name NAME [--service SVC[:backup[N]]]...
            [--calibration C] [--seed N] [--port P] [--heartbeat-ms MS]
  tdos sim up                                 start the simulator mesh (6 nodes); Ctrl-C stops it
  tdos sim down | status | kill NODE | restart NODE

common options:
  --key-file FILE     the mesh key (32 bytes raw or hex); or $TDOS_KEY_FILE / $TDOS_KEY
  --port-base P       loopback discovery range start (default 42100, 32 ports)
  --help              this text
"""

struct UsageError: Error { let message: String }

/// Minimal flag parser: flags take one value unless listed as switches.
struct Args {
    var positional: [String] = []
    var values: [String: [String]] = [:]
    var switches: Set<String> = []

    init(_ raw: ArraySlice<String>, switches known: Set<String>) throws {
        var it = raw.makeIterator()
        while let a = it.next() {
            if a.hasPrefix("--") {
                let name = String(a.dropFirst(2))
                if known.contains(name) { switches.insert(name); continue }
                guard let v = it.next() else { throw UsageError(message: "option \(a) needs a value") }
                values[name, default: []].append(v)
            } else {
                positional.append(a)
            }
        }
    }

    func value(_ name: String) -> String? { values[name]?.last }
    func int<T: FixedWidthInteger>(_ name: String, default d: T) throws -> T {
        guard let s = value(name) else { return d }
        guard let v = T(s) else { throw UsageError(message: "--\(name) expects a whole number, got \"\(s)\"") }
        return v
    }
    func check(allowed: Set<String>) throws {
        for k in values.keys where !allowed.contains(k) { throw UsageError(message: "unknown option --\(k)") }
        for k in switches where !allowed.contains(k) { throw UsageError(message: "unknown option --\(k)") }
    }
}

let common: Set<String> = ["key-file", "port-base", "help", "json"]

func discoveryMode(_ args: Args) throws -> DiscoveryMode {
    if let b = args.value("broadcast") {
        guard let addr = parseIPv4(b) else { throw UsageError(message: "--broadcast expects an IPv4 address") }
        return .subnetBroadcast(broadcast: addr, port: try args.int("port", default: UInt16(4210)))
    }
    return .loopbackRange(base: try args.int("port-base", default: UInt16(42100)), count: 32)
}

func client(_ args: Args) throws -> MeshClient {
    let key = try MeshKey.load(keyFile: args.value("key-file"))
    if key.isDevelopmentKey { FileHandle.standardError.write((MeshKey.developmentWarning + "\n").data(using: .utf8)!) }
    return try MeshClient(key: key, discovery: try discoveryMode(args))
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(("tdos: " + message + "\n").data(using: .utf8)!)
    exit(code)
}

func noMesh(_ args: Args, waitedMs: UInt64) -> Never {
    let base = (try? args.int("port-base", default: UInt16(42100))) ?? 42100
    fail("""
    no TDOS node answered within \(waitedMs) ms on 127.0.0.1:\(base)-\(Int(base) + 31).
      Start the simulator mesh with `make sim` (or `tdos sim up`) in another terminal,
      check that this command uses the mesh's key (--key-file / TDOS_KEY_FILE),
      or wait longer with --wait MS.
    """, code: 3)
}

func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }
func addr(_ a: NodeAddress?) -> String { a.map { "\(ipv4String($0.host)):\($0.port)" } ?? "(relayed)" }
func semver(_ v: SemVer) -> String { "\(v.major).\(v.minor).\(v.patch)" }
func json(_ object: Any) -> String {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    return String(decoding: data, as: UTF8.self)
}
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

func meshPeers(_ c: MeshClient) -> [PeerInfo] {
    c.mesh.peers.filter { !text($0.name).hasPrefix("tdos-cli") }.sorted { text($0.name) < text($1.name) }
}

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

func nodeCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["role", "name", "service", "calibration", "seed", "port", "heartbeat-ms",
                                          "state-dir", "parent-pid", "broadcast", "bind", "time-scale"]))
    var o = NodeOptions()
    switch args.value("role") ?? "" {
    case "kernel": o.role = .kernel
    case "sensor": o.role = .sensor
    case "storage": o.role = .storage
    default: throw UsageError(message: "--role must be kernel, sensor or storage")
    }
    guard let name = args.value("name"), !name.isEmpty, name.utf8.count <= 24 else {
        throw UsageError(message: "--name NAME is required (1-24 bytes)")
    }
    o.name = name
    let calibration = Double(args.value("calibration") ?? "0")
    guard let calibration else { throw UsageError(message: "--calibration expects a number") }
    for spec in args.values["service"] ?? [] {
        let parts = spec.split(separator: ":").map(String.init)
        let kind: SensorKind
        switch parts[0] {
        case let n where n.hasPrefix("temp"): kind = .temperature
        case let n where n.hasPrefix("humid"): kind = .humidity
        case let n where n.hasPrefix("light"): kind = .light
        default: throw UsageError(message: "--service \(parts[0]): the simulated sensors are temp_sensor, humidity_sensor and light_sensor")
        }
        var priority: UInt8 = 0
        if parts.count > 1 {
            guard parts[1].hasPrefix("backup"), let n = parts[1] == "backup" ? 1 : UInt8(parts[1].dropFirst(6)), n > 0 else {
                throw UsageError(message: "--service \(spec): use NAME or NAME:backup or NAME:backupN")
            }
            priority = n
        }
        o.services.append(SensorService(name: Array(parts[0].utf8), kind: kind, priority: priority, calibrationOffset: calibration))
    }
    if o.role == .sensor && o.services.isEmpty { throw UsageError(message: "a sensor node needs at least one --service") }
    o.seed = try args.int("seed", default: UInt64(1))
    o.keyFile = args.value("key-file")
    if args.value("port") != nil { o.port = try args.int("port", default: UInt16(0)) }
    if let hb = args.value("heartbeat-ms") {
        guard let v = UInt32(hb), v >= 50 else { throw UsageError(message: "--heartbeat-ms expects a number >= 50") }
        o.heartbeatIntervalMs = v
    }
    if let d = args.value("state-dir") { o.stateDirectory = d }
    if let p = args.value("parent-pid") { o.parentPID = Int32(p) }
    if let s = args.value("time-scale") { o.timeScale = Double(s) ?? 60 }
    o.discovery = try discoveryMode(args)
    if let b = args.value("bind") {
        guard let a = parseIPv4(b) else { throw UsageError(message: "--bind expects an IPv4 address") }
        o.bindHost = a
    }
    return try runNodeProcess(o)
}

func simCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["run-dir"]))
    let runDir = args.value("run-dir") ?? defaultRunDirectory()
    guard let verb = args.positional.first else { throw UsageError(message: "sim needs up, down, status, kill NODE or restart NODE") }
    switch verb {
    case "up":
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let realExe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? exe
        var extra: [String] = []
        if let k = args.value("key-file") { extra += ["--key-file", k] }
        if let p = args.value("port-base") { extra += ["--port-base", p] }
        return try SimSupervisor(runDirectory: runDir, executable: realExe, extraArguments: extra).run()
    case "down":
        guard let text = try? readTextFile(SimSupervisor.supervisorPIDPath(runDir)),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0 else {
            fail("no simulator mesh is running (no live supervisor in \(runDir))", code: 3)
        }
        kill(pid, SIGTERM)
        let deadline = monotonicMs() + 6000
        while kill(pid, 0) == 0 && monotonicMs() < deadline { usleep(100_000) }
        print(kill(pid, 0) == 0 ? "tdos sim: supervisor \(pid) still running" : "tdos sim: stopped")
        return 0
    case "status":
        for spec in defaultSimMesh {
            let pid = simNodePID(runDirectory: runDir, name: spec.name)
            let alive = pid.map { kill($0, 0) == 0 } ?? false
            print(pad(spec.name, 10) + (alive ? "running (pid \(pid!))" : "not running"))
        }
        return 0
    case "kill", "restart":
        guard args.positional.count == 2 else { throw UsageError(message: "sim \(verb) needs a node name, e.g. temp-a") }
        let name = args.positional[1]
        guard defaultSimMesh.contains(where: { $0.name == name }) else {
            throw UsageError(message: "no simulator node \(name); nodes: \(defaultSimMesh.map(\.name).joined(separator: ", "))")
        }
        if verb == "kill" {
            guard let pid = simNodePID(runDirectory: runDir, name: name), kill(pid, SIGKILL) == 0 else {
                fail("node \(name) is not running", code: 3)
            }
            print("tdos sim: killed \(name) (pid \(pid)) with SIGKILL")
        } else {
            guard FileManager.default.fileExists(atPath: SimSupervisor.supervisorPIDPath(runDir)) else {
                fail("no simulator mesh is running; start it with `make sim`", code: 3)
            }
            FileManager.default.createFile(atPath: "\(runDir)/restart-\(name)", contents: Data())
            print("tdos sim: asked the supervisor to restart \(name)")
        }
        return 0
    default:
        throw UsageError(message: "unknown sim command \(verb)")
    }
}

let commands: [String: (Args) throws -> Int32] = [
    "nodes": nodesCommand, "services": servicesCommand, "read": readCommand, "watch": watchCommand,
    "node": nodeCommand, "sim": simCommand,
]
let switches: Set<String> = ["json", "help"]

setvbuf(stdout, nil, _IOLBF, 0)
let argv = CommandLine.arguments
guard argv.count >= 2, argv[1] != "--help", argv[1] != "-h", argv[1] != "help" else {
    print(usage)
    exit(argv.count >= 2 ? 0 : 2)
}
guard let command = commands[argv[1]] else {
    FileHandle.standardError.write("tdos: unknown command \(argv[1])\n\n\(usage)\n".data(using: .utf8)!)
    exit(2)
}
do {
    let args = try Args(argv.dropFirst(2), switches: switches)
    if args.switches.contains("help") { print(usage); exit(0) }
    exit(try command(args))
} catch let e as UsageError {
    FileHandle.standardError.write("tdos: \(e.message)\n\n\(usage)\n".data(using: .utf8)!)
    exit(2)
} catch let e as HostError {
    fail(e.description)
} catch {
    fail("\(error)")
}
