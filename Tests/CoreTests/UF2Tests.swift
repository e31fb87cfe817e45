import Foundation
import Testing
@testable import TDOSHost

/// A minimal ELF32 little-endian ARM executable: a header and program headers,
/// then the segments' bytes. Only what UF2.convert reads is filled in.
struct SyntheticELF {
    struct Header {
        var type: UInt32 = 1  // PT_LOAD
        var vaddr: UInt32
        var paddr: UInt32
        var bytes: [UInt8]
        var memsz: UInt32? = nil
    }
    var headers: [Header]
    var machine: UInt16 = 40
    var elfClass: UInt8 = 1

    var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 52)
        out.replaceSubrange(0..<4, with: [0x7F, 0x45, 0x4C, 0x46])
        out[4] = elfClass; out[5] = 1; out[6] = 1
        put16(&out, 16, 2)  // ET_EXEC
        put16(&out, 18, machine)
        put32(&out, 28, 52)  // e_phoff
        put16(&out, 40, 52)
        put16(&out, 42, 32)
        put16(&out, 44, UInt16(headers.count))
        var dataOffset = 52 + 32 * headers.count
        var table: [UInt8] = []
        var data: [UInt8] = []
        for h in headers {
            var ph = [UInt8](repeating: 0, count: 32)
            put32(&ph, 0, h.type)
            put32(&ph, 4, UInt32(dataOffset))
            put32(&ph, 8, h.vaddr)
            put32(&ph, 12, h.paddr)
            put32(&ph, 16, UInt32(h.bytes.count))
            put32(&ph, 20, h.memsz ?? UInt32(h.bytes.count))
            table += ph
            data += h.bytes
            dataOffset += h.bytes.count
        }
        return out + table + data
    }

    func put16(_ b: inout [UInt8], _ i: Int, _ v: UInt16) { b[i] = UInt8(v & 0xFF); b[i + 1] = UInt8(v >> 8) }
    func put32(_ b: inout [UInt8], _ i: Int, _ v: UInt32) {
        for k in 0..<4 { b[i + k] = UInt8(v >> (8 * UInt32(k)) & 0xFF) }
    }
}

/// 256 bytes of "boot2": 252 bytes of pattern and their CRC-32/MPEG-2, little-endian.
func syntheticBoot2() -> [UInt8] {
    var b = (0..<252).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    let crc = UF2.crc32MPEG2(b)
    b += [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)]
    return b
}

/// boot2 + 50 bytes of code at 0x10000000, initialised data linked for RAM but
/// loaded at 0x10000200, a .bss (no file bytes) and a non-LOAD header.
func syntheticImage() -> SyntheticELF {
    let code = syntheticBoot2() + (0..<50).map { UInt8($0) | 0x80 }
    return SyntheticELF(headers: [
        .init(vaddr: 0x1000_0000, paddr: 0x1000_0000, bytes: code),
        .init(vaddr: 0x2000_0000, paddr: 0x1000_0200, bytes: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        .init(vaddr: 0x2000_0010, paddr: 0x2000_0010, bytes: [], memsz: 4096),
        .init(type: 4, vaddr: 0, paddr: 0, bytes: [0xEE, 0xEE]),  // PT_NOTE: ignored
    ])
}

func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}

@Suite struct UF2Tests {
    @Test func crcMPEG2CheckValue() {
        #expect(UF2.crc32MPEG2(Array("123456789".utf8)) == 0x0376_E6E7)
    }

    @Test func convertsLoadSegmentsByPhysicalAddress() throws {
        let elf = syntheticImage()
        let uf2 = try UF2.convert(elf: elf.bytes)
        // Pages 0x10000000 (boot2), 0x10000100 (the code's 50 bytes), 0x10000200 (.data).
        #expect(uf2.count == 3 * 512)
        for (i, page) in [UInt32(0x1000_0000), 0x1000_0100, 0x1000_0200].enumerated() {
            let b = i * 512
            #expect(le32(uf2, b) == 0x0A32_4655)
            #expect(le32(uf2, b + 4) == 0x9E5D_5157)
            #expect(le32(uf2, b + 8) == 0x2000)
            #expect(le32(uf2, b + 12) == page)
            #expect(le32(uf2, b + 16) == 256)
            #expect(le32(uf2, b + 20) == UInt32(i))
            #expect(le32(uf2, b + 24) == 3)
            #expect(le32(uf2, b + 28) == 0xE48B_FF56)
            #expect(le32(uf2, b + 508) == 0x0AB1_6F30)
            #expect(uf2[(b + 288)..<(b + 508)].allSatisfy { $0 == 0 })
        }
        #expect(Array(uf2[32..<288]) == syntheticBoot2())
        #expect(Array(uf2[544..<594]) == (0..<50).map { UInt8($0) | 0x80 })
        #expect(uf2[594..<800].allSatisfy { $0 == 0 }, "the rest of a partial page is zero")
        #expect(Array(uf2[1056..<1066]) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])

        let report = try UF2.validate(uf2, requireBoot2: true)
        #expect(report.blocks == 3)
        #expect(report.firstAddress == 0x1000_0000)
        #expect(report.endAddress == 0x1000_0300)
        #expect(report.boot2CRC == le32(syntheticBoot2(), 252))
    }

    @Test func encodesDataAtAnAddress() throws {
        // What `tdos provision` needs: one record in the config region, no boot2.
        let record = [UInt8](repeating: 0xAB, count: 300)
        let uf2 = try UF2.encode(segments: [.init(address: 0x101F_E000, bytes: record)])
        #expect(uf2.count == 2 * 512)
        let report = try UF2.validate(uf2, requireBoot2: false, allowed: 0x101F_E000..<0x1020_0000)
        #expect(report.boot2CRC == nil)
        #expect(throws: UF2.Failure.self) { try UF2.validate(uf2, requireBoot2: true) }
    }

    @Test func rejectsWhatIsNotAnImageForFlash() {
        var notELF = syntheticImage().bytes
        notELF[1] = 0x58
        #expect(throws: UF2.Failure.self) { try UF2.convert(elf: notELF) }
        var elf64 = syntheticImage()
        elf64.elfClass = 2
        #expect(throws: UF2.Failure.self) { try UF2.convert(elf: elf64.bytes) }
        var x86 = syntheticImage()
        x86.machine = 3
        #expect(throws: UF2.Failure.self) { try UF2.convert(elf: x86.bytes) }
        let ramOnly = SyntheticELF(headers: [.init(vaddr: 0x2000_0000, paddr: 0x2000_0000, bytes: [1, 2, 3])])
        #expect(throws: UF2.Failure.self) { try UF2.convert(elf: ramOnly.bytes) }
        let overlapping = SyntheticELF(headers: [
            .init(vaddr: 0x1000_0000, paddr: 0x1000_0000, bytes: [UInt8](repeating: 1, count: 16)),
            .init(vaddr: 0x1000_0008, paddr: 0x1000_0008, bytes: [2, 2]),
        ])
        #expect(throws: UF2.Failure.self) { try UF2.convert(elf: overlapping.bytes) }
        let nothing = SyntheticELF(headers: [.init(vaddr: 0x2000_0000, paddr: 0x2000_0000, bytes: [], memsz: 64)])
        #expect(throws: UF2.Failure.empty) { try UF2.convert(elf: nothing.bytes) }
        #expect(throws: UF2.Failure.self) { try UF2.convert(elf: Array(notELF.prefix(20))) }
    }

    @Test func validatorCatchesEveryCorruption() throws {
        let good = try UF2.convert(elf: syntheticImage().bytes)
        _ = try UF2.validate(good, requireBoot2: true)

        func corrupted(_ change: (inout [UInt8]) -> Void) -> [UInt8] {
            var b = good
            change(&b)
            return b
        }
        func set(_ b: inout [UInt8], _ i: Int, _ v: UInt32) {
            for k in 0..<4 { b[i + k] = UInt8(v >> (8 * UInt32(k)) & 0xFF) }
        }
        let cases: [(String, [UInt8])] = [
            ("start magic", corrupted { $0[512] ^= 1 }),
            ("second magic", corrupted { $0[4] ^= 1 }),
            ("end magic", corrupted { $0[1023] ^= 1 }),
            ("no family flag", corrupted { set(&$0, 8, 0) }),
            ("not main flash", corrupted { set(&$0, 8, 0x2001) }),
            ("family", corrupted { set(&$0, 28, 0xADA5_2840) }),  // nRF52840's
            ("payload size", corrupted { set(&$0, 16, 476) }),
            ("unaligned", corrupted { set(&$0, 512 + 12, 0x1000_0180) }),
            ("outside flash", corrupted { set(&$0, 512 + 12, 0x2000_0000) }),
            ("written twice", corrupted { set(&$0, 1024 + 12, 0x1000_0100) }),
            ("block number", corrupted { set(&$0, 512 + 20, 7) }),
            ("block count", corrupted { set(&$0, 24, 4) }),
            ("padding", corrupted { $0[400] = 1 }),
            ("boot2 CRC", corrupted { $0[32] ^= 0xFF }),
            ("truncated", Array(good.dropLast(10))),
            ("empty", []),
        ]
        for (name, bytes) in cases {
            #expect(throws: UF2.Failure.self, "\(name)") { try UF2.validate(bytes, requireBoot2: true) }
        }
        // An image must stay below the reserved regions when asked.
        #expect(throws: UF2.Failure.self) {
            try UF2.validate(good, requireBoot2: true, allowed: 0x1000_0000..<0x1000_0200)
        }
    }

    /// The same files, checked by Tests/tools/uf2_check.py: written from the UF2
    /// specification in Python, not from this converter.
    @Test func independentPythonCheckAgrees() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tdos-uf2-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let elf = syntheticImage().bytes
        let elfURL = dir.appendingPathComponent("image.elf")
        let uf2URL = dir.appendingPathComponent("image.uf2")
        try Data(elf).write(to: elfURL)
        try Data(UF2.convert(elf: elf)).write(to: uf2URL)
        let out = try run("python3", ["Tests/tools/uf2_check.py", uf2URL.path, elfURL.path, "--image"])
        #expect(out.contains("3 blocks ok"))
        #expect(out.contains("boot2 CRC"))
        #expect(out.contains("matches the ELF's 316 loadable bytes"))

        var bad = try UF2.convert(elf: elf)
        bad[32 + 10] ^= 1  // boot2 byte: its CRC no longer matches
        try Data(bad).write(to: uf2URL)
        #expect(throws: ProcessFailure.self) {
            try run("python3", ["Tests/tools/uf2_check.py", uf2URL.path, "--image"])
        }
    }

    /// UF2.swift's flash numbers are the ones in linker/tdos_flash_layout.h.
    @Test func flashGeometryMatchesTheLayoutHeader() throws {
        let header = try String(contentsOf: repoRoot.appendingPathComponent("linker/tdos_flash_layout.h"), encoding: .utf8)
        func value(_ name: String) -> UInt32? {
            for line in header.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 3, parts[0] == "#define", parts[1] == name, parts[2].hasPrefix("0x") {
                    return UInt32(parts[2].dropFirst(2), radix: 16)
                }
            }
            return nil
        }
        #expect(value("TDOS_FLASH_XIP_BASE") == UF2.flashBase)
        #expect(value("TDOS_FLASH_SIZE_BYTES") == UF2.picoWFlashBytes)
        let base = UF2.flashBase
        #expect(value("TDOS_FLASH_CONSENSUS_OFFSET").map { $0 + base } == UF2.reservedStart)
        #expect(value("TDOS_FLASH_CONFIG_A_OFFSET").map { $0 + base } == UF2.configAAddress)
        #expect(value("TDOS_FLASH_CONFIG_B_OFFSET").map { $0 + base } == UF2.configBAddress)
        #expect(value("TDOS_FLASH_CONFIG_BYTES") == UF2.configBytes)
    }
}
