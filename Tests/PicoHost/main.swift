// Host run of the Pico module's board-independent logic (scripts/firmware-check.sh):
// TDOSPico compiled for Linux against the stub board, flash faked in RAM
// (fake_flash.c). What cannot be checked without a board (radio, ADC, I2C) is not
// here; what can be wrong without one (formats, conversions, overflow) is.
#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSNode
import TDOSPico

@_silgen_name("tdos_fake_flash_erase_count")
func fakeFlashEraseCount() -> UInt32

nonisolated(unsafe) var checks = 0
nonisolated(unsafe) var failures = 0

func expect(_ ok: Bool, _ what: String, line: UInt = #line) {
    checks += 1
    if !ok {
        failures += 1
        print("pico-host: FAILED (line \(line)): \(what)")
    }
}

func provisionRecord() {
    let key = (0..<32).map { UInt8($0) }
    var record = ProvisionRecord(sequence: 3, nodeName: Array("temp-a".utf8), role: .sensor,
                                 wifiSSID: Array("lab".utf8), wifiPassphrase: Array("correct horse".utf8),
                                 keyID: 1, key: key, nodeID: 0x0A0B_0C0D)
    record.display = 1
    record.sensors = ProvisionRecord.sensorInternalTemperature | ProvisionRecord.sensorSHT3x
    let encoded = record.encode()
    var copy = encoded + [UInt8](repeating: 0xFF, count: 4096 - encoded.count)
    expect((try? ProvisionRecord.decode(copy)) == record, "record round trip")

    let erased = [UInt8](repeating: 0xFF, count: 4096)
    do { _ = try ProvisionRecord.decode(erased); expect(false, "erased flash decoded") } catch {
        expect(error == .missing, "erased flash is .missing")
    }
    copy[20] ^= 1
    do { _ = try ProvisionRecord.decode(copy); expect(false, "corrupt record decoded") } catch {
        expect(error == .badChecksum, "a flipped bit is .badChecksum")
    }
    var newer = encoded
    newer[4] = ProvisionRecord.formatVersion + 1
    do { _ = try ProvisionRecord.decode(newer); expect(false, "newer format decoded") } catch {
        expect(error == .unsupportedVersion, "another format version is .unsupportedVersion")
    }
    // A body without the required keys, with a correct CRC.
    var w = CBORWriter()
    w.mapHeader(count: 1)
    w.unsigned(2); w.unsigned(2)
    var bodyOnly = ProvisionRecord.magic + [ProvisionRecord.formatVersion, 0, 0, UInt8(w.bytes.count), 0, 0, 0, 1] + w.bytes
    let crc = ConfigImage.crc32(bodyOnly[...])
    bodyOnly += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
    do { _ = try ProvisionRecord.decode(bodyOnly); expect(false, "incomplete record decoded") } catch {
        expect(error == .badBody, "missing required keys is .badBody")
    }
    // A/B: the valid copy with the higher sequence wins; an invalid copy is ignored.
    var b = record
    b.sequence = 4
    b.nodeName = Array("temp-b".utf8)
    expect((try? ProvisionRecord.newest(a: encoded, b: b.encode()))?.nodeName == Array("temp-b".utf8), "B newer wins")
    expect((try? ProvisionRecord.newest(a: b.encode(), b: encoded))?.nodeName == Array("temp-b".utf8), "A newer wins")
    expect((try? ProvisionRecord.newest(a: encoded, b: erased)) == record, "A alone")
}

func nodeConfig() {
    var record = ProvisionRecord(sequence: 1, nodeName: Array("s".utf8), role: .sensor, wifiSSID: Array("n".utf8),
                                 wifiPassphrase: [], keyID: 1, key: [UInt8](repeating: 7, count: 32))
    record.sensors = ProvisionRecord.sensorSHT3x | ProvisionRecord.sensorLight
    let c = makeNodeConfig(record, nodeID: 9, rngSeed: 1)
    expect(c.sensors.map { $0.kind } == [.temperature, .humidity, .light], "services from the attached sensors")
    expect(c.sensors.first?.name == Array("temp_sensor".utf8), "standard service names")
    record.services = [ProvisionRecord.Service(kind: 2, priority: 1)]
    let d = makeNodeConfig(record, nodeID: 9, rngSeed: 1)
    expect(d.sensors.count == 1 && d.sensors[0].kind == .humidity && d.sensors[0].priority == 1, "explicit services")
    expect(d.services.count == 1 && d.address.port == 4210, "announced services and port")
}

func sensors() {
    expect(SHT3x.crc8(0xBE, 0xEF) == 0x92, "SHT3x CRC-8 (datasheet example)")
    let t: UInt16 = 0x6666, h: UInt16 = 0x8000  // 25.00 C, 50.00 %RH
    let frame: [UInt8] = [UInt8(t >> 8), UInt8(t & 0xFF), SHT3x.crc8(UInt8(t >> 8), UInt8(t & 0xFF)),
                          UInt8(h >> 8), UInt8(h & 0xFF), SHT3x.crc8(UInt8(h >> 8), UInt8(h & 0xFF))]
    let reading = try? SHT3x.decode(frame)
    expect(reading?.centiCelsius == 2500 && reading?.centiPercentRH == 5000, "SHT3x conversion")
    var bad = frame
    bad[5] ^= 1
    expect((try? SHT3x.decode(bad)) == nil, "SHT3x bad CRC rejected")
    // RP2040 datasheet: 0.706 V (raw 876) is 27 C; every raw value converts without overflow.
    expect(abs(InternalTemperatureSensor.centiCelsius(raw: 876) - 2700) <= 20, "27 C at 0.706 V")
    var previous = Int32.max
    for raw in UInt16(0)...4095 {
        let c = InternalTemperatureSensor.centiCelsius(raw: raw)
        if c > previous { expect(false, "temperature must fall as the voltage rises") ; break }
        previous = c
    }
    expect(true, "temperature conversion total over 0...4095")
}

func bootEpoch() {
    let store = BootEpochStore()
    expect((try? store.current()) == 0, "no epoch on erased flash")
    var ok = true
    for boot in UInt32(1)...1100 where (try? store.advance()) != boot { ok = false; break }
    expect(ok, "1100 boots give epochs 1...1100")
    expect((try? store.current()) == 1100, "current epoch survives")
    // 512 slots per sector: boots 513 and 1025 each erased the other sector.
    expect(fakeFlashEraseCount() == 2, "one sector erase per 512 boots")
}

func text() {
    var line = TextLine()
    line.append(-5.12, decimals: 2)
    line.append(" ")
    line.appendIPv4(0xC0A8_0102)
    line.append(" ")
    line.appendHex32(0xBEEF)
    line.append(" ")
    line.append(UInt64.max)
    expect(line.bytes == Array("-5.12 192.168.1.2 0000beef 18446744073709551615".utf8), "TextLine formats")
    let id = derivedNodeID([0xE6, 0x61, 0x38, 0x52, 0x83, 0x2F, 0x4A, 0x21])
    expect(id != 0 && id == derivedNodeID([0xE6, 0x61, 0x38, 0x52, 0x83, 0x2F, 0x4A, 0x21]), "node id from board id")
}

provisionRecord()
nodeConfig()
sensors()
bootEpoch()
text()
print("pico-host: \(checks) checks, \(failures) failures")
exit(failures == 0 ? 0 : 1)
