import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Adaptive polling, host only (the board never spins): right after traffic a
/// node polls its socket for a short window before it blocks again, and so
/// does a MeshClient waiting for the answer to a call it just sent. A
/// back-to-back caller's next datagram then finds the receiver awake instead
/// of paying its sleep and wake-up. Idle costs nothing: the window opens only
/// after traffic and closes after `windowUs` without any.
public enum HostPolling {
    /// `TDOS_POLL_US` (or `tdos node --poll-us`): the window in µs, 0 = off.
    public static let environmentVariable = "TDOS_POLL_US"
    public static let defaultWindowUs: UInt32 = 100
    /// A window is a short spin, never a way to keep a core busy.
    public static let windowUsMax: UInt32 = 10_000

    /// Between two polls of a spin: whatever else wants this CPU runs first
    /// (often the peer itself, which the kernel likes to wake next to its
    /// waker); returns at once when nothing does. Without it, a node and a
    /// client both polling on one CPU each spun out their window while the
    /// other waited (p50 up to 230 µs instead of 15-35 µs, unpinned bench).
    @inline(__always)
    public static func pause() { sched_yield() }

    public static func parse(_ text: String, source: String) throws -> UInt32 {
        guard let v = UInt32(text.trimmingCharacters(in: .whitespaces)), v <= windowUsMax else {
            throw HostError("\(source): expected a whole number of µs from 0 (off) to \(windowUsMax), got \"\(text)\"")
        }
        return v
    }

    /// The window `environment` asks for, else the default.
    public static func windowUs(environment: [String: String]) throws -> UInt32 {
        guard let text = environment[environmentVariable] else { return defaultWindowUs }
        return try parse(text, source: environmentVariable)
    }
}
