// Config, metrics and the rate limiter on the board's instruction set: config
// defaults, deep merge and dotted get, versioned updates, the flash image and its
// CRC, histogram quantiles against exact ones, and token buckets over virtual time.

import TDOSCore

func configMetricsTests() {
    ConfigLimits.check()
    MetricsLimits.check()
    configTreeOnBoard()
    configUpdatesOnBoard()
    configImageOnBoard()
    histogramOnBoard()
    metricsReportOnBoard()
    rateLimiterOnBoard()
}

private func intItem(_ v: Int64) -> [UInt8] {
    var w = CBORWriter()
    w.int(v)
    return w.bytes
}

private func configTreeOnBoard() {
    var t = ConfigSchema.defaults()
    expectEqual(t.int("discovery.heartbeat_interval_ms", default: 0), 5000, "default heartbeat")
    expectEqual(t.int("fault_tolerance.breaker_threshold", default: 0), 5, "default breaker threshold")
    expect(t.number("network.backoff_multiplier", default: 0) == 1.5, "default backoff")
    expectEqual(t.text("network.ssid", default: []), ascii("TDOS"), "default ssid")
    expect(t.value(at: "sensors") == .map, "sensors is a map")
    expectEqual(t.int("discovery.nope", default: 7), 7, "missing path gives the default")
    expectEqual(t.int("network.ssid", default: 7), 7, "wrong kind gives the default")

    var over = ConfigTree()
    expectNoThrow("set override") { () throws(ConfigError) in
        try over.set("discovery.heartbeat_interval_ms", .int(2000))
        try over.set("sensors.temp_sensor.calibration_offset", .number(-0.5))
    }
    expectNoThrow("deep merge") { () throws(ConfigError) in try t.merge(over) }
    expectEqual(t.int("discovery.heartbeat_interval_ms", default: 0), 2000, "merged value")
    expectEqual(t.int("discovery.service_timeout_ms", default: 0), 15000, "sibling kept by the merge")
    expect(t.number("sensors.temp_sensor.calibration_offset", default: 0) == -0.5, "wildcard field")
    expectThrows(ConfigError.badPath, "empty segment refused") { () throws(ConfigError) in
        try t.set(ascii("a..b"), .int(1))
    }
    var small = ConfigTree(capacity: 3)
    expectThrows(ConfigError.full, "fixed capacity") { () throws(ConfigError) in
        try small.set("a.b.c.d", .int(1))
    }
    expectEqual(small.count, 0, "a refused set changes nothing")
}

private func configUpdatesOnBoard() {
    var m = ConfigManager()
    let path = ascii("discovery.heartbeat_interval_ms")
    let v5 = ConfigUpdate(version: 5, entries: [ConfigUpdate.Entry(path: path, value: intItem(2000))])
    expect(m.apply(v5) == .applied(version: 5, entries: 1), "new version applied")
    expect(m.apply(v5) == .duplicate(version: 5), "equal version is idempotent")
    let v4 = ConfigUpdate(version: 4, entries: [ConfigUpdate.Entry(path: path, value: intItem(100))])
    expect(m.apply(v4) == .stale(current: 5), "old version never wins")
    expectEqual(m.int("discovery.heartbeat_interval_ms", default: 0), 2000, "value of the newest")
    let bad = ConfigUpdate(version: 6, entries: [ConfigUpdate.Entry(path: path, value: intItem(1)),])
    expect(m.apply(bad) == .rejected(entry: 0, reason: .outOfRange), "out of range refused")
    expectEqual(m.version, 5, "a refused update uses no version")

    // Through the wire format.
    let wire = ConfigUpdate(version: 6, entries: [ConfigUpdate.Entry(path: ascii("power.enable_sleep"), value: [0xF5])]).encode()
    if let u = expectNoThrow("config_update decodes", { () throws(WireError) in try ConfigUpdate.decode(wire) }) {
        expect(m.apply(u) == .applied(version: 6, entries: 1), "decoded update applied")
    }
    expect(m.bool("power.enable_sleep", default: false), "bool applied")

    // The persisted image brings the version back after a reboot.
    var rebooted = ConfigManager()
    expect(rebooted.restore(image: m.image()) == .restored(version: 6, dropped: 0), "restore")
    expect(rebooted.apply(v5) == .stale(current: 6), "old version refused after reboot")
    expect(rebooted.effective == m.effective, "same config after reboot")
}

private func configImageOnBoard() {
    var t = ConfigSchema.defaults()
    _ = expectNoThrow("set") { () throws(ConfigError) in try t.set("sensors.light.calibration_offset", .number(3.25)) }
    guard let bytes = expectNoThrow("encode image", { () throws(ConfigError) in
        try ConfigImage(version: 9, tree: t).encode()
    }) else { return }
    let back = expectNoThrow("decode image") { () throws(ConfigError) in try ConfigImage.decode(bytes) }
    expect(back == ConfigImage(version: 9, tree: t), "image round trip")
    expect(ConfigImage.crc32(ascii("123456789")[...]) == 0xCBF4_3926, "crc32 check value")
    var detected = true
    for i in 4..<bytes.count {
        var c = bytes
        c[i] ^= 0x10
        if (try? ConfigImage.decode(c)) != nil { detected = false }
    }
    expect(detected, "every corrupted byte detected")
    let blank = [UInt8](repeating: 0xFF, count: 64)
    expectThrows(ConfigError.noImage, "erased flash is no image") { () throws(ConfigError) in
        _ = try ConfigImage.decode(blank)
    }
}

/// xorshift32: deterministic samples without Foundation.
private struct XorShift {
    var s: UInt32
    mutating func next() -> UInt32 {
        s ^= s << 13
        s ^= s >> 17
        s ^= s << 5
        return s
    }
}

private func histogramOnBoard() {
    var h = LatencyHistogram()
    var rng = XorShift(s: 0x1234_5678)
    var values: [UInt32] = []
    for _ in 0..<600 {
        let v = rng.next() % (1 << (8 + rng.next() % 14))  // spread over many octaves
        values.append(v)
        h.record(v)
    }
    values.sort()
    expectEqual(h.count, 600, "count")
    expectEqual(h.counts.count, LatencyHistogram.bucketCount, "fixed bucket count")
    var within = true
    for q in [0.5, 0.9, 0.99] {
        var rank = Int((q * 600).rounded(.up))
        if rank < 1 { rank = 1 }
        let exact = values[rank - 1]
        let est = h.quantile(q)
        let err = est > exact ? est - exact : exact - est
        if err > exact / 16 || LatencyHistogram.bucketIndex(est) != LatencyHistogram.bucketIndex(exact) { within = false }
    }
    expect(within, "p50/p90/p99 within bucket error")
    let capacity = h.counts.capacity
    for i in 0..<20_000 { h.record(UInt32(i) &* 2_654_435_761 >> 8) }
    expectEqual(h.counts.capacity, capacity, "no growth")
}

private func metricsReportOnBoard() {
    var m = MetricsRegistry(nowMs: 0, slaTargetMs: 100)
    for i in 0..<100 { m.recordResponse(service: serviceID("temp_sensor"), latencyUs: UInt32(i) * 2000, ok: true) }
    m.recordRejected(.badTag)
    let r = m.report(nowMs: 60_000)
    let back = expectNoThrow("metrics report decodes") { () throws(WireError) in try MetricsReport.decode(r.encode()) }
    expect(back == r, "metrics report round trip")
    var uptime = -1.0, sla = -1.0, badTag = -1.0
    for s in r.samples {
        if s.id == MetricID.uptimeS { uptime = s.value }
        if s.id == MetricID.slaCompliance { sla = s.value }
        if s.id == MetricID.rejected(code: WireError.badTag.code) { badTag = s.value }
    }
    expect(uptime == 60, "uptime s")
    expect(sla > 0.50 && sla < 0.52, "51 of 100 within 100 ms")
    expect(badTag == 1, "rejections by reason")
}

private func rateLimiterOnBoard() {
    var rl = RateLimiter(RateLimiterConfig(ratePerS: 20, burst: 40, sendersMax: 4))
    var flood: UInt32 = 0, quiet: UInt32 = 0, quietSent: UInt32 = 0
    for ms in 0..<10_000 {
        if rl.admit(sender: 1, nowMs: UInt64(ms)) { flood += 1 }
        if ms % 200 == 0 {
            quietSent += 1
            if rl.admit(sender: 2, nowMs: UInt64(ms)) { quiet += 1 }
        }
    }
    expect(flood >= 239 && flood <= 240, "flooder gets burst + rate x time")
    expectEqual(quiet, quietSent, "quiet sender never dropped")
    expectEqual(rl.dropped, 10_000 - flood, "drops counted")
    for s: UInt32 in 10..<100 { _ = rl.admit(sender: s, nowMs: 20_000 + UInt64(s)) }
    expectEqual(rl.count, 4, "fixed sender table")
    expectEqual(rl.evictions, 88, "least recently seen evicted")
}
