// Per-sender token buckets, so a chatty or hostile peer cannot starve the
// others: each sender may send `burst` frames at once and `ratePerS` frames per
// second on average; what exceeds that is dropped and counted. The table of
// senders is fixed (allocated once); when it is full the least recently seen
// sender is forgotten (and starts again with a full bucket if it returns).
//
// Tokens are kept in thousandths, so refilling is integer arithmetic: a rate of
// r per second adds r thousandths per millisecond. Time comes in as `nowMs`.
//
// Call `admit` for frames whose tag verified (ReplayWindow's rule): the sender
// id of an unauthenticated frame is whatever the attacker wrote, so limiting
// by it before the check would let a forger spend honest senders' tokens.

public struct RateLimiterConfig: Equatable {
    /// Average frames per second allowed per sender.
    public var ratePerS: UInt32
    /// Frames a sender may send back to back after being quiet.
    public var burst: UInt32
    /// Senders tracked at once.
    public var sendersMax: Int

    public static let ratePerSMax: UInt32 = 10_000
    public static let burstMax: UInt32 = 10_000

    public init(ratePerS: UInt32 = 20, burst: UInt32 = 40, sendersMax: Int = WireLimits.replayPeersMax) {
        precondition(ratePerS >= 1 && ratePerS <= RateLimiterConfig.ratePerSMax)
        precondition(burst >= 1 && burst <= RateLimiterConfig.burstMax)
        precondition(sendersMax >= 1)
        self.ratePerS = ratePerS
        self.burst = burst
        self.sendersMax = sendersMax
    }

    /// From `rate_limit.rate_per_s` and `rate_limit.burst` (schema-checked ranges).
    public init(config: ConfigTree, sendersMax: Int = WireLimits.replayPeersMax) {
        let r = config.int("rate_limit.rate_per_s", default: 20)
        let b = config.int("rate_limit.burst", default: 40)
        self.init(ratePerS: UInt32(clamping: max(1, min(r, Int64(RateLimiterConfig.ratePerSMax)))),
                  burst: UInt32(clamping: max(1, min(b, Int64(RateLimiterConfig.burstMax)))),
                  sendersMax: sendersMax)
    }
}

public struct RateLimiter {
    public struct Bucket: BitwiseCopyable {
        public fileprivate(set) var sender: UInt32 = 0
        public fileprivate(set) var inUse = false
        /// Thousandths of a token.
        public fileprivate(set) var milliTokens: UInt32 = 0
        fileprivate var refilledMs: UInt64 = 0
        public fileprivate(set) var lastSeenMs: UInt64 = 0
        public fileprivate(set) var admitted: UInt32 = 0
        public fileprivate(set) var dropped: UInt32 = 0
    }

    public private(set) var config: RateLimiterConfig
    /// Fixed table: `config.sendersMax` slots allocated at init, never more.
    public private(set) var buckets: Table<Bucket>
    public private(set) var admitted: UInt32 = 0
    public private(set) var dropped: UInt32 = 0
    public private(set) var evictions: UInt32 = 0

    public init(_ config: RateLimiterConfig = RateLimiterConfig()) {
        self.config = config
        buckets = Table(repeating: Bucket(), count: config.sendersMax)
    }

    /// New rate and burst (a config update); buckets keep their tokens, capped at the new burst.
    public mutating func reconfigure(ratePerS: UInt32, burst: UInt32) {
        config = RateLimiterConfig(ratePerS: ratePerS, burst: burst, sendersMax: config.sendersMax)
        let cap = burst * 1000
        for i in 0..<buckets.count where buckets[i].milliTokens > cap { buckets[i].milliTokens = cap }
    }

    /// Senders tracked now.
    public var count: Int {
        var n = 0
        for b in buckets where b.inUse { n += 1 }
        return n
    }

    /// True if `sender` may have this frame (`cost` tokens are taken), false if
    /// the frame must be dropped (counted here; add it to the metrics too).
    public mutating func admit(sender: UInt32, nowMs: UInt64, cost: UInt32 = 1) -> Bool {
        let i = slot(for: sender, nowMs: nowMs)
        let ok = RateLimiter.take(&buckets[i], nowMs: nowMs, cap: UInt64(config.burst) * 1000,
                                  ratePerS: UInt64(config.ratePerS), price: UInt64(cost) * 1000)
        if ok { admitted &+= 1 } else { dropped &+= 1 }
        return ok
    }

    /// Refills `b` up to `now` and takes `price` milli-tokens if it holds them, in
    /// place (a copy of the bucket out of the table and back cost more code).
    private static func take(_ b: inout Bucket, nowMs: UInt64, cap: UInt64, ratePerS: UInt64, price: UInt64) -> Bool {
        if nowMs > b.refilledMs {
            let refill = (nowMs - b.refilledMs) * ratePerS
            b.milliTokens = UInt32(min(cap, UInt64(b.milliTokens) + min(refill, cap)))
            b.refilledMs = nowMs
        }
        if nowMs > b.lastSeenMs { b.lastSeenMs = nowMs }
        let ok = UInt64(b.milliTokens) >= price
        if ok {
            b.milliTokens -= UInt32(price)
            b.admitted &+= 1
        } else {
            b.dropped &+= 1
        }
        return ok
    }

    /// The slot of `sender`, claiming a free one or the least recently seen.
    mutating func slot(for sender: UInt32, nowMs: UInt64) -> Int {
        var free = -1
        var oldest = 0
        for i in 0..<buckets.count {
            let b = buckets[i]
            if !b.inUse {
                if free < 0 { free = i }
                continue
            }
            if b.sender == sender { return i }
            if !buckets[oldest].inUse || b.lastSeenMs < buckets[oldest].lastSeenMs { oldest = i }
        }
        let i: Int
        if free >= 0 {
            i = free
        } else {
            i = oldest
            evictions &+= 1
        }
        buckets[i] = Bucket(sender: sender, inUse: true, milliTokens: config.burst * 1000,
                            refilledMs: nowMs, lastSeenMs: nowMs, admitted: 0, dropped: 0)
        return i
    }

    /// The bucket of a sender being tracked.
    public func bucket(of sender: UInt32) -> Bucket? {
        for b in buckets where b.inUse && b.sender == sender { return b }
        return nil
    }

    /// Forget a sender (it left the mesh cleanly).
    public mutating func forget(sender: UInt32) {
        for i in 0..<buckets.count where buckets[i].inUse && buckets[i].sender == sender { buckets[i] = Bucket() }
    }
}
