// Node metrics, as the seeds' MetricsCollector and HORUS's node stats, in fixed
// memory: counters, gauges, a response-time histogram for the node and one per
// service slot (a fixed number of slots), all allocated at start-up. A report is
// the `metrics` payload (MetricsReport): metric id -> number, ids as listed in
// docs/PROTOCOL.md and in `MetricID`.

/// Metric ids of the `metrics` payload (docs/PROTOCOL.md, "Metric ids").
public enum MetricID {
    public static let uptimeS: UInt16 = 1
    public static let requestsServed: UInt16 = 2
    public static let requestsFailed: UInt16 = 3
    public static let framesSent: UInt16 = 4
    public static let framesReceived: UInt16 = 5
    public static let framesRejected: UInt16 = 6
    public static let heapInUseBytes: UInt16 = 7
    public static let heapHighWaterBytes: UInt16 = 8
    public static let freeMemoryBytes: UInt16 = 9
    public static let deadlineMisses: UInt16 = 10
    public static let taskRestarts: UInt16 = 11
    public static let activeServices: UInt16 = 12
    public static let stackHighWaterBytes: UInt16 = 13
    /// Boots of the node (its message-id epoch): restarts of the whole node.
    public static let bootCount: UInt16 = 14
    /// Frames dropped by the per-sender rate limiter.
    public static let rateLimitedDrops: UInt16 = 15
    /// Version of the config update in force (0 = none).
    public static let configVersion: UInt16 = 16
    /// Share of requests answered ok within the SLA target, 0...1 (1 when none).
    public static let slaCompliance: UInt16 = 20
    public static let responseP50Ms: UInt16 = 21
    public static let responseP90Ms: UInt16 = 22
    public static let responseP99Ms: UInt16 = 23
    /// Sum of all response times, ms (with 2 + 3, a Prometheus summary's _sum and _count).
    public static let responseTimeSumMs: UInt16 = 24
    public static let slaTargetMs: UInt16 = 25
    /// 30 + WireError.code (31 truncated ... 38 bad_compression): frames rejected by reason.
    public static let rejectedBase: UInt16 = 30
    /// Per service slot s (0...7): 256 + 16 * s + field.
    public static let serviceBase: UInt16 = 256
    public static let serviceStride: UInt16 = 16

    /// The fields of a service slot's block.
    public enum ServiceField: UInt16, CaseIterable {
        /// FNV-1a-32 of the service name (as in `request` key 1).
        case serviceID = 0
        case served = 1
        case failed = 2
        case p50Ms = 3
        case p90Ms = 4
        case p99Ms = 5
        case slaCompliance = 6
        case responseTimeSumMs = 7
    }

    public static func rejected(code: UInt8) -> UInt16 { rejectedBase + UInt16(code) }

    public static func service(slot: Int, _ field: ServiceField) -> UInt16 {
        precondition(slot >= 0 && slot < MetricsLimits.serviceSlotsMax)
        return serviceBase + serviceStride * UInt16(slot) + field.rawValue
    }

    /// (slot, field) of a per-service id, nil for other ids.
    public static func serviceField(_ id: UInt16) -> (slot: Int, field: ServiceField)? {
        guard id >= serviceBase else { return nil }
        let slot = Int((id - serviceBase) / serviceStride)
        guard slot < MetricsLimits.serviceSlotsMax,
              let f = ServiceField(rawValue: (id - serviceBase) % serviceStride) else { return nil }
        return (slot, f)
    }
}

public enum MetricsLimits {
    /// Services with their own histogram; the node-wide one counts every call.
    public static let serviceSlotsMax = servicesPerNodeMax
    /// Most samples in one report: 30 node-wide ids at most, 8 fields per slot.
    public static let reportSamplesMax = 30 + serviceSlotsMax * MetricID.ServiceField.allCases.count

    public static func check() {
        precondition(reportSamplesMax <= MetricsReport.samplesMax, "a full report must survive decoding")
        precondition(MetricID.rejectedBase + UInt16(WireError.codeCount) <= MetricID.serviceBase)
        precondition(MetricID.ServiceField.allCases.count <= Int(MetricID.serviceStride))
        precondition(Int(MetricID.serviceBase) + serviceSlotsMax * Int(MetricID.serviceStride) <= 1024)
        precondition(LatencyHistogram.bucketCount <= 256, "a histogram stays under 1 KB")
    }
}

/// Per-service counters and histogram, in a fixed slot.
public struct ServiceMetrics {
    public fileprivate(set) var serviceID: UInt32 = 0
    public fileprivate(set) var inUse = false
    public fileprivate(set) var served: UInt32 = 0
    public fileprivate(set) var failed: UInt32 = 0
    public fileprivate(set) var withinTarget: UInt32 = 0
    public fileprivate(set) var latencyUs = LatencyHistogram()

    /// Share of calls answered ok within the SLA target (1 when there were none).
    public var slaCompliance: Double { MetricsRegistry.ratio(withinTarget, served &+ failed) }
}

public struct MetricsRegistry {
    public let bootMs: UInt64
    /// A call meets the SLA if it succeeds within this many µs (metrics.sla_target_ms).
    public var slaTargetUs: UInt32

    public private(set) var requestsServed: UInt32 = 0
    public private(set) var requestsFailed: UInt32 = 0
    public private(set) var withinTarget: UInt32 = 0
    public private(set) var latencyUs = LatencyHistogram()
    /// Fixed slots; a service gets the first free one and keeps it.
    public private(set) var services: Table<ServiceMetrics>
    /// Calls of services that found every slot taken (still counted node-wide).
    public private(set) var serviceSlotOverflows: UInt32 = 0

    public private(set) var framesSent: UInt32 = 0
    public private(set) var framesReceived: UInt32 = 0
    public private(set) var framesRejected: UInt32 = 0
    /// Index = WireError.code.
    public private(set) var rejectedByCode: [UInt32]
    public private(set) var rateLimitedDrops: UInt32 = 0

    public private(set) var heapInUseBytes: UInt32 = 0
    public private(set) var heapHighWaterBytes: UInt32 = 0
    public private(set) var freeMemoryBytes: UInt32 = 0
    public private(set) var stackHighWaterBytes: UInt32 = 0

    public private(set) var deadlineMisses: UInt32 = 0
    public private(set) var taskRestarts: UInt32 = 0
    public private(set) var bootCount: UInt32 = 0
    public private(set) var activeServices: UInt32 = 0
    public private(set) var configVersion: UInt32 = 0

    public init(nowMs: UInt64, slaTargetMs: UInt32 = 100) {
        bootMs = nowMs
        slaTargetUs = slaTargetMs &* 1000
        // One histogram buffer per slot: `repeating:` would share one buffer and
        // each slot's first sample would copy it (an allocation after start-up).
        services = Table(capacity: MetricsLimits.serviceSlotsMax)
        for _ in 0..<MetricsLimits.serviceSlotsMax { services.append(ServiceMetrics()) }
        rejectedByCode = [UInt32](repeating: 0, count: WireError.codeCount)
    }

    // MARK: Events

    /// One answered call of `service` (the node's own, or one it called):
    /// `ok` = answered with status ok.
    public mutating func recordResponse(service: UInt32, latencyUs: UInt32, ok: Bool) {
        let within = ok && latencyUs <= slaTargetUs
        if ok { requestsServed &+= 1 } else { requestsFailed &+= 1 }
        if within { withinTarget &+= 1 }
        self.latencyUs.record(latencyUs)
        guard let s = slot(for: service) else {
            serviceSlotOverflows &+= 1
            return
        }
        if ok { services[s].served &+= 1 } else { services[s].failed &+= 1 }
        if within { services[s].withinTarget &+= 1 }
        services[s].latencyUs.record(latencyUs)
    }

    mutating func slot(for service: UInt32) -> Int? {
        var free: Int? = nil
        for i in 0..<services.count {
            if services[i].inUse {
                if services[i].serviceID == service { return i }
            } else if free == nil {
                free = i
            }
        }
        guard let f = free else { return nil }
        services[f].inUse = true
        services[f].serviceID = service
        return f
    }

    /// The slot of a service already seen, nil otherwise.
    public func slotIndex(of service: UInt32) -> Int? {
        for i in 0..<services.count where services[i].inUse && services[i].serviceID == service { return i }
        return nil
    }

    public mutating func recordSent(_ frames: UInt32 = 1) { framesSent &+= frames }
    public mutating func recordReceived(_ frames: UInt32 = 1) { framesReceived &+= frames }

    public mutating func recordRejected(_ error: WireError) {
        framesRejected &+= 1
        let code = Int(error.code)
        if code < rejectedByCode.count { rejectedByCode[code] &+= 1 }
    }

    public mutating func recordRateLimited(_ frames: UInt32 = 1) { rateLimitedDrops &+= frames }
    public mutating func recordDeadlineMiss() { deadlineMisses &+= 1 }
    public mutating func recordTaskRestart() { taskRestarts &+= 1 }

    // MARK: Gauges and totals kept elsewhere

    /// Heap now; the high-water mark is the largest value ever set (or the
    /// allocator's own, if it reports a larger one).
    public mutating func setMemory(heapInUseBytes: UInt32, freeBytes: UInt32, heapHighWaterBytes: UInt32 = 0) {
        self.heapInUseBytes = heapInUseBytes
        freeMemoryBytes = freeBytes
        let hw = heapInUseBytes > heapHighWaterBytes ? heapInUseBytes : heapHighWaterBytes
        if hw > self.heapHighWaterBytes { self.heapHighWaterBytes = hw }
    }

    /// The board's stack high-water mark (bytes of stack ever used).
    public mutating func setStackHighWater(bytes: UInt32) {
        if bytes > stackHighWaterBytes { stackHighWaterBytes = bytes }
    }

    /// Totals the scheduler keeps (its introspection), replacing the counts here.
    public mutating func setTaskTotals(deadlineMisses: UInt32, restarts: UInt32) {
        self.deadlineMisses = deadlineMisses
        taskRestarts = restarts
    }

    /// Totals the mesh keeps (MeshCounters), replacing the counts here.
    public mutating func setFrameTotals(sent: UInt32, received: UInt32, rateLimited: UInt32) {
        framesSent = sent
        framesReceived = received
        rateLimitedDrops = rateLimited
    }

    /// The mesh's total of rejections for one reason (`WireError.code`); the
    /// all-reasons total follows.
    public mutating func setRejectedTotal(code: UInt8, _ total: UInt32) {
        let c = Int(code)
        guard c > 0 && c < rejectedByCode.count else { return }
        rejectedByCode[c] = total
        var sum: UInt32 = 0
        for n in rejectedByCode { sum &+= n }
        framesRejected = sum
    }

    public mutating func setBootCount(_ boots: UInt32) { bootCount = boots }
    public mutating func setActiveServices(_ n: UInt32) { activeServices = n }
    public mutating func setConfigVersion(_ v: UInt32) { configVersion = v }

    // MARK: Reading

    public var slaCompliance: Double { MetricsRegistry.ratio(withinTarget, requestsServed &+ requestsFailed) }

    /// Share of `total` (1 when there were none).
    @inline(never)
    static func ratio(_ part: UInt32, _ total: UInt32) -> Double {
        total == 0 ? 1 : Double(part) / Double(total)
    }

    public func uptimeMs(nowMs: UInt64) -> UInt64 { nowMs >= bootMs ? nowMs - bootMs : 0 }

    /// The `metrics` payload: node-wide ids always, rejection reasons that
    /// occurred, and a block per service slot in use. Fractional values are
    /// rounded to single precision (5 bytes of CBOR each, ample for ms).
    public func report(nowMs: UInt64) -> MetricsReport {
        // Written in place into storage for the most samples a report can have
        // (MetricsLimits.reportSamplesMax counts them exactly): an array built
        // by `append` carried Array's growth code for the sample type (0.3 KB).
        MetricsReport(samples: .init(unsafeUninitializedCapacity: MetricsLimits.reportSamplesMax) { buf, count in
            var sink = SampleSink(out: buf.baseAddress!)
            fill(&sink, nowMs)
            count = sink.count
        })
    }

    /// Where `fill` writes: one captured value for its helpers.
    private struct SampleSink {
        let out: UnsafeMutablePointer<MetricsReport.Sample>
        var count = 0

        @inline(never)
        mutating func put(_ id: UInt16, _ value: Double) {
            precondition(count < MetricsLimits.reportSamplesMax, "metrics report over reportSamplesMax")
            (out + count).initialize(to: .init(id: id, value: value))
            count += 1
        }
    }

    /// Writes the report's samples into `sink`.
    private func fill(_ sink: inout SampleSink, _ nowMs: UInt64) {
        // Out of line: inlined, each of the ~30 samples carried its own store.
        @inline(never) func add(_ id: UInt16, _ v: UInt32) { sink.put(id, Double(v)) }
        @inline(never) func addFraction(_ id: UInt16, _ v: Double) { sink.put(id, Double(Float(v))) }
        @inline(never) func addMs(_ id: UInt16, _ us: UInt32) { addFraction(id, Double(us) / 1000) }
        /// p50, p90 and p99 at `id`, `id + 1`, `id + 2` (node-wide and per service alike).
        @inline(never) func addQuantiles(_ id: UInt16, _ h: LatencyHistogram) {
            addMs(id, h.quantile(percent: 50))
            addMs(id + 1, h.quantile(percent: 90))
            addMs(id + 2, h.quantile(percent: 99))
        }
        @inline(never) func addSumMs(_ id: UInt16, _ h: LatencyHistogram) { sink.put(id, Double(h.sum / 1000)) }
        add(MetricID.uptimeS, UInt32(truncatingIfNeeded: uptimeMs(nowMs: nowMs) / 1000))
        add(MetricID.requestsServed, requestsServed)
        add(MetricID.requestsFailed, requestsFailed)
        add(MetricID.framesSent, framesSent)
        add(MetricID.framesReceived, framesReceived)
        add(MetricID.framesRejected, framesRejected)
        add(MetricID.heapInUseBytes, heapInUseBytes)
        add(MetricID.heapHighWaterBytes, heapHighWaterBytes)
        add(MetricID.freeMemoryBytes, freeMemoryBytes)
        add(MetricID.deadlineMisses, deadlineMisses)
        add(MetricID.taskRestarts, taskRestarts)
        add(MetricID.activeServices, activeServices)
        add(MetricID.stackHighWaterBytes, stackHighWaterBytes)
        add(MetricID.bootCount, bootCount)
        add(MetricID.rateLimitedDrops, rateLimitedDrops)
        add(MetricID.configVersion, configVersion)
        addFraction(MetricID.slaCompliance, MetricsRegistry.ratio(withinTarget, requestsServed &+ requestsFailed))
        addQuantiles(MetricID.responseP50Ms, latencyUs)
        addSumMs(MetricID.responseTimeSumMs, latencyUs)
        add(MetricID.slaTargetMs, slaTargetUs / 1000)
        for code in 1..<rejectedByCode.count where rejectedByCode[code] != 0 {
            add(MetricID.rejected(code: UInt8(code)), rejectedByCode[code])
        }
        for slot in 0..<services.count where services[slot].inUse {
            let base = MetricID.service(slot: slot, .serviceID)
            add(base, services[slot].serviceID)
            add(base + MetricID.ServiceField.served.rawValue, services[slot].served)
            add(base + MetricID.ServiceField.failed.rawValue, services[slot].failed)
            addQuantiles(base + MetricID.ServiceField.p50Ms.rawValue, services[slot].latencyUs)
            addFraction(base + MetricID.ServiceField.slaCompliance.rawValue,
                        MetricsRegistry.ratio(services[slot].withinTarget, services[slot].served &+ services[slot].failed))
            addSumMs(base + MetricID.ServiceField.responseTimeSumMs.rawValue, services[slot].latencyUs)
        }
    }
}
