// Consensus for configuration changes: Raft, as in D. Ongaro and J. Ousterhout,
// "In Search of an Understandable Consensus Algorithm", USENIX ATC 2014
// (section numbers below are that paper's). Its terms are kept: terms, leader
// election with randomized timeouts (5.2), log replication with the
// prevLogIndex/prevLogTerm consistency check and conflict truncation (5.3), the
// election restriction and the commit rule "only entries of the current term
// are committed by counting replicas" (5.4), persistent state currentTerm,
// votedFor and log (Figure 2), a no-op entry at the start of a term (8).
//
// A pure state machine in the house style (see MeshNode): no I/O, no clock, no
// system randomness. Inputs: `start`, `handleMessage`, `handleTimeout`,
// `propose`, each with the time; outputs drained with `pollAction()`;
// `nextTimeoutMs` says when to call `handleTimeout`. Randomness (election
// timeouts) comes from a SeededRandom the caller seeds.
//
// Durability contract: a `.persist` action makes currentTerm, votedFor and the
// log durable. It always comes before any `.send`, `.apply` or `.proposalDone`
// that depends on it, so a platform that carries out the actions in order, and
// returns from a persist only once it is durable, never sends a vote or an
// acknowledgement it could forget in a crash (Figure 2: "updated on stable
// storage before responding to RPCs"). On restart the node is rebuilt from the
// persisted state; lastApplied and everything else are volatile (commitIndex is
// kept as a hint: see RaftPersistentState).
//
// Membership is fixed (the `members` list); the entries are configuration
// changes (opaque bytes, e.g. a ConfigUpdate payload), and an entry's log index
// is the config version it creates. The log is bounded (`entriesMax`); log
// compaction (a snapshot of the config state machine) is not done here.

public enum RaftRole: UInt8, Equatable {
    case follower, candidate, leader
}

public struct RaftConfig {
    /// Leader's AppendEntries period (also the retransmission period).
    public var heartbeatIntervalMs: UInt32
    /// Election timeouts are drawn uniformly in [min, max] (5.2).
    public var electionTimeoutMinMs: UInt32
    public var electionTimeoutMaxMs: UInt32
    /// A proposal not committed by then fails (no leader, or no majority).
    public var proposalTimeoutMs: UInt32
    /// Log entries kept (no compaction yet): proposals beyond fail `.logFull`.
    public var entriesMax: Int
    /// Proposals waiting for their outcome.
    public var proposalsMax: Int
    /// Bytes of entry data one AppendEntries carries (at least one entry is sent).
    public var appendBytesMax: Int
    /// Entry data the whole log holds at most (proposals beyond fail `.logFull`):
    /// bounds the persisted state, which the board keeps in one 8 KB flash copy.
    public var logBytesMax: Int

    public init(heartbeatIntervalMs: UInt32 = 1_000, electionTimeoutMinMs: UInt32 = 3_000,
                electionTimeoutMaxMs: UInt32 = 6_000, proposalTimeoutMs: UInt32 = 15_000,
                entriesMax: Int = 128, proposalsMax: Int = 8, appendBytesMax: Int = 768, logBytesMax: Int = 6_144) {
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.electionTimeoutMinMs = electionTimeoutMinMs
        self.electionTimeoutMaxMs = electionTimeoutMaxMs
        self.proposalTimeoutMs = proposalTimeoutMs
        self.entriesMax = entriesMax
        self.proposalsMax = proposalsMax
        self.appendBytesMax = appendBytesMax
        self.logBytesMax = logBytesMax
    }

    public func check() {
        RaftLimits.check()
        precondition(heartbeatIntervalMs > 0)
        precondition(electionTimeoutMinMs >= 2 * heartbeatIntervalMs, "a follower must survive one lost heartbeat")
        precondition(electionTimeoutMaxMs > electionTimeoutMinMs, "timeouts must be randomized (5.2)")
        precondition(proposalTimeoutMs > electionTimeoutMaxMs, "a proposal must outlive one election")
        precondition(entriesMax >= 2 && proposalsMax >= 1)
        precondition(appendBytesMax + 64 <= Frame.payloadBytesMaxUncompressed)
        precondition(logBytesMax >= RaftLimits.entryBytesMax, "the log must hold one entry")
    }
}

/// What the platform keeps on stable storage (Figure 2, "Persistent state"),
/// and the commit index as last known: not needed for safety (committed entries
/// are never removed), but a restarted replica then applies what it knows is
/// committed at once, and a leader of a whole restarted group needs no no-op
/// (which would otherwise fill the bounded log, one per restart).
public struct RaftPersistentState: Equatable {
    public var currentTerm: UInt32
    public var votedFor: UInt32?
    public var log: [RaftEntry]
    public var commitIndex: UInt32
    public init(currentTerm: UInt32 = 0, votedFor: UInt32? = nil, log: [RaftEntry] = [], commitIndex: UInt32 = 0) {
        self.currentTerm = currentTerm
        self.votedFor = votedFor
        self.log = log
        self.commitIndex = commitIndex
    }
    /// Carries out a `.persist` action on this copy.
    public mutating func apply(_ p: RaftPersist) {
        currentTerm = p.currentTerm
        votedFor = p.votedFor
        let keep = Int(p.logFromIndex) - 1
        while log.count > keep { log.removeLast() }  // rare; removeSubrange is a 0.2 KB replaceSubrange
        for e in p.entries { log.append(e) }  // not append(contentsOf:): see flushPersist
    }
}

/// A change of the persistent state: the new term and vote, and the log from
/// index `logFromIndex` on is replaced by `entries` (empty: only truncated, or
/// nothing changed in the log when `logFromIndex` is past its end).
public struct RaftPersist: Equatable {
    public var currentTerm: UInt32
    public var votedFor: UInt32?
    public var logFromIndex: UInt32
    public var entries: [RaftEntry]
}

public struct RaftProposalID: Hashable, BitwiseCopyable {
    public let raw: UInt32
    public init(raw: UInt32) { self.raw = raw }
}

public enum RaftProposeError: Error, Equatable {
    /// Another node leads: propose there.
    case notLeader(leader: UInt32)
    /// No leader was elected within the proposal timeout: no majority reachable.
    case noLeader
    /// Appended by this leader but not committed within the timeout: no
    /// majority reachable. The outcome is unknown (a later leader may commit it).
    case noMajority
    /// A different entry was committed at the proposal's index (leadership moved).
    case superseded
    case tooLarge
    case logFull
    case busy
}

public enum RaftProposalResult: Equatable {
    /// Committed as this log index (the config version) in this term.
    case committed(index: UInt32, term: UInt32)
    case failed(RaftProposeError)
}

public enum RaftAction: Equatable {
    /// Make this durable before carrying out the next action.
    case persist(RaftPersist)
    case send(to: UInt32, RaftMessage)
    /// A committed entry, in index order, each index once per boot.
    case apply(index: UInt32, entry: RaftEntry)
    case proposalDone(RaftProposalID, RaftProposalResult)
}

/// A RaftAction in the outbox. The action is 25 bytes on armv6m (the send
/// case: a node id and a RaftMessage, whose tag byte ends it), stride 28: an
/// array element with tail padding is read and written byte by byte there
/// (docs/FIRMWARE.md, "Sizes"). The two fields fill the padding: size == stride.
struct QueuedAction {
    var action: RaftAction
    var padding8: UInt8 = 0
    var padding16: UInt16 = 0
}

public struct RaftNode {
    struct Progress {
        var node: UInt32
        var nextIndex: UInt32
        var matchIndex: UInt32
        /// The term in which it granted this node its vote (scalars only: size == stride on armv6m).
        var votedInTerm: UInt32
    }

    struct Proposal {
        var id: UInt32
        /// 0 while it waits for a leader.
        var index: UInt32
        var term: UInt32
        var unused: UInt32 = 0
        var deadlineMs: UInt64
    }

    public let config: RaftConfig
    public let nodeID: UInt32
    /// Every voting member, this node included.
    public let members: [UInt32]

    // Persistent (Figure 2).
    public private(set) var currentTerm: UInt32
    public private(set) var votedFor: UInt32?
    public private(set) var log: [RaftEntry]

    // Volatile.
    public private(set) var role: RaftRole = .follower
    public private(set) var leaderID: UInt32?
    public private(set) var commitIndex: UInt32 = 0
    public private(set) var lastApplied: UInt32 = 0
    /// AppendEntries that would have overwritten a committed entry (never in a
    /// correct cluster): refused, unanswered.
    public private(set) var refusedOverwrites: UInt32 = 0
    // Tables of scalars: `Table`, not Array (no per-type growth and shift code).
    var peers = Table<Progress>()
    var proposals: Table<Proposal>
    /// Data of the proposals waiting for a leader, same order as those in `proposals` with index 0.
    var waitingData: [[UInt8]] = []
    var electionDeadlineMs: UInt64 = 0
    var nextHeartbeatAtMs: UInt64 = 0
    var started = false
    var rng: SeededRandom
    var nextProposalRaw: UInt32 = 1
    var lastNowMs: UInt64 = 0
    /// Assigned once in init (a default value was a second DrainQueue.init).
    var actions: DrainQueue<QueuedAction>
    /// Persist pending: the hard state changed, and the log from this index (nil: log unchanged).
    var hardStateDirty = false
    var logDirtyFrom: UInt32?

    public init(config: RaftConfig = RaftConfig(), nodeID: UInt32, members: [UInt32],
                persisted: RaftPersistentState = RaftPersistentState(), rngSeed: UInt64) {
        config.check()
        precondition(members.contains(nodeID), "a node votes in its own group")
        precondition(members.count <= RaftLimits.membersMax)
        precondition(persisted.log.count <= config.entriesMax)
        self.config = config
        self.nodeID = nodeID
        self.members = members
        actions = DrainQueue(capacity: 2 * members.count + config.proposalsMax + 8)
        currentTerm = persisted.currentTerm
        votedFor = persisted.votedFor
        log = persisted.log
        commitIndex = min(persisted.commitIndex, UInt32(persisted.log.count))
        log.reserveCapacity(config.entriesMax)
        // Members may be seeded alike: mix in a hash of the node id so their
        // election timeouts never run in lockstep (endless split votes).
        var idHash = SeededRandom(seed: UInt64(nodeID))
        rng = SeededRandom(seed: rngSeed ^ idHash.next())
        for m in members where m != nodeID {
            peers.append(Progress(node: m, nextIndex: 1, matchIndex: 0, votedInTerm: 0))
        }
        proposals = Table(capacity: config.proposalsMax)
    }

    // MARK: Views

    public var lastLogIndex: UInt32 { UInt32(log.count) }
    public var lastLogTerm: UInt32 { term(at: lastLogIndex) }
    public func term(at index: UInt32) -> UInt32 { index == 0 ? 0 : log[Int(index) - 1].term }
    public var majority: Int { members.count / 2 + 1 }
    public var persistentState: RaftPersistentState {
        RaftPersistentState(currentTerm: currentTerm, votedFor: votedFor, log: log)
    }
    public var pendingProposals: Int { proposals.count }

    // MARK: Actions

    public mutating func pollAction() -> RaftAction? { actions.pop()?.action }

    /// Every action but a persist is preceded by the pending persist.
    /// Not inlined: one copy of the flush and the append serves every call site.
    @inline(never)
    mutating func emit(_ a: RaftAction) {
        flushPersist()
        actions.append(QueuedAction(action: a))
    }

    mutating func flushPersist() {
        guard hardStateDirty || logDirtyFrom != nil else { return }
        let from = logDirtyFrom ?? lastLogIndex + 1
        var entries: [RaftEntry] = []
        // A loop of the `append` the log uses (append(contentsOf:) is a specialisation of its own).
        var i = Int(from) - 1
        while i < log.count {
            entries.append(log[i])
            i += 1
        }
        actions.append(QueuedAction(action: .persist(RaftPersist(currentTerm: currentTerm, votedFor: votedFor,
                                                                 logFromIndex: from, entries: entries))))
        hardStateDirty = false
        logDirtyFrom = nil
    }

    mutating func logChanged(from index: UInt32) {
        logDirtyFrom = min(logDirtyFrom ?? index, index)
    }

    mutating func send(_ to: UInt32, _ m: RaftMessage) { emit(.send(to: to, m)) }

    // MARK: Time

    mutating func clock(_ nowMs: UInt64) -> UInt64 {
        lastNowMs = max(lastNowMs, nowMs)
        return lastNowMs
    }

    mutating func resetElectionTimer(_ nowMs: UInt64) {
        electionDeadlineMs = nowMs + rng.between(UInt64(config.electionTimeoutMinMs), UInt64(config.electionTimeoutMaxMs))
    }

    public mutating func start(nowMs: UInt64) {
        precondition(!started, "start once")
        let now = clock(nowMs)
        started = true
        resetElectionTimer(now)
        applyCommitted()  // what it knew was committed before the restart
    }

    public var nextTimeoutMs: UInt64? {
        guard started else { return nil }
        var t = role == .leader ? nextHeartbeatAtMs : electionDeadlineMs
        for p in proposals { t = min(t, p.deadlineMs) }
        return t
    }

    public mutating func handleTimeout(nowMs: UInt64) {
        guard started else { return }
        let now = clock(nowMs)
        if role == .leader {
            if now >= nextHeartbeatAtMs { broadcastAppend(now) }
        } else if now >= electionDeadlineMs {
            startElection(now)
        }
        expireProposals(now)
        flushPersist()
    }

    // MARK: Election (5.2, 5.4.1)

    mutating func startElection(_ now: UInt64) {
        role = .candidate
        currentTerm += 1
        votedFor = nodeID
        hardStateDirty = true
        leaderID = nil
        resetElectionTimer(now)
        if majority == 1 {
            becomeLeader(now)
            return
        }
        let rv = RaftMessage.requestVote(RequestVote(term: currentTerm, lastLogIndex: lastLogIndex,
                                                     lastLogTerm: lastLogTerm))
        for p in peers { send(p.node, rv) }
    }

    var votesGranted: Int {
        var n = 1  // its own
        for p in peers where p.votedInTerm == currentTerm { n += 1 }
        return n
    }

    mutating func becomeLeader(_ now: UInt64) {
        role = .leader
        leaderID = nodeID
        for i in peers.indices {
            peers[i].nextIndex = lastLogIndex + 1
            peers[i].matchIndex = 0
        }
        // Section 8: an entry of its own term lets it commit what earlier terms
        // left uncommitted. Skipped when everything it holds is known committed,
        // which keeps the bounded log from filling with no-ops.
        if commitIndex < lastLogIndex && log.count < config.entriesMax {
            appendLocal(RaftEntry(term: currentTerm, data: []))
        }
        // Proposals that waited for a leader go in now (or fail: log full).
        var w = 0
        var i = 0
        while i < proposals.count {
            guard proposals[i].index == 0 else {
                i += 1
                continue
            }
            var bytes = waitingData[w].count
            for e in log { bytes += e.data.count }
            if log.count < config.entriesMax && bytes <= config.logBytesMax {
                appendLocal(RaftEntry(term: currentTerm, data: waitingData[w]))
                proposals[i].index = lastLogIndex
                proposals[i].term = currentTerm
                i += 1
            } else {
                failProposal(at: i, .logFull)
            }
            w += 1
        }
        clearWaitingData()
        broadcastAppend(now)
        advanceCommit()
    }

    /// A higher term seen anywhere: adopt it, as a follower with no vote yet (5.1).
    mutating func adoptTerm(_ term: UInt32) {
        guard term > currentTerm else { return }
        currentTerm = term
        votedFor = nil
        hardStateDirty = true
        role = .follower
        leaderID = nil
    }

    // MARK: Replication (5.3)

    mutating func appendLocal(_ e: RaftEntry) {
        log.append(e)
        logChanged(from: lastLogIndex)
    }

    @inline(never)  // several callers: one copy
    mutating func broadcastAppend(_ now: UInt64) {
        for i in peers.indices { sendAppend(i) }
        nextHeartbeatAtMs = now + UInt64(config.heartbeatIntervalMs)
    }

    mutating func sendAppend(_ i: Int) {
        let p = peers[i]
        let prev = p.nextIndex - 1
        var entries: [RaftEntry] = []
        var bytes = 0
        var idx = p.nextIndex
        while idx <= lastLogIndex && entries.count < RaftLimits.entriesPerMessageMax {
            let e = log[Int(idx) - 1]
            if !entries.isEmpty && bytes + e.data.count > config.appendBytesMax { break }
            bytes += e.data.count
            entries.append(e)
            idx += 1
        }
        send(p.node, .appendEntries(AppendEntries(term: currentTerm, prevLogIndex: prev, prevLogTerm: term(at: prev),
                                                  leaderCommit: commitIndex, entries: entries)))
    }

    /// Commit rule (5.3, 5.4.2): the highest index of the current term held by a majority.
    @inline(never)  // several callers: one copy
    mutating func advanceCommit() {
        guard role == .leader else { return }
        var n = lastLogIndex
        while n > commitIndex && term(at: n) == currentTerm {
            var holders = 1
            for p in peers where p.matchIndex >= n { holders += 1 }
            if holders >= majority {
                commitIndex = n
                break
            }
            n -= 1
        }
        applyCommitted()
    }

    @inline(never)  // several callers: one copy
    mutating func applyCommitted() {
        while lastApplied < commitIndex {
            lastApplied += 1
            let entry = log[Int(lastApplied) - 1]
            emit(.apply(index: lastApplied, entry: entry))
            var i = 0
            while i < proposals.count {
                let p = proposals[i]
                if p.index == lastApplied {
                    proposals.remove(at: i)
                    emit(.proposalDone(RaftProposalID(raw: p.id), entry.term == p.term
                        ? .committed(index: p.index, term: p.term) : .failed(.superseded)))
                } else {
                    i += 1
                }
            }
        }
    }

    // MARK: Messages

    /// A message from `from` (the frame's authenticated sender). Messages from
    /// non-members are ignored.
    public mutating func handleMessage(_ m: RaftMessage, from: UInt32, nowMs: UInt64) {
        guard started, from != nodeID, members.contains(from) else { return }
        let now = clock(nowMs)
        adoptTerm(m.term)
        switch m {
        case .requestVote(let rv): handleRequestVote(rv, from: from, now)
        case .requestVoteResponse(let r): handleVoteResponse(r, from: from, now)
        case .appendEntries(let ae): handleAppendEntries(ae, from: from, now)
        case .appendEntriesResponse(let r): handleAppendResponse(r, from: from)
        }
        flushPersist()
    }

    mutating func handleRequestVote(_ rv: RequestVote, from: UInt32, _ now: UInt64) {
        // Election restriction (5.4.1): the candidate's log is at least as up to date.
        let upToDate = rv.lastLogTerm > lastLogTerm || (rv.lastLogTerm == lastLogTerm && rv.lastLogIndex >= lastLogIndex)
        let grant = rv.term == currentTerm && role != .leader && (votedFor == nil || votedFor == from) && upToDate
        if grant {
            if votedFor != from {
                votedFor = from
                hardStateDirty = true
            }
            resetElectionTimer(now)
        }
        send(from, .requestVoteResponse(RequestVoteResponse(term: currentTerm, granted: grant)))
    }

    mutating func handleVoteResponse(_ r: RequestVoteResponse, from: UInt32, _ now: UInt64) {
        guard role == .candidate, r.term == currentTerm, r.granted,
              let i = peers.firstIndex(where: { $0.node == from }) else { return }
        peers[i].votedInTerm = currentTerm
        if votesGranted >= majority { becomeLeader(now) }
    }

    mutating func handleAppendEntries(_ ae: AppendEntries, from: UInt32, _ now: UInt64) {
        guard ae.term == currentTerm else {
            send(from, .appendEntriesResponse(AppendEntriesResponse(term: currentTerm, success: false, matchIndex: 0)))
            return
        }
        // At most one leader per term (5.2): a leader never hears another in its own term.
        guard role != .leader else { return }
        role = .follower
        if leaderID != from {
            leaderID = from
            failWaitingProposals(.notLeader(leader: from))
        }
        resetElectionTimer(now)

        if ae.prevLogIndex > lastLogIndex {
            send(from, .appendEntriesResponse(AppendEntriesResponse(term: currentTerm, success: false,
                                                                    matchIndex: lastLogIndex + 1)))
            return
        }
        let prevTerm = term(at: ae.prevLogIndex)
        if prevTerm != ae.prevLogTerm {
            // Skip back over the whole conflicting term (the optimisation at the end of 5.3).
            var hint = ae.prevLogIndex
            while hint > commitIndex + 1 && term(at: hint - 1) == prevTerm { hint -= 1 }
            send(from, .appendEntriesResponse(AppendEntriesResponse(term: currentTerm, success: false,
                                                                    matchIndex: max(1, hint))))
            return
        }
        var index = ae.prevLogIndex
        for e in ae.entries {
            let next = index + 1
            if next <= lastLogIndex {
                if term(at: next) != e.term {
                    // Conflict: delete it and all that follow (5.3). Never a committed
                    // entry: a leader asking for that is broken or forged input,
                    // refused and counted rather than trusted (or trapped on).
                    guard next > commitIndex else {
                        refusedOverwrites &+= 1
                        return
                    }
                    while log.count >= Int(next) { log.removeLast() }  // as RaftPersistentState.apply
                    logChanged(from: next)
                    guard log.count < config.entriesMax else { break }
                    appendLocal(e)
                }
            } else {
                guard log.count < config.entriesMax else { break }
                appendLocal(e)
            }
            index = next
        }
        if ae.leaderCommit > commitIndex {
            commitIndex = max(commitIndex, min(ae.leaderCommit, index))
            applyCommitted()
        }
        send(from, .appendEntriesResponse(AppendEntriesResponse(term: currentTerm, success: true, matchIndex: index)))
    }

    mutating func handleAppendResponse(_ r: AppendEntriesResponse, from: UInt32) {
        guard role == .leader, r.term == currentTerm,
              let i = peers.firstIndex(where: { $0.node == from }) else { return }
        if r.success {
            guard r.matchIndex <= lastLogIndex else { return }  // not from this term's log
            if r.matchIndex > peers[i].matchIndex {
                peers[i].matchIndex = r.matchIndex
                if peers[i].nextIndex <= r.matchIndex { peers[i].nextIndex = r.matchIndex + 1 }
                advanceCommit()
                // More to send: stream on without waiting for the heartbeat.
                if peers[i].nextIndex <= lastLogIndex { sendAppend(i) }
            }
        } else {
            // Back off to the hint, never below what is known to match. Only a
            // change triggers a resend, so duplicated answers cannot multiply.
            let target = max(peers[i].matchIndex + 1, min(r.matchIndex, peers[i].nextIndex - 1))
            if target >= 1 && target < peers[i].nextIndex {
                peers[i].nextIndex = target
                sendAppend(i)
            }
        }
    }

    // MARK: Proposals

    /// Proposes one configuration change. The outcome arrives as `.proposalDone`
    /// with the returned id: committed (its index is the config version), or an
    /// error (`notLeader` at once when another node is known to lead; `noLeader`
    /// or `noMajority` after `proposalTimeoutMs` when no majority is reachable).
    @discardableResult
    public mutating func propose(_ data: [UInt8], nowMs: UInt64) -> RaftProposalID {
        let now = clock(nowMs)
        let id = RaftProposalID(raw: nextProposalRaw)
        nextProposalRaw &+= 1
        defer { flushPersist() }
        if data.count > RaftLimits.entryBytesMax || data.isEmpty {
            emit(.proposalDone(id, .failed(.tooLarge)))
            return id
        }
        guard proposals.count < config.proposalsMax else {
            emit(.proposalDone(id, .failed(.busy)))
            return id
        }
        let deadline = now + UInt64(config.proposalTimeoutMs)
        switch role {
        case .leader:
            var bytes = data.count
            for e in log { bytes += e.data.count }
            guard log.count < config.entriesMax && bytes <= config.logBytesMax else {
                emit(.proposalDone(id, .failed(.logFull)))
                return id
            }
            appendLocal(RaftEntry(term: currentTerm, data: data))
            proposals.append(Proposal(id: id.raw, index: lastLogIndex, term: currentTerm, deadlineMs: deadline))
            for i in peers.indices where peers[i].nextIndex == lastLogIndex { sendAppend(i) }
            advanceCommit()
        case .follower, .candidate:
            if let leaderID {
                emit(.proposalDone(id, .failed(.notLeader(leader: leaderID))))
                return id
            }
            proposals.append(Proposal(id: id.raw, index: 0, term: 0, deadlineMs: deadline))
            waitingData.append(data)
        }
        return id
    }

    /// Takes proposal `i` out and answers it with `error`: one copy of the
    /// removal for the three places proposals fail.
    @inline(never)
    mutating func failProposal(at i: Int, _ error: RaftProposeError) {
        let p = proposals.remove(at: i)
        emit(.proposalDone(RaftProposalID(raw: p.id), .failed(error)))
    }

    mutating func failWaitingProposals(_ error: RaftProposeError) {
        var i = 0
        while i < proposals.count {
            if proposals[i].index == 0 {
                failProposal(at: i, error)
            } else {
                i += 1
            }
        }
        clearWaitingData()
    }

    /// Empties `waitingData` from the end with the `remove(at:)` that
    /// `expireProposals` needs anyway (`removeAll(keepingCapacity:)` is a
    /// 0.2 KB `replaceSubrange` of its own for this element type).
    mutating func clearWaitingData() {
        while !waitingData.isEmpty { waitingData.remove(at: waitingData.count - 1) }
    }

    mutating func expireProposals(_ now: UInt64) {
        var i = 0
        var w = 0
        while i < proposals.count {
            let p = proposals[i]
            if p.deadlineMs <= now {
                if p.index == 0 { waitingData.remove(at: w) }
                failProposal(at: i, p.index == 0 ? .noLeader : .noMajority)
            } else {
                if p.index == 0 { w += 1 }
                i += 1
            }
        }
    }
}
