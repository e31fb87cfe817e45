// tdos node, tdos sim: running nodes.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSNode
import TDOSHost

func nodeCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["role", "name", "service", "calibration", "seed", "port", "heartbeat-ms",
                                          "poll-us", "state-dir", "parent-pid", "broadcast", "bind", "time-scale",
                                          "replicas"]))
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
    if let r = args.value("replicas") {
        let names = r.split(separator: ",").map(String.init)
        guard o.role == .storage, !names.isEmpty, names.count <= RaftLimits.membersMax, names.contains(name),
              Set(names).count == names.count else {
            throw UsageError(message: "--replicas lists the storage nodes that keep the config (1-\(RaftLimits.membersMax) distinct names, this node's included), e.g. --replicas storage,storage-b,storage-c")
        }
        o.configReplicas = names
    }
    if let p = args.value("poll-us") {
        do { o.pollWindowUs = try HostPolling.parse(p, source: "--poll-us") } catch {
            throw UsageError(message: (error as? HostError)?.description ?? "--poll-us: bad value")
        }
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
    try args.check(allowed: common.union(["run-dir", "replicas"]))
    let runDir = args.value("run-dir") ?? defaultRunDirectory()
    guard let verb = args.positional.first else { throw UsageError(message: "sim needs up, down, status, kill NODE or restart NODE") }
    switch verb {
    case "up":
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let realExe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? exe
        var extra: [String] = []
        if let k = args.value("key-file") { extra += ["--key-file", k] }
        if let p = args.value("port-base") { extra += ["--port-base", p] }
        let replicas = try args.int("replicas", default: 1)
        guard (1...RaftLimits.membersMax).contains(replicas) else {
            throw UsageError(message: "--replicas expects 1-\(RaftLimits.membersMax) storage nodes (3 tolerates one failure)")
        }
        return try SimSupervisor(runDirectory: runDir, executable: realExe, specs: simMesh(storageReplicas: replicas),
                                 extraArguments: extra).run()
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
        for spec in simMesh(storageReplicas: RaftLimits.membersMax)
        where spec.name.hasPrefix("storage-") == false || simNodePID(runDirectory: runDir, name: spec.name) != nil {
            let pid = simNodePID(runDirectory: runDir, name: spec.name)
            let alive = pid.map { kill($0, 0) == 0 } ?? false
            print(pad(spec.name, 10) + (alive ? "running (pid \(pid!))" : "not running"))
        }
        return 0
    case "kill", "restart":
        guard args.positional.count == 2 else { throw UsageError(message: "sim \(verb) needs a node name, e.g. temp-a") }
        let name = args.positional[1]
        let known = simMesh(storageReplicas: RaftLimits.membersMax)
        guard known.contains(where: { $0.name == name }) else {
            throw UsageError(message: "no simulator node \(name); nodes: \(defaultSimMesh.map(\.name).joined(separator: ", ")) (and storage-b... with --replicas)")
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

