// Raft's four RPCs as TDOS message types (docs/PROTOCOL.md, "Consensus"):
// CBOR maps keyed by small unsigned integers, like every other payload. The
// sender is the frame's authenticated sender, so no payload names it.
//
//   20 raft_request_vote           1 term, 2 last log index, 3 last log term
//   21 raft_request_vote_response  1 term, 2 vote granted (bool)
//   22 raft_append_entries         1 term, 2 prev log index, 3 prev log term,
//                                  4 leader commit, 5 entries: [[term, data], ...]
//   23 raft_append_entries_response 1 term, 2 success (bool), 3 match index
//                                  (success: last index known to match;
//                                  failure: the index the leader should try next)

extension MessageType {
    public static let raftRequestVote = MessageType(rawValue: 20)
    public static let raftRequestVoteResponse = MessageType(rawValue: 21)
    public static let raftAppendEntries = MessageType(rawValue: 22)
    public static let raftAppendEntriesResponse = MessageType(rawValue: 23)
}

/// Bounds of the consensus layer, with their relations in `check()`.
public enum RaftLimits {
    /// Largest entry (one config change), bytes.
    public static let entryBytesMax = 512
    /// Entries one AppendEntries carries at most.
    public static let entriesPerMessageMax = 16
    /// Voting members of one group.
    public static let membersMax = 9
    public static func check() {
        precondition(entryBytesMax + 32 <= Frame.payloadBytesMaxUncompressed, "one entry must fit a frame")
        precondition(entriesPerMessageMax >= 1 && membersMax >= 1)
    }
}

/// One log entry. Empty `data` is the no-op a new leader appends (Raft section 8).
public struct RaftEntry: Equatable {
    public var term: UInt32
    public var data: [UInt8]
    public init(term: UInt32, data: [UInt8]) {
        self.term = term
        self.data = data
    }

    /// A list of entries as CBOR `[[term, data], ...]` (in AppendEntries and the persisted state).
    static func encode(_ entries: [RaftEntry], into w: inout CBORWriter) {
        w.arrayHeader(count: entries.count)
        for e in entries {
            w.arrayHeader(count: 2)
            w.unsigned(UInt64(e.term))
            w.bytes(e.data)
        }
    }

    static func decodeList(_ r: inout CBORReader, countMax: Int) throws(WireError) -> [RaftEntry] {
        let n = try r.arrayHeader()
        guard n <= countMax else { throw .malformedCBOR }
        var entries: [RaftEntry] = []
        entries.reserveCapacity(n)
        for _ in 0..<n {
            guard try r.arrayHeader() == 2 else { throw .malformedCBOR }
            let t = try readU32(&r)
            let d = try r.bytes()
            guard d.count <= RaftLimits.entryBytesMax else { throw .malformedCBOR }
            entries.append(RaftEntry(term: t, data: Array(d)))
        }
        return entries
    }
}

public struct RequestVote: Equatable {
    public var term: UInt32
    public var lastLogIndex: UInt32
    public var lastLogTerm: UInt32
    public init(term: UInt32, lastLogIndex: UInt32, lastLogTerm: UInt32) {
        self.term = term
        self.lastLogIndex = lastLogIndex
        self.lastLogTerm = lastLogTerm
    }
}

public struct RequestVoteResponse: Equatable {
    public var term: UInt32
    public var granted: Bool
    public init(term: UInt32, granted: Bool) {
        self.term = term
        self.granted = granted
    }
}

public struct AppendEntries: Equatable {
    public var term: UInt32
    public var prevLogIndex: UInt32
    public var prevLogTerm: UInt32
    public var leaderCommit: UInt32
    public var entries: [RaftEntry]
    public init(term: UInt32, prevLogIndex: UInt32, prevLogTerm: UInt32, leaderCommit: UInt32, entries: [RaftEntry]) {
        self.term = term
        self.prevLogIndex = prevLogIndex
        self.prevLogTerm = prevLogTerm
        self.leaderCommit = leaderCommit
        self.entries = entries
    }
}

public struct AppendEntriesResponse: Equatable {
    public var term: UInt32
    public var success: Bool
    public var matchIndex: UInt32
    public init(term: UInt32, success: Bool, matchIndex: UInt32) {
        self.term = term
        self.success = success
        self.matchIndex = matchIndex
    }
}

public enum RaftMessage: Equatable {
    case requestVote(RequestVote)
    case requestVoteResponse(RequestVoteResponse)
    case appendEntries(AppendEntries)
    case appendEntriesResponse(AppendEntriesResponse)

    public var type: MessageType {
        switch self {
        case .requestVote: return .raftRequestVote
        case .requestVoteResponse: return .raftRequestVoteResponse
        case .appendEntries: return .raftAppendEntries
        case .appendEntriesResponse: return .raftAppendEntriesResponse
        }
    }

    public var term: UInt32 {
        switch self {
        case .requestVote(let m): return m.term
        case .requestVoteResponse(let m): return m.term
        case .appendEntries(let m): return m.term
        case .appendEntriesResponse(let m): return m.term
        }
    }

    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 24)
        switch self {
        case .requestVote(let m):
            w.mapHeader(count: 3)
            w.unsigned(1); w.unsigned(UInt64(m.term))
            w.unsigned(2); w.unsigned(UInt64(m.lastLogIndex))
            w.unsigned(3); w.unsigned(UInt64(m.lastLogTerm))
        case .requestVoteResponse(let m):
            w.mapHeader(count: 2)
            w.unsigned(1); w.unsigned(UInt64(m.term))
            w.unsigned(2); w.bool(m.granted)
        case .appendEntries(let m):
            w.mapHeader(count: m.entries.isEmpty ? 4 : 5)
            w.unsigned(1); w.unsigned(UInt64(m.term))
            w.unsigned(2); w.unsigned(UInt64(m.prevLogIndex))
            w.unsigned(3); w.unsigned(UInt64(m.prevLogTerm))
            w.unsigned(4); w.unsigned(UInt64(m.leaderCommit))
            if !m.entries.isEmpty {
                w.unsigned(5)
                RaftEntry.encode(m.entries, into: &w)
            }
        case .appendEntriesResponse(let m):
            w.mapHeader(count: 3)
            w.unsigned(1); w.unsigned(UInt64(m.term))
            w.unsigned(2); w.bool(m.success)
            w.unsigned(3); w.unsigned(UInt64(m.matchIndex))
        }
        return w.bytes
    }

    /// Nil for a type that is not Raft's; throws for a malformed payload.
    public static func decode(type: MessageType, payload: [UInt8]) throws(WireError) -> RaftMessage? {
        let hasFlag: Bool  // key 2 is a bool (the responses), not an index
        switch type {
        case .raftRequestVote, .raftAppendEntries: hasFlag = false
        case .raftRequestVoteResponse, .raftAppendEntriesResponse: hasFlag = true
        default: return nil
        }
        // Keys 1-4 as numbers (a flag as 0 or 1): one read and one check each.
        var term: UInt32?, a: UInt32?, b: UInt32?, c: UInt32?
        var entries: [RaftEntry] = []
        try forEachKey(payload) { (key, r) throws(WireError) in
            switch key {
            case 1: term = try readU32(&r)
            case 2: a = hasFlag ? (try r.bool() ? 1 : 0) : try readU32(&r)
            case 3: b = try readU32(&r)
            case 4 where type == .raftAppendEntries: c = try readU32(&r)
            case 5 where type == .raftAppendEntries:
                entries = try RaftEntry.decodeList(&r, countMax: RaftLimits.entriesPerMessageMax)
            default: try r.skip()
            }
        }
        guard let term, let a else { throw .malformedCBOR }
        switch type {
        case .raftRequestVote:
            guard let b else { throw .malformedCBOR }
            return .requestVote(RequestVote(term: term, lastLogIndex: a, lastLogTerm: b))
        case .raftRequestVoteResponse:
            return .requestVoteResponse(RequestVoteResponse(term: term, granted: a != 0))
        case .raftAppendEntries:
            guard let b, let c else { throw .malformedCBOR }
            return .appendEntries(AppendEntries(term: term, prevLogIndex: a, prevLogTerm: b, leaderCommit: c,
                                                entries: entries))
        default:
            guard let b else { throw .malformedCBOR }
            return .appendEntriesResponse(AppendEntriesResponse(term: term, success: a != 0, matchIndex: b))
        }
    }
}
