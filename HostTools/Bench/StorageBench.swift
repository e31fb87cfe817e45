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
}
