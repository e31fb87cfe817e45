// Replication of the storage log between the storage replicas (node
// operations, service 0; Firmware/Node/NodeRuntime+Replication.swift drives them).
//
// The primary (the config consensus leader) appends a producer's batch, sends
// it to every backup, and acknowledges the producer once a majority of the
// replicas, itself included, hold it durably. Each replica holds each source's
// records as a gap-free prefix of what was acknowledged: a backup takes
// records only if it already holds the one before them, else it answers with
// its high-water and the primary sends the missing ones first, from its own
// log. A replica that was down is caught up this way on the next batch of each
// source; a new primary first pulls from the other replicas what it lacks (any
// acknowledged record is on a majority, so on one of the replicas that elected it).
//
//   log_replicate (12): {1 source, 2 prev: the sender's record of that source
//       before the first one sent (u64; 0 = none), 3 records [[sequence, kind,
//       time ms, payload], ...] (<= 16, sequence order), 4 the sender's
//       consensus term}. A receiver that knows a later term answers not_leader.
//     Result {1: the receiver's high-water for the source after it}, plus
//     {2: true} when it holds less than `prev` (a gap: nothing was taken).
//   log_high_waters (13): result {1: [[source, high-water], ...]}.
//   log_fetch (14): {1 source, 2 after (u64), 3 most records} -> {1: records
//       of that source after `after`, sequence order, as log_replicate's 3}.

public enum LogReplication {
    public static let chunkRecordsMax = 16

    /// Records as `[[sequence, kind, time ms, payload], ...]` (the source is implied).
    /// The first `count` of them (all by default).
    public static func encodeRecords(_ records: [LogRecord], count: Int = Int.max, into w: inout CBORWriter) {
        let n = min(count, records.count)
        w.arrayHeader(count: n)
        for i in 0..<n {
            w.arrayHeader(count: 4)
            w.unsigned(records[i].sequence)
            w.unsigned(UInt64(records[i].kind))
            w.unsigned(records[i].timeMs)
            w.bytes(records[i].payload)
        }
    }

    /// A time of 0 is `nowMs` (a producer leaves it to the storage node's clock).
    static func decodeRecords(_ r: inout CBORReader, source: UInt32, nowMs: UInt64) throws(WireError) -> [LogRecord] {
        let n = try r.arrayHeader()
        guard n <= chunkRecordsMax else { throw .malformedCBOR }
        var records: [LogRecord] = []
        records.reserveCapacity(n)
        for _ in 0..<n {
            guard try r.arrayHeader() == 4 else { throw .malformedCBOR }
            let seq = try r.unsigned(), k = try readU8(&r), t = try r.unsigned()
            records.append(LogRecord(source: source, sequence: seq, timeMs: t == 0 ? nowMs : t, kind: k,
                                     payload: Array(try r.bytes())))
        }
        return records
    }

    /// `term`: the sender's consensus term (key 4): a backup that knows a
    /// later one refuses (a primary cut off while another was elected).
    /// `count`: the first records only (what fits one request; all by default).
    public static func replicateArguments(source: UInt32, prev: UInt64, records: [LogRecord], count: Int = Int.max,
                                          term: UInt32 = 0) -> [UInt8] {
        var size = 32
        for r in records { size += r.payload.count + 24 }
        var w = CBORWriter(capacity: size)
        w.mapHeader(count: term == 0 ? 3 : 4)
        w.unsigned(1); w.unsigned(UInt64(source))
        w.unsigned(2); w.unsigned(prev)
        w.unsigned(3); encodeRecords(records, count: count, into: &w)
        if term != 0 { w.unsigned(4); w.unsigned(UInt64(term)) }
        return w.bytes
    }

    /// The sender's term in log_replicate's arguments (0 = none given).
    public static func term(of args: [UInt8]) -> UInt32 {
        var term: UInt32 = 0
        try? forEachKey(args) { (key, r) throws(WireError) in
            if key == 4 { term = try readU32(&r) } else { try r.skip() }
        }
        return term
    }

    /// Backup side of log_replicate.
    public static func serveReplicate<F: LogFlash>(_ args: [UInt8], log: inout RecordLog<F>) -> Response {
        var source: UInt32?, prev: UInt64 = 0
        var records: [LogRecord] = []
        do {
            try forEachKey(args) { (key, r) throws(WireError) in
                switch key {
                case 1: source = try readU32(&r)
                case 2: prev = try r.unsigned()
                case 3: records = try decodeRecords(&r, source: 0, nowMs: 0)
                default: try r.skip()
                }
            }
        } catch {
            return Response(status: Status.badArguments.rawValue)
        }
        guard let source else { return Response(status: Status.badArguments.rawValue) }
        let before = log.highWater(source: source) ?? 0
        if prev > before { return replicateResult(highWater: before, gap: true) }
        do {
            try appendMissing(records, source: source, log: &log)
        } catch .payloadTooLarge {
            return Response(status: Status.badArguments.rawValue)
        } catch {
            return Response(status: Status.unavailable.rawValue)
        }
        return replicateResult(highWater: log.highWater(source: source) ?? 0, gap: false)
    }

    static func replicateResult(highWater: UInt64, gap: Bool) -> Response {
        var w = CBORWriter(capacity: 16)
        w.mapHeader(count: gap ? 2 : 1)
        w.unsigned(1); w.unsigned(highWater)
        if gap { w.unsigned(2); w.bool(true) }
        return Response(result: w.bytes)
    }

    /// Appends, as `source`'s, the records (in sequence order, replicated or
    /// fetched) above this log's high-water for it.
    @inline(never)  // two callers (the backup's replicate, the primary's fetch): one copy
    public static func appendMissing<F: LogFlash>(_ records: [LogRecord], source: UInt32,
                                                  log: inout RecordLog<F>) throws(LogError) {
        for r in records where r.sequence > (log.highWater(source: source) ?? 0) {
            _ = try log.append(source: source, sequence: r.sequence, timeMs: r.timeMs, kind: r.kind, payload: r.payload)
        }
    }

    /// log_replicate's result: the high-water, and whether there was a gap.
    public static func decodeReplicateResult(_ bytes: [UInt8]) -> (highWater: UInt64, gap: Bool)? {
        var hw: UInt64?, gap = false
        do {
            try forEachKey(bytes) { (key, r) throws(WireError) in
                switch key {
                case 1: hw = try r.unsigned()
                case 2: gap = try r.bool()
                default: try r.skip()
                }
            }
        } catch {
            return nil
        }
        return hw.map { ($0, gap) }
    }

    public static func serveHighWaters<F: LogFlash>(log: RecordLog<F>) -> Response {
        // The log's table itself: a copy as an array of tuples was code of its own.
        let marks = log.marks
        var w = CBORWriter(capacity: 8 + marks.count * 16)
        w.mapHeader(count: 1)
        w.unsigned(1)
        w.arrayHeader(count: marks.count)
        for m in marks {
            w.arrayHeader(count: 2)
            w.unsigned(UInt64(m.source))
            w.unsigned(m.highest)
        }
        return Response(result: w.bytes)
    }

    /// A `Table` (scalars): an array of this tuple was growth and copy code of its own.
    public static func decodeHighWaters(_ bytes: [UInt8]) -> Table<(source: UInt32, highWater: UInt64)>? {
        var out = Table<(source: UInt32, highWater: UInt64)>()
        do {
            try forEachKey(bytes) { (key, r) throws(WireError) in
                guard key == 1 else { try r.skip(); return }
                let n = try r.arrayHeader()
                guard n <= 256 else { throw .malformedCBOR }
                for _ in 0..<n {
                    guard try r.arrayHeader() == 2 else { throw .malformedCBOR }
                    out.append((try readU32(&r), try r.unsigned()))
                }
            }
        } catch {
            return nil
        }
        return out
    }

    public static func fetchArguments(source: UInt32, after: UInt64) -> [UInt8] {
        var w = CBORWriter(capacity: 24)
        w.mapHeader(count: 3)
        w.unsigned(1); w.unsigned(UInt64(source))
        w.unsigned(2); w.unsigned(after)
        w.unsigned(3); w.unsigned(UInt64(chunkRecordsMax))
        return w.bytes
    }

    public static func serveFetch<F: LogFlash>(_ args: [UInt8], log: inout RecordLog<F>) -> Response {
        var source: UInt32?, after: UInt64 = 0, most = chunkRecordsMax
        do {
            try forEachKey(args) { (key, r) throws(WireError) in
                switch key {
                case 1: source = try readU32(&r)
                case 2: after = try r.unsigned()
                case 3: most = max(1, min(chunkRecordsMax, Int(try readU16(&r))))
                default: try r.skip()
                }
            }
        } catch {
            return Response(status: Status.badArguments.rawValue)
        }
        guard let source else { return Response(status: Status.badArguments.rawValue) }
        guard let records = try? self.records(source: source, after: after, limit: most,
                                              bytesMax: MeshConfig.rpcPayloadBytesMax - 48, log: &log) else {
            return Response(status: Status.unavailable.rawValue)
        }
        var w = CBORWriter(capacity: 64)
        w.mapHeader(count: 1)
        w.unsigned(1); encodeRecords(records, into: &w)
        return Response(result: w.bytes)
    }

    public static func decodeFetch(_ bytes: [UInt8], source: UInt32) -> [LogRecord]? {
        var out: [LogRecord]?
        do {
            try forEachKey(bytes) { (key, r) throws(WireError) in
                if key == 1 { out = try decodeRecords(&r, source: source, nowMs: 0) } else { try r.skip() }
            }
        } catch {
            return nil
        }
        return out
    }

    /// Up to `limit` records of `source` with a sequence above `after`, in log
    /// (= sequence) order, together at most `bytesMax` of payload and headers.
    public static func records<F: LogFlash>(source: UInt32, after: UInt64, limit: Int, bytesMax: Int,
                                            log: inout RecordLog<F>) throws(LogError) -> [LogRecord] {
        var out: [LogRecord] = []
        guard after < UInt64.max else { return out }
        var filter = LogFilter(source: source)
        filter.sequenceFrom = after + 1
        _ = try log.query(filter, limit: limit, bytesMax: bytesMax, recordOverhead: 24, into: &out)
        return out
    }

    /// The sequence of `source`'s record before `sequence` in this log (0 = none):
    /// within a producer's epoch the one before; at an epoch's first record,
    /// the newest of the earlier epochs (a scan).
    public static func previous<F: LogFlash>(source: UInt32, before sequence: UInt64,
                                             log: inout RecordLog<F>) throws(LogError) -> UInt64 {
        if sequence & 0xFFFF_FFFF > 1 { return sequence - 1 }
        return try log.newestSequence(source: source, below: sequence)
    }
}
