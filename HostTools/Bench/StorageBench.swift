// `tdos-bench storage`: the storage log on Linux (issue 8). Durable appends
// (each record programmed, fsync'd and read back before its ack, as the
// storage node does) one at a time and in producer batches of 8; and the
// recovery time at boot of a full 10 MB log.
import Foundation
import Glibc
import TDOSCore
import TDOSHost

func storageBench() {
    let dir = NSTemporaryDirectory() + "tdos-bench-storage-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    func pct(_ xs: [Double], _ p: Double) -> Double { let s = xs.sorted(); return s[min(s.count - 1, Int(Double(s.count) * p))] }
    let payload = [UInt8](repeating: 0x5A, count: 32)

    // 1. Appends with fsync, one record per ack.
    do {
        let flash = try FileLogFlash(path: dir + "/single.log")
        var log = try RecordLog(flash: flash)
        var lat: [Double] = []
        let n = 2000
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 1...n {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try log.append(source: 1, sequence: UInt64(i), timeMs: UInt64(i), kind: 1, payload: payload)
            lat.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
        }
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print("storage: durable append (32 B payload, programmed + fsync + read back, 1 replica): \(Int(Double(n) / s)) appends/s, p50 \(Int(pct(lat, 0.5))) µs, p99 \(Int(pct(lat, 0.99))) µs (\(n) records)")
    } catch {
        print("storage: append bench failed: \(error)")
    }

    // 2. The same through LogService in producer batches of 8 (one request, one ack).
    do {
        let flash = try FileLogFlash(path: dir + "/batch.log")
        var log = try RecordLog(flash: flash)
        var lat: [Double] = []
        let batches = 250
        var seq: UInt64 = 0
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<batches {
            var w = CBORWriter()
            w.mapHeader(count: 1); w.unsigned(5); w.arrayHeader(count: 8)
            for _ in 0..<8 { seq += 1; w.arrayHeader(count: 4); w.unsigned(seq); w.unsigned(1); w.unsigned(0); w.bytes(payload) }
            let t0 = DispatchTime.now().uptimeNanoseconds
            let r = LogService.serve(Request(service: 1, operation: .logAppend, arguments: w.bytes), from: 2, nowMs: seq, log: &log)
            lat.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
            if r.status != 0 { print("storage: batch refused, status \(r.status)"); return }
        }
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print("storage: durable batched append (8 records per ack): \(Int(Double(batches * 8) / s)) records/s, batch ack p50 \(Int(pct(lat, 0.5))) µs, p99 \(Int(pct(lat, 0.99))) µs")
    } catch {
        print("storage: batch bench failed: \(error)")
    }

    // 3. Recovery at boot of a full 10 MB log (2560 sectors of 4 KB), from a file.
    do {
        var ram = RAMLogFlash(sectorCount: 2560, sectorSize: 4096, pageSize: 256)
        var filler = try RecordLog(flash: ram)
        var i: UInt64 = 0
        while filler.segmentCount < 2559 {
            i += 1
            _ = try filler.append(source: UInt32(1 + i % 8), sequence: i, timeMs: i, kind: 1, payload: payload)
        }
        ram = filler.flash
        let path = dir + "/10mb.log"
        FileManager.default.createFile(atPath: path, contents: Data(ram.bytes))
        let flash = try FileLogFlash(path: path, sectorCount: 2560)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let log = try RecordLog(flash: flash)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        print("storage: recovery of a full 10 MB log (\(log.recordCount) records in \(log.segmentCount) segments, file in the page cache): \(String(format: "%.0f", ms)) ms")
    } catch {
        print("storage: recovery bench failed: \(error)")
    }
    replicatedAppendBench()
}

/// `tdos-bench storage` part 4: durable appends through the mesh to 1 and to 3
/// storage replicas (real `tdos node` processes on loopback, fsync on each
/// replica): one record per call, and batches of 8 records per call, one call
/// at a time as the producer sends them. With 3 replicas an append is acked
/// once the primary and one backup hold it on disk.
func replicatedAppendBench() {
    for replicas in [1, 3] {
        do {
            let r = try ReplicatedAppendRun(replicas: replicas)
            defer { r.stop() }
            for batch in [1, 8] {
                let (lat, seconds, failures) = r.append(calls: batch == 1 ? 400 : 150, batch: batch)
                guard !lat.isEmpty else {
                    print("storage: \(replicas) replica(s): no append acknowledged (\(failures) failed)")
                    continue
                }
                let s = lat.sorted()
                let p = { (q: Double) in s[min(s.count - 1, Int(Double(s.count) * q))] }
                print(String(format: "storage: durable append through the mesh, %d replica%@, %d record%@ per call: %.0f records/s, p50 %.2f ms, p99 %.2f ms (%d calls, %d failed)",
                             replicas, replicas == 1 ? "" : "s", batch, batch == 1 ? "" : "s",
                             Double(lat.count * batch) / seconds, p(0.5), p(0.99), lat.count, failures))
            }
        } catch {
            print("storage: replicated append bench (\(replicas) replicas) failed: \(error)")
        }
    }
}

final class ReplicatedAppendRun {
    let runDir: String
    var nodes: [Process] = []
    let client: MeshClient
    var sequence: UInt64 = 0

    init(replicas: Int) throws {
        runDir = NSTemporaryDirectory() + "tdos-bench-repl-\(getpid())-\(replicas)"
        makeDirectories(runDir + "/state")
        let base = UInt16(46_000 + 40 * replicas)
        let names = (0..<replicas).map { "bench-store-\(getpid())-\($0)" }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let tdos = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("tdos").path
        for n in names {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: tdos)
            p.arguments = ["node", "--role", "storage", "--name", n, "--port-base", "\(base)", "--state-dir", runDir + "/state",
                           "--parent-pid", "\(getpid())", "--heartbeat-ms", "1000"]
                + (replicas > 1 ? ["--replicas", names.joined(separator: ",")] : [])
            var env = ProcessInfo.processInfo.environment
            env["TDOS_RATE_LIMIT__RATE_PER_S"] = "10000"
            env["TDOS_RATE_LIMIT__BURST"] = "10000"
            p.environment = env
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            nodes.append(p)
        }
        client = try MeshClient(key: try MeshKey.load(keyFile: nil), discovery: .loopbackRange(base: base, count: 32))
        // Until an append is acknowledged (a leader elected and caught up: up to ~8 s).
        let ready = Date().addingTimeInterval(20)
        var ok = false
        while !ok && Date() < ready {
            client.run(ms: 200)
            ok = append(calls: 1, batch: 1).latenciesMs.count == 1
        }
        if !ok {
            stop()
            throw HostError("no storage replica acknowledged an append within 20 s")
        }
    }

    func append(calls: Int, batch: Int) -> (latenciesMs: [Double], seconds: Double, failures: Int) {
        var lat: [Double] = []
        var failures = 0
        let start = monotonicNs()
        for _ in 0..<calls {
            var w = CBORWriter()
            w.mapHeader(count: 1)
            w.unsigned(5)
            w.arrayHeader(count: batch)
            for _ in 0..<batch {
                sequence += 1
                w.arrayHeader(count: 4)
                w.unsigned(sequence); w.unsigned(1); w.unsigned(0); w.bytes([UInt8](repeating: 0x5A, count: 32))
            }
            let t0 = monotonicNs()
            let r = client.call(service: "logger", operation: .logAppend, arguments: w.bytes, deadlineMs: 3000)
            if case .value(let v) = r, v.response.status == Status.ok.rawValue {
                lat.append(Double(monotonicNs() - t0) / 1e6)
            } else {
                failures += 1
            }
        }
        return (lat, Double(monotonicNs() - start) / 1e9, failures)
    }

    func stop() {
        for p in nodes where p.isRunning { kill(p.processIdentifier, SIGTERM) }
        for p in nodes { p.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: runDir)
    }
}
