/// SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014): 64 bits of state, passes BigCrush, a handful of
/// instructions. Every random choice of a mesh node (RPC jitter, heartbeat
/// jitter, probe helpers) comes from one of these, seeded by the caller, so a
/// simulation run is a pure function of its seed. Never the system RNG.
public struct SeededRandom: RandomNumberGenerator {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound` (`bound > 0`), without modulo bias: draws below
    /// `2^64 mod bound` are rejected (at most one retry in 2^63 cases).
    public mutating func below(_ bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        let threshold = (0 &- bound) % bound
        while true {
            let r = next()
            if r >= threshold { return r % bound }
        }
    }

    /// Uniform in `low...high` (inclusive; `low <= high`).
    public mutating func between(_ low: UInt64, _ high: UInt64) -> UInt64 {
        precondition(low <= high)
        let span = high - low
        if span == UInt64.max { return next() }
        return low + below(span + 1)
    }
}
