// Response-time histogram in fixed memory: log-linear buckets (as HdrHistogram
// with 3 significant bits), so any quantile is known to within 1/16 of its
// value, whatever the number of samples, with a counts array allocated once.
//
// Values are integers (µs for response times). Values below 8 get a bucket
// each; above, each power-of-two range [2^e, 2^(e+1)) is split into 8 equal
// buckets of width 2^(e-3). Values at or above 2^valueBitsMax share the last
// bucket (its quantiles report the exact maximum).

public struct LatencyHistogram {
    public static let subBucketBits = 3
    public static let subBucketCount = 1 << subBucketBits
    /// Values up to 2^24 - 1 (µs: 16.7 s) are bucketed precisely.
    public static let valueBitsMax = 24
    public static let bucketCount = (valueBitsMax - subBucketBits + 1) * subBucketCount

    /// One counter per bucket; never grows.
    public private(set) var counts: [UInt32]
    public private(set) var count: UInt32 = 0
    public private(set) var sum: UInt64 = 0
    public private(set) var min: UInt32 = UInt32.max
    public private(set) var max: UInt32 = 0

    public init() {
        counts = [UInt32](repeating: 0, count: LatencyHistogram.bucketCount)
    }

    /// The bucket of a value.
    public static func bucketIndex(_ value: UInt32) -> Int {
        if value < UInt32(subBucketCount) { return Int(value) }
        let e = 31 - value.leadingZeroBitCount
        if e >= valueBitsMax { return bucketCount - 1 }
        let sub = Int(value >> UInt32(e - subBucketBits)) & (subBucketCount - 1)
        return (e - subBucketBits + 1) * subBucketCount + sub
    }

    /// Smallest value of bucket `i`.
    public static func bucketLow(_ i: Int) -> UInt32 {
        if i < subBucketCount { return UInt32(i) }
        let e = i / subBucketCount + subBucketBits - 1
        let sub = i % subBucketCount
        return UInt32(subBucketCount + sub) << UInt32(e - subBucketBits)
    }

    /// Largest value of bucket `i` (inclusive).
    public static func bucketHigh(_ i: Int) -> UInt32 {
        if i < subBucketCount { return UInt32(i) }
        let e = i / subBucketCount + subBucketBits - 1
        return bucketLow(i) + (UInt32(1) << UInt32(e - subBucketBits)) - 1
    }

    public mutating func record(_ value: UInt32) {
        let i = LatencyHistogram.bucketIndex(value)
        counts[i] &+= 1
        count &+= 1
        sum &+= UInt64(value)
        if value < min { min = value }
        if value > max { max = value }
    }

    /// The nearest-rank `q`-quantile (0...1): the bucket holding the
    /// ceil(q * count)-th smallest sample, reported as its middle, clamped to the
    /// observed min and max. 0 when empty.
    public func quantile(_ q: Double) -> UInt32 {
        guard count > 0 else { return 0 }
        let qc = q < 0 ? 0 : (q > 1 ? 1 : q)
        return value(rank: UInt32((qc * Double(count)).rounded(.up)))
    }

    /// `quantile(Double(percent) / 100)` in integers (the metrics report's
    /// p50/p90/p99: no floating point on the board). The same rank: for 0.5,
    /// 0.9 and 0.99, `q * count` rounds to the exact product whenever that is
    /// a whole number, and is at least 0.01 away from one otherwise.
    @inline(never)
    public func quantile(percent: UInt32) -> UInt32 {
        guard count > 0 else { return 0 }
        let p = UInt64(percent > 100 ? 100 : percent)
        return value(rank: UInt32(truncatingIfNeeded: (UInt64(count) * p + 99) / 100))
    }

    /// The value reported for the `rank`-th smallest sample (clamped to 1...count).
    @inline(never)
    func value(rank r: UInt32) -> UInt32 {
        var rank = r
        if rank < 1 { rank = 1 }
        if rank > count { rank = count }
        var seen: UInt32 = 0
        for i in 0..<counts.count {
            seen &+= counts[i]
            if seen >= rank {
                if i == LatencyHistogram.bucketCount - 1 && max > LatencyHistogram.bucketHigh(i) { return max }
                let low = LatencyHistogram.bucketLow(i)
                let mid = low + (LatencyHistogram.bucketHigh(i) - low) / 2
                return mid < min ? min : (mid > max ? max : mid)
            }
        }
        return max
    }

    /// Adds another histogram's samples (node-wide totals from per-service ones).
    public mutating func merge(_ other: LatencyHistogram) {
        for i in 0..<counts.count { counts[i] &+= other.counts[i] }
        count &+= other.count
        sum &+= other.sum
        if other.count > 0 {
            if other.min < min { min = other.min }
            if other.max > max { max = other.max }
        }
    }

    public mutating func reset() {
        for i in 0..<counts.count { counts[i] = 0 }
        count = 0
        sum = 0
        min = UInt32.max
        max = 0
    }
}
