// Storage role with several replicas: the log replicated to a majority before
// a producer's batch is acknowledged (Firmware/Core/Storage/LogReplication.swift
// has the wire format and the backup's side).
//
//   primary   the config consensus leader. A `log_append` is appended here,
//             durably, then sent to every backup (`log_replicate`); the
//             producer gets its answer once a majority of the replicas,
//             this one included, hold the batch, or `no_quorum` after 2 s (it
//             retries; a retry finds its records as duplicates and is sent
//             to the backups again). A backup that answers with a gap gets
//             the missing records from this log first.
//   new primary  before it takes appends it asks every backup for its
//             high-waters and fetches what it lacks (`log_high_waters`,
//             `log_fetch`); appends wait meanwhile (at most 2 s).
//   follower  answers `log_append` with not_leader: the producer's call moves
//             to the next replica. Every replica answers queries.
// With one replica (no replica list) none of this runs: appends are acknowledged
// once durable on the one node, as before.
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
#endif

/// A producer's batch waiting for a majority. Plain values (a Table).
struct PendingAppend {
    var handle: ServeHandle
    var source: UInt32
    /// Its answer once a majority holds it.
    var counts: BatchCounts
    /// Backups that hold it: bit i for config.configReplicas[i].
    var holders: UInt32 = 0
    var lastSequence: UInt64
    var deadlineMs: UInt64
}

/// A call this primary has out to a backup.
struct ReplicationCall {
    enum Kind: UInt8 { case replicate, highWaters, fetch }
    var id: CallID
    var backup: UInt32
    var kind: Kind
    var source: UInt32
    /// The leadership stint it was made in: answers from an earlier one are dropped.
    var stint: UInt32
    /// fetch: the high-water the backup reported for the source (fetch until this log reaches it).
    var target: UInt64 = 0
}

extension NodeRuntime {
    static var replicationAckMs: UInt64 { 2_000 }
    static var replicationCallMs: UInt32 { 1_000 }

    /// More than one replica configured: appends are replicated (and refused
    /// with not_leader while consensus is off on this replica).
    var replicatesLog: Bool { usesConsensus && config.configReplicas.count > 1 }

    /// The replication timers' next deadline (ms).
    var replicationNextTimeoutMs: UInt64? {
        guard replicatesLog else { return nil }
        var t = UInt64.max
        for p in pendingAppends { t = min(t, p.deadlineMs) }
        for d in waitingAppends { t = min(t, d.deadlineMs) }
        if leadsConsensus && !primaryReady { t = min(t, catchUpRetryAtMs) }
        return t == UInt64.max ? nil : t
    }

    func replicationTimeout(nowMs now: UInt64) {
        var i = 0
        while i < pendingAppends.count {
            if pendingAppends[i].deadlineMs <= now {
                let p = pendingAppends.remove(at: i)
                respond(p.handle, .noQuorum, nowMs: now)
            } else {
                i += 1
            }
        }
        i = 0
        while i < waitingAppends.count {
            if waitingAppends[i].deadlineMs <= now {
                let w = waitingAppends.remove(at: i)
                respond(w.serve.handle, .noQuorum, nowMs: now)
            } else {
                i += 1
            }
        }
        if leadsConsensus && !primaryReady && now >= catchUpRetryAtMs { startCatchUp(nowMs: now) }
    }

    /// A `log_append` on a replicated log (serveAndRecord hands it here).
    /// `caughtUp`: a catch-up round ran since it arrived (no second one for it).
    func appendReplicated(_ handle: ServeHandle, _ request: Request, from: UInt32, nowMs now: UInt64,
                          caughtUp: Bool = false) {
        guard leadsConsensus else {
            var w = CBORWriter()
            if let leader = raftSlot?.pointee.leaderID {
                w.mapHeader(count: 1)
                w.unsigned(1); w.unsigned(UInt64(leader))
            }
            mesh.respond(handle, Response(status: Status.notLeader.rawValue, result: w.bytes), nowMs: now)
            return
        }
        guard primaryReady else {
            waitUntilCaughtUp(handle, request, from: from, nowMs: now)
            return
        }
        let usable = logUsable(nowMs: now)
        guard usable, let records = LogService.appendRecords(request.arguments, from: from, nowMs: now),
              !records.isEmpty else {
            respond(handle, usable ? .badArguments : .unavailable, nowMs: now)
            return
        }
        // This log must hold what comes before the batch, or the backups would
        // be told (by `prev`) of records it lacks: a primary that missed some (it
        // led on, cut off, while another took appends) catches up first.
        let first = records[0].sequence
        if !caughtUp && Self.missesRecords(before: first, highWater: logHighWater(from)) {
            primaryReady = false
            catchUpWaiting.removeAll()
            catchUpAnswers = 0
            waitUntilCaughtUp(handle, request, from: from, nowMs: now)
            platform.log(TextLine("log: a producer's batch follows records this primary lacks; catching up from the other replicas first"))
            startCatchUp(nowMs: now)
            return
        }
        var counts = BatchCounts()
        let refusal = LogService.appendBatch(records, log: &logSlot!.pointee, counts: &counts)
        guard refusal == nil,
              let prev = try? LogReplication.previous(source: from, before: first, log: &logSlot!.pointee) else {
            mesh.respond(handle, refusal ?? Response(status: Status.unavailable.rawValue), nowMs: now)
            return
        }
        // What fits one request (the batch grew by the times this node filled in);
        // a backup that answers below `last` is sent the rest from this log.
        // A count, not a copy of the records that fit (a slice's copy was Array code of its own).
        var last = first
        var fitting = 0
        var bytes = 48
        for r in records {
            last = max(last, r.sequence)
            bytes += r.payload.count + 32
            if fitting == 0 || bytes <= MeshConfig.rpcPayloadBytesMax { fitting += 1 }  // bytes only grow: a prefix
        }
        pendingAppends.append(PendingAppend(handle: handle, source: from, counts: counts, lastSequence: last,
                                            deadlineMs: now + Self.replicationAckMs))
        let arguments = LogReplication.replicateArguments(source: from, prev: prev, records: records, count: fitting,
                                                          term: raftSlot?.pointee.currentTerm ?? 0)
        // The backups: the other replicas (read in place, no list built).
        for b in config.configReplicas where b != config.nodeID {
            callBackup(b, .replicate, source: from, arguments: arguments, nowMs: now)
        }
    }

    /// Keeps an append until this primary has caught up (at most 2 s).
    /// Out of line: appendReplicated's two sites each built the entry and grew the array inline.
    @inline(never)
    func waitUntilCaughtUp(_ handle: ServeHandle, _ request: Request, from: UInt32, nowMs now: UInt64) {
        waitingAppends.append(WaitingAppend(serve: DeferredServe(handle: handle, request: request, from: from),
                                            deadlineMs: now + Self.replicationAckMs))
    }

    /// This log's high-water for `source`.
    func logHighWater(_ source: UInt32) -> UInt64? { logSlot?.pointee.highWater(source: source) }

    /// One of the calls the replication makes (the simulation's observer tells them from the weather station's).
    public func isReplicationCall(_ id: CallID) -> Bool { replicationCalls.contains { $0.id == id } }

    /// Whether a batch starting at `first` follows a gap after `highWater`:
    /// producers number records epoch << 32 + n, n = 1, 2, 3... (LogProducer).
    static func missesRecords(before first: UInt64, highWater: UInt64?) -> Bool {
        guard let hw = highWater else { return first & 0xFFFF_FFFF > 1 }
        if first <= hw &+ 1 { return false }
        return first >> 32 == hw >> 32 || first & 0xFFFF_FFFF > 1
    }

    func callBackup(_ backup: UInt32, _ kind: ReplicationCall.Kind, source: UInt32, arguments: [UInt8],
                    target: UInt64 = 0, nowMs now: UInt64) {
        let op: Operation = kind == .replicate ? .logReplicate : (kind == .fetch ? .logFetch : .logHighWaters)
        let id = mesh.call(node: backup, operation: op, arguments: arguments, deadlineMs: Self.replicationCallMs, nowMs: now)
        replicationCalls.append(ReplicationCall(id: id, backup: backup, kind: kind, source: source, stint: leadershipStint,
                                                target: target))
    }

    /// Takes the outcome of one of the replication calls; false for any other call.
    func replicationCallDone(_ id: CallID, _ result: CallResult, nowMs now: UInt64) -> Bool {
        guard let k = replicationCalls.firstIndex(where: { $0.id == id }) else { return false }
        let call = replicationCalls.remove(at: k)
        guard call.stint == leadershipStint, leadsConsensus else { return true }  // from before a leadership change
        guard case .value(let v) = result, v.response.status == Status.ok.rawValue, logSlot != nil else {
            if call.kind != .replicate { catchUpFailed(call.backup, nowMs: now) }
            return true  // a lost replicate: the producer's retry sends it again
        }
        switch call.kind {
        case .replicate:
            guard let (hw, gap) = LogReplication.decodeReplicateResult(v.response.result) else { return true }
            if !gap { backupHolds(call.backup, source: call.source, upTo: hw, nowMs: now) }
            // Behind (a gap, or a catch-up chunk that did not reach the newest): send what follows its high-water.
            var newest: UInt64 = 0
            for p in pendingAppends where p.source == call.source { newest = max(newest, p.lastSequence) }
            if (gap || hw < newest),
               let next = try? LogReplication.records(source: call.source, after: hw, limit: LogReplication.chunkRecordsMax,
                                                      bytesMax: MeshConfig.rpcPayloadBytesMax - 48, log: &logSlot!.pointee),
               !next.isEmpty {
                callBackup(call.backup, .replicate, source: call.source,
                           arguments: LogReplication.replicateArguments(source: call.source, prev: hw, records: next,
                                                                        term: raftSlot?.pointee.currentTerm ?? 0),
                           nowMs: now)
            }
        case .highWaters:
            guard let marks = LogReplication.decodeHighWaters(v.response.result) else {
                catchUpFailed(call.backup, nowMs: now)
                return true
            }
            if let k = catchUpWaiting.firstIndex(of: call.backup) { catchUpWaiting.remove(at: k) }
            catchUpAnswers += 1
            for m in marks {
                let have = logHighWater(m.source) ?? 0
                guard m.highWater > have else { continue }
                callBackup(call.backup, .fetch, source: m.source,
                           arguments: LogReplication.fetchArguments(source: m.source, after: have),
                           target: m.highWater, nowMs: now)
            }
        case .fetch:
            guard let records = LogReplication.decodeFetch(v.response.result, source: call.source) else {
                catchUpFailed(call.backup, nowMs: now)
                return true
            }
            guard (try? LogReplication.appendMissing(records, source: call.source, log: &logSlot!.pointee)) != nil else {
                catchUpFailed(call.backup, nowMs: now)  // the log failed: not caught up, ask again later
                return true
            }
            // Pages stop at 16 records or a frame's worth: fetch until this log reaches the backup's high-water.
            let have = logHighWater(call.source) ?? 0
            if !records.isEmpty && have < call.target {
                callBackup(call.backup, .fetch, source: call.source,
                           arguments: LogReplication.fetchArguments(source: call.source, after: have),
                           target: call.target, nowMs: now)
            }
        }
        checkCatchUpDone(nowMs: now)
        return true
    }

    /// `backup` holds `source`'s records up to `hw`: the batches it completes are answered.
    func backupHolds(_ backup: UInt32, source: UInt32, upTo hw: UInt64, nowMs now: UInt64) {
        let majority = config.configReplicas.count / 2 + 1
        let bit: UInt32 = config.configReplicas.firstIndex(of: backup).map { 1 << $0 } ?? 0
        var i = 0
        while i < pendingAppends.count {
            if pendingAppends[i].source == source && pendingAppends[i].lastSequence <= hw {
                pendingAppends[i].holders |= bit
            }
            if 1 + pendingAppends[i].holders.nonzeroBitCount >= majority {
                let p = pendingAppends.remove(at: i)
                mesh.respond(p.handle, p.counts.result, nowMs: now)
            } else {
                i += 1
            }
        }
    }

    // MARK: A new primary catches up

    /// On becoming leader (and again every second until done): ask the backups
    /// that have not answered yet for their high-waters.
    func startCatchUp(nowMs now: UInt64) {
        catchUpRetryAtMs = now + 1_000
        if catchUpWaiting.isEmpty && catchUpAnswers == 0 {
            for m in config.configReplicas where m != config.nodeID { catchUpWaiting.append(m) }  // every backup
        }
        for b in catchUpWaiting where !replicationCalls.contains(where: { $0.backup == b && $0.kind == .highWaters }) {
            callBackup(b, .highWaters, source: 0, arguments: [], nowMs: now)
        }
    }

    func catchUpFailed(_ backup: UInt32, nowMs now: UInt64) {
        // A fetch that failed is retried from the start: ask that backup again.
        if !catchUpWaiting.contains(backup) && !primaryReady {
            catchUpWaiting.append(backup)
            catchUpAnswers = max(0, catchUpAnswers - 1)
        }
    }

    /// Ready once a majority (this node and the backups that answered) is merged
    /// and no fetch is still out; then the appends that waited are served.
    func checkCatchUpDone(nowMs now: UInt64) {
        guard leadsConsensus, !primaryReady else { return }
        let majority = config.configReplicas.count / 2 + 1
        // Only fetches are waited for: a backup that is down keeps its
        // high-waters call outstanding, and a majority without it is enough.
        guard 1 + catchUpAnswers >= majority, !replicationCalls.contains(where: { $0.kind == .fetch }) else { return }
        primaryReady = true
        platform.log(TextLine("log: primary of the replicated log, caught up from the other replicas; taking appends"))
        let waiting = waitingAppends
        waitingAppends.removeAll()
        for w in waiting { appendReplicated(w.serve.handle, w.serve.request, from: w.serve.from, nowMs: now, caughtUp: true) }
    }

    /// Leadership changed: a new leader catches up first; a former one answers
    /// what it holds with not_leader (the producer moves to the new primary).
    func replicationLeadershipChanged(leads: Bool, nowMs now: UInt64) {
        guard replicatesLog else { return }
        primaryReady = false
        catchUpWaiting.removeAll()
        catchUpAnswers = 0
        leadershipStint &+= 1  // the calls still out complete into nothing
        if leads {
            startCatchUp(nowMs: now)
            checkCatchUpDone(nowMs: now)
        } else {
            for p in pendingAppends { respond(p.handle, .notLeader, nowMs: now) }
            for w in waitingAppends { respond(w.serve.handle, .notLeader, nowMs: now) }
            pendingAppends.removeAll()
            waitingAppends.removeAll()
        }
    }
}

/// An append that arrived while a new primary was catching up.
struct WaitingAppend {
    var serve: DeferredServe
    var deadlineMs: UInt64
}
