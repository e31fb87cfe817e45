// The reserved flash regions (linker/tdos_flash_layout.h, imported through
// tdos_board.h) as Swift values, and the boot epoch kept in the state region.
import TDOSBoard
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
#endif

public enum FlashError: Error, Equatable {
    case range, invalid, io, unsupported

    init(code: Int32) {
        switch code {
        case TDOS_E_RANGE: self = .range
        case TDOS_E_INVALID: self = .invalid
        case TDOS_E_UNSUPPORTED: self = .unsupported
        default: self = .io
        }
    }
}

/// One reserved region. Offsets given to its methods are relative to the region.
public struct FlashRegion {
    public let offset: UInt32
    public let size: UInt32

    public static let sectorBytes = UInt32(TDOS_FLASH_SECTOR_BYTES)
    public static let configA = FlashRegion(offset: UInt32(TDOS_FLASH_CONFIG_A_OFFSET), size: UInt32(TDOS_FLASH_CONFIG_BYTES))
    public static let configB = FlashRegion(offset: UInt32(TDOS_FLASH_CONFIG_B_OFFSET), size: UInt32(TDOS_FLASH_CONFIG_BYTES))
    public static let state = FlashRegion(offset: UInt32(TDOS_FLASH_STATE_OFFSET), size: UInt32(TDOS_FLASH_STATE_BYTES))
    public static let log = FlashRegion(offset: UInt32(TDOS_FLASH_LOG_OFFSET), size: UInt32(TDOS_FLASH_LOG_BYTES))
    public static let consensusA = FlashRegion(offset: UInt32(TDOS_FLASH_CONSENSUS_OFFSET),
                                               size: UInt32(TDOS_FLASH_CONSENSUS_BYTES) / 2)
    public static let consensusB = FlashRegion(offset: UInt32(TDOS_FLASH_CONSENSUS_OFFSET) + UInt32(TDOS_FLASH_CONSENSUS_BYTES) / 2,
                                               size: UInt32(TDOS_FLASH_CONSENSUS_BYTES) / 2)

    public init(offset: UInt32, size: UInt32) {
        self.offset = offset
        self.size = size
    }

    public func read(at position: UInt32, count: Int) throws(FlashError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let rc = out.withUnsafeMutableBufferPointer {
            tdos_flash_read(offset + position, $0.baseAddress, UInt32($0.count))
        }
        guard rc >= 0 else { throw FlashError(code: rc) }
        return out
    }

    /// Erases whole sectors: `position` and `count` multiples of sectorBytes.
    public func erase(at position: UInt32, count: UInt32) throws(FlashError) {
        let rc = tdos_flash_erase(offset + position, count)
        guard rc >= 0 else { throw FlashError(code: rc) }
    }

    /// Erases the whole region, programs `bytes` at its start and reads them
    /// back: true only when the flash holds them (the A/B stores' one write).
    public func rewrite(_ bytes: [UInt8]) -> Bool {
        guard bytes.count <= Int(size) else { return false }
        do {
            try erase(at: 0, count: size)
            try program(at: 0, bytes)
            return try read(at: 0, count: bytes.count) == bytes
        } catch {
            return false
        }
    }

    /// Programs bytes that were erased (flash only clears bits).
    public func program(at position: UInt32, _ bytes: [UInt8]) throws(FlashError) {
        let rc = bytes.withUnsafeBufferPointer {
            tdos_flash_program(offset + position, $0.baseAddress, UInt32($0.count))
        }
        guard rc >= 0 else { throw FlashError(code: rc) }
    }
}

/// The boot counter that makes message ids unique across reboots (PROTOCOL.md,
/// "Message id"): persisted before the first frame of a boot is sent.
///
/// The state region's two sectors hold 8-byte slots: epoch (u32 BE) and its
/// complement, so a torn write or an erased slot never reads as an epoch. A new
/// epoch goes into the first erased slot of the sector holding the newest one;
/// when that sector is full the other sector is erased and used, so one intact
/// copy of the newest epoch always survives a power cut during the erase.
/// 512 boots per sector: a sector is erased once every 512 boots.
public struct BootEpochStore {
    public static let slotBytes: UInt32 = 8
    let region: FlashRegion

    public init(region: FlashRegion = .state) {
        precondition(region.size >= 2 * FlashRegion.sectorBytes)
        self.region = region
    }

    struct Scan {
        var newest: UInt32 = 0
        var newestSector: UInt32 = 0
        /// First erased slot in each sector (nil: full).
        var freeSlot: (UInt32?, UInt32?) = (nil, nil)
    }

    func scan() throws(FlashError) -> Scan {
        var s = Scan()
        let slotsPerSector = FlashRegion.sectorBytes / BootEpochStore.slotBytes
        let chunk: UInt32 = 256
        for sector: UInt32 in 0..<2 {
            var free: UInt32? = nil
            var base: UInt32 = 0
            while base < FlashRegion.sectorBytes {
                let bytes = try region.read(at: sector * FlashRegion.sectorBytes + base, count: Int(chunk))
                var i = 0
                while i < bytes.count {
                    let slot = (base + UInt32(i)) / BootEpochStore.slotBytes
                    let a = UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
                    let b = UInt32(bytes[i + 4]) << 24 | UInt32(bytes[i + 5]) << 16 | UInt32(bytes[i + 6]) << 8 | UInt32(bytes[i + 7])
                    if a == 0xFFFF_FFFF && b == 0xFFFF_FFFF {
                        if free == nil { free = slot }
                    } else if a == ~b && a >= s.newest {
                        s.newest = a
                        s.newestSector = sector
                    }
                    i += Int(BootEpochStore.slotBytes)
                }
                base += chunk
            }
            precondition(slotsPerSector > 0)
            if sector == 0 { s.freeSlot.0 = free } else { s.freeSlot.1 = free }
        }
        return s
    }

    /// The newest persisted epoch (0 when none).
    public func current() throws(FlashError) -> UInt32 { try scan().newest }

    /// Persists and returns the epoch after the newest one.
    public func advance() throws(FlashError) -> UInt32 {
        let s = try scan()
        let next = s.newest &+ 1
        let sector = s.newestSector
        let free = sector == 0 ? s.freeSlot.0 : s.freeSlot.1
        var target: UInt32
        if let free {
            target = sector * FlashRegion.sectorBytes + free * BootEpochStore.slotBytes
        } else {
            let other = 1 - sector
            try region.erase(at: other * FlashRegion.sectorBytes, count: FlashRegion.sectorBytes)
            target = other * FlashRegion.sectorBytes
        }
        let c = ~next
        try region.program(at: target, [UInt8(next >> 24), UInt8(next >> 16 & 0xFF), UInt8(next >> 8 & 0xFF), UInt8(next & 0xFF),
                                        UInt8(c >> 24), UInt8(c >> 16 & 0xFF), UInt8(c >> 8 & 0xFF), UInt8(c & 0xFF)])
        return next
    }
}

/// The log region (256 KB: 64 sectors of 4 KB, 256-byte pages) as the storage
/// log's flash. tdos_flash_program returns once the pages are written; the log
/// reads every record back before acknowledging it.
public struct PicoLogFlash: LogFlash {
    let region = FlashRegion.log
    public var sectorCount: Int { Int(region.size / FlashRegion.sectorBytes) }
    public var sectorSize: Int { Int(FlashRegion.sectorBytes) }
    public var pageSize: Int { 256 }

    public init() {}

    public func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws(LogFlashError) {
        guard offset >= 0, count >= 0, offset + count <= Int(region.size) else { throw .outOfRange }
        // In place: recovery reads every sector, and the heap is small.
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: repeatElement(0, count: count))
        let start = region.offset + UInt32(offset)
        let rc = buffer.withUnsafeMutableBufferPointer { tdos_flash_read(start, $0.baseAddress, UInt32(count)) }
        guard rc >= 0 else { throw .io }
    }

    public mutating func erase(sector: Int) throws(LogFlashError) {
        guard sector >= 0 && sector < sectorCount else { throw .outOfRange }
        do { try region.erase(at: UInt32(sector) * FlashRegion.sectorBytes, count: FlashRegion.sectorBytes) } catch { throw .io }
    }

    public mutating func program(offset: Int, bytes: [UInt8]) throws(LogFlashError) {
        guard offset >= 0, offset + bytes.count <= Int(region.size) else { throw .outOfRange }
        do { try region.program(at: UInt32(offset), bytes) } catch { throw .io }
    }
}

/// Raft's persistent state in the consensus region: two copies, each
/// [sequence u32 BE][length u32 BE][record], the record ending in its own
/// CRC-32 (RaftPersistentState.encode). A store writes the copy that does not
/// hold the newest valid record, with the next sequence, and reads it back;
/// a power cut mid-write leaves the other copy, the previous state, intact.
public struct ConsensusStore {
    static let headerBytes = 8

    struct Copy {
        var sequence: UInt32
        var record: [UInt8]
    }

    static func read(_ region: FlashRegion) -> Copy? {
        guard let h = try? region.read(at: 0, count: headerBytes) else { return nil }
        let sequence = UInt32(h[0]) << 24 | UInt32(h[1]) << 16 | UInt32(h[2]) << 8 | UInt32(h[3])
        let length = Int(UInt32(h[4]) << 24 | UInt32(h[5]) << 16 | UInt32(h[6]) << 8 | UInt32(h[7]))
        guard length > 4, length <= Int(region.size) - headerBytes,
              let record = try? region.read(at: UInt32(headerBytes), count: length) else { return nil }
        let n = length - 4
        let crc = UInt32(record[n]) << 24 | UInt32(record[n + 1]) << 16 | UInt32(record[n + 2]) << 8 | UInt32(record[n + 3])
        guard CRC32.checksum(record, to: n) == crc else { return nil }  // erased, torn or damaged
        return Copy(sequence: sequence, record: record)
    }

    /// The newest valid copy: (its record, whether it is B). Both copies erased:
    /// empty (a replica that never voted). Neither valid but one written: bytes
    /// that fail the CRC, so consensus stops on this replica rather than forget a vote.
    public static func load() -> (record: [UInt8], sequence: UInt32, inB: Bool) {
        let a = read(.consensusA)
        let b = read(.consensusB)
        if let b, a == nil || b.sequence &- a!.sequence < 0x8000_0000 { return (b.record, b.sequence, true) }
        if let a { return (a.record, a.sequence, false) }
        let erased = { (r: FlashRegion) in (try? r.read(at: 0, count: headerBytes))?.allSatisfy { $0 == 0xFF } ?? false }
        return (erased(.consensusA) && erased(.consensusB) ? [] : [0xFF], 0, true)
    }

    public static func store(_ record: [UInt8]) -> Bool {
        let newest = load()
        let region = newest.inB ? FlashRegion.consensusA : FlashRegion.consensusB
        let s = newest.sequence &+ 1
        let n = UInt32(record.count)
        var bytes: [UInt8] = [UInt8(s >> 24), UInt8(s >> 16 & 0xFF), UInt8(s >> 8 & 0xFF), UInt8(s & 0xFF),
                              UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
        bytes.append(contentsOf: record)
        return region.rewrite(bytes)
    }
}
