// Raft's persistent state as bytes (Figure 2: currentTerm, votedFor, log),
// what the platform writes on each `.persist` action: a CBOR map
// {1 currentTerm, 2 votedFor (absent: none), 3 log [[term, data], ...],
// 4 commit index (absent: 0)}
// followed by the CRC-32 of the map (big-endian). The platform writes the
// whole record at once, atomically (a file renamed into place on Linux, A/B
// copies on flash), so a crash leaves the previous record or the new one.

public enum RaftStateError: Error, Equatable {
    /// The CRC does not match, or the map is malformed: the replica must not
    /// vote or accept entries (it might contradict what it said before the
    /// damage); the operator restores the file or removes the replica.
    case corrupt
    /// More entries than this build keeps (RaftConfig.entriesMax).
    case tooLarge
}

extension RaftPersistentState {
    public func encode() -> [UInt8] {
        var size = 16
        for e in log { size += 8 + e.data.count }
        var w = CBORWriter(capacity: size)
        w.mapHeader(count: (votedFor == nil ? 2 : 3) + (commitIndex == 0 ? 0 : 1))
        w.unsigned(1); w.unsigned(UInt64(currentTerm))
        if let votedFor { w.unsigned(2); w.unsigned(UInt64(votedFor)) }
        w.unsigned(3); RaftEntry.encode(log, into: &w)
        if commitIndex != 0 { w.unsigned(4); w.unsigned(UInt64(commitIndex)) }
        let c = CRC32.checksum(w.bytes)
        w.bytes.append(UInt8(c >> 24)); w.bytes.append(UInt8(c >> 16 & 0xFF))
        w.bytes.append(UInt8(c >> 8 & 0xFF)); w.bytes.append(UInt8(c & 0xFF))
        return w.bytes
    }

    /// Empty bytes: a replica that never persisted anything (term 0, no vote, empty log).
    public static func decode(_ bytes: [UInt8], entriesMax: Int) throws(RaftStateError) -> RaftPersistentState {
        if bytes.isEmpty { return RaftPersistentState() }
        guard bytes.count > 4 else { throw .corrupt }
        let n = bytes.count - 4
        let stored = UInt32(bytes[n]) << 24 | UInt32(bytes[n + 1]) << 16 | UInt32(bytes[n + 2]) << 8 | UInt32(bytes[n + 3])
        guard CRC32.checksum(bytes, to: n) == stored else { throw .corrupt }
        var term: UInt32?
        var voted: UInt32?
        var log: [RaftEntry]?
        var commit: UInt32 = 0
        // The map is read in place up to the CRC (no copy of it), the first error kept for after the loop.
        guard var d = try? MapDecoder(bytes, end: n) else { throw .corrupt }
        while let key = d.next() {
            switch key {
            case 1: term = d.u32()
            case 2: voted = d.u32()
            case 3:
                log = d.read(nil) { (r: inout CBORReader) throws(WireError) in
                    try RaftEntry.decodeList(&r, countMax: Int(UInt16.max))
                }
            case 4: commit = d.u32()
            default: d.skip()
            }
        }
        guard d.error == nil, let term, let log else { throw .corrupt }
        guard log.count <= entriesMax else { throw .tooLarge }
        guard commit <= UInt32(log.count) else { throw .corrupt }
        return RaftPersistentState(currentTerm: term, votedFor: voted, log: log, commitIndex: commit)
    }
}
