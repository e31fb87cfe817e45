@testable import TDOSCore

/// A deterministic in-test cluster of RaftNodes: virtual time, a network that
/// loses, duplicates, delays (so reorders) and partitions messages, crashes and
/// restarts nodes (persisted state kept, volatile state lost), and can cut a
/// node down in the middle of carrying out its actions. Every message goes
/// through its CBOR encoding. After every step the Raft safety properties are
/// checked (Figure 3 of the paper); violations are collected with the seed.
struct RaftSim {
    struct Packet {
        var at: UInt64
        var order: UInt64
        var from: Int
        var to: Int
        var type: MessageType
        var payload: [UInt8]
    }

    let seed: UInt64
    let config: RaftConfig
    let ids: [UInt32]
    var rng: SeededRandom
    var now: UInt64 = 0
    var nodes: [RaftNode?]
    var stores: [RaftPersistentState]
    var boots: UInt64 = 0
    var packets: [Packet] = []
    var order: UInt64 = 0

    // Faults.
    var lossPercent: UInt64 = 0
    var duplicatePercent: UInt64 = 0
    var delayMinMs: UInt64 = 5
    var delayMaxMs: UInt64 = 60
    /// Partition group per node; messages cross only within a group.
    var group: [Int]
    /// Chance (per mille, per action) that a node dies while carrying out its actions.
    var crashMidActionsPerMille: UInt64 = 0

    // Checks.
    var appliedUpTo: [UInt32]
    var committed: [RaftEntry] = []
    var committedSeenTerm: [UInt32] = []
    var leaderOfTerm: [UInt32: UInt32] = [:]
    var violations: [String] = []
    var messagesSent = 0
    var steps = 0

    // Outcomes of proposals, by (node, id).
    var outcomes: [(node: Int, id: RaftProposalID, result: RaftProposalResult, at: UInt64)] = []
    var proposalData: [UInt64: [UInt8]] = [:]

    init(nodes count: Int, seed: UInt64, config: RaftConfig = RaftConfig()) {
        self.seed = seed
        self.config = config
        ids = (0..<count).map { UInt32(1000 + $0) }
        rng = SeededRandom(seed: seed)
        nodes = Array(repeating: nil, count: count)
        stores = Array(repeating: RaftPersistentState(), count: count)
        group = Array(repeating: 0, count: count)
        appliedUpTo = Array(repeating: 0, count: count)
    }

    var count: Int { ids.count }
    var live: [Int] { (0..<count).filter { nodes[$0] != nil } }

    mutating func violation(_ what: String) {
        violations.append("seed \(seed) t=\(now) ms: \(what)")
    }

    // MARK: Nodes

    mutating func boot(_ i: Int) {
        boots += 1
        var node = RaftNode(config: config, nodeID: ids[i], members: ids, persisted: stores[i],
                            rngSeed: seed &* 0x9E37_79B9 &+ boots)
        node.start(nowMs: now)
        nodes[i] = node
        appliedUpTo[i] = 0
        drain(i)
    }

    mutating func startAll() {
        for i in 0..<count { boot(i) }
    }

    mutating func crash(_ i: Int) {
        nodes[i] = nil
    }

    /// Carries out node i's actions in order; may cut the node down between two.
    mutating func drain(_ i: Int) {
        while nodes[i] != nil, let a = nodes[i]!.pollAction() {
            if crashMidActionsPerMille > 0 && rng.below(1000) < crashMidActionsPerMille {
                crash(i)
                return
            }
            switch a {
            case .persist(let p):
                stores[i].apply(p)
                keepCommitHint(i)
            case .send(let to, let m):
                checkDurableBeforeSend(i, to: to, m)
                send(from: i, to: Int(to - 1000), m)
            case .apply(let index, let entry):
                apply(i, index: index, entry: entry)
                keepCommitHint(i)
            case .proposalDone(let id, let result):
                outcomes.append((i, id, result, now))
                if case .committed(let index, let term) = result {
                    let key = UInt64(i) << 32 | UInt64(id.raw)
                    if Int(index) > committed.count || committed[Int(index) - 1].term != term
                        || committed[Int(index) - 1].data != proposalData[key] {
                        violation("node \(i) reported proposal \(id.raw) committed at \(index) but another entry is")
                    }
                }
            }
        }
    }

    /// The commit index goes to disk as NodeRuntime keeps it (a hint a restart
    /// applies at once): the checks must hold with it too.
    mutating func keepCommitHint(_ i: Int) {
        guard let n = nodes[i] else { return }
        stores[i].commitIndex = min(n.commitIndex, UInt32(stores[i].log.count))
    }

    /// Figure 2: persistent state is on stable storage before responding.
    mutating func checkDurableBeforeSend(_ i: Int, to: UInt32, _ m: RaftMessage) {
        let s = stores[i]
        if s.currentTerm != m.term { violation("node \(i) sent term \(m.term) with \(s.currentTerm) on disk") }
        switch m {
        case .requestVoteResponse(let r) where r.granted:
            if s.votedFor != to { violation("node \(i) granted a vote not on disk") }
        case .requestVote:
            if s.votedFor != ids[i] { violation("candidate \(i) asked for votes before its own was on disk") }
        case .appendEntriesResponse(let r) where r.success:
            let log = nodes[i]!.log
            if s.log.count < Int(r.matchIndex) || Array(s.log.prefix(Int(r.matchIndex))) != Array(log.prefix(Int(r.matchIndex))) {
                violation("node \(i) acknowledged entries not on disk")
            }
        default: break
        }
    }

    mutating func apply(_ i: Int, index: UInt32, entry: RaftEntry) {
        if index != appliedUpTo[i] + 1 { violation("node \(i) applied \(index) after \(appliedUpTo[i])") }
        appliedUpTo[i] = index
        let term = nodes[i]!.currentTerm
        if Int(index) <= committed.count {
            if committed[Int(index) - 1] != entry {
                violation("state machine safety: node \(i) applied a different entry at \(index)")
            }
            committedSeenTerm[Int(index) - 1] = min(committedSeenTerm[Int(index) - 1], term)
        } else if Int(index) == committed.count + 1 {
            committed.append(entry)
            committedSeenTerm.append(term)
        } else {
            violation("applied \(index) beyond the known committed prefix")
        }
    }

    // MARK: Network

    mutating func send(from: Int, to: Int, _ m: RaftMessage) {
        messagesSent += 1
        if lossPercent > 0 && rng.below(100) < lossPercent { return }
        let copies = duplicatePercent > 0 && rng.below(100) < duplicatePercent ? 2 : 1
        let payload = m.encode()
        for _ in 0..<copies {
            order += 1
            packets.append(Packet(at: now + rng.between(delayMinMs, delayMaxMs), order: order, from: from, to: to,
                                  type: m.type, payload: payload))
        }
    }

    mutating func deliver(_ p: Packet) {
        guard nodes[p.to] != nil, group[p.from] == group[p.to] else { return }
        guard let m = (try? RaftMessage.decode(type: p.type, payload: p.payload)) ?? nil else {
            violation("undecodable message")
            return
        }
        nodes[p.to]!.handleMessage(m, from: ids[p.from], nowMs: now)
        drain(p.to)
    }

    // MARK: Driving

    @discardableResult
    mutating func propose(at i: Int, _ data: [UInt8]) -> RaftProposalID? {
        guard nodes[i] != nil else { return nil }
        let id = nodes[i]!.propose(data, nowMs: now)
        proposalData[UInt64(i) << 32 | UInt64(id.raw)] = data
        drain(i)
        return id
    }

    /// Runs every event up to time `t` (inclusive), checking after each step.
    mutating func run(until t: UInt64) {
        while true {
            var next = UInt64.max
            var pi = -1
            var ni = -1
            for k in packets.indices
            where packets[k].at < next || (packets[k].at == next && pi >= 0 && packets[k].order < packets[pi].order) {
                next = packets[k].at
                pi = k
            }
            for i in 0..<count {
                if let tn = nodes[i]?.nextTimeoutMs, tn < next {
                    next = tn
                    ni = i
                    pi = -1
                }
            }
            guard next <= t else { break }
            now = max(now, next)
            if pi >= 0 {
                let p = packets.remove(at: pi)
                deliver(p)
            } else if ni >= 0 {
                nodes[ni]!.handleTimeout(nowMs: now)
                drain(ni)
            }
            steps += 1
            checkInvariants()
        }
        now = max(now, t)
    }

    // MARK: Invariants (Figure 3)

    mutating func checkInvariants() {
        for i in 0..<count {
            guard let n = nodes[i] else { continue }
            // Election safety: at most one leader per term.
            if n.role == .leader {
                if let l = leaderOfTerm[n.currentTerm], l != n.nodeID {
                    violation("election safety: \(l) and \(n.nodeID) both lead term \(n.currentTerm)")
                }
                leaderOfTerm[n.currentTerm] = n.nodeID
                // Leader completeness: it holds every entry committed in an earlier term.
                for k in committed.indices where committedSeenTerm[k] < n.currentTerm {
                    if k >= n.log.count || n.log[k] != committed[k] {
                        violation("leader completeness: leader \(n.nodeID) of term \(n.currentTerm) lacks \(k + 1)")
                        break
                    }
                }
            }
            if n.commitIndex > n.lastLogIndex { violation("commit index past the log") }
            if n.refusedOverwrites > 0 { violation("node \(i) was asked to overwrite a committed entry") }
        }
        // Log matching: same index and term => identical prefixes.
        for a in 0..<count {
            guard let la = nodes[a]?.log else { continue }
            for b in (a + 1)..<max(a + 1, count) {
                guard let lb = nodes[b]?.log else { continue }
                var k = min(la.count, lb.count)
                while k > 0 && la[k - 1].term != lb[k - 1].term { k -= 1 }
                if k > 0 && Array(la.prefix(k)) != Array(lb.prefix(k)) {
                    violation("log matching: nodes \(a) and \(b) agree on (\(k), term \(la[k - 1].term)) but differ before")
                }
            }
        }
    }

    /// The leader all live nodes agree on (same term, same leader), if any.
    var agreedLeader: Int? {
        let l = live
        guard let first = l.first, let leader = nodes[first]!.leaderID else { return nil }
        let term = nodes[first]!.currentTerm
        for i in l where nodes[i]!.leaderID != leader || nodes[i]!.currentTerm != term { return nil }
        guard let li = ids.firstIndex(of: leader), nodes[li]?.role == .leader else { return nil }
        return li
    }

    var leaders: [Int] { live.filter { nodes[$0]!.role == .leader } }
}
