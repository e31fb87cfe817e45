#if canImport(Glibc)
import Glibc
#endif

/// Monotonic time for host tools (CLOCK_MONOTONIC), never the wall clock.
public func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

public func monotonicMs() -> UInt64 { monotonicNs() / 1_000_000 }
