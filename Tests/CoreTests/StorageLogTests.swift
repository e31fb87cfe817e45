import Foundation
import Testing
@testable import TDOSCore
@testable import TDOSHost

/// One producer record of a test workload.
struct WorkRecord: Equatable {
    var source: UInt32
    var sequence: UInt64
    var timeMs: UInt64
    var kind: UInt8
    var payload: [UInt8]
    var record: LogRecord { LogRecord(source: source, sequence: sequence, timeMs: timeMs, kind: kind, payload: payload) }
}

/// `count` records from 3 sources, payloads 0...40 bytes, seeded.
func storageWorkload(count: Int, seed: UInt64, payloadMax: Int = 40) -> [WorkRecord] {
    var rng = TestRNG(seed: seed)
    var seqs: [UInt64] = [0, 0, 0]
    var out: [WorkRecord] = []
    for i in 0..<count {
        let s = Int(rng.next() % 3)
        seqs[s] += 1
        let len = Int(rng.next() % UInt64(payloadMax + 1))
        out.append(WorkRecord(source: UInt32(100 + s), sequence: seqs[s], timeMs: UInt64(i) * 10,
                              kind: UInt8(i % 3), payload: rng.bytes(len)))
    }
    return out
}

func smallFlash() -> RAMLogFlash { RAMLogFlash(sectorCount: 4, sectorSize: 256, pageSize: 64) }
let smallLimits = LogLimits(payloadBytesMax: 64, sourcesMax: 8)

extension RecordLog {
    mutating func append(_ w: WorkRecord) throws(LogError) -> LogAppendResult {
        try append(source: w.source, sequence: w.sequence, timeMs: w.timeMs, kind: w.kind, payload: w.payload)
    }
}

/// Index in `work` where `records` start, if they are a contiguous run of it.
func contiguousRun(_ records: [LogRecord], in work: [WorkRecord]) -> Int? {
    guard let first = records.first else { return nil }
    guard let start = work.firstIndex(where: { $0.record == first }) else { return nil }
    guard start + records.count <= work.count else { return nil }
    for k in records.indices where records[k] != work[start + k].record { return nil }
    return start
}

@Suite struct StorageLogTests {
    @Test func crc32CheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
    }

    @Test func ramFlashHasNORSemantics() throws {
        var f = smallFlash()
        try f.program(offset: 10, bytes: [0xF0, 0x0F])
        try f.program(offset: 10, bytes: [0x3C, 0xFF])  // can only clear bits
        var b: [UInt8] = []
        try f.read(offset: 10, count: 2, into: &b)
        #expect(b == [0x30, 0x0F])
        try f.erase(sector: 0)
        try f.read(offset: 10, count: 2, into: &b)
        #expect(b == [0xFF, 0xFF])
        #expect(f.eraseCounts == [1, 0, 0, 0])
        // A cut mid-program leaves a page partly programmed.
        f.powerBudgetSteps = 2
        #expect(throws: LogFlashError.powerLost) { try f.program(offset: 20, bytes: [0, 0, 0, 0]) }
        #expect(throws: LogFlashError.powerLost) { try f.read(offset: 0, count: 1, into: &b) }
        f.powerOn()
        try f.read(offset: 20, count: 4, into: &b)
        #expect(b == [0x00, 0x00, 0x0F, 0xFF])
    }

    @Test func appendReadBackAndQuery() throws {
        var log = try RecordLog(flash: smallFlash(), limits: smallLimits)
        #expect(log.recordCount == 0 && log.recovery == LogRecoveryReport())
        let work = storageWorkload(count: 12, seed: 1)
        var positions: [LogPosition] = []
        for w in work {
            guard case .appended(let p) = try log.append(w) else { Issue.record("not appended"); return }
            positions.append(p)
        }
        #expect(positions == positions.sorted() && Set(positions.map { "\($0)" }).count == positions.count)
        #expect(try log.allRecords() == work.map(\.record))
        // By source, kind and time range.
        var out: [LogRecord] = []
        _ = try log.query(LogFilter(source: 101), limit: 100, into: &out)
        #expect(out == work.filter { $0.source == 101 }.map(\.record))
        out = []
        _ = try log.query(LogFilter(kind: 2, fromMs: 30, toMs: 90), limit: 100, into: &out)
        #expect(out == work.filter { $0.kind == 2 && $0.timeMs >= 30 && $0.timeMs <= 90 }.map(\.record))
        // Paging with a cursor.
        var paged: [LogRecord] = []
        var cursor: LogPosition? = nil
        repeat {
            var page: [LogRecord] = []
            cursor = try log.query(LogFilter(), after: cursor, limit: 5, into: &page)
            #expect(page.count <= 5)
            paged += page
        } while cursor != nil
        #expect(paged == work.map(\.record))
        // Pages bounded by bytes: the first record always, then while payload + overhead fit;
        // the cursor is the last record taken, so paging loses nothing.
        for bytesMax in [0, 30, 60, 100] {
            var byBytes: [LogRecord] = []
            cursor = nil
            repeat {
                var page: [LogRecord] = []
                cursor = try log.query(LogFilter(), after: cursor, limit: 5, bytesMax: bytesMax, recordOverhead: 8, into: &page)
                #expect((!page.isEmpty || cursor == nil) && page.count <= 5)
                if page.count > 1 { #expect(page.reduce(0) { $0 + $1.payload.count + 8 } <= bytesMax) }
                byBytes += page
            } while cursor != nil
            #expect(byBytes == work.map(\.record), "bytesMax \(bytesMax)")
        }
        var above = LogFilter(source: 101)
        above.sequenceFrom = 3
        out = []
        _ = try log.query(above, limit: 100, into: &out)
        #expect(out == work.filter { $0.source == 101 && $0.sequence > 2 }.map(\.record))
        // Reopened: the same records, nothing reported.
        let again = try RecordLog(flash: log.flash, limits: smallLimits)
        var reopened = again
        #expect(try reopened.allRecords() == work.map(\.record))
        #expect(again.recovery.records == 12 && !again.recovery.corruptionFound && !again.recovery.tornTailCut)
        #expect(throws: LogError.payloadTooLarge) {
            try log.append(source: 1, sequence: 1, timeMs: 0, kind: 0, payload: [UInt8](repeating: 0, count: 65))
        }
    }

    @Test func duplicatesDroppedAcrossReboots() throws {
        var log = try RecordLog(flash: smallFlash(), limits: LogLimits(payloadBytesMax: 64, sourcesMax: 2))
        #expect(try log.append(source: 1, sequence: 5, timeMs: 0, kind: 0, payload: [1]) != .duplicate)
        #expect(try log.append(source: 1, sequence: 5, timeMs: 0, kind: 0, payload: [1]) == .duplicate)
        #expect(try log.append(source: 1, sequence: 4, timeMs: 0, kind: 0, payload: [1]) == .duplicate)
        #expect(try log.append(source: 1, sequence: 6, timeMs: 0, kind: 0, payload: [2]) != .duplicate)
        #expect(try log.append(source: 2, sequence: 1, timeMs: 0, kind: 0, payload: [3]) != .duplicate)
        #expect(log.counters.duplicates == 2 && log.recordCount == 3)
        var reopened = try RecordLog(flash: log.flash, limits: LogLimits(payloadBytesMax: 64, sourcesMax: 2))
        #expect(reopened.highWater(source: 1) == 6)
        #expect(try reopened.append(source: 1, sequence: 6, timeMs: 0, kind: 0, payload: [2]) == .duplicate)
        // The table is bounded: a third source evicts the least recently used one.
        #expect(try reopened.append(source: 3, sequence: 1, timeMs: 0, kind: 0, payload: [4]) != .duplicate)
        #expect(reopened.counters.sourcesForgotten == 1)
    }

    /// The ring: segments are opened in sector order, the oldest is retired
    /// first when full, every sector is erased as often as the others (+-1),
    /// and what survives is always the newest records, contiguous.
    @Test func retentionOldestFirstAndWearSpread() throws {
        var log = try RecordLog(flash: smallFlash(), limits: smallLimits)
        let work = storageWorkload(count: 400, seed: 2)
        var headSectors: [Int] = []
        for (i, w) in work.enumerated() {
            _ = try log.append(w)
            if headSectors.last != log.headSector { headSectors.append(log.headSector!) }
            if i % 37 == 0 {
                let all = try log.allRecords()
                let start = contiguousRun(all, in: work)
                #expect(start != nil && start! + all.count == i + 1, "the newest records, contiguous")
            }
        }
        for (k, s) in headSectors.enumerated() { #expect(s == k % 4, "sectors used in ring order") }
        #expect(log.counters.segmentsRetired == UInt64(headSectors.count - 4))
        let wear = log.flash.eraseCounts
        #expect(wear.max()! - wear.min()! <= 1, "wear spread: \(wear)")
        #expect(log.eraseCounts == wear)
        let reopened = try RecordLog(flash: log.flash, limits: smallLimits)
        #expect(reopened.eraseCounts == wear, "erase counts recovered from the segment headers")
        #expect(reopened.segmentCount == 4 && !reopened.recovery.corruptionFound)
        #expect(reopened.recordCount == log.recordCount)
    }

    @Test func boardGeometryWrapsAndRecovers() throws {
        let flash = RAMLogFlash(sectorCount: 64, sectorSize: 4096, pageSize: 256)
        var log = try RecordLog(flash: flash)
        let work = storageWorkload(count: 2600, seed: 3, payloadMax: 200)
        for w in work { _ = try log.append(w) }
        #expect(log.counters.segmentsRetired > 0)
        var reopened = try RecordLog(flash: log.flash)
        let all = try reopened.allRecords()
        #expect(contiguousRun(all, in: work).map { $0 + all.count } == work.count)
        #expect(reopened.recovery.records == all.count && !reopened.recovery.corruptionFound)
        let wear = reopened.eraseCounts
        #expect(wear.max()! - wear.min()! <= 1)
    }

    /// A power cut at every step (each programmed byte, each erased page) of a
    /// workload that wraps the ring: after the reboot no acked record is lost
    /// or changed, at most the one record in flight is missing, nothing is
    /// reported as corrupt, and appending resumes (the producer's retry of the
    /// in-flight record is a duplicate if it made it).
    @Test func powerCutAtEveryStep() throws {
        let work = storageWorkload(count: 30, seed: 4)
        // Fault-free run: total steps, and the oldest retained record after each append.
        var clean = try RecordLog(flash: smallFlash(), limits: smallLimits)
        var frontAfter: [Int] = [0]
        for (i, w) in work.enumerated() {
            _ = try clean.append(w)
            let all = try clean.allRecords()
            frontAfter.append(contiguousRun(all, in: work) ?? i)
        }
        let totalSteps = clean.flash.stepsTaken
        #expect(totalSteps > 1000)
        var tornCuts = 0, inFlightKept = 0
        for cut in 0...totalSteps {
            var flash = smallFlash()
            flash.powerBudgetSteps = cut
            var log = try RecordLog(flash: flash, limits: smallLimits)
            var acked = 0
            for w in work {
                do {
                    _ = try log.append(w)
                    acked += 1
                } catch {
                    #expect(error == .flash(.powerLost))
                    break
                }
            }
            var rebooted = log.flash
            rebooted.powerOn()
            var recovered = try RecordLog(flash: rebooted, limits: smallLimits)
            let report = recovered.recovery
            #expect(!report.corruptionFound, "cut \(cut): nothing reported corrupt")
            if report.tornTailCut { tornCuts += 1 }
            let all = try recovered.allRecords()
            let start = all.isEmpty ? acked : contiguousRun(all, in: work)
            guard let start else {
                Issue.record("cut \(cut): records are not a contiguous run of the workload")
                continue
            }
            let end = start + all.count
            #expect(end == acked || end == acked + 1, "cut \(cut): acked \(acked), recovered up to \(end)")
            if end == acked + 1 { inFlightKept += 1 }
            #expect(start == frontAfter[acked] || start == frontAfter[min(acked + 1, work.count)],
                    "cut \(cut): only retention drops old records")
            // Resume: the producer retries from the first unacked record.
            for w in work[acked...] {
                let r = try recovered.append(w)
                if w == work[acked] && end == acked + 1 { #expect(r == .duplicate) } else { #expect(r != .duplicate) }
            }
            var final = try RecordLog(flash: recovered.flash, limits: smallLimits)
            let finalRecords = try final.allRecords()
            #expect(!final.recovery.corruptionFound && !final.recovery.tornTailCut)
            #expect(contiguousRun(finalRecords, in: work).map { $0 + finalRecords.count } == work.count,
                    "cut \(cut): after resuming, the log ends with the whole workload")
        }
        #expect(tornCuts > 100 && inFlightKept > 0)
        print("STORAGE-STATS cuts \(totalSteps + 1) torn \(tornCuts) inflightKept \(inFlightKept)")
    }

    /// Two cuts: one in the workload, then another at every step of the
    /// recovery's first appends (a sample of first cuts).
    @Test func powerCutDuringResume() throws {
        let work = storageWorkload(count: 24, seed: 5)
        var clean = try RecordLog(flash: smallFlash(), limits: smallLimits)
        for w in work { _ = try clean.append(w) }
        let totalSteps = clean.flash.stepsTaken
        var cut1 = 13
        var cases = 0
        while cut1 < totalSteps {
            for cut2 in stride(from: 0, to: 400, by: 3) {
                var flash = smallFlash()
                flash.powerBudgetSteps = cut1
                var log = try RecordLog(flash: flash, limits: smallLimits)
                var acked = 0
                for w in work {
                    guard (try? log.append(w)) != nil else { break }
                    acked += 1
                }
                var f2 = log.flash
                f2.powerOn()
                f2.powerBudgetSteps = cut2
                var second = try RecordLog(flash: f2, limits: smallLimits)
                for w in work[acked...] {
                    guard (try? second.append(w)) != nil else { break }
                    acked += 1
                }
                var f3 = second.flash
                f3.powerOn()
                var third = try RecordLog(flash: f3, limits: smallLimits)
                let all = try third.allRecords()
                #expect(!third.recovery.corruptionFound, "cuts \(cut1), \(cut2)")
                let start = all.isEmpty ? acked : contiguousRun(all, in: work)
                #expect(start != nil, "cuts \(cut1), \(cut2): contiguous")
                if let start {
                    let end = start + all.count
                    #expect(end == acked || end == acked + 1, "cuts \(cut1), \(cut2): acked \(acked), end \(end)")
                }
                cases += 1
            }
            cut1 += 97
        }
        #expect(cases > 1000)
        print("STORAGE-STATS double-cut cases \(cases)")
    }

    @Test func tornTailIsCutAndCertified() throws {
        var flash = smallFlash()
        var log = try RecordLog(flash: flash, limits: smallLimits)
        let work = storageWorkload(count: 3, seed: 6)
        for w in work { _ = try log.append(w) }
        flash = log.flash
        flash.powerBudgetSteps = 10  // 10 bytes into the next record
        log = try RecordLog(flash: flash, limits: smallLimits)
        #expect(throws: LogError.flash(.powerLost)) {
            try log.append(source: 9, sequence: 1, timeMs: 99, kind: 1, payload: [1, 2, 3, 4, 5, 6, 7, 8])
        }
        #expect(throws: LogError.halted) { try log.append(source: 9, sequence: 2, timeMs: 0, kind: 0, payload: []) }
        flash = log.flash
        flash.powerOn()
        var recovered = try RecordLog(flash: flash, limits: smallLimits)
        #expect(recovered.recovery.tornTailCut && !recovered.recovery.corruptionFound)
        #expect(try recovered.allRecords() == work.map(\.record))
        // The next append opens a new segment whose header certifies the cut.
        _ = try recovered.append(source: 9, sequence: 1, timeMs: 99, kind: 1, payload: [1, 2, 3])
        #expect(recovered.segmentCount == 2)
        let again = try RecordLog(flash: recovered.flash, limits: smallLimits)
        #expect(!again.recovery.tornTailCut && !again.recovery.corruptionFound && again.recovery.records == 4)
    }

    @Test func corruptionOfAnOlderSegmentIsReported() throws {
        var log = try RecordLog(flash: smallFlash(), limits: smallLimits)
        let work = storageWorkload(count: 14, seed: 7, payloadMax: 20)
        for w in work { _ = try log.append(w) }
        #expect(log.segmentCount >= 3)
        // A flipped bit in the first record of segment 1 (sector 0): reported,
        // and the scan resumes so the records after it are kept.
        var flash = log.flash
        flash.corrupt(offset: LogFormat.segmentHeaderBytes + 30, xor: 0x04)
        var reopened = try RecordLog(flash: flash, limits: smallLimits)
        #expect(reopened.recovery.corruptRegions == 1)
        #expect(reopened.recovery.firstCorruption == LogPosition(segment: 1, offset: UInt32(LogFormat.segmentHeaderBytes)))
        let all = try reopened.allRecords()
        #expect(all == Array(work.map(\.record).dropFirst()))
        // A damaged header in the middle of the ring: the segment is reported lost.
        var flash2 = log.flash
        flash2.corrupt(offset: 256 + 9, xor: 0x80)
        let reopened2 = try RecordLog(flash: flash2, limits: smallLimits)
        #expect(reopened2.recovery.corruptSegments == 1)
        #expect(reopened2.recovery.firstCorruption?.segment == 2)
        #expect(reopened2.segmentCount == log.segmentCount - 1)
    }

    @Test func fileFlashIsDurableAcrossReopen() throws {
        let path = NSTemporaryDirectory() + "tdos-log-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).bin"
        defer { unlink(path) }
        let work = storageWorkload(count: 50, seed: 8)
        do {
            let flash = try FileLogFlash(path: path, sectorCount: 8, sectorSize: 1024, pageSize: 256)
            var log = try RecordLog(flash: flash, limits: smallLimits)
            for w in work { _ = try log.append(w) }
        }
        let flash = try FileLogFlash(path: path, sectorCount: 8, sectorSize: 1024, pageSize: 256)
        var log = try RecordLog(flash: flash, limits: smallLimits)
        #expect(try log.allRecords() == work.map(\.record))
        #expect(!log.recovery.corruptionFound)
        // NOR semantics in the file too.
        var b: [UInt8] = []
        try flash.program(offset: 8191, bytes: [0xF0])
        try flash.program(offset: 8191, bytes: [0x0F])
        try flash.read(offset: 8191, count: 1, into: &b)
        #expect(b == [0x00])
    }
}

/// A flash whose `failAtProgram`-th program stores one bit wrong (a weak cell).
struct WeakCellFlash: LogFlash {
    var inner: RAMLogFlash
    var programs = 0
    var failAtProgram: Int
    var sectorCount: Int { inner.sectorCount }
    var sectorSize: Int { inner.sectorSize }
    var pageSize: Int { inner.pageSize }
    func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws(LogFlashError) {
        try inner.read(offset: offset, count: count, into: &buffer)
    }
    mutating func erase(sector: Int) throws(LogFlashError) { try inner.erase(sector: sector) }
    mutating func program(offset: Int, bytes: [UInt8]) throws(LogFlashError) {
        programs += 1
        var b = bytes
        if programs == failAtProgram {
            // One cell of the record stays at 1 when it should be 0, or the reverse.
            b[b.count / 2] ^= 0x01
        }
        try inner.program(offset: offset, bytes: b)
    }
}

@Suite struct StorageVerifyTests {
    /// A record that reads back wrong is not acked; the producer's retry lands
    /// in a new segment, and at the next boot nothing is reported corrupt.
    @Test func failedReadBackIsNotAckedAndIsCertifiedAway() throws {
        let work = storageWorkload(count: 6, seed: 9)
        var log = try RecordLog(flash: WeakCellFlash(inner: smallFlash(), failAtProgram: 4), limits: smallLimits)
        var acked: [LogRecord] = []
        var failures = 0
        for w in work {
            do {
                _ = try log.append(w)
            } catch {
                #expect(error == .verifyFailed)
                failures += 1
                _ = try log.append(w)  // the producer retries
            }
            acked.append(w.record)
        }
        #expect(failures == 1 && log.counters.verifyFailures == 1)
        var reopened = try RecordLog(flash: log.flash, limits: smallLimits)
        #expect(try reopened.allRecords() == acked)
        #expect(!reopened.recovery.corruptionFound && !reopened.recovery.tornTailCut)
    }
}
