// Entry point of the TDOS Pico W image (one image for every role: the role is
// provisioning data, read from the config region at boot).
//
// Boot: board init, banner, watchdog, config (A/B), radio, boot epoch, then the
// heartbeat node's poll loop. A board that cannot run (no config, bad config, no
// radio, unwritable state) stays in a clear error state: a blink code on the LED
// and a UART message every 10 s, the watchdog fed, never a reboot loop.
import TDOSBoard
import TDOSCore

/// Blink codes (long pause, then this many blinks).
public enum BlinkCode: Int {
    case notProvisioned = 2
    case badConfig = 3
    case radioFailed = 4  // the LED is on the radio chip: UART message only
    case stateUnwritable = 5
}

public enum FirmwareInfo {
    public static let name: StaticString = "TDOS Pico W node"
    public static let version: StaticString = "0.1.0"
    /// Longer than any step of the loop, well under the RP2040's 8.3 s maximum.
    public static let watchdogTimeoutMs: UInt32 = 8000
    /// Watchdog checkpoints: what the loop was doing if it hangs.
    public static let checkpointBoot: UInt32 = 1
    public static let checkpointLoop: UInt32 = 2
}

@main
struct TDOSPicoMain {
    static func main() {
        _ = tdos_board_init()
        let watchdog = BoardWatchdog()
        let clock = BoardClock()
        printBanner(watchdog)
        watchdog.enable(timeoutMs: FirmwareInfo.watchdogTimeoutMs)
        watchdog.checkpoint(FirmwareInfo.checkpointBoot)
        WireLimits.check()

        let copyA: [UInt8], copyB: [UInt8]
        do {
            copyA = try FlashRegion.configA.read(at: 0, count: Int(FlashRegion.configA.size))
            copyB = try FlashRegion.configB.read(at: 0, count: Int(FlashRegion.configB.size))
        } catch {
            halt(.badConfig, "config region unreadable.")
        }
        let config: ProvisionRecord
        do {
            config = try ProvisionRecord.newest(a: copyA, b: copyB)
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

        guard tdos_radio_init(config.wifiCountry[0], config.wifiCountry[1]) == TDOS_OK else {
            halt(.radioFailed, "CYW43 radio did not start: is this a Pico W?")
        }

        let epoch: UInt32
        do {
            epoch = try BootEpochStore().advance()
        } catch {
            halt(.stateUnwritable, "cannot persist the boot epoch in the state region.")
        }
        let nodeID = config.nodeID ?? derivedNodeID(boardUniqueID())

        var line = StatusText(capacity: 96)
        line.append("tdos: node ")
        line.append(bytes: config.nodeName)
        line.append(" id ")
        line.append(hex: nodeID)
        line.append(" role ")
        line.append(UInt32(config.role.rawValue))
        line.append(" epoch ")
        line.append(epoch)
        line.append(" port ")
        line.append(UInt32(config.udpPort))
        Console.line(line)

        var node = HeartbeatNode(config: config, nodeID: nodeID, epoch: epoch)
        guard node.start(nowMs: clock.nowMs) else {
            halt(.radioFailed, "Wi-Fi or UDP socket did not start.")
        }
        watchdog.checkpoint(FirmwareInfo.checkpointLoop)
        while true {
            let startUs = clock.nowUs
            watchdog.feed()
            tdos_board_poll()
            let nextMs = node.poll(nowMs: clock.nowMs)
            node.accountBusy(us: clock.nowUs - startUs)
            // Sleep until the node's next deadline, but wake at least every
            // 100 ms: the radio's work wakes us earlier anyway.
            let deadlineUs = min(nextMs * 1000, clock.nowUs + 100_000)
            clock.wait(untilUs: deadlineUs)
        }
    }

    static func printBanner(_ watchdog: BoardWatchdog) {
        Console.write("\n")
        Console.write(FirmwareInfo.name)
        Console.write(" ")
        Console.write(FirmwareInfo.version)
        Console.write(" (TDOS protocol ")
        var v = StatusText()
        v.append(UInt32(ProtocolVersion.major))
        v.append(".")
        v.append(UInt32(ProtocolVersion.minor))
        Console.write(v)
        Console.line(")")
        var reset = StatusText()
        reset.append("tdos: reset ")
        switch watchdog.lastReset {
        case .powerOn: reset.append("power-on")
        case .watchdog: reset.append("WATCHDOG (hang) at checkpoint ")
        case .software: reset.append("software, code ")
        }
        if watchdog.lastReset != .powerOn { reset.append(watchdog.lastResetCode) }
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
                Console.write("tdos: ERROR ")
                var c = StatusText()
                c.append(UInt32(code.rawValue))
                Console.write(c)
                Console.write(": ")
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
