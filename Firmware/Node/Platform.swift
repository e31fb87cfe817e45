// The platform contract: one protocol per resource, each implemented three
// times — Pico (Firmware/Pico over BoardSupport), POSIX (HostTools, UDP
// processes) and Simulation (HostTools, in-process virtual network). Node code
// is generic over `Platform`, never over a concrete board.
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
#endif

/// Monotonic time since boot.
public protocol Clock: AnyObject {
    func nowUs() -> UInt64
}

public struct Datagram {
    public var bytes: [UInt8]
    public var from: NodeAddress
    public init(bytes: [UInt8], from: NodeAddress) {
        self.bytes = bytes
        self.from = from
    }
}

/// UDP on the board (lwIP), on Linux (sockets), or the simulated network.
public protocol DatagramPort: AnyObject {
    func send(_ bytes: [UInt8], to: NodeAddress)
    func broadcast(_ bytes: [UInt8])
    /// One queued datagram, without blocking; nil when none is waiting.
    func receive() -> Datagram?
}

public enum SensorKind: UInt8 {
    case temperature = 1, humidity = 2, light = 3
    public var unit: Unit {
        switch self {
        case .temperature: return .celsius
        case .humidity: return .percentRH
        case .light: return .lux
        }
    }
}

/// Raw sensor readings (before calibration); nil when the sensor is absent or failed.
public protocol SensorPort: AnyObject {
    func sample(_ kind: SensorKind, nowMs: UInt64) -> Double?
}

/// The kernel's display: the ST7789 panel on the board, the console elsewhere.
public protocol DisplayPort: AnyObject {
    func show(_ lines: [TextLine])
}

/// Persistent small state: the boot epoch (PROTOCOL.md "Message id") and the
/// config record (ConfigImage: provisioning fields + runtime overlay).
public protocol PersistentState: AnyObject {
    /// The storage role's log region: the board's log flash, a file on Linux.
    associatedtype LogStore: LogFlash
    /// Opens the log region; nil when it cannot be (the storage node then
    /// answers log requests `unavailable` and says why in its log).
    func openLogFlash() -> LogStore?
    /// Reads the stored epoch, stores epoch + 1 durably, returns the new one.
    /// Must not return before the new value is durable: the message ids of this
    /// boot depend on it never repeating.
    func nextBootEpoch() -> UInt32
    /// Both copies of the config record as stored (empty or erased = none);
    /// ConfigManager.restore takes the newer valid one.
    func loadConfigRecord() -> (a: [UInt8], b: [UInt8])
    /// Writes a config record over the copy that does not hold the newest one,
    /// durably (fsync; programmed and read back on flash), so a power cut
    /// leaves the previous copy intact. False when it could not: the update
    /// is then undone and not acknowledged.
    func storeConfigRecord(_ record: [UInt8]) -> Bool
    /// The storage role's consensus state (RaftPersistentState.encode()) as
    /// last stored; empty when none was ever stored.
    func loadConsensusState() -> [UInt8]
    /// Replaces it atomically and durably: after a crash the load returns this
    /// record or the previous one, never a mix. False when it could not (the
    /// replica then stops taking part in consensus: it must not send a vote or
    /// an acknowledgement it could forget).
    func storeConsensusState(_ record: [UInt8]) -> Bool
}

public protocol Platform: Clock, DatagramPort, SensorPort, DisplayPort, PersistentState {
    /// Operator-facing log line (UART on the board, stderr on Linux).
    func log(_ line: TextLine)
    func freeMemoryBytes() -> UInt32
    /// Heap bytes in use (metrics); 0 when the platform cannot tell.
    func heapInUseBytes() -> UInt32
    /// Feeds the board's hardware watchdog; the runtime calls it only while
    /// every critical task is healthy.
    func feedHardwareWatchdog()
    /// The one role this build runs, when it is fixed at compile time (each
    /// board image: kernel, sensor, storage); nil = the role comes from the
    /// config (Linux, the simulation). A constant here lets the specialised
    /// NodeRuntime drop the other roles' code from the image.
    static var imageRole: NodeRole? { get }
}

extension Platform {
    public func heapInUseBytes() -> UInt32 { 0 }
    public static var imageRole: NodeRole? { nil }
}
