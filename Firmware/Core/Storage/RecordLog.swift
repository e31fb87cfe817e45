// The storage node's append-only log over a LogFlash (NOR semantics, see
// LogFlash.swift). No I/O of its own: the flash is the caller's.
//
// Layout. The region is a ring of segments, one per sector, filled in sector
// order and reused oldest first (so every sector is erased once per turn of the
// ring: wear is spread evenly by construction). Big-endian fields.
//
//   segment header (24 B): magic "TDLG" u32, format u8 (1), 0 u8, 0 u16,
//       segment sequence u32 (1, 2, ... one more per segment opened),
//       erase count of this sector u32, previous segment's end offset u32
//       (0xFFFFFFFF for the first segment), CRC-32 of the 20 bytes before it.
//   record, from offset 24, each at a multiple of 4 (padding stays 0xFF):
//       payload length u16, kind u8, marker 0x52 u8, source node u32,
//       per-source sequence u64, time ms u64, payload, CRC-32 of all of it u32.
//
// Durability. `append` programs a record, reads it back and compares: only then
// does it return `.appended`, which is the ack. Nothing ever programs over an
// acked record (programming only touches bytes at the tail, which are erased),
// and a segment is only erased after its header was overwritten with zeros
// ("retired"), which happens only to the oldest segment, only when the ring is
// full (retention).
//
// Recovery (init). Every sector's header is classified: valid, blank (all
// 0xFF), retired (all 0x00) or other (torn or corrupt). The newest valid
// header is the head; the ring is walked back from it while sequences match
// their sector positions. A sector in the middle of the ring without a valid
// header is a lost segment: reported, never silently skipped. The sector after
// the head may hold a half-opened segment (cut during retire, erase or header
// program): it is free, since nothing in it was acked. Records are scanned in
// each segment. A non-head segment ends exactly where the next segment's header
// says (its "previous end"): a record that fails its CRC before that point is
// corruption (reported; the scan resynchronises on the next valid record, so
// later records are kept). In the head segment, bytes after the last valid
// record that are not all 0xFF and hold no valid record later are a torn tail:
// the record being programmed when the power was cut, never acked. It is cut:
// the head is sealed and the next append opens a new segment, whose header
// certifies the cut (so the garbage is not taken for corruption later).
//
// Duplicates. A bounded table keeps each source's highest sequence; an append
// at or below it is `.duplicate` (already durable: the producer treats it as an
// ack). Producers append each source's records in sequence order. When the
// table is full, the least recently used source is forgotten (counted).

public struct LogLimits {
    /// Largest record payload; with the headers it must fit in one segment.
    public var payloadBytesMax: Int
    /// Sources whose high-water sequence is kept for duplicate detection.
    public var sourcesMax: Int
    public init(payloadBytesMax: Int = 1024, sourcesMax: Int = 32) {
        self.payloadBytesMax = payloadBytesMax
        self.sourcesMax = sourcesMax
    }
    public func check(sectorSize: Int) {
        precondition(payloadBytesMax > 0 && payloadBytesMax <= Int(UInt16.max))
        precondition(LogFormat.segmentHeaderBytes + LogFormat.recordBytes(payloadCount: payloadBytesMax) <= sectorSize,
                     "the largest record must fit in one segment")
        precondition(sourcesMax > 0)
    }
}

public enum LogFormat {
    public static let segmentMagic: UInt32 = 0x5444_4C47  // "TDLG"
    public static let formatVersion: UInt8 = 1
    public static let segmentHeaderBytes = 24
    public static let recordHeaderBytes = 24
    public static let recordMarker: UInt8 = 0x52
    public static let crcBytes = 4
    public static let noPreviousEnd: UInt32 = 0xFFFF_FFFF
    /// Space a record takes, padding included.
    public static func recordBytes(payloadCount: Int) -> Int {
        (recordHeaderBytes + payloadCount + crcBytes + 3) & ~3
    }
}

public enum LogError: Error, Equatable {
    case payloadTooLarge
    /// The read-back differed from what was programmed: not acked; the segment
    /// is sealed and the next append starts a new one.
    case verifyFailed
    case flash(LogFlashError)
    /// A flash operation failed earlier (e.g. the power was cut): the log must
    /// be opened again (recovery) before it is used.
    case halted
}

public enum LogAppendResult: Equatable {
    /// Durable (programmed and read back) at this position.
    case appended(LogPosition)
    /// (source, sequence) at or below the source's high-water mark: already durable.
    case duplicate
}

/// Where a record is: its segment's sequence and its offset in the segment.
public struct LogPosition: Equatable, Comparable {
    public var segment: UInt32
    public var offset: UInt32
    public init(segment: UInt32, offset: UInt32) {
        self.segment = segment
        self.offset = offset
    }
    public static func < (a: LogPosition, b: LogPosition) -> Bool {
        (a.segment, a.offset) < (b.segment, b.offset)
    }
}

public struct LogRecord: Equatable {
    public var source: UInt32
    public var sequence: UInt64
    public var timeMs: UInt64
    public var kind: UInt8
    public var payload: [UInt8]
    public init(source: UInt32, sequence: UInt64, timeMs: UInt64, kind: UInt8, payload: [UInt8]) {
        self.source = source
        self.sequence = sequence
        self.timeMs = timeMs
        self.kind = kind
        self.payload = payload
    }
}

/// Query filter: every field is optional; times are inclusive.
public struct LogFilter {
    public var source: UInt32?
    public var kind: UInt8?
    public var fromMs: UInt64
    public var toMs: UInt64
    /// Only records with this sequence or a higher one (replication's paging).
    public var sequenceFrom: UInt64 = 0
    public init(source: UInt32? = nil, kind: UInt8? = nil, fromMs: UInt64 = 0, toMs: UInt64 = UInt64.max) {
        self.source = source
        self.kind = kind
        self.fromMs = fromMs
        self.toMs = toMs
    }
    func matches(source s: UInt32, kind k: UInt8, timeMs t: UInt64, sequence: UInt64) -> Bool {
        if let source, source != s { return false }
        if let kind, kind != k { return false }
        return t >= fromMs && t <= toMs && sequence >= sequenceFrom
    }
}

/// What recovery found. Corruption is reported here, never skipped silently.
public struct LogRecoveryReport: Equatable {
    public var segments = 0
    public var records = 0
    /// The head ended in a torn (partly programmed, never acked) record, now cut.
    public var tornTailCut = false
    /// Offset in the head segment where the torn bytes start.
    public var tornTailOffset = 0
    /// Segments inside the ring whose header is unreadable (their records are lost).
    public var corruptSegments = 0
    /// Damaged stretches of records inside segments (the scan resumed after each).
    public var corruptRegions = 0
    /// The first damaged place found (segment sequence, offset), if any.
    public var firstCorruption: LogPosition?
    /// Sectors outside the ring holding neither a header nor erased flash
    /// (never formatted, or a half-opened segment after the head).
    public var unreadableSectors = 0
    public init() {}
    public var corruptionFound: Bool { corruptSegments > 0 || corruptRegions > 0 }
}

public struct LogCounters: Equatable {
    public var appended: UInt64 = 0
    public var duplicates: UInt64 = 0
    public var segmentsOpened: UInt64 = 0
    public var segmentsRetired: UInt64 = 0
    public var recordsRetired: UInt64 = 0
    public var verifyFailures: UInt64 = 0
    public var sourcesForgotten: UInt64 = 0
    public init() {}
}

public struct RecordLog<Flash: LogFlash> {
    /// One live segment. Scalars only, size == stride on armv6m.
    struct Segment {
        var sector: UInt32
        var sequence: UInt32
        /// End of the valid records (the next append's offset in the head).
        var end: UInt32
        var records: UInt32
    }

    /// Per-source high-water mark for duplicate detection.
    struct SourceMark {
        var source: UInt32
        var lastUse: UInt32
        var highest: UInt64
    }

    public private(set) var flash: Flash
    public let limits: LogLimits
    public private(set) var recovery = LogRecoveryReport()
    public private(set) var counters = LogCounters()
    /// Erases of each sector: from the segment headers at recovery, counted after.
    public private(set) var eraseCounts: [UInt32]
    // Tables of scalars: `Table`, not Array (no per-type growth and shift code).
    var segments: Table<Segment>
    /// Set by a torn tail or a failed verify: the next append opens a new segment.
    var headSealed = false
    var halted = false
    var marks: Table<SourceMark>
    var useClock: UInt32 = 0
    var scratch: [UInt8] = []
    var readBack: [UInt8] = []

    /// Opens the log: runs recovery over whatever the flash holds (erased flash
    /// is an empty log). See `recovery` for what was found.
    public init(flash: Flash, limits: LogLimits = LogLimits()) throws(LogError) {
        limits.check(sectorSize: flash.sectorSize)
        precondition(flash.sectorCount >= 2 && flash.sectorCount <= 4096)
        self.flash = flash
        self.limits = limits
        eraseCounts = Array(repeating: 0, count: flash.sectorCount)
        segments = Table(capacity: flash.sectorCount)
        marks = Table(capacity: limits.sourcesMax)
        scratch.reserveCapacity(flash.sectorSize)
        readBack.reserveCapacity(flash.sectorSize)
        try recover()
    }

    // MARK: Views

    public var segmentCount: Int { segments.count }
    public var recordCount: Int {
        var n = 0
        for s in segments { n += Int(s.records) }
        return n
    }
    /// A flash operation failed: open the log again (recovery) before using it.
    public var isHalted: Bool { halted }
    /// The sector the head segment is in (nil for an empty log).
    public var headSector: Int? { segments.last.map { Int($0.sector) } }
    /// The highest sequence appended for `source`, if it is remembered.
    /// Inlined (a short loop): called out of line on `log!` in a class, it copied the whole RecordLog first.
    @inline(__always)
    public func highWater(source: UInt32) -> UInt64? {
        for m in marks where m.source == source { return m.highest }
        return nil
    }

    // MARK: Append

    public mutating func append(source: UInt32, sequence: UInt64, timeMs: UInt64, kind: UInt8,
                                payload: [UInt8]) throws(LogError) -> LogAppendResult {
        guard !halted else { throw .halted }
        guard payload.count <= limits.payloadBytesMax else { throw .payloadTooLarge }
        if let h = highWater(source: source), sequence <= h {
            counters.duplicates &+= 1
            return .duplicate
        }
        let size = LogFormat.recordBytes(payloadCount: payload.count)
        if segments.isEmpty || headSealed || Int(segments[segments.count - 1].end) + size > flash.sectorSize {
            try openSegment()
        }
        let head = segments[segments.count - 1]
        let offset = Int(head.sector) * flash.sectorSize + Int(head.end)

        clearScratch()
        put16(&scratch, UInt16(payload.count))
        scratch.append(kind)
        scratch.append(LogFormat.recordMarker)
        put32(&scratch, source)
        put64(&scratch, sequence)
        put64(&scratch, timeMs)
        scratch.append(contentsOf: payload)
        put32(&scratch, CRC32.checksum(scratch))

        try program(offset: offset, scratch)
        try verify(offset: offset)

        let position = LogPosition(segment: head.sequence, offset: head.end)
        segments[segments.count - 1].end = head.end + UInt32(size)
        segments[segments.count - 1].records += 1
        noteSequence(source: source, sequence: sequence)
        counters.appended &+= 1
        return .appended(position)
    }

    /// Empties `scratch`, keeping its capacity. Out of line: inlined, each
    /// `removeAll(keepingCapacity:)` was a uniqueness test and a `replaceSubrange` call.
    @inline(never)
    mutating func clearScratch() {
        scratch.removeAll(keepingCapacity: true)
    }

    mutating func program(offset: Int, _ bytes: [UInt8]) throws(LogError) {
        do {
            try flash.program(offset: offset, bytes: bytes)
        } catch {
            halted = true
            throw .flash(error)
        }
    }

    /// Reads back what `scratch` holds at `offset`; a difference seals the head.
    mutating func verify(offset: Int) throws(LogError) {
        do {
            try flash.read(offset: offset, count: scratch.count, into: &readBack)
        } catch {
            halted = true
            throw .flash(error)
        }
        if readBack != scratch {
            headSealed = true
            counters.verifyFailures &+= 1
            throw .verifyFailed
        }
    }

    /// Opens the segment after the head, retiring the oldest one first when the
    /// ring is full (retention).
    mutating func openSegment() throws(LogError) {
        let n = flash.sectorCount
        let next: Int = segments.isEmpty ? 0 : (Int(segments[segments.count - 1].sector) + 1) % n
        if let oldest = segments.first, Int(oldest.sector) == next {
            // Zero the header before erasing: a cut erase can then never leave
            // a valid header over half-erased records.
            clearScratch()
            for _ in 0..<LogFormat.segmentHeaderBytes / 4 { put32(&scratch, 0) }  // put32 is out of line: a short loop
            try program(offset: next * flash.sectorSize, scratch)
            counters.recordsRetired &+= UInt64(oldest.records)
            segments.remove(at: 0)  // removeFirst() is a 0.2 KB replaceSubrange for this element type
            counters.segmentsRetired &+= 1
        }
        do {
            try flash.erase(sector: next)
        } catch {
            halted = true
            throw .flash(error)
        }
        eraseCounts[next] &+= 1
        let sequence = (segments.last?.sequence ?? lastSequenceSeen) &+ 1
        let previousEnd = segments.last?.end ?? LogFormat.noPreviousEnd
        clearScratch()
        put32(&scratch, LogFormat.segmentMagic)
        scratch.append(LogFormat.formatVersion)
        scratch.append(0)
        put16(&scratch, 0)
        put32(&scratch, sequence)
        put32(&scratch, eraseCounts[next])
        put32(&scratch, previousEnd)
        put32(&scratch, CRC32.checksum(scratch))
        headSealed = true  // until the header is verified
        try program(offset: next * flash.sectorSize, scratch)
        try verify(offset: next * flash.sectorSize)
        segments.append(Segment(sector: UInt32(next), sequence: sequence,
                                end: UInt32(LogFormat.segmentHeaderBytes), records: 0))
        lastSequenceSeen = sequence
        headSealed = false
        counters.segmentsOpened &+= 1
    }

    var lastSequenceSeen: UInt32 = 0

    mutating func noteSequence(source: UInt32, sequence: UInt64) {
        useClock &+= 1
        for i in marks.indices where marks[i].source == source {
            if sequence > marks[i].highest { marks[i].highest = sequence }
            marks[i].lastUse = useClock
            return
        }
        if marks.count == limits.sourcesMax {
            var oldest = 0
            for i in marks.indices where marks[i].lastUse < marks[oldest].lastUse { oldest = i }
            marks.remove(at: oldest)
            counters.sourcesForgotten &+= 1
        }
        marks.append(SourceMark(source: source, lastUse: useClock, highest: sequence))
    }

    // MARK: Recovery

    enum HeaderClass: Equatable { case valid, blank, retired, other }

    struct Header {
        var kind: HeaderClass
        /// Recovery: the sector is in the live ring (in the padding after `kind`: no table of its own).
        var inRing = false
        var sequence: UInt32 = 0
        var eraseCount: UInt32 = 0
        var previousEnd: UInt32 = 0
    }

    mutating func readSector(_ sector: Int, count: Int) throws(LogError) {
        do {
            try flash.read(offset: sector * flash.sectorSize, count: count, into: &scratch)
        } catch {
            halted = true
            throw .flash(error)
        }
    }

    mutating func readHeader(_ sector: Int) throws(LogError) -> Header {
        try readSector(sector, count: LogFormat.segmentHeaderBytes)
        var ones = true, zeros = true
        for b in scratch {
            if b != 0xFF { ones = false }
            if b != 0 { zeros = false }
        }
        if ones { return Header(kind: .blank) }
        if zeros { return Header(kind: .retired) }
        guard be32(scratch, 0) == LogFormat.segmentMagic, scratch[4] == LogFormat.formatVersion,
              be32(scratch, 20) == CRC32.checksum(scratch, from: 0, to: 20) else { return Header(kind: .other) }
        return Header(kind: .valid, sequence: be32(scratch, 8), eraseCount: be32(scratch, 12),
                      previousEnd: be32(scratch, 16))
    }

    mutating func recover() throws(LogError) {
        let n = flash.sectorCount
        var headers = Table<Header>(capacity: n)
        var headSector = -1
        var headSequence: UInt32 = 0  // the head's, kept here (not read back from the table)
        var maxErase: UInt32 = 0
        for s in 0..<n {
            let h = try readHeader(s)
            headers.append(h)
            if h.kind == .valid {
                maxErase = max(maxErase, h.eraseCount)
                if headSector < 0 || h.sequence > headSequence { headSector = s; headSequence = h.sequence }
            }
        }
        for s in 0..<n {
            eraseCounts[s] = headers[s].kind == .valid ? headers[s].eraseCount : maxErase
        }
        var report = LogRecoveryReport()
        if headSector >= 0 {
            // Walk back from the head: sector head-k must hold sequence headSeq-k.
            lastSequenceSeen = headSequence
            // The chain, newest first: the sectors in the ring are marked here
            // and their segments appended below, oldest first.
            var k = 0
            while k < n && UInt32(k) < headSequence {
                let s = (headSector - k + n) % n
                let want = headSequence - UInt32(k)
                let h = headers[s]
                if h.kind == .valid {
                    guard h.sequence == want else { break }  // an older turn of the ring: the live part ended
                } else {
                    // Lost in the middle, or the end of the ring? It is lost if
                    // an older segment further back still continues the chain.
                    var continues = false
                    var j = k + 1
                    while j < n && UInt32(j) < headSequence {
                        let sj = (headSector - j + n) % n
                        if headers[sj].kind == .valid && headers[sj].sequence == headSequence - UInt32(j) {
                            continues = true
                            break
                        }
                        j += 1
                    }
                    guard continues else { break }
                    report.corruptSegments += 1
                    if report.firstCorruption == nil {
                        report.firstCorruption = LogPosition(segment: want, offset: 0)
                    }
                }
                headers[s].inRing = true  // both ways on here (one table write, not two)
                k += 1
            }
            // The k sectors walked, oldest first (`segments` is empty: recovery
            // runs once, from init); every valid header among them continues the
            // chain, the others are lost segments. Appended in order, not reversed
            // after: the inlined reverse was ~130 B.
            var s = (headSector - k + 1 + n) % n
            for _ in 0..<k {
                let h = headers[s]
                if h.kind == .valid {
                    segments.append(Segment(sector: UInt32(s), sequence: h.sequence, end: 0, records: 0))
                }
                s = s + 1 == n ? 0 : s + 1
            }
        }
        for h in headers where !h.inRing && h.kind == .other { report.unreadableSectors += 1 }

        // Scan every segment's records, oldest first.
        var i = 0
        while i < segments.count {
            let seg = segments[i]
            let isHead = i == segments.count - 1
            var certifiedEnd: Int? = nil
            if !isHead, case let after = segments[i + 1], after.sequence == seg.sequence + 1 {
                let e = Int(headers[Int(after.sector)].previousEnd)
                if e >= LogFormat.segmentHeaderBytes && e <= flash.sectorSize { certifiedEnd = e }
            }
            try readSector(Int(seg.sector), count: flash.sectorSize)
            var records = 0
            var scanner = Scan(scratch, stopAt: certifiedEnd, payloadBytesMax: limits.payloadBytesMax)
            while let o = scanner.next(scratch) {
                noteSequence(source: be32(scratch, o + 4), sequence: be64(scratch, o + 8))
                records += 1
            }
            let scan = scanner.result
            report.records += records
            var damaged = scan.corruptRegions
            if let torn = scan.tornFrom {
                if isHead {
                    report.tornTailCut = true
                    report.tornTailOffset = torn
                    headSealed = true
                } else {
                    damaged += 1
                }
            }
            if damaged > 0 {
                report.corruptRegions += damaged
                if report.firstCorruption == nil {
                    report.firstCorruption = LogPosition(segment: seg.sequence, offset: UInt32(scan.firstDamage))
                }
            }
            // One table write for both fields (each field write was a uniqueness test and an address).
            segments[i] = Segment(sector: seg.sector, sequence: seg.sequence,
                                  end: UInt32(certifiedEnd ?? scan.end), records: UInt32(records))
            i += 1
        }
        report.segments = segments.count
        recovery = report
        // Counters describe this boot's work; recovery's own note-taking is not appends.
        counters = LogCounters()
    }

    struct ScanResult {
        /// Offset after the last valid record (or the certified end).
        var end: Int
        var corruptRegions: Int
        /// Offset of trailing garbage with no valid record after it (torn tail).
        var tornFrom: Int?
        var firstDamage: Int
    }

    /// Length of the valid record at `o`, padded; nil if there is none.
    @inline(never)  // called from the scan's two loops; one copy of the CRC check
    static func recordEnd(_ buf: [UInt8], at o: Int, limit: Int, payloadBytesMax: Int) -> Int? {
        guard o + LogFormat.recordHeaderBytes + LogFormat.crcBytes <= limit else { return nil }
        let len = Int(be16(buf, o))
        guard buf[o + 3] == LogFormat.recordMarker, len <= payloadBytesMax else { return nil }
        let crcAt = o + LogFormat.recordHeaderBytes + len
        guard crcAt + LogFormat.crcBytes <= limit else { return nil }
        guard be32(buf, crcAt) == CRC32.checksum(buf, from: o, to: crcAt) else { return nil }
        return (crcAt + LogFormat.crcBytes + 3) & ~3
    }

    static func allErased(_ buf: [UInt8], from: Int, to: Int) -> Bool {
        var i = from
        while i < to {
            if buf[i] != 0xFF { return false }
            i += 1
        }
        return true
    }

    /// The offsets of the valid records of a segment image, one `next` at a
    /// time. With `stopAt` (a certified end) the records end there; without,
    /// at erased flash, or at garbage (`tornFrom`). A cursor, not a function
    /// taking a closure: the optimizer copied such a function into each caller
    /// with its closure (two copies of the loop).
    struct Scan {
        let stopAt: Int?
        /// `stopAt`, or the image's size.
        let limit: Int
        let payloadBytesMax: Int
        var o = LogFormat.segmentHeaderBytes
        var result = ScanResult(end: LogFormat.segmentHeaderBytes, corruptRegions: 0, tornFrom: nil, firstDamage: 0)

        init(_ buf: [UInt8], stopAt: Int?, payloadBytesMax: Int) {
            self.stopAt = stopAt
            limit = stopAt ?? buf.count
            self.payloadBytesMax = payloadBytesMax
        }

        /// The next valid record's offset; nil at the end (call no more then).
        @inline(never)  // recovery and queries share one copy
        mutating func next(_ buf: [UInt8]) -> Int? {
            while o < limit {
                if stopAt == nil && be32(buf, o) == 0xFFFF_FFFF && allErased(buf, from: o, to: buf.count) {
                    return nil
                }
                if let e = recordEnd(buf, at: o, limit: limit, payloadBytesMax: payloadBytesMax) {
                    let at = o
                    o = e
                    result.end = min(e, limit)
                    return at
                }
                // Damage at o: resynchronise on the next valid record, if any.
                var p = o + 4
                var found = -1
                while p + LogFormat.recordHeaderBytes + LogFormat.crcBytes <= limit {
                    if recordEnd(buf, at: p, limit: limit, payloadBytesMax: payloadBytesMax) != nil {
                        found = p
                        break
                    }
                    p += 4
                }
                if result.corruptRegions == 0 && result.tornFrom == nil { result.firstDamage = o }
                if found < 0 {
                    result.tornFrom = o
                    return nil
                }
                result.corruptRegions += 1
                o = found
            }
            return nil
        }
    }

    // MARK: Queries

    /// Appends to `out` up to `limit` records matching `filter`, oldest first,
    /// starting after `cursor`. Returns the position of the last record read
    /// (pass it back as the cursor for the next page), nil when the end was reached.
    /// A page also ends before a record whose payload plus `recordOverhead`
    /// would take the records taken past `bytesMax` (the first is always
    /// taken); the position returned is then the last record taken's. One
    /// query serves the service's frame-sized pages and replication's chunks
    /// (each paged and trimmed its own way before).
    @inline(never)  // several callers (queries, replication's paging): one copy
    public mutating func query(_ filter: LogFilter, after cursor: LogPosition? = nil, limit: Int,
                               bytesMax: Int = Int.max, recordOverhead: Int = 0,
                               into out: inout [LogRecord]) throws(LogError) -> LogPosition? {
        guard !halted else { throw .halted }
        var taken = 0
        var bytes = 0
        var last: LogPosition? = nil
        var lastTaken = LogPosition(segment: 0, offset: 0)
        var i = 0
        while i < segments.count {
            let seg = segments[i]
            i += 1
            if let cursor, seg.sequence < cursor.segment { continue }
            try readSector(Int(seg.sector), count: flash.sectorSize)
            let buf = scratch
            var scanner = Scan(buf, stopAt: Int(seg.end), payloadBytesMax: limits.payloadBytesMax)
            while let o = scanner.next(buf) {
                let here = LogPosition(segment: seg.sequence, offset: UInt32(o))
                if let cursor, here <= cursor { continue }
                if taken == limit { break }
                let source = be32(buf, o + 4)
                let time = be64(buf, o + 16)
                let kind = buf[o + 2]
                let sequence = be64(buf, o + 8)
                if filter.matches(source: source, kind: kind, timeMs: time, sequence: sequence) {
                    let len = Int(be16(buf, o))
                    bytes += len + recordOverhead
                    if taken > 0 && bytes > bytesMax { return lastTaken }
                    out.append(LogRecord(source: source, sequence: sequence, timeMs: time, kind: kind,
                                         payload: Array(buf[(o + 24)..<(o + 24 + len)])))
                    taken += 1
                    lastTaken = here
                }
                last = here
            }
            if taken == limit { return last }
        }
        return nil
    }

    /// The highest sequence of `source`'s records below `sequence` (0 = none):
    /// a scan of the record headers (paging through `query` copied every record).
    public mutating func newestSequence(source: UInt32, below sequence: UInt64) throws(LogError) -> UInt64 {
        guard !halted else { throw .halted }
        var newest: UInt64 = 0
        var i = 0
        while i < segments.count {
            let seg = segments[i]
            i += 1
            try readSector(Int(seg.sector), count: flash.sectorSize)
            let buf = scratch
            var scanner = Scan(buf, stopAt: Int(seg.end), payloadBytesMax: limits.payloadBytesMax)
            while let o = scanner.next(buf) {
                let s = be64(buf, o + 8)
                if be32(buf, o + 4) == source && s < sequence { newest = max(newest, s) }
            }
        }
        return newest
    }

    /// Every record, oldest first (tests, small logs).
    public mutating func allRecords() throws(LogError) -> [LogRecord] {
        var out: [LogRecord] = []
        _ = try query(LogFilter(), limit: Int.max, into: &out)
        return out
    }
}

// MARK: - Big-endian helpers

// Readers out of line: inlined, each `be64` is eight bounds checks and the
// shifts, repeated at every field of the header and record parsers.
@inline(never) func be16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) << 8 | UInt16(b[o + 1]) }
@inline(never) func be32(_ b: [UInt8], _ o: Int) -> UInt32 {
    UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
}
@inline(never) func be64(_ b: [UInt8], _ o: Int) -> UInt64 { UInt64(be32(b, o)) << 32 | UInt64(be32(b, o + 4)) }
@inline(__always) func put16(_ b: inout [UInt8], _ v: UInt16) {
    b.append(UInt8(truncatingIfNeeded: v >> 8))
    b.append(UInt8(truncatingIfNeeded: v))
}
@inline(never) func put32(_ b: inout [UInt8], _ v: UInt32) {
    put16(&b, UInt16(truncatingIfNeeded: v >> 16))
    put16(&b, UInt16(truncatingIfNeeded: v))
}
@inline(never) func put64(_ b: inout [UInt8], _ v: UInt64) {
    put32(&b, UInt32(truncatingIfNeeded: v >> 32))
    put32(&b, UInt32(truncatingIfNeeded: v))
}
