// The storage role's `log_append` (operation 8) and `log_query` (operation 9)
// over a RecordLog: request arguments in, a Response out. Pure (the log's flash
// is the caller's), so the node runtime only has to hand requests over.
//
//   log_append arguments: {1: sequence (u64, per source), 2: kind (u8),
//       3: time ms (absent = the receiver's now), 4: payload (byte string)}
//     The source is the caller's node id. Result: {1: segment, 2: offset} of
//     the durable record, or {3: true} when (source, sequence) was already
//     stored (a retry of an acked or in-flight record: also an ack).
//   A batch instead: {5: [[sequence, kind, time ms (0 = the receiver's now),
//       payload], ...]} (at most batchRecordsMax), appended in order. Result
//     {4: records appended, 5: duplicates}: the whole batch is durable. On a
//     failure the answer is `unavailable`; the records before it are durable
//     and a retry of the batch finds them as duplicates.
//   log_query arguments (all optional): {1: source, 2: kind, 3: since ms,
//       4: until ms, 5: most records (default and cap 16), 6: cursor [segment, offset]}
//     Result: {1: [[source, sequence, time ms, kind, payload], ...],
//       2: cursor of the last record read (absent = the end was reached),
//       3: the storage node's clock now, ms (record times are on that clock)}.
//     A page stops early when the next record would not fit one frame.
//
// Status: 21 bad arguments (malformed, payload over the log's limit),
// 19 unavailable (flash failed, or the log needs recovery: retry later or elsewhere).

public enum LogService {
    public static let queryRecordsMax = 16
    public static let batchRecordsMax = 16
    /// Result bytes per answer: a frame's payload, with room for the response map.
    static var resultBytesMax: Int { Frame.payloadBytesMaxUncompressed - 32 }

    public static func serve<F: LogFlash>(_ request: Request, from: UInt32, nowMs: UInt64,
                                          log: inout RecordLog<F>) -> Response {
        switch request.operation {
        case .logAppend: return append(request.arguments, from: from, nowMs: nowMs, log: &log)
        case .logQuery: return query(request.arguments, nowMs: nowMs, log: &log)
        default: return Response(status: Status.unknownOperation.rawValue)
        }
    }

    static func bad() -> Response { Response(status: Status.badArguments.rawValue) }

    /// The records of a log_append's arguments (one, or a batch), nil when malformed.
    public static func appendRecords(_ args: [UInt8], from: UInt32, nowMs: UInt64) -> [LogRecord]? {
        parseAppend(args, from: from, nowMs: nowMs)?.records
    }

    static func parseAppend(_ args: [UInt8], from: UInt32, nowMs: UInt64) -> (records: [LogRecord], batch: Bool)? {
        var sequence: UInt64?, kind: UInt8 = 0, timeMs = nowMs, payload: [UInt8] = []
        var batch: [LogRecord]?
        do {
            try forEachKey(args) { (key, r) throws(WireError) in
                switch key {
                case 1: sequence = try r.unsigned()
                case 2: kind = try readU8(&r)
                case 3: timeMs = try r.unsigned()
                case 4: payload = Array(try r.bytes())
                case 5: batch = try LogReplication.decodeRecords(&r, source: from, nowMs: nowMs)
                default: try r.skip()
                }
            }
        } catch {
            return nil
        }
        if let batch { return (batch, true) }
        guard let sequence else { return nil }
        return ([LogRecord(source: from, sequence: sequence, timeMs: timeMs, kind: kind, payload: payload)], false)
    }

    static func append<F: LogFlash>(_ args: [UInt8], from: UInt32, nowMs: UInt64,
                                    log: inout RecordLog<F>) -> Response {
        guard let parsed = parseAppend(args, from: from, nowMs: nowMs) else { return bad() }
        if parsed.batch {
            var counts = BatchCounts()
            return appendBatch(parsed.records, log: &log, counts: &counts) ?? counts.result
        }
        let one = parsed.records[0]
        let outcome: LogAppendResult
        do {
            outcome = try log.append(source: from, sequence: one.sequence, timeMs: one.timeMs, kind: one.kind,
                                     payload: one.payload)
        } catch .payloadTooLarge {
            return bad()
        } catch {
            return Response(status: Status.unavailable.rawValue)
        }
        var w = CBORWriter(capacity: 16)
        switch outcome {
        case .appended(let p):
            w.mapHeader(count: 2)
            w.unsigned(1); w.unsigned(UInt64(p.segment))
            w.unsigned(2); w.unsigned(UInt64(p.offset))
        case .duplicate:
            w.mapHeader(count: 1)
            w.unsigned(3); w.bool(true)
        }
        return Response(result: w.bytes)
    }

    /// Appends a batch, counting its records into `counts`; nil when all are
    /// durable (the answer is then `counts.result`), else the refusal.
    @inline(never)  // two callers (here, and replication's primary)
    public static func appendBatch<F: LogFlash>(_ batch: [LogRecord], log: inout RecordLog<F>,
                                                counts: inout BatchCounts) -> Response? {
        for r in batch {
            do {
                switch try log.append(source: r.source, sequence: r.sequence, timeMs: r.timeMs, kind: r.kind,
                                      payload: r.payload) {
                case .appended: counts.appended += 1
                case .duplicate: counts.duplicates += 1
                }
            } catch .payloadTooLarge {
                return bad()
            } catch {
                return Response(status: Status.unavailable.rawValue)
            }
        }
        return nil
    }

    static func query<F: LogFlash>(_ args: [UInt8], nowMs: UInt64, log: inout RecordLog<F>) -> Response {
        var filter = LogFilter()
        var limit = queryRecordsMax
        var cursor: LogPosition?
        do {
            try forEachKey(args) { (key, r) throws(WireError) in
                switch key {
                case 1: filter.source = try readU32(&r)
                case 2: filter.kind = try readU8(&r)
                case 3: filter.fromMs = try r.unsigned()
                case 4: filter.toMs = try r.unsigned()
                case 5: limit = max(1, min(queryRecordsMax, Int(try readU16(&r))))
                case 6:
                    guard try r.arrayHeader() == 2 else { throw .malformedCBOR }
                    cursor = LogPosition(segment: try readU32(&r), offset: try readU32(&r))
                default: try r.skip()
                }
            }
        } catch {
            return bad()
        }
        var records: [LogRecord] = []
        records.reserveCapacity(limit)
        let next: LogPosition?
        do {
            // What fits one frame (8 bytes of map, 40 per record besides its
            // payload); the cursor then points at the last record kept.
            next = try log.query(filter, after: cursor, limit: limit, bytesMax: resultBytesMax - 8,
                                 recordOverhead: 40, into: &records)
        } catch {
            return Response(status: Status.unavailable.rawValue)
        }
        var bytes = 32
        for r in records { bytes += r.payload.count + 40 }
        var w = CBORWriter(capacity: bytes)
        w.mapHeader(count: next == nil ? 2 : 3)
        w.unsigned(1)
        w.arrayHeader(count: records.count)
        for r in records {
            w.arrayHeader(count: 5)
            w.unsigned(UInt64(r.source))
            w.unsigned(r.sequence)
            w.unsigned(r.timeMs)
            w.unsigned(UInt64(r.kind))
            w.bytes(r.payload)
        }
        if let next {
            w.unsigned(2)
            w.arrayHeader(count: 2)
            w.unsigned(UInt64(next.segment))
            w.unsigned(UInt64(next.offset))
        }
        w.unsigned(3); w.unsigned(nowMs)
        return Response(result: w.bytes)
    }
}

/// A batch's records appended and already held: the answer to its log_append
/// (plain numbers, so a batch waiting for replication keeps no Response).
public struct BatchCounts: BitwiseCopyable {
    public var appended: UInt32 = 0
    public var duplicates: UInt32 = 0
    public init() {}

    /// {4: appended, 5: duplicates}.
    public var result: Response {
        var w = CBORWriter(capacity: 12)
        w.mapHeader(count: 2)
        w.unsigned(4); w.unsigned(UInt64(appended))
        w.unsigned(5); w.unsigned(UInt64(duplicates))
        return Response(result: w.bytes)
    }
}
