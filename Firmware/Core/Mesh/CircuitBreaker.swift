/// Circuit breaker of one service instance (Nygard, "Release It!"; the seed's
/// CircuitBreaker): `closed` counts consecutive failures and opens at the
/// threshold; `open` refuses calls for `breakerOpenMs`; then `halfOpen` lets one
/// trial call through at a time, closing after `breakerHalfOpenSuccesses`
/// successes and reopening at the first failure. Pure data: the node moves it
/// with the time it is given and turns transitions into events.
public struct CircuitBreaker: Equatable, BitwiseCopyable {
    public enum Transition: Equatable { case opened, halfOpened, closed }

    public private(set) var state: BreakerState = .closed
    /// In half-open: a trial call is in flight, others are refused.
    public private(set) var trialInFlight = false
    public private(set) var consecutiveFailures = 0
    public private(set) var halfOpenSuccesses = 0
    /// While open: when it turns half-open. Last, so that the breaker (and
    /// MeshNode.Instance) has no tail padding: see MeshNode.Peer.
    public private(set) var openUntilMs: UInt64 = 0

    public init() {}

    /// open -> halfOpen once the open time has passed.
    public mutating func poll(nowMs: UInt64) -> Transition? {
        guard state == .open, nowMs >= openUntilMs else { return nil }
        state = .halfOpen
        halfOpenSuccesses = 0
        trialInFlight = false
        return .halfOpened
    }

    /// Whether a call may use the instance now (call `poll` first).
    public var allowsCall: Bool {
        switch state {
        case .closed: return true
        case .open: return false
        case .halfOpen: return !trialInFlight
        }
    }

    /// A call starts using the instance: in half-open this is the one trial.
    /// Returns whether it was a trial (the caller must end it).
    public mutating func begin() -> Bool {
        guard state == .halfOpen else { return false }
        precondition(!trialInFlight, "one trial at a time")
        trialInFlight = true
        return true
    }

    /// The trial ended without a verdict (the call was abandoned).
    public mutating func endTrial() { trialInFlight = false }

    /// `closeAfter`: half-open successes that close it (breakerHalfOpenSuccesses).
    public mutating func recordSuccess(closeAfter: Int) -> Transition? {
        consecutiveFailures = 0
        switch state {
        case .closed, .open:
            return nil
        case .halfOpen:
            trialInFlight = false
            halfOpenSuccesses += 1
            guard halfOpenSuccesses >= closeAfter else { return nil }
            state = .closed
            halfOpenSuccesses = 0
            return .closed
        }
    }

    /// `threshold`: consecutive failures that open it; `openMs`: for how long.
    public mutating func recordFailure(nowMs: UInt64, threshold: Int, openMs: UInt32) -> Transition? {
        consecutiveFailures += 1
        switch state {
        case .open:
            return nil
        case .closed:
            guard consecutiveFailures >= threshold else { return nil }
        case .halfOpen:
            break
        }
        state = .open
        trialInFlight = false
        halfOpenSuccesses = 0
        openUntilMs = nowMs &+ UInt64(openMs)
        return .opened
    }
}
