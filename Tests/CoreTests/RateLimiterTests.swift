// Per-sender token buckets over virtual time: the long-run rate and the burst
// are what was configured, a flooding sender cannot starve a quiet one, and the
// sender table stays fixed (least recently seen evicted).

import Testing
@testable import TDOSCore

@Suite struct RateLimiterTests {
    @Test func rateAndBurstOverVirtualTime() {
        for (rate, burst) in [(10, 20), (1, 1), (100, 5), (20, 40)] as [(UInt32, UInt32)] {
            var rl = RateLimiter(RateLimiterConfig(ratePerS: rate, burst: burst, sendersMax: 4))
            // One attempt per ms for 10 s: the burst at once, then `rate` per second.
            var admitted: UInt32 = 0
            for t in 0..<10_000 where rl.admit(sender: 7, nowMs: UInt64(t)) { admitted += 1 }
            let expected = burst + rate * 10
            #expect(admitted >= expected - 1 && admitted <= expected, "rate \(rate) burst \(burst): \(admitted)")
            #expect(rl.admitted == admitted && rl.dropped == 10_000 - admitted)
            #expect(rl.bucket(of: 7)?.dropped == 10_000 - admitted)
        }
    }

    @Test func sendingAtTheRateIsNeverDropped() {
        var rl = RateLimiter(RateLimiterConfig(ratePerS: 20, burst: 1))
        for i in 0..<10_000 {
            #expect(rl.admit(sender: 1, nowMs: UInt64(i) * 50) == true, "frame \(i)")  // exactly 20/s
        }
        #expect(rl.dropped == 0)
        // After a quiet spell the burst is available again, and no more.
        var rl2 = RateLimiter(RateLimiterConfig(ratePerS: 5, burst: 8))
        for _ in 0..<8 { #expect(rl2.admit(sender: 1, nowMs: 0) == true) }
        #expect(rl2.admit(sender: 1, nowMs: 0) == false)
        var n = 0
        for _ in 0..<100 where rl2.admit(sender: 1, nowMs: 3_600_000) { n += 1 }
        #expect(n == 8)
    }

    /// In any window of time, a sender gets at most burst + rate x window.
    @Test(arguments: [11, 12, 13])
    func noWindowExceedsTheBucket(seed: UInt64) {
        var rng = TestRNG(seed: seed)
        let rate = UInt32.random(in: 1...50, using: &rng), burst = UInt32.random(in: 1...30, using: &rng)
        var rl = RateLimiter(RateLimiterConfig(ratePerS: rate, burst: burst))
        var t: UInt64 = 0
        var times: [UInt64] = []
        for _ in 0..<5000 {
            t += UInt64.random(in: 0...40, using: &rng)
            if rl.admit(sender: 3, nowMs: t) { times.append(t) }
        }
        for i in 0..<times.count {
            var j = i
            while j < times.count && times[j] - times[i] <= 5000 {
                let allowed = Double(burst) + Double(rate) * Double(times[j] - times[i]) / 1000
                #expect(Double(j - i + 1) <= allowed + 1e-9, "seed \(seed): \(j - i + 1) frames in \(times[j] - times[i]) ms")
                j += 1
            }
        }
    }

    /// A peer flooding at 1000 frames/s and a quiet one at 5/s: the quiet one
    /// loses nothing, the flooder gets its rate, and the drops are counted.
    @Test func floodingSenderDoesNotStarveAQuietOne() {
        var rl = RateLimiter(RateLimiterConfig(ratePerS: 20, burst: 40, sendersMax: 8))
        let flooder: UInt32 = 0xBAD, quiet: UInt32 = 0x600D
        var floodAdmitted = 0, floodSent = 0, quietAdmitted = 0, quietSent = 0
        for ms in 0..<60_000 {
            let now = UInt64(ms)
            floodSent += 1
            if rl.admit(sender: flooder, nowMs: now) { floodAdmitted += 1 }
            if ms % 200 == 0 {
                quietSent += 1
                if rl.admit(sender: quiet, nowMs: now) { quietAdmitted += 1 }
            }
        }
        #expect(quietAdmitted == quietSent, "the quiet sender is never limited")
        #expect(floodAdmitted >= 40 + 20 * 60 - 1 && floodAdmitted <= 40 + 20 * 60)
        #expect(rl.dropped == UInt32(floodSent - floodAdmitted))
        #expect(rl.bucket(of: quiet)?.dropped == 0)
        #expect(rl.bucket(of: flooder)?.dropped == UInt32(floodSent - floodAdmitted))
    }

    /// Many senders (spoofed or real) cycle through a fixed table: it never
    /// grows, the least recently seen is evicted, and the evictions are counted.
    @Test func senderTableIsFixedWithLRUEviction() {
        var rl = RateLimiter(RateLimiterConfig(ratePerS: 1, burst: 2, sendersMax: 4))
        let capacity = rl.buckets.capacity
        for s: UInt32 in 1...4 { _ = rl.admit(sender: s, nowMs: UInt64(s)) }
        _ = rl.admit(sender: 1, nowMs: 10)  // 1 is now the most recent; 2 the least
        _ = rl.admit(sender: 5, nowMs: 11)
        #expect(rl.evictions == 1 && rl.count == 4)
        #expect(rl.bucket(of: 2) == nil && rl.bucket(of: 1) != nil && rl.bucket(of: 5) != nil)
        for s: UInt32 in 100..<10_100 { _ = rl.admit(sender: s, nowMs: 100 + UInt64(s)) }
        #expect(rl.buckets.count == 4 && rl.buckets.capacity == capacity && rl.count == 4)
        #expect(rl.evictions == 1 + 10_000)
        rl.forget(sender: 10_099)
        #expect(rl.count == 3 && rl.bucket(of: 10_099) == nil)
    }

    @Test func costReconfigureAndConfigTree() throws {
        var rl = RateLimiter(RateLimiterConfig(ratePerS: 10, burst: 10))
        #expect(rl.admit(sender: 1, nowMs: 0, cost: 6) == true)
        #expect(rl.admit(sender: 1, nowMs: 0, cost: 6) == false)
        #expect(rl.admit(sender: 1, nowMs: 0, cost: 4) == true)
        rl.reconfigure(ratePerS: 1000, burst: 2)
        #expect(rl.admit(sender: 1, nowMs: 10, cost: 2) == true)  // 10 ms x 1000/s = 10 tokens, capped at 2
        #expect(rl.admit(sender: 1, nowMs: 10) == false)

        var t = ConfigSchema.defaults()
        #expect(RateLimiterConfig(config: t) == RateLimiterConfig(ratePerS: 20, burst: 40))
        try t.set("rate_limit.rate_per_s", .int(5))
        try t.set("rate_limit.burst", .int(7))
        #expect(RateLimiterConfig(config: t, sendersMax: 3) == RateLimiterConfig(ratePerS: 5, burst: 7, sendersMax: 3))
    }
}
