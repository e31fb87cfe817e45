// UF2 for the RP2040 (Microsoft's USB flashing format): the file a Pico takes in
// BOOTSEL mode. TDOS makes its own from the linker's ELF, so picotool is not
// needed, and checks every file before a user copies it to a board.
//
// A UF2 file is a sequence of 512-byte blocks, all fields little-endian:
//
//   0    magic 0x0A324655 ("UF2\n")      4  magic 0x9E5D5157
//   8    flags (0x2000: family id present)
//   12   target address (flash, 256-byte aligned)
//   16   payload size (256 for the RP2040 bootrom)
//   20   block number (0-based)          24 number of blocks in the file
//   28   family id (RP2040: 0xE48BFF56)
//   32   payload (256 bytes used of 476; the rest is zero)
//   508  magic 0x0AB16F30
//
// This file uses nothing but the standard library; `tdos uf2` and `tdos
// provision` (HostTools/CLI/FirmwareCommands.swift) are its commands.

public enum UF2 {
    public static let blockBytes = 512
    public static let payloadBytes = 256
    public static let magicStart0: UInt32 = 0x0A32_4655
    public static let magicStart1: UInt32 = 0x9E5D_5157
    public static let magicEnd: UInt32 = 0x0AB1_6F30
    public static let flagFamilyIDPresent: UInt32 = 0x0000_2000
    public static let flagNotMainFlash: UInt32 = 0x0000_0001
    public static let familyRP2040: UInt32 = 0xE48B_FF56
    /// XIP address of flash offset 0 on the RP2040.
    public static let flashBase: UInt32 = 0x1000_0000
    /// The Pico W's flash (linker/tdos_flash_layout.h: TDOS_FLASH_SIZE_BYTES).
    public static let picoWFlashBytes: UInt32 = 0x20_0000
    /// The reserved regions (linker/tdos_flash_layout.h): an image ends below
    /// `reservedStart`; a provisioning UF2 writes config A and clears config B.
    public static let reservedStart: UInt32 = 0x101B_8000
    public static let configAAddress: UInt32 = 0x101F_E000
    public static let configBAddress: UInt32 = 0x101F_F000
    public static let configBytes: UInt32 = 0x1000
    /// Where a provisioning UF2 may write: config A and config B.
    public static var configRange: Range<UInt32> { configAAddress..<(configBAddress + configBytes) }

    /// The provisioning UF2 for a config record: the record at config A (padded
    /// with 0xFF to whole pages), and one page of 0xFF at config B. The bootrom
    /// erases each sector it writes into, so copy B is cleared: a copy B left by
    /// runtime config updates (with a higher sequence) cannot outrank the new record.
    public static func provisioning(record: [UInt8]) throws(Failure) -> [UInt8] {
        guard !record.isEmpty, record.count <= Int(configBytes) else { throw .badSegment("a config record is 1-4096 bytes, got \(record.count)") }
        var a = record
        while a.count % payloadBytes != 0 { a.append(0xFF) }
        return try encode(segments: [Segment(address: configAAddress, bytes: a),
                                     Segment(address: configBAddress, bytes: [UInt8](repeating: 0xFF, count: payloadBytes))])
    }

    /// boot2: the first 256 bytes of flash; the bootrom checks a CRC-32/MPEG-2 of
    /// bytes 0..<252 stored little-endian at 252..<256 before running it.
    public static let boot2Bytes = 256

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notELF(String)
        case badSegment(String)
        case empty
        case badSize(Int)
        case badBlock(index: Int, String)
        case boot2(String)

        public var description: String {
            switch self {
            case .notELF(let s): return "not an ELF32 ARM little-endian executable: \(s)"
            case .badSegment(let s): return "bad loadable segment: \(s)"
            case .empty: return "nothing to write"
            case .badSize(let n): return "\(n) bytes is not a whole number of 512-byte UF2 blocks"
            case .badBlock(let i, let s): return "block \(i): \(s)"
            case .boot2(let s): return "boot2: \(s)"
            }
        }
    }

    // MARK: ELF to UF2

    /// One contiguous run of bytes to write at a flash address.
    public struct Segment: Equatable {
        public var address: UInt32
        public var bytes: [UInt8]
        public init(address: UInt32, bytes: [UInt8]) {
            self.address = address
            self.bytes = bytes
        }
    }

    /// The UF2 of an ELF32 executable: the file bytes of every PT_LOAD segment at
    /// its physical (load) address, which must lie in flash. `.data`'s initial
    /// values are such a segment: linked for RAM, loaded from flash.
    public static func convert(elf: [UInt8], flashBytes: UInt32 = picoWFlashBytes) throws(Failure) -> [UInt8] {
        try encode(segments: loadSegments(elf: elf), flashBytes: flashBytes)
    }

    /// The PT_LOAD segments of an ELF32 little-endian ARM file that have file bytes.
    public static func loadSegments(elf: [UInt8]) throws(Failure) -> [Segment] {
        guard elf.count >= 52 else { throw .notELF("\(elf.count) bytes, shorter than an ELF header") }
        guard elf[0] == 0x7F, elf[1] == 0x45, elf[2] == 0x4C, elf[3] == 0x46 else { throw .notELF("no ELF magic") }
        guard elf[4] == 1 else { throw .notELF("not 32-bit (EI_CLASS \(elf[4]))") }
        guard elf[5] == 1 else { throw .notELF("not little-endian (EI_DATA \(elf[5]))") }
        guard u16(elf, 18) == 40 else { throw .notELF("machine \(u16(elf, 18)), not ARM (40)") }
        let phoff = Int(u32(elf, 28))
        let phentsize = Int(u16(elf, 42))
        let phnum = Int(u16(elf, 44))
        guard phentsize >= 32, phnum > 0, phoff <= elf.count, phnum * phentsize <= elf.count - phoff else {
            throw .notELF("program headers out of the file (offset \(phoff), \(phnum) x \(phentsize))")
        }
        var segments: [Segment] = []
        for i in 0..<phnum {
            let h = phoff + i * phentsize
            guard u32(elf, h) == 1 else { continue }  // PT_LOAD
            let offset = Int(u32(elf, h + 4))
            let paddr = u32(elf, h + 12)
            let filesz = Int(u32(elf, h + 16))
            guard filesz > 0 else { continue }  // .bss and friends: nothing to write
            guard offset <= elf.count, filesz <= elf.count - offset else {
                throw .badSegment("segment \(i) runs past the end of the file")
            }
            segments.append(Segment(address: paddr, bytes: Array(elf[offset..<offset + filesz])))
        }
        return segments
    }

    /// UF2 blocks for `segments`: every 256-byte flash page they touch, in address
    /// order, bytes of a page no segment covers set to zero (as picotool does).
    public static func encode(segments: [Segment], familyID: UInt32 = familyRP2040,
                              flashBytes: UInt32 = picoWFlashBytes) throws(Failure) -> [UInt8] {
        var pages: [UInt32: [UInt8]] = [:]
        var written: [(start: UInt64, end: UInt64)] = []
        for s in segments where !s.bytes.isEmpty {
            let start = UInt64(s.address), end = start + UInt64(s.bytes.count)
            guard start >= UInt64(flashBase), end <= UInt64(flashBase) + UInt64(flashBytes) else {
                throw .badSegment("0x\(hex(s.address)) + \(s.bytes.count) bytes is outside flash "
                    + "(0x\(hex(flashBase)) + \(flashBytes) bytes): is this a RAM-only (no_flash) build?")
            }
            for w in written where start < w.end && w.start < end {
                throw .badSegment("segments overlap at 0x\(hex(UInt32(max(start, w.start))))")
            }
            written.append((start, end))
            var address = s.address
            var i = 0
            while i < s.bytes.count {
                let page = address & ~UInt32(payloadBytes - 1)
                let within = Int(address - page)
                let n = min(payloadBytes - within, s.bytes.count - i)
                var bytes = pages[page] ?? [UInt8](repeating: 0, count: payloadBytes)
                bytes.replaceSubrange(within..<within + n, with: s.bytes[i..<i + n])
                pages[page] = bytes
                i += n
                address += UInt32(n)
            }
        }
        guard !pages.isEmpty else { throw .empty }
        let order = pages.keys.sorted()
        var out: [UInt8] = []
        out.reserveCapacity(order.count * blockBytes)
        for (number, page) in order.enumerated() {
            var block = [UInt8](repeating: 0, count: blockBytes)
            put(&block, 0, magicStart0)
            put(&block, 4, magicStart1)
            put(&block, 8, flagFamilyIDPresent)
            put(&block, 12, page)
            put(&block, 16, UInt32(payloadBytes))
            put(&block, 20, UInt32(number))
            put(&block, 24, UInt32(order.count))
            put(&block, 28, familyID)
            block.replaceSubrange(32..<32 + payloadBytes, with: pages[page]!)
            put(&block, 508, magicEnd)
            out.append(contentsOf: block)
        }
        return out
    }

    // MARK: validation

    public struct Report: Equatable {
        public var blocks: Int
        public var firstAddress: UInt32
        /// One past the last byte written.
        public var endAddress: UInt32
        /// The boot2 CRC, when the file writes flash offset 0.
        public var boot2CRC: UInt32?
    }

    /// Checks everything the RP2040 bootrom relies on: both start magics and the
    /// end magic, the family-id flag and RP2040's family id, 256-byte payloads,
    /// 256-byte-aligned addresses inside flash and never twice the same, block
    /// numbers 0..<n in order with n in every block, zero padding after the
    /// payload; and, when the file writes flash offset 0 (an image; always when
    /// `requireBoot2`), that boot2's CRC-32/MPEG-2 matches.
    ///
    /// `allowed`: when given, every block must lie inside it (an image must stay
    /// below the reserved config/state/log regions; a config UF2 inside them).
    public static func validate(_ uf2: [UInt8], requireBoot2: Bool, allowed: Range<UInt32>? = nil,
                                flashBytes: UInt32 = picoWFlashBytes) throws(Failure) -> Report {
        guard !uf2.isEmpty, uf2.count % blockBytes == 0 else { throw .badSize(uf2.count) }
        let count = uf2.count / blockBytes
        var seen = Set<UInt32>()
        var first = UInt32.max, end: UInt32 = 0
        var boot2: [UInt8]? = nil
        for i in 0..<count {
            let b = i * blockBytes
            func fail(_ s: String) -> Failure { .badBlock(index: i, s) }
            guard u32(uf2, b) == magicStart0, u32(uf2, b + 4) == magicStart1 else { throw fail("bad start magic") }
            guard u32(uf2, b + 508) == magicEnd else { throw fail("bad end magic") }
            let flags = u32(uf2, b + 8)
            guard flags & flagFamilyIDPresent != 0 else { throw fail("family id flag (0x2000) not set") }
            guard flags & flagNotMainFlash == 0 else { throw fail("marked 'not main flash'") }
            guard u32(uf2, b + 28) == familyRP2040 else {
                throw fail("family id 0x\(hex(u32(uf2, b + 28))), not RP2040's 0x\(hex(familyRP2040))")
            }
            guard u32(uf2, b + 16) == UInt32(payloadBytes) else { throw fail("payload size \(u32(uf2, b + 16)), not 256") }
            let address = u32(uf2, b + 12)
            guard address % UInt32(payloadBytes) == 0 else { throw fail("address 0x\(hex(address)) not 256-aligned") }
            guard address >= flashBase, UInt64(address) + UInt64(payloadBytes) <= UInt64(flashBase) + UInt64(flashBytes)
            else { throw fail("address 0x\(hex(address)) outside flash") }
            if let allowed, !(address >= allowed.lowerBound && address + UInt32(payloadBytes) <= allowed.upperBound) {
                throw fail("address 0x\(hex(address)) outside 0x\(hex(allowed.lowerBound))..<0x\(hex(allowed.upperBound))")
            }
            guard seen.insert(address).inserted else { throw fail("address 0x\(hex(address)) written twice") }
            guard u32(uf2, b + 20) == UInt32(i) else { throw fail("block number \(u32(uf2, b + 20)), expected \(i)") }
            guard u32(uf2, b + 24) == UInt32(count) else { throw fail("says \(u32(uf2, b + 24)) blocks, file has \(count)") }
            guard uf2[(b + 32 + payloadBytes)..<(b + 508)].allSatisfy({ $0 == 0 }) else {
                throw fail("bytes after the 256-byte payload are not zero")
            }
            first = min(first, address)
            end = max(end, address + UInt32(payloadBytes))
            if address == flashBase { boot2 = Array(uf2[(b + 32)..<(b + 32 + boot2Bytes)]) }
        }
        var crc: UInt32? = nil
        if let boot2 {
            let computed = crc32MPEG2(boot2[0..<252])
            let stored = u32(boot2, 252)
            guard computed == stored else {
                throw .boot2("CRC-32/MPEG-2 of bytes 0..<252 is 0x\(hex(computed)), stored 0x\(hex(stored))")
            }
            crc = stored
        } else if requireBoot2 {
            throw .boot2("no block at 0x\(hex(flashBase)): an image must start with boot2")
        }
        return Report(blocks: count, firstAddress: first, endAddress: end, boot2CRC: crc)
    }

    /// CRC-32/MPEG-2: polynomial 0x04C11DB7, init 0xFFFFFFFF, no reflection, no
    /// final xor; of "123456789" it is 0x0376E6E7. The RP2040 bootrom's boot2 check.
    public static func crc32MPEG2<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte) << 24
            for _ in 0..<8 {
                crc = crc & 0x8000_0000 != 0 ? (crc << 1) ^ 0x04C1_1DB7 : crc << 1
            }
        }
        return crc
    }

    // MARK: helpers

    static func u16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
    static func put(_ b: inout [UInt8], _ i: Int, _ v: UInt32) {
        b[i] = UInt8(v & 0xFF)
        b[i + 1] = UInt8(v >> 8 & 0xFF)
        b[i + 2] = UInt8(v >> 16 & 0xFF)
        b[i + 3] = UInt8(v >> 24)
    }
    static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 8 - s.count)) + s
    }
}
