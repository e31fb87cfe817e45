// tdos-uf2: the firmware build's ELF-to-UF2 converter and UF2 checker, until the
// `tdos` CLI exists (it will offer the same as `tdos uf2`, over the same
// HostTools/Host/UF2.swift). scripts/firmware.sh compiles it with swiftc:
//
//   swiftc -O HostTools/Host/UF2.swift HostTools/UF2Tool/main.swift -o tdos-uf2
//
//   tdos-uf2 convert IMAGE.elf IMAGE.uf2 [--below 0xADDR] [--add 0xADDR=FILE]...
//                      ELF -> UF2, then validate; --add also writes FILE's bytes at
//                      0xADDR (e.g. a config record, for the emulator smoke test)
//   tdos-uf2 validate FILE.uf2 [--image] [--below 0xADDR]  --image: must carry boot2
import Foundation

func die(_ message: String) -> Never {
    FileHandle.standardError.write(("tdos-uf2: " + message + "\n").data(using: .utf8)!)
    exit(1)
}

func read(_ path: String) -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else { die("cannot read \(path)") }
    return [UInt8](d)
}

func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

/// Validates and prints one line: what the file writes, and its boot2 CRC.
func check(_ uf2: [UInt8], path: String, image: Bool, below: UInt32?) {
    let allowed = below.map { UF2.flashBase..<$0 }
    do {
        let r = try UF2.validate(uf2, requireBoot2: image, allowed: allowed)
        var line = "\(path): valid UF2, \(r.blocks) blocks, RP2040 family \(hex(UF2.familyRP2040)), "
        line += "\(hex(r.firstAddress))..<\(hex(r.endAddress)) (\(r.blocks * UF2.payloadBytes) bytes)"
        if let crc = r.boot2CRC { line += ", boot2 CRC-32/MPEG-2 \(hex(crc)) ok" }
        print(line)
    } catch {
        die("\(path): INVALID: \(error)")
    }
}

var args = Array(CommandLine.arguments.dropFirst())
var below: UInt32? = nil
if let i = args.firstIndex(of: "--below"), i + 1 < args.count {
    let text = args[i + 1].hasPrefix("0x") ? String(args[i + 1].dropFirst(2)) : args[i + 1]
    guard let v = UInt32(text, radix: 16) else { die("--below wants a hex address") }
    below = v
    args.removeSubrange(i...(i + 1))
}
var extra: [UF2.Segment] = []
while let i = args.firstIndex(of: "--add"), i + 1 < args.count {
    let spec = args[i + 1].split(separator: "=", maxSplits: 1)
    guard spec.count == 2, spec[0].hasPrefix("0x"), let address = UInt32(spec[0].dropFirst(2), radix: 16) else {
        die("--add wants 0xADDR=FILE")
    }
    extra.append(UF2.Segment(address: address, bytes: read(String(spec[1]))))
    args.removeSubrange(i...(i + 1))
}
let image = args.contains("--image")
args.removeAll { $0 == "--image" }

switch args.first {
case "convert" where args.count == 3:
    let uf2: [UInt8]
    do {
        uf2 = try UF2.encode(segments: UF2.loadSegments(elf: read(args[1])) + extra)
    } catch {
        die("\(args[1]): \(error)")
    }
    guard FileManager.default.createFile(atPath: args[2], contents: Data(uf2)) else { die("cannot write \(args[2])") }
    check(uf2, path: args[2], image: true, below: extra.isEmpty ? below : nil)
case "validate" where args.count == 2:
    check(read(args[1]), path: args[1], image: image, below: below)
default:
    die("usage: tdos-uf2 convert IMAGE.elf IMAGE.uf2 [--below 0xADDR] [--add 0xADDR=FILE]... | validate FILE.uf2 [--image] [--below 0xADDR]")
}
