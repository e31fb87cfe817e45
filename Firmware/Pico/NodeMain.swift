// Entry point of the TDOS Pico W images: one per role (kernel.uf2, sensor.uf2,
// storage.uf2: Firmware/PicoImage/<role>.swift sets PicoPlatform.imageRole, so
// each carries only its role's code). The provisioned role must be the image's.
//
// Boot: board init, banner and reset reason, watchdog, config (A/B, validated:
// magic, format version, length, CRC, fields), radio, boot epoch, then the node
// runtime (Firmware/Node/NodeRuntime.swift) over PicoPlatform, with the loop its
// header describes: run the ready tasks, sleep in tdos_board_wait_until_us until
// the next wake or a datagram. The hardware watchdog is fed by the runtime, and
// only while every critical task is healthy. A board that cannot run (no config,
// bad config, no radio, unwritable state) stays in a clear error state: a blink
// code on the LED and a UART message every 10 s, the watchdog fed, never a
// reboot loop.
import TDOSBoard
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
import TDOSNode
#endif

/// Blink codes (long pause, then this many blinks).
public enum BlinkCode: Int {
    case notProvisioned = 2
    case badConfig = 3
    case radioFailed = 4  // the LED is on the radio chip: UART message only
    case stateUnwritable = 5
    /// The provisioned role is not the role this image was built for.
    case wrongImage = 6
}

public enum FirmwareInfo {
    public static let name: StaticString = "TDOS Pico W node"
    public static let version: StaticString = "0.2.0"
    /// Longer than any step of the loop, well under the RP2040's 8.3 s maximum.
    public static let watchdogTimeoutMs: UInt32 = 8000
    /// Watchdog checkpoints: what the loop was doing if it hangs.
    public static let checkpointBoot: UInt32 = 1
    public static let checkpointLoop: UInt32 = 2
    /// The status line on the UART.
    public static let statusIntervalMs: UInt64 = 10_000
}

/// The runtime's config from the provisioned record. `nodeID`: the record's, or
/// derived from the board's unique id.
public func makeNodeConfig(_ record: ProvisionRecord, nodeID: UInt32, rngSeed: UInt64) -> NodeConfig {
    // The image's role where it is fixed (main has checked the record's
    // against it): the kernel and storage images then leave this loop out.
    // The list is built first and passed in: appending to the config's
    // field went through the whole config.
    // Filled in one allocation (appends pulled in Array's growth code for
    // SensorService).
    var sensors: [SensorService] = []
    if (PicoPlatform.imageRole ?? record.role) == .sensor {
        let services = record.effectiveServices
        sensors = [SensorService](unsafeUninitializedCapacity: services.count) { out, n in
            n = 0
            for s in services {
                guard let kind = SensorKind(rawValue: s.kind) else { continue }
                (out.baseAddress! + n).initialize(
                    to: SensorService(name: bytes(SensorService.standardName(kind)), kind: kind, priority: s.priority))
                n += 1
            }
        }
    }
    return NodeConfig(name: record.nodeName, nodeID: nodeID, role: record.role,
                      address: NodeAddress(host: 0, port: record.udpPort), keyID: record.keyID, key: record.key,
                      sensors: sensors, rngSeed: rngSeed)
}

@main
struct TDOSPicoMain {
    static func main() {
        _ = tdos_board_init()
        let watchdog = BoardWatchdog()
        printBanner(watchdog)
        watchdog.enable(timeoutMs: FirmwareInfo.watchdogTimeoutMs)
        watchdog.checkpoint(FirmwareInfo.checkpointBoot)
        WireLimits.check()

        let record = readConfig()
        if let imageRole = PicoPlatform.imageRole, record.role != imageRole {
            var l = TextLine("tdos: this is the ")
            l.append(imageRole.name)
            l.append(" image; the config says role ")
            l.append(record.role.name)
            Console.line(l)
            halt(.wrongImage, "role does not match this image: copy that role's UF2 (kernel.uf2, sensor.uf2, storage.uf2) or provision again.")
        }
        guard tdos_radio_init(record.wifiCountry[0], record.wifiCountry[1]) == TDOS_OK else {
            halt(.radioFailed, "CYW43 radio did not start: is this a Pico W?")
        }
        let epoch: UInt32
        do {
            epoch = try BootEpochStore().advance()
        } catch {
            halt(.stateUnwritable, "cannot persist the boot epoch in the state region.")
        }
        watchdog.feed()
        let nodeID = record.nodeID ?? derivedNodeID(boardUniqueID())
        let seed = UInt64(tdos_random_u32()) << 32 | UInt64(tdos_random_u32())

        var line = TextLine("tdos: node ")
        line.append(bytes: record.nodeName)
        line.append(" id ")
        line.appendHex32(nodeID)
        line.append(" role ")
        line.append(record.role.name)
        line.append(" epoch ")
        line.append(UInt64(epoch))
        line.append(" port ")
        line.append(UInt64(record.udpPort))
        Console.line(line)

        let platform = PicoPlatform(record: record, epoch: epoch)
        guard platform.startNetwork(record) else {
            halt(.radioFailed, "Wi-Fi or UDP socket did not start.")
        }
        let runtime = NodeRuntime(platform: platform, config: makeNodeConfig(record, nodeID: nodeID, rngSeed: seed))
        runtime.start()
        watchdog.checkpoint(FirmwareInfo.checkpointLoop)
        run(runtime, platform)
    }

    /// The platform loop (NodeRuntime.swift's header).
    static func run(_ runtime: NodeRuntime<PicoPlatform>, _ platform: PicoPlatform) -> Never {
        var nextStatusMs = tdos_time_ms() + FirmwareInfo.statusIntervalMs
        while true {
            let next = runtime.runOnce()
            let nowUs = tdos_time_us()
            platform.poll(nowUs: nowUs)
            if nowUs / 1000 >= nextStatusMs {
                printStatus(runtime, platform)
                nextStatusMs += FirmwareInfo.statusIntervalMs
            }
            var deadlineUs = min(next ?? nowUs + 1_000_000, nextStatusMs * 1000)
            if let b = platform.nextBoardWakeUs { deadlineUs = min(deadlineUs, b) }
            // Radio work (and so a datagram landing in the ring) ends the wait early.
            if !platform.datagramWaiting { tdos_board_wait_until_us(deadlineUs) }
            if platform.datagramWaiting { runtime.datagramsReady() }
        }
    }

    static func printStatus(_ runtime: NodeRuntime<PicoPlatform>, _ platform: PicoPlatform) {
        let mem = BoardMemory().stats
        let udp = UDPSocket().stats
        var l = TextLine("tdos: up_s=")
        l.append(runtime.uptimeMs / 1000)
        l.append(" hb_sent=")
        l.append(UInt64(platform.framesSent[Int(MessageType.heartbeat.rawValue)]))
        l.append(" announces=")
        l.append(UInt64(platform.framesSent[Int(MessageType.announce.rawValue)]))
        l.append(" tx_fail=")
        l.append(UInt64(platform.sendFailures))
        l.append(" rx=")
        l.append(UInt64(udp.received))
        l.append(" ring_dropped=")
        l.append(UInt64(udp.dropped_full &+ udp.dropped_oversized))
        l.append(" tasks=")
        l.append(runtime.scheduler.taskCount)
        l.append(" sched_events=")
        l.append(runtime.schedulerEvents)
        l.append(" served=")
        l.append(runtime.requestsServed)
        l.append(" samples=")
        l.append(runtime.samplesTaken)
        l.append(" wd_feeds=")
        l.append(UInt64(platform.watchdogFeeds))
        l.append(" heap_free=")
        l.append(UInt64(mem.heap_free_bytes))
        l.append(" stack_high_water=")
        l.append(UInt64(mem.stack_high_water_bytes))
        Console.line(l)
    }

    /// The newest valid config copy, or the error state saying what is wrong.
    static func readConfig() -> ProvisionRecord {
        let copyA: [UInt8], copyB: [UInt8]
        do {
            copyA = try FlashRegion.configA.read(at: 0, count: Int(FlashRegion.configA.size))
            copyB = try FlashRegion.configB.read(at: 0, count: Int(FlashRegion.configB.size))
        } catch {
            halt(.badConfig, "config region unreadable.")
        }
        do {
            return try ProvisionRecord.newest(a: copyA, b: copyB)
        } catch {
            switch error {
            case .missing:
                halt(.notProvisioned, "not provisioned: no config record. Run `tdos provision`, then copy its UF2 to the board in BOOTSEL mode.")
            case .unsupportedVersion:
                halt(.badConfig, "config record from a newer tdos: update this firmware or provision again.")
            case .badChecksum, .badLength:
                halt(.badConfig, "config record corrupt (checksum): provision again.")
            case .badBody:
                halt(.badConfig, "config record invalid (fields): provision again.")
            }
        }
    }

    static func printBanner(_ watchdog: BoardWatchdog) {
        Console.write("\n")
        Console.write(FirmwareInfo.name)
        Console.write(" ")
        Console.write(FirmwareInfo.version)
        if let role = PicoPlatform.imageRole {
            Console.write(", ")
            Console.write(role.name)
            Console.write(" image")
        }
        var v = TextLine(" (TDOS protocol ")
        v.append(UInt64(ProtocolVersion.major))
        v.append(".")
        v.append(UInt64(ProtocolVersion.minor))
        v.append(")")
        Console.line(v)
        var reset = TextLine("tdos: reset ")
        switch watchdog.lastReset {
        case .powerOn: reset.append("power-on")
        case .watchdog: reset.append("WATCHDOG (hang, or a critical task unhealthy) at checkpoint ")
        case .software: reset.append("software, code ")
        }
        if watchdog.lastReset != .powerOn { reset.append(UInt64(watchdog.lastResetCode)) }
        Console.line(reset)
    }

    /// The error state: never returns, never reboots; feeds the watchdog.
    static func halt(_ code: BlinkCode, _ message: StaticString) -> Never {
        let watchdog = BoardWatchdog()
        let clock = BoardClock()
        let led = BoardLED()
        var nextMessageMs: UInt64 = 0
        var radioTried = false
        while true {
            watchdog.feed()
            if clock.nowMs >= nextMessageMs {
                var c = TextLine("tdos: ERROR ")
                c.append(code.rawValue)
                c.append(": ")
                Console.write(c)
                Console.line(message)
                nextMessageMs = clock.nowMs + 10_000
            }
            if !radioTried {
                // The LED is on the radio chip; worldwide country is enough to
                // blink. After the first message, so the UART says why even if
                // the radio is what failed.
                radioTried = true
                _ = tdos_radio_init(0x58, 0x58)
            }
            for _ in 0..<code.rawValue {
                led.set(true)
                sleep(ms: 200, clock)
                led.set(false)
                sleep(ms: 300, clock)
            }
            sleep(ms: 1500, clock)
        }
    }

    static func sleep(ms: UInt64, _ clock: BoardClock) {
        let deadline = clock.nowUs + ms * 1000
        while clock.nowUs < deadline {
            clock.wait(untilUs: deadline)
        }
    }
}
