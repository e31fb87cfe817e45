// The producer side of the storage log (HORUS's BatchProcessor): records are
// queued, sent to the `logger` service in batches (when batchRecordsMax are
// waiting or the oldest is batchAgeMs old), and retried with back-off until
// acknowledged: an ack means the whole batch is durable. Each record's
// sequence is (boot epoch << 32) + a counter, so it never repeats across
// reboots and the log drops a retried record as a duplicate (source, sequence).
// Like MeshNode: no I/O; calls go out through the mesh, results come back
// through `complete`.

public struct LogProducerConfig {
    public var batchRecordsMax = 8
    public var batchAgeMs: UInt32 = 2_000
    /// Records waiting; beyond it the oldest is dropped and counted.
    public var queueMax = 64
    public var deadlineMs: UInt32 = 3_000
    public var retryBaseMs: UInt32 = 500
    public var retryMaxMs: UInt32 = 10_000
    public init() {}
}

public struct LogProducer {
    public let config: LogProducerConfig
    public static let service: StaticString = "logger"

    /// A waiting record; its payload is `length` bytes of `payloads`, after
    /// the earlier records' (in queue order). Plain values in a `Table`: an
    /// array of records each holding its payload array cost Array's growth,
    /// move and remove code for this type (~0.8 KB on the board).
    struct Pending: BitwiseCopyable {
        var sequence: UInt64
        var addedMs: UInt64
        var length: UInt32
        var kind: UInt32  // a UInt8; a word, so the record has no tail padding
    }

    var queue = Table<Pending>()
    /// The waiting records' payloads, back to back in queue order.
    var payloads: [UInt8] = []
    var nextSequence: UInt64
    public private(set) var inFlight: CallID?
    var inFlightCount = 0
    var retryAtMs: UInt64 = 0
    var backoffMs: UInt32 = 0

    public private(set) var acked: UInt64 = 0
    /// Highest sequence acknowledged: every record up to it, but the dropped
    /// ones, is durable in the log (batches are acked in order).
    public private(set) var lastAckedSequence: UInt64 = 0
    /// Records the log already held (a retry after a lost ack).
    public private(set) var duplicates: UInt64 = 0
    public private(set) var dropped: UInt64 = 0
    /// The sequences of the batch in flight (empty when none): what its ack makes durable.
    public var inFlightSequences: [UInt64] {
        guard inFlight != nil else { return [] }
        var out: [UInt64] = []
        for i in 0..<min(inFlightCount, queue.count) { out.append(queue[i].sequence) }
        return out
    }
    public private(set) var failedAttempts: UInt64 = 0

    public init(epoch: UInt32, config: LogProducerConfig = LogProducerConfig()) {
        precondition(config.batchRecordsMax >= 1 && config.batchRecordsMax <= LogService.batchRecordsMax)
        precondition(config.queueMax >= config.batchRecordsMax)
        self.config = config
        nextSequence = UInt64(epoch) << 32
        queue.reserveCapacity(config.queueMax)
    }

    public var pendingCount: Int { queue.count }

    public mutating func add(kind: UInt8, payload: [UInt8], nowMs: UInt64) {
        if queue.count == config.queueMax {
            // Never drop what is in flight: its ack would pop the wrong records.
            let victim = inFlight == nil ? 0 : inFlightCount
            guard victim < queue.count else { dropped &+= 1; return }
            let start = payloadBytes(before: victim)
            payloads.removeSubrange(start..<start + Int(queue[victim].length))
            queue.remove(at: victim)
            dropped &+= 1
        }
        nextSequence &+= 1
        payloads.append(contentsOf: payload)
        queue.append(Pending(sequence: nextSequence, addedMs: nowMs, length: UInt32(payload.count),
                             kind: UInt32(kind)))
    }

    /// Where record `index`'s payload starts in `payloads`.
    func payloadBytes(before index: Int) -> Int {
        var n = 0
        for i in 0..<index { n += Int(queue[i].length) }
        return n
    }

    /// When `poll` should next run (nil: nothing waiting, or a call in flight).
    public var nextTimeoutMs: UInt64? {
        guard inFlight == nil, let first = queue.first else { return nil }
        if queue.count >= config.batchRecordsMax { return retryAtMs }
        return max(retryAtMs, first.addedMs + UInt64(config.batchAgeMs))
    }

    /// Sends the next batch if one is due; returns its call.
    public mutating func poll(nowMs: UInt64, mesh: inout MeshNode) -> CallID? {
        guard let due = nextTimeoutMs, nowMs >= due else { return nil }
        let n = min(queue.count, config.batchRecordsMax)
        var w = CBORWriter(capacity: 16 + n * 48)
        w.mapHeader(count: 1)
        w.unsigned(5)
        w.arrayHeader(count: n)
        var start = 0
        for i in 0..<n {
            let p = queue[i]
            let end = start + Int(p.length)
            w.arrayHeader(count: 4)
            w.unsigned(p.sequence)
            w.unsigned(UInt64(p.kind))
            w.unsigned(0)  // stamped by the storage node when it receives it
            w.head(2, UInt64(p.length))
            payloads.withUnsafeBufferPointer { w.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: $0[start..<end])) }
            start = end
        }
        let name = UnsafeBufferPointer(start: LogProducer.service.utf8Start, count: LogProducer.service.utf8CodeUnitCount)
        let id = mesh.call(service: Array(name), version: SemVer(1, 0, 0), operation: .logAppend, arguments: w.bytes,
                           deadlineMs: config.deadlineMs, nowMs: nowMs)
        inFlight = id
        inFlightCount = n
        return id
    }

    func isPermanent(_ result: CallResult) -> Bool {
        switch result {
        case .value(let v): return v.response.status == Status.badArguments.rawValue
        case .failed(.argumentsTooLarge), .failed(.badArguments), .failed(.remoteError(Status.badArguments.rawValue)):
            return true
        default: return false
        }
    }

    /// The outcome of `id`; false if it is not this producer's call.
    @discardableResult
    public mutating func complete(_ id: CallID, _ result: CallResult, nowMs: UInt64) -> Bool {
        guard id == inFlight else { return false }
        inFlight = nil
        if case .value(let v) = result, v.response.status == Status.ok.rawValue, !v.isStale {
            var appended: UInt64 = 0, dup: UInt64 = 0
            try? forEachKey(v.response.result) { (key, r) throws(WireError) in
                switch key {
                case 4: appended = try r.unsigned()
                case 5: dup = try r.unsigned()
                default: try r.skip()
                }
            }
            acked &+= appended
            duplicates &+= dup
            let n = min(inFlightCount, queue.count)
            if n > 0 { lastAckedSequence = queue[n - 1].sequence }
            dropFirstRecords(n)
            backoffMs = 0
            retryAtMs = 0
        } else if isPermanent(result) {
            // The log refuses this batch as it is (a payload over its limit):
            // retrying cannot help, and it would hold up every record behind it.
            let n = min(inFlightCount, queue.count)
            dropFirstRecords(n)
            dropped &+= UInt64(n)
            failedAttempts &+= 1
        } else {
            failedAttempts &+= 1
            backoffMs = backoffMs == 0 ? config.retryBaseMs : min(config.retryMaxMs, backoffMs &* 2)
            retryAtMs = nowMs + UInt64(backoffMs)
        }
        inFlightCount = 0
        return true
    }

    /// Drops the first `n` records and their payloads.
    mutating func dropFirstRecords(_ n: Int) {
        payloads.removeSubrange(0..<payloadBytes(before: n))
        queue.removeFirst(n)
    }
}
