// Metrics: log-linear histogram quantiles against exact quantiles of random
// samples, fixed memory over a million samples, SLA compliance, the `metrics`
// report's ids and its size on the wire.

import Foundation
import Testing
@testable import TDOSCore

/// Nearest-rank quantile of sorted samples, as LatencyHistogram defines it.
private func exactQuantile(_ sorted: [UInt32], _ q: Double) -> UInt32 {
    let rank = max(1, min(sorted.count, Int((q * Double(sorted.count)).rounded(.up))))
    return sorted[rank - 1]
}

private func sample(_ r: MetricsReport, _ id: UInt16) -> Double? {
    r.samples.first { $0.id == id }?.value
}

@Suite struct MetricsTests {
    @Test func bucketsTileTheValueRange() {
        // Consecutive buckets, no gaps or overlaps, widths <= low/8 above the linear part.
        #expect(LatencyHistogram.bucketCount == 176)
        var expectedLow: UInt32 = 0
        for i in 0..<LatencyHistogram.bucketCount {
            let lo = LatencyHistogram.bucketLow(i), hi = LatencyHistogram.bucketHigh(i)
            #expect(lo == expectedLow, "bucket \(i)")
            #expect(hi >= lo)
            if i >= LatencyHistogram.subBucketCount { #expect((hi - lo + 1) * 8 <= lo, "bucket \(i) width") }
            #expect(LatencyHistogram.bucketIndex(lo) == i && LatencyHistogram.bucketIndex(hi) == i)
            expectedLow = hi &+ 1
        }
        #expect(expectedLow == 1 << 24)
        #expect(LatencyHistogram.bucketIndex(UInt32.max) == LatencyHistogram.bucketCount - 1)
    }

    /// p50/p90/p99 (and others) of random samples from several distributions
    /// are within the bucket's error (1/16 of the value) of the exact ones, and
    /// in the same bucket.
    @Test(arguments: [1, 2, 3, 4])
    func quantilesMatchExactWithinBucketError(seed: UInt64) {
        var rng = TestRNG(seed: seed)
        let distributions: [(String, (inout TestRNG) -> UInt32)] = [
            ("uniform", { UInt32.random(in: 0...2_000_000, using: &$0) }),
            ("log-uniform", { UInt32(exp(Double.random(in: 0...log(10_000_000.0), using: &$0))) }),
            ("exponential", { UInt32(min(16_000_000, -20_000 * log(Double.random(in: 1e-12...1, using: &$0)))) }),
            ("bimodal", { Bool.random(using: &$0) ? UInt32.random(in: 900...1100, using: &$0) : UInt32.random(in: 90_000...110_000, using: &$0) }),
            ("small", { UInt32.random(in: 0...20, using: &$0) }),
        ]
        for (name, draw) in distributions {
            let n = Int.random(in: 1...20_000, using: &rng)
            var h = LatencyHistogram()
            var values: [UInt32] = []
            for _ in 0..<n {
                let v = draw(&rng)
                values.append(v)
                h.record(v)
            }
            values.sort()
            #expect(h.count == UInt32(n) && h.min == values.first && h.max == values.last)
            #expect(h.sum == values.reduce(0) { $0 + UInt64($1) })
            for q in [0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
                let exact = exactQuantile(values, q)
                let est = h.quantile(q)
                let err = est > exact ? est - exact : exact - est
                #expect(err <= exact / 16, "\(name) n=\(n) q=\(q): exact \(exact), histogram \(est) (seed \(seed))")
                #expect(LatencyHistogram.bucketIndex(est) == LatencyHistogram.bucketIndex(exact), "\(name) q=\(q)")
            }
        }
    }

    @Test func quantileEdgeCases() {
        var h = LatencyHistogram()
        #expect(h.quantile(0.5) == 0, "empty")
        h.record(1234)
        #expect(h.quantile(0) == 1234 && h.quantile(0.5) == 1234 && h.quantile(1) == 1234, "clamped to min/max")
        h.record(40_000_000)  // beyond the bucketed range: the last bucket reports the true max
        #expect(h.quantile(1) == 40_000_000)
        var a = LatencyHistogram(), b = LatencyHistogram(), both = LatencyHistogram()
        for v: UInt32 in [5, 50, 500] { a.record(v); both.record(v) }
        for v: UInt32 in [7, 70_000] { b.record(v); both.record(v) }
        a.merge(b)
        #expect(a.counts == both.counts && a.count == 5 && a.min == 5 && a.max == 70_000 && a.sum == both.sum)
        a.reset()
        #expect(a.count == 0 && a.counts.allSatisfy { $0 == 0 } && a.quantile(0.5) == 0)
    }

    /// The report's integer quantiles pick the rank the Double ones do: for
    /// 0.5, 0.9 and 0.99, ceil(q * count) == ceil(count * percent / 100) over
    /// the whole UInt32 range of counts (every count up to 2^21, then random).
    @Test func integerQuantilesMatchTheDoubleOnes() {
        var rng = TestRNG(seed: 7)
        for (q, p) in [(0.5, UInt64(50)), (0.9, 90), (0.99, 99)] {
            for i in 0..<(1 << 21) + 200_000 {
                let count = i < 1 << 21 ? UInt32(i) : UInt32.random(in: 1...UInt32.max, using: &rng)
                let viaDouble = UInt64((q * Double(count)).rounded(.up))
                if viaDouble != (UInt64(count) * p + 99) / 100 {
                    Issue.record("q=\(q) count=\(count)")
                    break
                }
            }
        }
        for n in 1...600 {
            var h = LatencyHistogram()
            for _ in 0..<n { h.record(UInt32.random(in: 0...(n % 3 == 0 ? 20 : 5_000_000), using: &rng)) }
            #expect(h.quantile(percent: 50) == h.quantile(0.5) && h.quantile(percent: 90) == h.quantile(0.9)
                    && h.quantile(percent: 99) == h.quantile(0.99), "n=\(n)")
        }
        #expect(LatencyHistogram().quantile(percent: 50) == 0)
        var h = LatencyHistogram()
        for v: UInt32 in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] { h.record(v) }
        #expect(h.quantile(percent: 90) == 9 && h.quantile(percent: 99) == 10 && h.quantile(percent: 50) == 5)
        #expect(h.quantile(percent: 200) == 10 && h.quantile(percent: 0) == 1)
    }

    /// A million calls over more services than there are slots: nothing grows.
    @Test func memoryStaysFixedOverAMillionSamples() {
        var m = MetricsRegistry(nowMs: 0, slaTargetMs: 100)
        let servicesCapacity = m.services.capacity
        let histogramCapacity = m.latencyUs.counts.capacity
        let slotCapacities = m.services.map { $0.latencyUs.counts.capacity }
        let rejectedCapacity = m.rejectedByCode.capacity
        var rng = TestRNG(seed: 99)
        var overflow = 0
        for i in 0..<1_000_000 {
            let service = UInt32(i % 12) + 1  // 12 services, 8 slots
            if service > 8 { overflow += 1 }
            m.recordResponse(service: service, latencyUs: UInt32.random(in: 100...300_000, using: &rng), ok: i % 50 != 0)
            if i % 1000 == 0 { m.recordRejected(.badTag) }
        }
        #expect(m.services.count == MetricsLimits.serviceSlotsMax)
        #expect(m.services.capacity == servicesCapacity)
        #expect(m.latencyUs.counts.count == LatencyHistogram.bucketCount)
        #expect(m.latencyUs.counts.capacity == histogramCapacity)
        #expect(m.services.map { $0.latencyUs.counts.capacity } == slotCapacities)
        #expect(m.rejectedByCode.capacity == rejectedCapacity)
        #expect(m.latencyUs.count == 1_000_000)
        #expect(m.requestsServed + m.requestsFailed == 1_000_000 && m.requestsFailed == 20_000)
        #expect(m.serviceSlotOverflows == UInt32(overflow))
        #expect(m.services.allSatisfy { $0.inUse })
        #expect(m.framesRejected == 1000 && m.rejectedByCode[Int(WireError.badTag.code)] == 1000)
        // Histogram totals agree with the counters.
        #expect(m.latencyUs.counts.reduce(0, +) == 1_000_000)
        let r = m.report(nowMs: 3_600_000)
        #expect(r.samples.count <= MetricsLimits.reportSamplesMax)
    }

    @Test func slaCompliance() {
        var m = MetricsRegistry(nowMs: 1000, slaTargetMs: 100)
        #expect(m.slaCompliance == 1, "no calls, nothing missed")
        let svc = serviceID("temp_sensor")
        for _ in 0..<90 { m.recordResponse(service: svc, latencyUs: 50_000, ok: true) }
        for _ in 0..<5 { m.recordResponse(service: svc, latencyUs: 150_000, ok: true) }  // too slow
        for _ in 0..<4 { m.recordResponse(service: svc, latencyUs: 10_000, ok: false) }  // fast but failed
        m.recordResponse(service: svc, latencyUs: 100_000, ok: true)  // exactly on target: met
        #expect(m.slaCompliance == 0.91)
        let slot = m.slotIndex(of: svc)!
        #expect(m.services[slot].slaCompliance == 0.91)
        #expect(m.services[slot].served == 96 && m.services[slot].failed == 4)
    }

    @Test func reportUsesTheDocumentedIDs() throws {
        var m = MetricsRegistry(nowMs: 10_000, slaTargetMs: 250)
        let temp = serviceID("temp_sensor"), hum = serviceID("humidity")
        for i in 0..<100 { m.recordResponse(service: temp, latencyUs: UInt32(1000 * (i + 1)), ok: true) }
        m.recordResponse(service: hum, latencyUs: 2000, ok: false)
        m.recordSent(7); m.recordReceived(5)
        m.recordRejected(.replayed); m.recordRejected(.replayed); m.recordRejected(.truncated)
        m.recordRateLimited(3)
        m.setMemory(heapInUseBytes: 30_000, freeBytes: 200_000)
        m.setMemory(heapInUseBytes: 20_000, freeBytes: 210_000)
        m.setStackHighWater(bytes: 1800)
        m.setTaskTotals(deadlineMisses: 4, restarts: 2)
        m.setBootCount(12); m.setActiveServices(6); m.setConfigVersion(9)
        let r = m.report(nowMs: 3_610_000)
        // Through the wire and back.
        let decoded = try MetricsReport.decode(r.encode())
        #expect(decoded == r)
        #expect(sample(r, 1) == 3600)
        #expect(sample(r, 2) == 100 && sample(r, 3) == 1)
        #expect(sample(r, 4) == 7 && sample(r, 5) == 5 && sample(r, 6) == 3)
        #expect(sample(r, 7) == 20_000 && sample(r, 8) == 30_000 && sample(r, 9) == 210_000)
        #expect(sample(r, 10) == 4 && sample(r, 11) == 2 && sample(r, 12) == 6)
        #expect(sample(r, 13) == 1800 && sample(r, 14) == 12 && sample(r, 15) == 3 && sample(r, 16) == 9)
        #expect(sample(r, 25) == 250)
        #expect(sample(r, 24) == Double((1...100).reduce(0, +) + 2))  // ms
        #expect(abs(sample(r, 20)! - 100.0 / 101.0) < 1e-6)
        #expect(abs(sample(r, 21)! - 50) <= 50.0 / 16 && abs(sample(r, 23)! - 99) <= 99.0 / 16)
        #expect(sample(r, 31) == 1 && sample(r, 34) == 2 && sample(r, 33) == nil, "reasons that occurred")
        let ts = m.slotIndex(of: temp)!, hs = m.slotIndex(of: hum)!
        #expect(sample(r, MetricID.service(slot: ts, .serviceID)) == Double(temp))
        #expect(sample(r, MetricID.service(slot: ts, .served)) == 100)
        #expect(sample(r, MetricID.service(slot: hs, .failed)) == 1)
        #expect(sample(r, MetricID.service(slot: hs, .slaCompliance)) == 0)
        #expect(abs(sample(r, MetricID.service(slot: ts, .p90Ms))! - 90) <= 90.0 / 16)
        #expect(MetricID.service(slot: 1, .p50Ms) == 256 + 16 + 3)
        #expect(MetricID.serviceField(256 + 16 * 7 + 7)! == (7, .responseTimeSumMs))
        #expect(MetricID.serviceField(255) == nil && MetricID.serviceField(256 + 16 * 8) == nil)
    }

    /// The ids in docs/PROTOCOL.md are the ones in MetricID.
    @Test func protocolDocListsTheMetricIDs() throws {
        let doc = try String(contentsOf: repoRoot.appendingPathComponent("docs/PROTOCOL.md"), encoding: .utf8)
        let flat = doc.replacingOccurrences(of: "\n", with: " ")
        for phrase in ["13 stack high-water bytes", "14 boot count", "15 frames dropped by the rate limiter",
                       "16 config version", "24 response time sum ms", "25 SLA target ms",
                       "30 + rejection reason", "256 + 16 × slot + field"] {
            #expect(flat.contains(phrase), "docs/PROTOCOL.md lacks \(phrase)")
        }
    }

    /// A full report (every slot in use, every reason, worst-case values) fits
    /// one frame without compression.
    @Test func fullReportFitsOneFrame() {
        var m = MetricsRegistry(nowMs: 0)
        for s in 0..<20 { m.recordResponse(service: UInt32.max - UInt32(s), latencyUs: 123_457, ok: true) }
        for e: WireError in [.truncated, .badVersion(major: 9), .badTag, .replayed, .oversized,
                             .malformedHeader, .malformedCBOR, .badCompression] { m.recordRejected(e) }
        let shape = m.report(nowMs: 1)
        #expect(shape.samples.count == MetricsLimits.reportSamplesMax, "22 node-wide + 8 reasons + 8 x 8")
        let fractions: Set<UInt16> = [20, 21, 22, 23]
        let worst = MetricsReport(samples: shape.samples.map { s in
            let field = MetricID.serviceField(s.id)?.field
            if fractions.contains(s.id) || [.p50Ms, .p90Ms, .p99Ms, .slaCompliance].contains(field) {
                return .init(id: s.id, value: Double(Float(0.123456789)))
            }
            if s.id == MetricID.responseTimeSumMs || field == .responseTimeSumMs {
                return .init(id: s.id, value: 1e13 + 0.5)  // a double
            }
            return .init(id: s.id, value: Double(UInt32.max))
        })
        let bytes = worst.encode()
        #expect(bytes.count <= Frame.payloadBytesMaxUncompressed, "\(bytes.count) bytes")
        #expect((try? MetricsReport.decode(bytes)) == worst)
    }
}
