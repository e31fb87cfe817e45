// tdos uf2, tdos provision: the files a Pico W takes in BOOTSEL mode. `uf2`
// converts the firmware ELF (picotool is not needed) and validates any UF2;
// `provision` writes the config record (Firmware/Core/Runtime/ProvisionRecord.swift)
// as a small UF2 for the config region, so a board is set up without rebuilding.
import Foundation
import TDOSCore
import TDOSNode
import TDOSHost

/// `-o FILE` (the parser takes only `--` options: a single dash arrives as positional).
func outputPath(_ args: Args, positional: inout [String]) throws -> String? {
    if let i = positional.firstIndex(of: "-o") {
        guard i + 1 < positional.count else { throw UsageError(message: "-o needs a file name") }
        let path = positional[i + 1]
        positional.removeSubrange(i...(i + 1))
        return path
    }
    return args.value("output")
}

func readBytes(_ path: String) throws -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else { throw HostError("cannot read \(path)") }
    return [UInt8](d)
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw HostError("cannot write \(path)") }
}

func hex32(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

func parseHex32(_ s: String, option: String) throws -> UInt32 {
    let digits = s.hasPrefix("0x") || s.hasPrefix("0X") ? String(s.dropFirst(2)) : s
    guard let v = UInt32(digits, radix: 16) else { throw UsageError(message: "\(option) expects a hex number, got \"\(s)\"") }
    return v
}

/// Validates a UF2 and prints what it writes. `image`: must start with boot2
/// and end below the reserved regions; a file at the config region is checked
/// against that region instead.
func validateUF2(_ uf2: [UInt8], path: String, image: Bool?, below: UInt32?) throws {
    // Decide what the file is from its first block when not told.
    var isImage = image
    if isImage == nil {
        isImage = !(uf2.count >= 32 && UF2.configRange.contains(UInt32(uf2[12]) | UInt32(uf2[13]) << 8
            | UInt32(uf2[14]) << 16 | UInt32(uf2[15]) << 24))
    }
    let allowed: Range<UInt32> = isImage! ? UF2.flashBase..<(below ?? UF2.reservedStart) : UF2.configRange
    let r: UF2.Report
    do {
        r = try UF2.validate(uf2, requireBoot2: isImage!, allowed: allowed)
    } catch {
        throw HostError("\(path): INVALID: \(error)")
    }
    var line = "\(path): valid UF2 (\(isImage! ? "firmware image" : "config region")), \(r.blocks) blocks, "
    line += "RP2040 family \(hex32(UF2.familyRP2040)), 256-byte payloads, \(hex32(r.firstAddress))..<\(hex32(r.endAddress))"
    if let crc = r.boot2CRC { line += ", boot2 CRC-32/MPEG-2 \(hex32(crc)) ok" }
    print(line)
}

/// The blocks of a valid UF2 as segments (to merge a config UF2 into an image for the emulator).
func uf2Segments(_ uf2: [UInt8]) -> [UF2.Segment] {
    stride(from: 0, to: uf2.count, by: UF2.blockBytes).map { b in
        let address = UInt32(uf2[b + 12]) | UInt32(uf2[b + 13]) << 8 | UInt32(uf2[b + 14]) << 16 | UInt32(uf2[b + 15]) << 24
        return UF2.Segment(address: address, bytes: Array(uf2[(b + 32)..<(b + 32 + UF2.payloadBytes)]))
    }
}

func uf2Command(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["output", "validate", "kind", "below", "merge"]))
    var positional = args.positional
    let out = try outputPath(args, positional: &positional)
    let below = try args.value("below").map { try parseHex32($0, option: "--below") }
    var kind: Bool? = nil
    switch args.value("kind") {
    case nil: break
    case "image"?: kind = true
    case "config"?: kind = false
    default: throw UsageError(message: "--kind must be image or config")
    }
    if let path = args.value("validate") {
        guard positional.isEmpty, out == nil else { throw UsageError(message: "uf2 --validate takes one FILE.uf2 and no -o") }
        try validateUF2(try readBytes(path), path: path, image: kind, below: below)
        return 0
    }
    guard positional.count == 1, let out else {
        throw UsageError(message: "usage: tdos uf2 IMAGE.elf -o IMAGE.uf2 [--merge CONFIG.uf2] | tdos uf2 --validate FILE.uf2")
    }
    var segments: [UF2.Segment]
    do {
        segments = try UF2.loadSegments(elf: try readBytes(positional[0]))
    } catch let e as UF2.Failure {
        throw HostError("\(positional[0]): \(e)")
    }
    for path in args.values["merge"] ?? [] {
        let extra = try readBytes(path)
        try validateUF2(extra, path: path, image: false, below: nil)
        segments += uf2Segments(extra)
    }
    let uf2: [UInt8]
    do { uf2 = try UF2.encode(segments: segments) } catch { throw HostError("\(positional[0]): \(error)") }
    try writeBytes(uf2, to: out)
    // An image with a config merged in (the emulator's) spans the reserved regions.
    try validateUF2(uf2, path: out, image: true, below: args.values["merge"] == nil ? below : UF2.flashBase + UF2.picoWFlashBytes)
    return 0
}

func provisionCommand(_ args: Args) throws -> Int32 {
    try args.check(allowed: common.union(["ssid", "psk", "name", "role", "service", "output", "sensors", "display",
                                          "node-id", "port", "country", "auth", "sequence"]))
    var positional = args.positional
    guard let out = try outputPath(args, positional: &positional) else {
        throw UsageError(message: "provision needs -o CONFIG.uf2")
    }
    guard positional.isEmpty else { throw UsageError(message: "unexpected argument \(positional[0])") }
    guard let name = args.value("name"), (1...ProvisionRecord.nameBytesMax).contains(name.utf8.count) else {
        throw UsageError(message: "--name NAME is required (1-24 bytes)")
    }
    let role: NodeRole
    switch args.value("role") ?? "" {
    case "kernel": role = .kernel
    case "sensor": role = .sensor
    case "storage": role = .storage
    default: throw UsageError(message: "--role must be kernel, sensor or storage")
    }
    guard let ssid = args.value("ssid"), (1...32).contains(ssid.utf8.count) else {
        throw UsageError(message: "--ssid SSID is required (1-32 bytes)")
    }
    let psk = args.value("psk") ?? ""
    guard psk.isEmpty || (8...64).contains(psk.utf8.count) else {
        throw UsageError(message: "--psk must be 8-64 characters (WPA2); leave it out for an open network")
    }
    var auth: UInt8 = psk.isEmpty ? 0 : 1
    switch args.value("auth") {
    case nil: break
    case "open"?: auth = 0
    case "wpa2"?: auth = 1
    case "wpa3"?, "wpa2-wpa3"?: auth = 2
    default: throw UsageError(message: "--auth must be open, wpa2 or wpa3")
    }
    guard (auth == 0) == psk.isEmpty else {
        throw UsageError(message: auth == 0 ? "--auth open takes no --psk" : "--auth \(args.value("auth") ?? "wpa2") needs --psk")
    }
    let key = try MeshKey.load(keyFile: args.value("key-file"))
    if key.isDevelopmentKey {
        FileHandle.standardError.write((MeshKey.developmentWarning + "\n").data(using: .utf8)!)
    }
    guard key.bytes.count <= 64 else { throw UsageError(message: "the mesh key is longer than 64 bytes") }

    var services: [ProvisionRecord.Service] = []
    var sensors: UInt8 = 0
    for spec in args.values["service"] ?? [] {
        let parts = spec.split(separator: ":").map(String.init)
        let kind: SensorKind
        switch parts[0] {
        case "temp_sensor": kind = .temperature; sensors |= ProvisionRecord.sensorInternalTemperature
        case "humidity_sensor": kind = .humidity; sensors |= ProvisionRecord.sensorSHT3x
        case "light_sensor": kind = .light; sensors |= ProvisionRecord.sensorLight
        default: throw UsageError(message: "--service \(parts[0]): a board offers temp_sensor, humidity_sensor and light_sensor")
        }
        var priority: UInt8 = 0
        if parts.count > 1 {
            guard parts.count == 2, parts[1].hasPrefix("backup"),
                  let n = parts[1] == "backup" ? 1 : UInt8(parts[1].dropFirst(6)), n > 0 else {
                throw UsageError(message: "--service \(spec): use NAME, NAME:backup or NAME:backupN")
            }
            priority = n
        }
        services.append(ProvisionRecord.Service(kind: kind.rawValue, priority: priority))
    }
    if role == .sensor && services.isEmpty {
        throw UsageError(message: "a sensor node needs at least one --service (temp_sensor, humidity_sensor, light_sensor)")
    }
    if role != .sensor && !services.isEmpty { throw UsageError(message: "--service is for sensor nodes") }
    guard services.count <= ProvisionRecord.servicesMax else {
        throw UsageError(message: "at most \(ProvisionRecord.servicesMax) services")
    }
    if let list = args.value("sensors") {
        sensors = 0
        for item in list.split(separator: ",") {
            switch item {
            case "internal-temp": sensors |= ProvisionRecord.sensorInternalTemperature
            case "light": sensors |= ProvisionRecord.sensorLight
            case "sht3x": sensors |= ProvisionRecord.sensorSHT3x
            case "none": break
            default: throw UsageError(message: "--sensors takes internal-temp, light, sht3x (comma-separated) or none")
            }
        }
    }
    var record = ProvisionRecord(sequence: try args.int("sequence", default: UInt32(1)), nodeName: Array(name.utf8),
                                 role: role, wifiSSID: Array(ssid.utf8), wifiPassphrase: Array(psk.utf8),
                                 keyID: key.id, key: key.bytes, sensors: sensors, services: services)
    record.wifiAuth = auth
    if let id = args.value("node-id") {
        let v = try parseHex32(id, option: "--node-id")
        guard v != 0 else { throw UsageError(message: "--node-id must not be 0") }
        record.nodeID = v
    }
    record.udpPort = try args.int("port", default: ProvisionRecord.defaultUDPPort)
    guard record.udpPort != 0 else { throw UsageError(message: "--port must not be 0") }
    if let c = args.value("country") {
        guard c.utf8.count == 2, c.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw UsageError(message: "--country expects two letters (ISO 3166, e.g. GB, US, DE; XX = worldwide)")
        }
        record.wifiCountry = Array(c.uppercased().utf8)
    }
    switch args.value("display") {
    case nil, "none"?: record.display = 0
    case "pico-display"?: record.display = 1
    default: throw UsageError(message: "--display must be none or pico-display")
    }
    let bytes = record.encode()
    // What the board will read back.
    guard (try? ProvisionRecord.decode(bytes)) == record else { throw HostError("internal: the record does not decode back") }
    let uf2: [UInt8]
    do { uf2 = try UF2.provisioning(record: bytes) } catch { throw HostError("\(error)") }
    try writeBytes(uf2, to: out)
    try validateUF2(uf2, path: out, image: false, below: nil)
    let serviceList = record.effectiveServices.map { s -> String in
        let n = SensorKind(rawValue: s.kind).map { "\(SensorService.standardName($0))" } ?? "?"
        return s.priority == 0 ? n : "\(n):backup\(s.priority)"
    }
    print("""
    config for node \(name) (\(role.name)): Wi-Fi "\(ssid)" (\(["open", "WPA2", "WPA2/WPA3"][Int(auth)]), country \(String(decoding: record.wifiCountry, as: UTF8.self))), \
    UDP port \(record.udpPort), key id \(key.id)\(role == .sensor ? ", services " + serviceList.joined(separator: " ") : "")
    record \(bytes.count) bytes at \(hex32(UF2.configAAddress)) (config A); config B at \(hex32(UF2.configBAddress)) cleared.
    Flash: hold BOOTSEL, plug the board in, copy the firmware UF2, then (BOOTSEL again) \(out).
    """)
    return 0
}
