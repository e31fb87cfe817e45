// End to end, with real processes: `tdos sim up` (the built binary, a unique
// TDOS_RUN_DIR and --port-base) and the CLI, over UDP on loopback. Reads every
// sensor; kills the primary temperature sensor with SIGKILL and shows reads
// keep succeeding from the backup within the failover bound; restarts it and
// shows it registered again; replays a captured frame and sends bit-flipped
// copies, and shows through `tdos metrics NODE --json` that they were rejected
// and counted, and that the node still answers. The mesh is always torn down.
//
// Needs the `tdos` executable next to the test bundle (`swift build
// --build-tests` builds it; or set TDOS_BIN).
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import TDOSCore
@testable import TDOSHost

struct CLIResult {
    var status: Int32
    var out: String
    var err: String
    var json: Any? { try? JSONSerialization.jsonObject(with: Data(out.utf8)) }
}

/// One simulator mesh for the test, on its own run directory and port range.
final class E2EMesh {
    let binary: String
    let runDir: String
    let portBase: UInt16
    let supervisor: Process

    static func findBinary() -> String? {
        if let b = ProcessInfo.processInfo.environment["TDOS_BIN"] { return b }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The xctest bundle may be a directory (…/TDOSPackageTests.xctest/…) or a file.
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("tdos").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    init(binary: String, arguments: [String] = []) throws {
        self.binary = binary
        let tag = "\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
        runDir = NSTemporaryDirectory() + "tdos-e2e-\(tag)"
        // A range of 32 ports no other test uses: 44000 + 40 * (0..<400).
        portBase = UInt16(44_000 + 40 * Int(UInt32.random(in: 0..<400)))
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        supervisor = Process()
        supervisor.executableURL = URL(fileURLWithPath: binary)
        supervisor.arguments = ["sim", "up", "--port-base", "\(portBase)"] + arguments
        var env = ProcessInfo.processInfo.environment
        env["TDOS_RUN_DIR"] = runDir
        supervisor.environment = env
        supervisor.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        supervisor.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try supervisor.run()
    }

    /// Stops the supervisor (it stops its nodes), then SIGKILLs any node left.
    func tearDown() {
        if supervisor.isRunning { kill(supervisor.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(6)
        while supervisor.isRunning && Date() < deadline { usleep(50_000) }
        if supervisor.isRunning { kill(supervisor.processIdentifier, SIGKILL) }
        for spec in simMesh(storageReplicas: 3) {
            if let pid = simNodePID(runDirectory: runDir, name: spec.name), pid > 0 { kill(pid, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: runDir)
    }

    /// Runs the CLI against this mesh.
    func cli(_ args: [String], timeoutS: Double = 20) -> CLIResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        var a = args
        if !["sim"].contains(args.first ?? "") { a += ["--port-base", "\(portBase)"] }
        p.arguments = a
        var env = ProcessInfo.processInfo.environment
        env["TDOS_RUN_DIR"] = runDir
        p.environment = env
        // Output to files: a full pipe would block the child while we wait for it.
        let tag = UInt32.random(in: 0..<UInt32.max)
        let outPath = "\(runDir)/cli-\(tag).out", errPath = "\(runDir)/cli-\(tag).err"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        do { try p.run() } catch { return CLIResult(status: -1, out: "", err: "\(error)") }
        let deadline = Date().addingTimeInterval(timeoutS)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let o = FileManager.default.contents(atPath: outPath) ?? Data()
        let e = FileManager.default.contents(atPath: errPath) ?? Data()
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
        return CLIResult(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self),
                         err: String(decoding: e, as: UTF8.self))
    }

    /// Starts the CLI in the background; its stdout and stderr go to the returned files.
    func startCLI(_ args: [String]) throws -> (process: Process, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args + ["--port-base", "\(portBase)"]
        var env = ProcessInfo.processInfo.environment
        env["TDOS_RUN_DIR"] = runDir
        p.environment = env
        let tag = UInt32.random(in: 0..<UInt32.max)
        let out = "\(runDir)/bg-\(tag).out", err = "\(runDir)/bg-\(tag).err"
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: out)
        p.standardError = FileHandle(forWritingAtPath: err)
        try p.run()
        return (p, out, err)
    }

    /// Polls `body` every 200 ms until it is true or `seconds` pass.
    func eventually(_ seconds: Double, _ body: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if body() { return true }
            usleep(200_000)
        } while Date() < deadline
        return false
    }

    func rejected(_ node: String) -> [String: Double]? {
        let r = cli(["metrics", node, "--json"])
        guard r.status == 0, let o = r.json as? [String: Any], let rej = o["rejected"] as? [String: Any] else { return nil }
        var out: [String: Double] = [:]
        for (k, v) in rej { out[k] = (v as? NSNumber)?.doubleValue ?? 0 }
        return out
    }
}

@Suite(.serialized) struct EndToEndTests {
    @Test(.timeLimit(.minutes(2))) func simulatorMeshThroughTheCLI() throws {
        guard let binary = E2EMesh.findBinary() else {
            Issue.record("no tdos executable next to the test bundle: run `swift build --build-tests` (or set TDOS_BIN)")
            return
        }
        let mesh = try E2EMesh(binary: binary)
        defer { mesh.tearDown() }
        let t0 = Date()

        // 1. All six nodes come up and every sensor reads through the CLI.
        var names: Set<String> = []
        let up = mesh.eventually(15) {
            let r = mesh.cli(["nodes", "--json", "--wait", "1200"])
            names = Set(((r.json as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String })
            return names.count == 6
        }
        #expect(up, "nodes seen: \(names)")
        guard up else { return }
        for service in ["temp_sensor", "humidity_sensor", "light_sensor"] {
            var r = mesh.cli(["read", service, "--json"])
            if r.status != 0 { usleep(1_000_000); r = mesh.cli(["read", service, "--json"]) }  // first sample pending
            let o = r.json as? [String: Any]
            #expect(r.status == 0 && o?["value"] is NSNumber, "read \(service): \(r.status) \(r.err)")
            if service == "temp_sensor" { #expect(o?["node_name"] as? String == "temp-a") }
        }

        // Node operations through the CLI: tasks, config get, Prometheus text.
        let tasks = mesh.cli(["tasks", "kernel", "--json"])
        let taskNames = (((tasks.json as? [String: Any])?["tasks"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
        #expect(tasks.status == 0 && taskNames.contains("weather") && taskNames.contains("net"), "\(tasks.err)")
        let burst = mesh.cli(["call", "storage", "config-get", "rate_limit.burst", "--json"])
        #expect(burst.status == 0 && ((burst.json as? [String: Any])?["result"] as? NSNumber)?.intValue == 40, "\(burst.err)")
        #expect(mesh.cli(["tasks", "no-such-node", "--wait", "300"]).status == 3)
        let prom = mesh.cli(["metrics", "--prometheus"])
        #expect(prom.status == 0 && prom.out.contains("tdos_node_up{node=\"temp-a\"} 1"), "\(prom.err)")
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
            let path = mesh.runDir + "/metrics.prom"
            FileManager.default.createFile(atPath: path, contents: Data(prom.out.utf8))
            let check = Process()
            check.executableURL = URL(fileURLWithPath: "/bin/sh")
            check.arguments = ["-c", "promtool check metrics < \(path)"]
            try check.run()
            check.waitUntilExit()
            #expect(check.terminationStatus == 0, "promtool check metrics refused `tdos metrics --prometheus`")
        }

        // 2. SIGKILL the primary: a long-lived client's reads move to the backup
        //    within the failover bound, deadAfterMs after the primary was last heard.
        let client = try MeshClient(key: .development, discovery: .loopbackRange(base: mesh.portBase, count: 32),
                                    name: "tdos-cli-e2e")
        client.run(ms: 1500) { client.mesh.instances(of: Array("temp_sensor".utf8)).count == 2 }
        #expect(client.mesh.instances(of: Array("temp_sensor".utf8)).count == 2)
        let boundMs = Double(MeshConfig().deadAfterMs) + 1000  // 3 s + one RTT and timer slack
        // A subscriber streams the readings through the kill (issue 7: it moves to the backup).
        let watch = try mesh.startCLI(["watch", "temp_sensor", "--json", "--min-interval", "200", "--max-interval", "1000"])
        defer { if watch.process.isRunning { kill(watch.process.processIdentifier, SIGKILL) } }
        func watched() -> [[String: Any]] {
            let text = String(decoding: FileManager.default.contents(atPath: watch.out) ?? Data(), as: UTF8.self)
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
        #expect(mesh.eventually(8) { watched().filter { $0["node_name"] as? String == "temp-a" }.count >= 2 },
                "tdos watch streams temp-a's readings: \(watched())")
        #expect(mesh.cli(["sim", "kill", "temp-a"]).status == 0)
        let killedAt = Date()
        var lastFromBackup: Date?
        var readsOK = 0, reads = 0
        while Date().timeIntervalSince(killedAt) < 6 {
            reads += 1
            if case .value(let v) = client.call(service: "temp_sensor", deadlineMs: 5000) {
                readsOK += 1
                if v.node == hostNodeID(name: "temp-b") && !v.isStale && lastFromBackup == nil { lastFromBackup = Date() }
            }
            client.run(ms: 100)
        }
        #expect(readsOK == reads, "every read during the failover succeeded (\(readsOK)/\(reads))")
        let failoverMs = (lastFromBackup ?? .distantFuture).timeIntervalSince(killedAt) * 1000
        #expect(failoverMs <= boundMs, "first fresh read from the backup \(Int(failoverMs)) ms after the kill; bound \(Int(boundMs)) ms")
        // The subscriber followed the failover: temp-a's pushes, then temp-b's, each in sequence.
        #expect(mesh.eventually(6) { watched().contains { $0["node_name"] as? String == "temp-b" } })
        kill(watch.process.processIdentifier, SIGINT)
        watch.process.waitUntilExit()
        let stream = watched().compactMap { $0["node_name"] as? String }
        let firstB = stream.firstIndex(of: "temp-b") ?? stream.count
        #expect(firstB > 0 && stream[..<firstB].allSatisfy { $0 == "temp-a" } && stream[firstB...].allSatisfy { $0 == "temp-b" },
                "watch stream: \(stream)")
        let watchErr = String(decoding: FileManager.default.contents(atPath: watch.err) ?? Data(), as: UTF8.self)
        #expect(watchErr.contains("now following temp-b (failover)"), "\(watchErr)")
        #expect(watch.process.terminationStatus == 0, "Ctrl-C ends tdos watch cleanly")
        // A fresh CLI process reads from the backup at once.
        let viaCLI = mesh.cli(["read", "temp_sensor", "--json"])
        #expect(viaCLI.status == 0 && (viaCLI.json as? [String: Any])?["node_name"] as? String == "temp-b", "\(viaCLI.err)")

        // 3. Restart it: it registers again.
        #expect(mesh.cli(["sim", "restart", "temp-a"]).status == 0)
        let back = mesh.eventually(10) {
            let r = mesh.cli(["services", "--json", "--wait", "800"])
            return ((r.json as? [[String: Any]]) ?? []).contains {
                $0["service"] as? String == "temp_sensor" && $0["node_name"] as? String == "temp-a"
            }
        }
        #expect(back, "temp-a is listed by `tdos services` again")

        // 4. Replay and corruption on the wire, aimed at temp-b.
        let before = try #require(mesh.rejected("temp-b"))
        let tap = try UDPTransport(mode: .loopbackRange(base: mesh.portBase, count: 32))
        client.run(ms: 300)
        let target = try #require(client.mesh.peers.first { String(decoding: $0.name, as: UTF8.self) == "temp-b" }?.address)
        // Capture a real heartbeat of the kernel, as broadcast to every port of the range.
        var captured: [UInt8]?
        let keys = Keyring(id: MeshKey.development.id, key: MeshKey.development.bytes)
        let kernelID = hostNodeID(name: "kernel")
        let captureDeadline = Date().addingTimeInterval(4)
        while captured == nil && Date() < captureDeadline {
            if tap.waitReadable(timeoutMs: 200), let d = tap.receive(),
               let f = try? Frame.decode(d.bytes, keys: keys), f.sender == kernelID, f.type == .heartbeat {
                captured = d.bytes
            }
        }
        let frame = try #require(captured)
        usleep(100_000)  // temp-b has had its own copy by now
        for _ in 0..<3 { tap.send(frame, to: target) }
        var flips = 0
        for i in [frame.count - 1, frame.count - 8, frame.count - 17, frame.count - 18] {
            var bad = frame
            bad[i] ^= 0x10
            tap.send(bad, to: target)
            flips += 1
        }
        var after: [String: Double] = [:]
        _ = mesh.eventually(5) {
            after = mesh.rejected("temp-b") ?? [:]
            return (after["replayed"] ?? 0) - (before["replayed"] ?? 0) >= 3
                && (after["bad_tag"] ?? 0) - (before["bad_tag"] ?? 0) >= Double(flips)
        }
        #expect((after["replayed"] ?? 0) - (before["replayed"] ?? 0) >= 3, "replayed: \(before) -> \(after)")
        #expect((after["bad_tag"] ?? 0) - (before["bad_tag"] ?? 0) == Double(flips), "bad_tag: \(before) -> \(after)")
        // The node still works.
        let status = mesh.cli(["call", "temp-b", "status", "--json"])
        #expect(status.status == 0, "\(status.err)")
        let stillReads = mesh.cli(["read", "temp_sensor", "--json"])
        #expect(stillReads.status == 0, "\(stillReads.err)")

        // 5. Issue 8: kill -9 the storage node under the kernel's stream of
        //    weather records; once it returns, every record is there: the
        //    kernel's sequence numbers (this epoch) run 1...n without a gap,
        //    including those written while it was down (the producer retried).
        func kernelSequences() -> [UInt64] {
            let r = mesh.cli(["logs", "--node", "kernel", "--json"])
            let rows = r.out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let seqs = rows.compactMap { ($0["sequence"] as? NSNumber)?.uint64Value }
            guard let epoch = seqs.map({ $0 >> 32 }).max() else { return [] }
            return seqs.filter { $0 >> 32 == epoch }.map { $0 & 0xFFFF_FFFF }
        }
        #expect(mesh.eventually(12) { kernelSequences().count >= 2 }, "the kernel's records reach the storage log")
        let beforeKill = kernelSequences()
        #expect(mesh.cli(["sim", "kill", "storage"]).status == 0)
        usleep(7_000_000)  // at least one weather record is produced while it is down
        #expect(mesh.cli(["sim", "restart", "storage"]).status == 0)
        var afterRestart: [UInt64] = []
        #expect(mesh.eventually(15) {
            afterRestart = kernelSequences()
            return afterRestart.count >= beforeKill.count + 2
        }, "records continue after the restart: \(beforeKill.count) before, \(afterRestart.count) after")
        #expect(afterRestart == Array(1...UInt64(max(1, afterRestart.count))), "sequences with a gap or a duplicate: \(afterRestart)")
        #expect(Set(beforeKill).isSubset(of: Set(afterRestart)), "a record acked before the kill is missing")

        print("end-to-end: failover \(Int(failoverMs)) ms (bound \(Int(boundMs)) ms), \(reads) reads during it, "
              + "rejected on temp-b: \(after), storage log \(beforeKill.count) records before kill -9, \(afterRestart.count) after, "
              + "total \(Int(Date().timeIntervalSince(t0))) s")
    }

    /// Issue 8 with real processes: three storage replicas (`tdos sim up
    /// --replicas 3`). A config change commits; the primary (the consensus
    /// leader) is killed with SIGKILL during the kernel's stream of records;
    /// records keep being acknowledged by the other two, a second config
    /// change commits under the new leader; once the old primary is back,
    /// its own log holds every record the others acknowledged meanwhile.
    @Test(.timeLimit(.minutes(2))) func replicatedStorageThroughTheCLI() throws {
        guard let binary = E2EMesh.findBinary() else {
            Issue.record("the tdos executable was not found next to the tests (run `swift build` first, or set TDOS_BIN)")
            return
        }
        let mesh = try E2EMesh(binary: binary, arguments: ["--replicas", "3"])
        defer { mesh.tearDown() }
        let t0 = Date()
        func kernelSequences(replica: String? = nil) -> Set<UInt64> {
            let r = mesh.cli(["logs", "--node", "kernel", "--json"] + (replica.map { ["--replica", $0] } ?? []))
            let rows = r.out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            return Set(rows.compactMap { ($0["sequence"] as? NSNumber)?.uint64Value })
        }
        #expect(mesh.eventually(20) { kernelSequences().count >= 2 }, "the kernel's records reach the replicated log")
        let set1 = mesh.cli(["config", "set", "metrics.sla_target_ms=250", "--json"])
        #expect(set1.status == 0, "config set: \(set1.err)")
        let got = mesh.cli(["config", "get", "--json"])
        guard let o = got.json as? [String: Any], let leaderID = o["leader"] as? String else {
            Issue.record("config get names no leader: \(got.out) \(got.err)")
            return
        }
        let nodes = mesh.cli(["nodes", "--json"]).json as? [[String: Any]] ?? []
        guard let leader = nodes.first(where: { ($0["id"] as? String) == leaderID })?["name"] as? String else {
            Issue.record("leader \(leaderID) is not in `tdos nodes`")
            return
        }
        let beforeKill = kernelSequences()
        #expect(mesh.cli(["sim", "kill", leader]).status == 0)
        let killedAt = Date()
        // Writes continue on the backups: new records are acknowledged while the primary is down.
        var duringOutage = Set<UInt64>()
        #expect(mesh.eventually(25) {
            duringOutage = kernelSequences()
            return duringOutage.subtracting(beforeKill).count >= 2
        }, "no new records acknowledged after the primary \(leader) was killed")
        let resumedS = Date().timeIntervalSince(killedAt)
        let set2 = mesh.cli(["config", "set", "rate_limit.burst=70", "--json"])
        #expect(set2.status == 0, "config set under the new leader: \(set2.err)")
        #expect(mesh.eventually(15) { mesh.cli(["call", "kernel", "config-get", "rate_limit.burst"]).out.contains("70") })
        #expect(beforeKill.isSubset(of: duringOutage), "a record acked before the kill is missing on the backups")
        #expect(mesh.cli(["sim", "restart", leader]).status == 0)
        // Back: its own log catches up with everything acknowledged while it was down.
        var onReturned = Set<UInt64>()
        #expect(mesh.eventually(30) {
            onReturned = kernelSequences(replica: leader)
            return duringOutage.isSubset(of: onReturned)
        }, "\(leader) lacks \(duringOutage.subtracting(onReturned).count) acknowledged records after its restart")
        let history = mesh.cli(["config", "history", "--json"])
        let entries = (history.json as? [String: Any])?["entries"] as? [[String: Any]] ?? []
        #expect(entries.filter { !($0["no_op"] as? Bool ?? true) }.count >= 2, "config history: \(history.out)")
        print("end-to-end replicated storage: primary \(leader) killed; records acknowledged again after \(String(format: "%.1f", resumedS)) s; "
              + "\(beforeKill.count) records before the kill, \(duringOutage.count) by the end of the outage, all on \(leader) after its return; "
              + "total \(Int(Date().timeIntervalSince(t0))) s")
    }
}
