// The log's flash: an abstraction of NOR flash (the board's 256 KB log region,
// a file on Linux, RAM in tests). NOR semantics: `erase` sets a whole sector to
// 0xFF; `program` can only clear bits (the stored byte becomes old AND new), so
// programming 0xFF leaves a byte unchanged, and a byte can be programmed again
// only towards fewer ones. The log relies on nothing more.

public enum LogFlashError: Error, Equatable {
    /// Offset, count or sector outside the region: a caller bug reported as an error.
    case outOfRange
    /// The power was cut during this operation (RAMLogFlash's fault model): the
    /// flash may hold a partly erased sector or a partly programmed page.
    case powerLost
    /// The medium failed (a file read/write/fsync error on Linux).
    case io
}

public protocol LogFlash {
    /// Erase units (4 KB sectors on the board).
    var sectorCount: Int { get }
    var sectorSize: Int { get }
    /// Program unit (256-byte pages on the board); `program` may span pages.
    var pageSize: Int { get }
    /// Replaces `buffer` with `count` bytes from `offset` (its capacity is reused).
    func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws(LogFlashError)
    /// Sets every byte of the sector to 0xFF.
    mutating func erase(sector: Int) throws(LogFlashError)
    /// ANDs `bytes` into flash from `offset`. Returns once the bytes are durable
    /// (on Linux: after fsync), so a read-back that matches means durable.
    mutating func program(offset: Int, bytes: [UInt8]) throws(LogFlashError)
}

/// NOR flash in RAM, with a power-cut model for the tests. Every operation is
/// a sequence of steps: `program` one step per byte, `erase` one step per page.
/// With `powerBudgetSteps` set, the operation during which the budget runs out
/// is cut: a program leaves the bytes before the cut programmed, the byte at the
/// cut half programmed (only its high nibble) and the rest untouched (a page
/// partly programmed, a torn write); an erase leaves the pages before the cut
/// erased and the rest as they were. Then it throws `.powerLost`, as does every
/// later operation until `powerOn()` (the reboot).
public struct RAMLogFlash: LogFlash {
    public let sectorCount: Int
    public let sectorSize: Int
    public let pageSize: Int
    public private(set) var bytes: [UInt8]
    /// Erases per sector since this flash was made: the wear the log spreads.
    public private(set) var eraseCounts: [UInt32]
    /// Steps left before the power is cut; nil = never.
    public var powerBudgetSteps: Int?
    public private(set) var powered = true
    /// Steps carried out so far (a fault-free run's total bounds the cut points).
    public private(set) var stepsTaken = 0

    public init(sectorCount: Int, sectorSize: Int, pageSize: Int) {
        precondition(sectorCount >= 2 && sectorSize > 0 && pageSize > 0 && sectorSize % pageSize == 0)
        self.sectorCount = sectorCount
        self.sectorSize = sectorSize
        self.pageSize = pageSize
        bytes = Array(repeating: 0xFF, count: sectorCount * sectorSize)
        eraseCounts = Array(repeating: 0, count: sectorCount)
    }

    /// The reboot after a power cut: flash contents are kept.
    public mutating func powerOn() {
        powered = true
        powerBudgetSteps = nil
    }

    /// Test hook: flips bits as decay or a stray write would (ignores NOR rules).
    public mutating func corrupt(offset: Int, xor mask: UInt8) {
        bytes[offset] ^= mask
    }

    /// Takes one step; false when the power is cut at this step.
    mutating func step() -> Bool {
        if let budget = powerBudgetSteps {
            if budget == 0 {
                powered = false
                return false
            }
            powerBudgetSteps = budget - 1
        }
        stepsTaken += 1
        return true
    }

    public func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws(LogFlashError) {
        guard powered else { throw .powerLost }
        guard offset >= 0, count >= 0, offset + count <= bytes.count else { throw .outOfRange }
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: bytes[offset..<(offset + count)])
    }

    public mutating func erase(sector: Int) throws(LogFlashError) {
        guard powered else { throw .powerLost }
        guard sector >= 0, sector < sectorCount else { throw .outOfRange }
        let base = sector * sectorSize
        var page = 0
        while page * pageSize < sectorSize {
            guard step() else { throw .powerLost }
            for i in 0..<pageSize { bytes[base + page * pageSize + i] = 0xFF }
            page += 1
        }
        eraseCounts[sector] &+= 1
    }

    public mutating func program(offset: Int, bytes new: [UInt8]) throws(LogFlashError) {
        guard powered else { throw .powerLost }
        guard offset >= 0, offset + new.count <= bytes.count else { throw .outOfRange }
        for i in 0..<new.count {
            guard step() else {
                bytes[offset + i] &= new[i] | 0x0F
                throw .powerLost
            }
            bytes[offset + i] &= new[i]
        }
    }
}
