// Storage log and Raft on the Cortex-M0: a small log recovered after a power
// cut at many steps of its writes, and a 3-node Raft election and commit.
import TDOSCore

func storageTests() {
    let limits = LogLimits(payloadBytesMax: 48, sourcesMax: 4)
    func payload(_ i: Int) -> [UInt8] {
        var p: [UInt8] = []
        for k in 0..<(i % 20) { p.append(UInt8(truncatingIfNeeded: i * 7 + k)) }
        return p
    }
    func fresh() -> RAMLogFlash { RAMLogFlash(sectorCount: 3, sectorSize: 256, pageSize: 64) }
    let count = 24

    // Fault-free: read back, query, reopen.
    guard var log = expectNoThrow("open empty", { () throws(LogError) in try RecordLog(flash: fresh(), limits: limits) }) else { return }
    for i in 0..<count {
        let r = expectNoThrow("append", { () throws(LogError) in
            try log.append(source: UInt32(i % 2), sequence: UInt64(i), timeMs: UInt64(i) * 100, kind: UInt8(i % 3),
                           payload: payload(i))
        })
        expect(r != nil && r != .duplicate, "appended")
    }
    let dup = expectNoThrow("duplicate", { () throws(LogError) in
        try log.append(source: 1, sequence: 3, timeMs: 0, kind: 0, payload: [])
    })
    expect(dup == .duplicate, "duplicate dropped")
    let totalSteps = log.flash.stepsTaken
    var out: [LogRecord] = []
    _ = expectNoThrow("query", { () throws(LogError) in try log.query(LogFilter(source: 1, kind: 0), limit: 100, into: &out) })
    for r in out { expect(r.source == 1 && r.kind == 0 && r.payload == payload(Int(r.sequence)), "query result") }
    expect(log.counters.segmentsRetired > 0, "the ring wrapped")
    // The storage role's request handler: {1: sequence 100, 2: kind 1, 4: h'0102'}.
    let served = LogService.serve(Request(service: 1, operation: .logAppend,
                                          arguments: [0xA3, 0x01, 0x18, 0x64, 0x02, 0x01, 0x04, 0x42, 0x01, 0x02]),
                                  from: 9, nowMs: 5, log: &log)
    expect(served.status == 0 && !served.result.isEmpty, "log_append served")

    // A power cut at every 5th step: the recovered log is a contiguous run
    // ending at the last acked record or the one after it.
    var cut = 0
    var torn = 0
    while cut <= totalSteps {
        var flash = fresh()
        flash.powerBudgetSteps = cut
        var acked = 0
        if var l = try? RecordLog(flash: flash, limits: limits) {
            for i in 0..<count {
                guard (try? l.append(source: UInt32(i % 2), sequence: UInt64(i), timeMs: UInt64(i) * 100,
                                     kind: UInt8(i % 3), payload: payload(i))) != nil else { break }
                acked += 1
            }
            flash = l.flash
        }
        flash.powerOn()
        guard var rec = expectNoThrow("recover", { () throws(LogError) in try RecordLog(flash: flash, limits: limits) }) else { return }
        expect(!rec.recovery.corruptionFound, "no corruption after a power cut")
        if rec.recovery.tornTailCut { torn += 1 }
        let all = expectNoThrow("read all", { () throws(LogError) in try rec.allRecords() }) ?? []
        var ok = true
        if let first = all.first {
            let start = Int(first.sequence)
            for (k, r) in all.enumerated() where Int(r.sequence) != start + k || r.payload != payload(start + k) { ok = false }
            let end = start + all.count
            ok = ok && (end == acked || end == acked + 1)
        } else {
            ok = acked == 0
        }
        expect(ok, "acked records intact after a power cut")
        cut += 5
    }
    expect(torn > 0, "torn tails seen and cut")
}

func raftTests() {
    let ids: [UInt32] = [1, 2, 3]
    var nodes: [RaftNode] = []
    for id in ids {
        var n = RaftNode(nodeID: id, members: ids, rngSeed: 42)
        n.start(nowMs: 0)
        nodes.append(n)
    }
    var stores = [RaftPersistentState(), RaftPersistentState(), RaftPersistentState()]
    // In flight: (to index, from id, encoded type, payload); delivered in order, 10 ms later.
    var queue: [(to: Int, from: UInt32, type: MessageType, payload: [UInt8])] = []
    var applied: [UInt32] = [0, 0, 0]
    var committedProposal = false
    var now: UInt64 = 0

    func drain(_ i: Int) {
        while let a = nodes[i].pollAction() {
            switch a {
            case .persist(let p): stores[i].apply(p)
            case .send(let to, let m): queue.append((Int(to) - 1, ids[i], m.type, m.encode()))
            case .apply(let index, _):
                expect(index == applied[i] + 1, "applied in order")
                applied[i] = index
            case .proposalDone(_, let r):
                if case .committed = r { committedProposal = true }
            }
        }
    }

    var proposed = false
    while now < 30_000 {
        now += 10
        let batch = queue
        queue.removeAll()
        for p in batch {
            guard let m = (try? RaftMessage.decode(type: p.type, payload: p.payload)) ?? nil else {
                expect(false, "decodable")
                continue
            }
            nodes[p.to].handleMessage(m, from: p.from, nowMs: now)
            drain(p.to)
        }
        for i in 0..<3 {
            if let t = nodes[i].nextTimeoutMs, t <= now {
                nodes[i].handleTimeout(nowMs: now)
                drain(i)
            }
        }
        var leaders = 0
        var leader = 0
        for i in 0..<3 where nodes[i].role == .leader {
            leaders += 1
            leader = i
        }
        expect(leaders <= 1, "at most one leader")
        if leaders == 1 && !proposed {
            nodes[leader].propose([0xA1, 0x01, 0x02], nowMs: now)
            drain(leader)
            proposed = true
        }
        if committedProposal && applied[0] == applied[1] && applied[1] == applied[2] && applied[0] >= 1 { break }
    }
    expect(proposed, "a leader was elected")
    expect(committedProposal, "the proposal committed")
    expect(applied[0] >= 1 && applied[0] == applied[1] && applied[1] == applied[2], "every node applied it")
    for i in 0..<3 { expect(stores[i] == nodes[i].persistentState, "persisted state matches") }
}
