// Small Swift wrappers over tdos_board.h: clock, LED, watchdog and reset reason,
// memory statistics. Each is a value type with no state of its own, so a generic
// Platform protocol (Firmware/Node, later) can adopt them as they are.
import TDOSBoard

/// Monotonic time since boot.
public struct BoardClock {
    public init() {}
    public var nowMs: UInt64 { tdos_time_ms() }
    public var nowUs: UInt64 { tdos_time_us() }

    /// Light sleep until `deadlineUs` (or earlier, when the radio has work),
    /// servicing the radio and lwIP meanwhile.
    public func wait(untilUs deadlineUs: UInt64) { tdos_board_wait_until_us(deadlineUs) }
}

/// Hardware randomness (pico_rand): nonces, jitter, seeds. Not for keys.
public struct BoardRandom: RandomNumberGenerator {
    public init() {}
    public mutating func next() -> UInt64 {
        UInt64(tdos_random_u32()) << 32 | UInt64(tdos_random_u32())
    }
}

/// The Pico W's green LED (on the CYW43: needs the radio started).
public struct BoardLED {
    public init() {}
    public func set(_ on: Bool) { tdos_led_set(on) }
}

public enum ResetReason: UInt32 {
    case powerOn = 0
    case watchdog = 1
    case software = 2
}

public struct BoardWatchdog {
    public init() {}
    /// Starts the watchdog; it cannot be stopped afterwards.
    public func enable(timeoutMs: UInt32) { tdos_watchdog_enable(timeoutMs) }
    public func feed() { tdos_watchdog_feed() }
    /// Survives a watchdog reset: what the main loop was doing.
    public func checkpoint(_ code: UInt32) { tdos_watchdog_checkpoint(code) }
    public var lastReset: ResetReason { ResetReason(rawValue: tdos_reset_reason()) ?? .powerOn }
    /// The reboot code (software reset) or last checkpoint (watchdog reset).
    public var lastResetCode: UInt32 { tdos_reset_code() }
    public func reboot(code: UInt32) -> Never { tdos_reboot(code) }
}

public struct BoardMemory {
    public init() {}
    public var stats: tdos_memory_stats_t {
        var s = tdos_memory_stats_t()
        tdos_memory_stats(&s)
        return s
    }
}

/// 8-byte unique id of the board (its flash chip's).
public func boardUniqueID() -> [UInt8] {
    var id = [UInt8](repeating: 0, count: 8)
    id.withUnsafeMutableBufferPointer { tdos_board_unique_id($0.baseAddress) }
    return id
}

/// A node id from the board's unique id: FNV-1a-32 (as service ids), never 0.
public func derivedNodeID(_ uniqueID: [UInt8]) -> UInt32 {
    var h: UInt32 = 0x811C_9DC5
    for b in uniqueID {
        h = (h ^ UInt32(b)) &* 0x0100_0193
    }
    return h == 0 ? 1 : h
}
