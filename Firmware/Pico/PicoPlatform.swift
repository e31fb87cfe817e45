// The board's Platform (Firmware/Node/Platform.swift): what NodeRuntime runs on
// on a Pico W. Clock: the RP2040 timer. Datagrams: the one lwIP UDP socket,
// drained from BoardSupport's fixed ring. Sensors: the ones the provisioned
// config says are attached (internal temperature on ADC4, analog light on
// GPIO26, SHT3x on I2C0). Display: the Pico Display, or the UART. Boot epoch:
// BootEpochStore, advanced before the runtime starts (an unwritable state region
// is a boot error, not a crash). Log: the UART. Watchdog: the RP2040's.
import TDOSBoard
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
import TDOSNode
#endif

public final class PicoPlatform: Platform {
    public let port: UInt16
    let epoch: UInt32
    let sensorMask: UInt8
    let display: StatusDisplay
    let socket = UDPSocket()
    let wifi = WiFi()
    let led = BoardLED()
    var receiveBuffer = [UInt8](repeating: 0, count: UDPSocket.datagramBytesMax)

    var sht: SHT3x?
    var shtStartedMs: UInt64 = 0
    var shtReading: SHT3x.Reading?
    var ledOffUs: UInt64 = 0

    /// Datagrams taken from the ring (the ring counts what it received).
    var drained: UInt32 = 0
    var lastWiFiState = WiFiState.off
    var lastWiFiFailure: UInt32 = 0

    /// Frames sent, by message type (index = MessageType raw value, 0 = unknown).
    public private(set) var framesSent = [UInt32](repeating: 0, count: Int(MessageType.lastDefined.rawValue) + 1)
    public private(set) var sendFailures: UInt32 = 0
    public private(set) var watchdogFeeds: UInt32 = 0

    /// `epoch`: the boot epoch already persisted by BootEpochStore.advance().
    /// `record` borrowed: an initializer's parameter is owned by default, and
    /// main passed it a copy of the whole record.
    public init(record: borrowing ProvisionRecord, epoch: UInt32) {
        port = record.udpPort
        self.epoch = epoch
        sensorMask = record.sensors
        display = StatusDisplay(picoDisplayAttached: record.display == 1)
        if record.sensors & ProvisionRecord.sensorSHT3x != 0 {
            do { sht = SHT3x(bus: try I2CBus()) } catch { sht = nil }
        }
        drained = socket.stats.received
    }

    /// Opens the socket and starts joining Wi-Fi (both asynchronous on the radio side).
    public func startNetwork(_ record: ProvisionRecord) -> Bool {
        guard socket.open(port: port) else { return false }
        let auth = WiFi.Auth(rawValue: UInt32(record.wifiAuth)) ?? .wpa2
        guard wifi.start(ssid: record.wifiSSID, psk: record.wifiPassphrase, auth: auth) else { return false }
        if display.kind == .picoDisplay {
            display.clear()
            var title = TextLine("TDOS ")
            title.append(bytes: record.nodeName)
            display.show(row: 0, title.bytes, colour: StatusDisplay.green, scale: 2)
        }
        return true
    }

    // MARK: Clock

    public func nowUs() -> UInt64 { tdos_time_us() }

    // MARK: Datagrams

    public func send(_ bytes: [UInt8], to: NodeAddress) {
        count(bytes, ok: socket.send(bytes, to: to.host, port: to.port))
    }

    public func broadcast(_ bytes: [UInt8]) {
        count(bytes, ok: socket.broadcast(bytes, port: port))
    }

    func count(_ frame: [UInt8], ok: Bool) {
        guard ok else { sendFailures &+= 1; return }
        let type = frame.count > 1 && Int(frame[1]) < framesSent.count ? Int(frame[1]) : 0
        framesSent[type] &+= 1
        if type == Int(MessageType.heartbeat.rawValue) {
            // A short flash per heartbeat: the board is alive and on the network.
            led.set(true)
            ledOffUs = tdos_time_us() + 30_000
        }
    }

    public func receive() -> Datagram? {
        guard let (n, source) = socket.receive(into: &receiveBuffer) else { return nil }
        drained &+= 1
        return Datagram(bytes: Array(receiveBuffer[0..<n]), from: NodeAddress(host: source.ip, port: source.port))
    }

    /// Datagrams in the ring that `receive` has not taken yet.
    public var datagramWaiting: Bool { socket.stats.received != drained }

    // MARK: Sensors

    public func sample(_ kind: SensorKind, nowMs: UInt64) -> Double? {
        switch kind {
        case .temperature:
            if sht != nil {
                pollSHT3x(nowMs: nowMs)
                if let r = shtReading { return Double(r.centiCelsius) / 100 }
            }
            guard sensorMask & ProvisionRecord.sensorInternalTemperature != 0,
                  let c = InternalTemperatureSensor().readCentiCelsius() else { return nil }
            return Double(c) / 100
        case .humidity:
            guard sht != nil else { return nil }
            pollSHT3x(nowMs: nowMs)
            return shtReading.map { Double($0.centiPercentRH) / 100 }
        case .light:
            // Permille of full scale: lux needs the part's curve, which is what the
            // service's calibration is for.
            guard sensorMask & ProvisionRecord.sensorLight != 0, let p = LightSensor().readPermille() else { return nil }
            return Double(p)
        }
    }

    /// The SHT3x never blocks the loop: a measurement started at one sample is
    /// read at the next (>= 16 ms later), so readings lag one sample interval.
    func pollSHT3x(nowMs: UInt64) {
        guard let sht else { return }
        if shtStartedMs != 0 {
            guard nowMs >= shtStartedMs + SHT3x.measurementDurationMs else { return }
            do { shtReading = try sht.readMeasurement() } catch { shtReading = nil }
            shtStartedMs = 0
        }
        do {
            try sht.startMeasurement()
            shtStartedMs = max(nowMs, 1)
        } catch {
            shtReading = nil
        }
    }

    // MARK: Display

    public func show(_ lines: [TextLine]) {
        guard display.kind == .picoDisplay else {
            for l in lines {
                Console.write("display: ")
                Console.line(l)
            }
            return
        }
        // Below the title (rows 0-1 at scale 2) and the Wi-Fi line (row 3).
        var row = 5
        for l in lines where row < StatusDisplay.rows {
            display.show(row: row, l.bytes)
            row += 1
        }
        while row < StatusDisplay.rows {
            display.show(row: row, [])
            row += 1
        }
    }

    // MARK: Persistent state, log, memory, watchdog

    public func nextBootEpoch() -> UInt32 { epoch }

    public func openLogFlash() -> PicoLogFlash? { PicoLogFlash() }

    public func loadConfigRecord() -> (a: [UInt8], b: [UInt8]) {
        let a = (try? FlashRegion.configA.read(at: 0, count: Int(FlashRegion.configA.size))) ?? []
        let b = (try? FlashRegion.configB.read(at: 0, count: Int(FlashRegion.configB.size))) ?? []
        return (a, b)
    }

    /// Erase and program the copy not holding the newest record, then read it
    /// back: the newest copy is never touched, so a power cut loses at most
    /// this update (never acknowledged) and the board boots with the previous one.
    public func storeConfigRecord(_ record: [UInt8]) -> Bool {
        let copies = loadConfigRecord()
        let region = ConfigImage.writeToB(a: copies.a, b: copies.b) ? FlashRegion.configB : FlashRegion.configA
        return region.rewrite(record)
    }

    public func loadConsensusState() -> [UInt8] { ConsensusStore.load().record }

    public func storeConsensusState(_ record: [UInt8]) -> Bool { ConsensusStore.store(record) }

    public func log(_ line: TextLine) {
        Console.write("tdos: ")
        Console.line(line)
    }

    public func freeMemoryBytes() -> UInt32 { BoardMemory().stats.heap_free_bytes }

    public func heapInUseBytes() -> UInt32 { BoardMemory().stats.heap_used_bytes }

    public func feedHardwareWatchdog() {
        tdos_watchdog_feed()
        watchdogFeeds &+= 1
    }

    // MARK: Board upkeep (the main loop calls it every pass)

    public func poll(nowUs: UInt64) {
        if ledOffUs != 0 && nowUs >= ledOffUs {
            led.set(false)
            ledOffUs = 0
        }
        trackWiFi(nowMs: nowUs / 1000)
    }

    /// When the loop must wake for the board's own sake (the LED), in µs.
    public var nextBoardWakeUs: UInt64? { ledOffUs != 0 ? ledOffUs : nil }

    func trackWiFi(nowMs: UInt64) {
        let status = wifi.status
        let state = WiFiState(rawValue: status.state) ?? .off
        guard state != lastWiFiState || status.last_failure != lastWiFiFailure else { return }
        lastWiFiState = state
        lastWiFiFailure = status.last_failure
        var line = TextLine()
        switch state {
        case .up:
            line.append("wifi up ")
            line.appendIPv4(status.ip)
            if let rssi = wifi.rssiDbm {
                line.append(" rssi ")
                line.append(Int64(rssi))
            }
        case .joining:
            line.append("wifi joining, attempt ")
            line.append(UInt64(status.join_attempts))
        case .backoff:
            line.append("wifi ")
            line.append(WiFiFailure.name(status.last_failure))
            line.append(", retry in ")
            line.append((status.next_attempt_ms > nowMs ? status.next_attempt_ms - nowMs : 0) / 1000)
            line.append(" s")
        case .off:
            line.append("wifi off")
        }
        log(line)
        if display.kind == .picoDisplay {
            display.show(row: 3, line.bytes, colour: state == .up ? StatusDisplay.green : StatusDisplay.red)
        }
    }
}

enum WiFiFailure {
    static func name(_ code: UInt32) -> StaticString {
        switch code {
        case TDOS_WIFI_FAIL_TIMEOUT: return "join timed out"
        case TDOS_WIFI_FAIL_NO_NET: return "network not found"
        case TDOS_WIFI_FAIL_BAD_AUTH: return "wrong passphrase"
        case TDOS_WIFI_FAIL_LINK: return "association failed"
        case TDOS_WIFI_FAIL_LOST: return "link lost"
        default: return "down"
        }
    }
}
