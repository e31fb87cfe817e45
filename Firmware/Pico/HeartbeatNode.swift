// The first real node on the board: joins Wi-Fi from the provisioned config and
// broadcasts an authenticated TDOS heartbeat every second, while draining the UDP
// ring and counting the frames it decodes (and why it rejects the others).
// Poll style, like the node runtime that will replace it: `poll(nowMs:)` does
// what is due and says when it next has something to do.
import TDOSBoard
import TDOSCore

public struct HeartbeatNode {
    public static let heartbeatIntervalMs: UInt64 = 1000
    public static let statusIntervalMs: UInt64 = 10_000
    public static let ledFlashMs: UInt64 = 40
    /// Peers whose replay windows this node keeps (the full runtime keeps 64).
    public static let replayPeersMax = 16

    public let config: ProvisionRecord
    public let nodeID: UInt32
    let keyring: Keyring
    var ids: MessageIDGenerator
    var replay = ReplayWindow(capacity: HeartbeatNode.replayPeersMax)
    let socket = UDPSocket()
    let wifi = WiFi()
    let led = BoardLED()
    let memory = BoardMemory()
    let display: StatusDisplay
    var sensors: NodeSensors
    var receiveBuffer = [UInt8](repeating: 0, count: UDPSocket.datagramBytesMax)

    public private(set) var heartbeatsSent: UInt32 = 0
    public private(set) var sendFailures: UInt32 = 0
    public private(set) var framesDecoded: UInt32 = 0
    public private(set) var framesFromSelf: UInt32 = 0
    /// By WireError.code (index 0 unused).
    public private(set) var framesRejected = [UInt32](repeating: 0, count: WireError.codeCount)

    var nextHeartbeatMs: UInt64 = 0
    var nextStatusMs: UInt64 = 0
    var ledOffMs: UInt64 = 0
    var lastWiFiState = WiFiState.off
    var lastFailure: UInt32 = 0
    /// Busy time in the current heartbeat interval, for the load figure.
    var busyUs: UInt64 = 0
    var loadPercent: UInt8 = 0

    public init(config: ProvisionRecord, nodeID: UInt32, epoch: UInt32) {
        self.config = config
        self.nodeID = nodeID
        keyring = Keyring(id: config.keyID, key: config.key)
        ids = MessageIDGenerator(epoch: epoch)
        display = StatusDisplay(picoDisplayAttached: config.display == 1)
        sensors = NodeSensors(mask: config.sensors)
    }

    /// Starts Wi-Fi and the socket (the radio is already up).
    public mutating func start(nowMs: UInt64) -> Bool {
        guard socket.open(port: config.udpPort) else { return false }
        let auth = WiFi.Auth(rawValue: UInt32(config.wifiAuth)) ?? .wpa2
        guard wifi.start(ssid: config.wifiSSID, psk: config.wifiPassphrase, auth: auth) else { return false }
        nextHeartbeatMs = nowMs + HeartbeatNode.heartbeatIntervalMs
        nextStatusMs = nowMs + HeartbeatNode.statusIntervalMs
        if display.kind == .picoDisplay {
            display.clear()
            var title = StatusText()
            title.append("TDOS ")
            title.append(bytes: config.nodeName)
            display.show(row: 0, title.bytes, colour: StatusDisplay.green, scale: 2)
        }
        return true
    }

    /// Does what is due at `nowMs`; returns when it next needs to run.
    public mutating func poll(nowMs: UInt64) -> UInt64 {
        drainDatagrams(nowMs: nowMs)
        trackWiFi(nowMs: nowMs)
        sensors.poll(nowMs: nowMs)
        if nowMs >= nextHeartbeatMs {
            sendHeartbeat(nowMs: nowMs)
            // Fixed rate, not fixed delay; after a long stall skip ahead instead
            // of sending a burst.
            nextHeartbeatMs += HeartbeatNode.heartbeatIntervalMs
            if nextHeartbeatMs <= nowMs { nextHeartbeatMs = nowMs + HeartbeatNode.heartbeatIntervalMs }
        }
        if ledOffMs != 0 && nowMs >= ledOffMs {
            led.set(false)
            ledOffMs = 0
        }
        if nowMs >= nextStatusMs {
            printStatus(nowMs: nowMs)
            nextStatusMs += HeartbeatNode.statusIntervalMs
        }
        var next = min(nextHeartbeatMs, nextStatusMs)
        if ledOffMs != 0 { next = min(next, ledOffMs) }
        next = min(next, sensors.nextDueMs)
        return next
    }

    /// Counts busy time for the heartbeat's load figure (the main loop calls it).
    public mutating func accountBusy(us: UInt64) { busyUs += us }

    mutating func drainDatagrams(nowMs: UInt64) {
        // Bounded: at most one ring's worth per poll, so a flood cannot starve
        // the heartbeat (the rest waits in the ring, or is dropped and counted).
        for _ in 0..<Int(TDOS_UDP_RING_SLOTS) {
            guard let (count, _) = socket.receive(into: &receiveBuffer) else { return }
            let datagram = Array(receiveBuffer[0..<count])
            do {
                let frame = try Frame.decode(datagram, keys: keyring)
                if frame.sender == nodeID {
                    framesFromSelf &+= 1
                    continue
                }
                try replay.accept(sender: frame.sender, id: frame.id, nowMs: nowMs)
                framesDecoded &+= 1
            } catch {
                framesRejected[Int(error.code)] &+= 1
            }
        }
    }

    mutating func sendHeartbeat(nowMs: UInt64) {
        let up = wifi.state == .up
        led.set(true)
        // A short flash per heartbeat when up; a long one while joining.
        ledOffMs = nowMs + (up ? HeartbeatNode.ledFlashMs : HeartbeatNode.heartbeatIntervalMs / 2)
        let intervalUs = HeartbeatNode.heartbeatIntervalMs * 1000
        loadPercent = UInt8(min(100, busyUs * 100 / intervalUs))
        busyUs = 0
        guard up else { return }
        let heartbeat = Heartbeat(uptimeS: UInt32(truncatingIfNeeded: nowMs / 1000),
                                  freeMemoryBytes: memory.stats.heap_free_bytes,
                                  activity: 0, loadPercent: loadPercent, servicesDigest: 0)
        let frame = Frame(type: .heartbeat, sender: nodeID, id: ids.make(),
                          timestampMs: UInt32(truncatingIfNeeded: nowMs), payload: heartbeat.encode(),
                          priority: .normal, keyID: keyring.sendKeyID)
        if socket.broadcast(frame.encode(key: keyring.sendKey, compress: false), port: config.udpPort) {
            heartbeatsSent &+= 1
        } else {
            sendFailures &+= 1
        }
    }

    mutating func trackWiFi(nowMs: UInt64) {
        let status = wifi.status
        let state = WiFiState(rawValue: status.state) ?? .off
        guard state != lastWiFiState || status.last_failure != lastFailure else { return }
        lastWiFiState = state
        lastFailure = status.last_failure
        var line = StatusText()
        switch state {
        case .up:
            line.append("wifi up ")
            line.append(ipv4: status.ip)
            if let rssi = wifi.rssiDbm {
                line.append(" rssi ")
                line.append(signed: Int64(rssi))
            }
        case .joining:
            line.append("wifi joining, attempt ")
            line.append(status.join_attempts)
        case .backoff:
            line.append("wifi ")
            line.append(WiFiFailure.name(status.last_failure))
            line.append(", retry in ")
            line.append((status.next_attempt_ms > nowMs ? status.next_attempt_ms - nowMs : 0) / 1000)
            line.append(" s")
        case .off:
            line.append("wifi off")
        }
        Console.write("tdos: ")
        Console.line(line)
        if display.kind == .picoDisplay {
            display.show(row: 3, line.bytes, colour: state == .up ? StatusDisplay.green : StatusDisplay.red)
        }
    }

    mutating func printStatus(nowMs: UInt64) {
        let udp = socket.stats
        let mem = memory.stats
        var rejected: UInt32 = 0
        for n in framesRejected { rejected &+= n }
        var line = StatusText(capacity: 160)
        line.append("tdos: up_s=")
        line.append(nowMs / 1000)
        line.append(" hb_sent=")
        line.append(heartbeatsSent)
        line.append(" rx_ok=")
        line.append(framesDecoded)
        line.append(" rx_rejected=")
        line.append(rejected)
        line.append(" ring_dropped=")
        line.append(udp.dropped_full &+ udp.dropped_oversized)
        line.append(" heap_free=")
        line.append(mem.heap_free_bytes)
        line.append(" stack_high_water=")
        line.append(mem.stack_high_water_bytes)
        line.append(" load=")
        line.append(UInt32(loadPercent))
        sensors.appendReadings(to: &line)
        Console.line(line)
        guard display.kind == .picoDisplay else { return }

        var row = StatusText()
        row.append("hb ")
        row.append(heartbeatsSent)
        row.append(" rx ")
        row.append(framesDecoded)
        row.append(" rej ")
        row.append(rejected)
        display.show(row: 5, row.bytes)
        if let t = sensors.temperatureCentiC {
            var trow = StatusText()
            trow.append("temp ")
            trow.append(centi: t)
            trow.append(" C")
            display.show(row: 6, trow.bytes)
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

/// The sensors the config enables, read every 10 s; the SHT3x in two steps
/// (start, then read 16 ms later) so the loop never blocks on it.
public struct NodeSensors {
    public static let readIntervalMs: UInt64 = 10_000
    public static let internalTemperature: UInt8 = 1 << 0
    public static let light: UInt8 = 1 << 1
    public static let sht3x: UInt8 = 1 << 2

    let mask: UInt8
    var sht: SHT3x?
    var shtReadAtMs: UInt64 = 0
    var nextReadMs: UInt64 = 0
    public private(set) var temperatureCentiC: Int32?
    public private(set) var humidityCentiPercent: UInt32?
    public private(set) var lightPermille: UInt16?

    public init(mask: UInt8) {
        self.mask = mask
        if mask & NodeSensors.sht3x != 0, let bus = try? I2CBus() {
            sht = SHT3x(bus: bus)
        }
    }

    var nextDueMs: UInt64 { shtReadAtMs != 0 ? min(nextReadMs, shtReadAtMs) : nextReadMs }

    mutating func poll(nowMs: UInt64) {
        if shtReadAtMs != 0 && nowMs >= shtReadAtMs {
            shtReadAtMs = 0
            if let sht, let reading = try? sht.readMeasurement() {
                temperatureCentiC = reading.centiCelsius
                humidityCentiPercent = reading.centiPercentRH
            } else {
                humidityCentiPercent = nil
            }
        }
        guard nowMs >= nextReadMs else { return }
        nextReadMs = nowMs + NodeSensors.readIntervalMs
        if mask & NodeSensors.internalTemperature != 0 {
            temperatureCentiC = InternalTemperatureSensor().readCentiCelsius()
        }
        if mask & NodeSensors.light != 0 {
            lightPermille = LightSensor().readPermille()
        }
        if let sht, (try? sht.startMeasurement()) != nil {
            shtReadAtMs = nowMs + SHT3x.measurementDurationMs
        }
    }

    func appendReadings(to line: inout StatusText) {
        if let t = temperatureCentiC {
            line.append(" temp_c=")
            line.append(centi: t)
        }
        if let h = humidityCentiPercent {
            line.append(" rh=")
            line.append(centi: Int32(h))
        }
        if let l = lightPermille {
            line.append(" light_permille=")
            line.append(UInt32(l))
        }
    }
}
