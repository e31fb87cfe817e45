import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSNode

/// The simulator mesh `make sim` starts: one process per node, over UDP on
/// loopback, supervised by `tdos sim up`.
public struct SimNodeSpec {
    public var name: String
    public var arguments: [String]
}

public let defaultSimMesh: [SimNodeSpec] = [
    SimNodeSpec(name: "kernel", arguments: ["--role", "kernel"]),
    SimNodeSpec(name: "temp-a", arguments: ["--role", "sensor", "--service", "temp_sensor"]),
    SimNodeSpec(name: "humidity", arguments: ["--role", "sensor", "--service", "humidity_sensor"]),
    SimNodeSpec(name: "light", arguments: ["--role", "sensor", "--service", "light_sensor"]),
    SimNodeSpec(name: "temp-b", arguments: ["--role", "sensor", "--service", "temp_sensor:backup", "--calibration", "0.2"]),
    SimNodeSpec(name: "storage", arguments: ["--role", "storage"]),
]

/// The default mesh with `storageReplicas` storage nodes (storage, storage-b,
/// storage-c, ...), each told the whole replica list: they keep the config by
/// consensus (3 tolerate one failure).
public func simMesh(storageReplicas: Int) -> [SimNodeSpec] {
    guard storageReplicas > 1 else { return defaultSimMesh }
    let names = ["storage"] + (1..<storageReplicas).map { "storage-" + String(UnicodeScalar(UInt8(97 + $0))) }
    let list = names.joined(separator: ",")
    return defaultSimMesh.filter { $0.name != "storage" }
        + names.map { SimNodeSpec(name: $0, arguments: ["--role", "storage", "--replicas", list]) }
}

/// Supervises the node processes: starts them, restarts one on request
/// (`tdos sim restart NAME` drops a file in the run directory), reports exits,
/// and on SIGINT/SIGTERM stops them all (SIGTERM, then SIGKILL after 3 s) so
/// nothing is left behind. Nodes also exit on their own when this process dies.
public final class SimSupervisor {
    public let runDirectory: String
    let executable: String
    let specs: [SimNodeSpec]
    let extraArguments: [String]
    var children: [String: pid_t] = [:]

    public init(runDirectory: String, executable: String, specs: [SimNodeSpec] = defaultSimMesh, extraArguments: [String] = []) {
        self.runDirectory = runDirectory
        self.executable = executable
        self.specs = specs
        self.extraArguments = extraArguments
    }

    func pidPath(_ name: String) -> String { "\(runDirectory)/\(name).pid" }
    public static func supervisorPIDPath(_ runDirectory: String) -> String { "\(runDirectory)/supervisor.pid" }

    func spawn(_ spec: SimNodeSpec, seed: Int) throws {
        let logPath = "\(runDirectory)/\(spec.name).log"
        var args = [executable, "node", "--name", spec.name, "--seed", "\(seed)", "--state-dir", "\(runDirectory)/state",
                    "--parent-pid", "\(getpid())"] + spec.arguments + extraArguments
        // The kernel's display lines go to this terminal; every log to its file.
        let logFD = open(logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard logFD >= 0 else { throw HostError("cannot open \(logPath): \(String(cString: strerror(errno)))") }
        defer { close(logFD) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if spec.name != "kernel" { posix_spawn_file_actions_adddup2(&actions, logFD, 1) }
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        var pid: pid_t = 0
        let cArgs = args.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        args.removeAll()
        let rc = posix_spawn(&pid, executable, &actions, nil, cArgs, environ)
        guard rc == 0 else { throw HostError("cannot start node \(spec.name) (\(executable)): \(String(cString: strerror(rc)))") }
        children[spec.name] = pid
        try? writeFileDurably(pidPath(spec.name), Array("\(pid)\n".utf8))
    }

    public func run() throws -> Int32 {
        makeDirectories(runDirectory + "/state")
        if let existing = try? readTextFile(Self.supervisorPIDPath(runDirectory)),
           let pid = Int32(existing.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0 {
            throw HostError("a simulator mesh is already running (supervisor pid \(pid)); stop it with `tdos sim down` or Ctrl-C in its terminal")
        }
        try writeFileDurably(Self.supervisorPIDPath(runDirectory), Array("\(getpid())\n".utf8))
        installStopHandlers()
        print("tdos sim: starting \(specs.count) nodes (logs in \(runDirectory)/*.log); Ctrl-C stops them all")
        for (i, spec) in specs.enumerated() { try spawn(spec, seed: i + 1) }
        while !isStopRequested {
            usleep(200_000)
            reap()
            for spec in specs {
                let request = "\(runDirectory)/restart-\(spec.name)"
                if access(request, F_OK) == 0 {
                    unlink(request)
                    if let pid = children[spec.name] { kill(pid, SIGKILL); waitpid(pid, nil, 0) }
                    print("tdos sim: restarting \(spec.name)")
                    try spawn(spec, seed: (specs.firstIndex { $0.name == spec.name } ?? 0) + 1)
                }
            }
        }
        stopAll()
        return 0
    }

    func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            if let name = children.first(where: { $0.value == pid })?.key {
                children[name] = nil
                unlink(pidPath(name))
                let how = (status & 0x7F) == 0 ? "exited with status \((status >> 8) & 0xFF)" : "was killed by signal \(status & 0x7F)"
                print("tdos sim: node \(name) \(how); `tdos sim restart \(name)` starts it again")
            }
        }
    }

    func stopAll() {
        print("tdos sim: stopping \(children.count) nodes")
        for pid in children.values { kill(pid, SIGTERM) }
        let deadline = monotonicMs() + 3000
        while !children.isEmpty && monotonicMs() < deadline {
            reapQuietly()
            usleep(50_000)
        }
        for (name, pid) in children {
            print("tdos sim: \(name) did not stop in 3 s; killing it")
            kill(pid, SIGKILL)
            waitpid(pid, nil, 0)
        }
        for spec in specs { unlink(pidPath(spec.name)) }
        unlink(Self.supervisorPIDPath(runDirectory))
        print("tdos sim: stopped")
    }

    func reapQuietly() {
        while true {
            let pid = waitpid(-1, nil, WNOHANG)
            if pid <= 0 { return }
            if let name = children.first(where: { $0.value == pid })?.key { children[name] = nil }
        }
    }
}

/// Reads a node's pid from the run directory.
public func simNodePID(runDirectory: String, name: String) -> pid_t? {
    guard let text = try? readTextFile("\(runDirectory)/\(name).pid") else { return nil }
    return pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
}
