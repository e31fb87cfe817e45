// Prometheus text exposition (format 0.0.4) of `metrics` reports, for
// `tdos metrics --prometheus` and the scrape endpoint (MetricsHTTPServer).
// Names follow Prometheus conventions: base units (seconds, bytes, ratios),
// counters end in _total, every sample is labelled with its node, per-service
// samples with their service. Response times are summaries (p50/p90/p99 from
// the node's histograms, _sum and _count).

import Foundation
import TDOSCore

/// How a node and its services are named in the labels.
public struct PrometheusNode: Equatable, Sendable {
    /// The `node` label.
    public var name: String
    /// Service names by service id (FNV-1a-32, from announces); unknown ids
    /// are labelled "0x" + 8 hex digits.
    public var serviceNames: [UInt32: String]

    public init(name: String, serviceNames: [UInt32: String] = [:]) {
        self.name = name
        self.serviceNames = serviceNames
    }

    /// A node known only by its id: "0x0a0b0c0d".
    public init(id: UInt32, serviceNames: [UInt32: String] = [:]) {
        self.init(name: prometheusHex(id), serviceNames: serviceNames)
    }

    /// Names `serviceID(name)` for each name.
    public init(name: String, services: [String]) {
        var map: [UInt32: String] = [:]
        for s in services { map[serviceID(Array(s.utf8))] = s }
        self.init(name: name, serviceNames: map)
    }

    func serviceLabel(_ id: UInt32) -> String { serviceNames[id] ?? prometheusHex(id) }
}

func prometheusHex(_ v: UInt32) -> String {
    let h = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - h.count) + h
}

/// One node's report as Prometheus text.
public func prometheusText(node: PrometheusNode, samples: [MetricsReport.Sample]) -> String {
    prometheusText(mesh: [(node: node, samples: samples)])
}

/// Every node's report in one exposition (each family's HELP and TYPE once,
/// its samples grouped), as the whole-mesh scrape endpoint serves it.
public func prometheusText(mesh: [(node: PrometheusNode, samples: [MetricsReport.Sample])]) -> String {
    var families: [PrometheusFamily] = []
    func family(_ name: String, _ type: String, _ help: String) -> Int {
        if let i = families.firstIndex(where: { $0.name == name }) { return i }
        families.append(PrometheusFamily(name: name, type: type, help: help))
        return families.count - 1
    }
    for (node, samples) in mesh {
        var byID: [UInt16: Double] = [:]
        for s in samples where byID[s.id] == nil { byID[s.id] = s.value }
        let nodeLabel = [("node", node.name)]

        for spec in PrometheusFamily.nodeScalars {
            guard let v = byID[spec.id] else { continue }
            let f = family(spec.name, spec.type, spec.help)
            families[f].add(spec.name, nodeLabel, v * spec.scale, single: spec.id == MetricID.slaCompliance)
        }
        // Rejections by reason: every reason once the node reports rejections at all.
        if byID[MetricID.framesRejected] != nil || (31...38).contains(where: { byID[UInt16($0)] != nil }) {
            let name = "tdos_frames_rejected_by_reason_total"
            let f = family(name, "counter", "Frames rejected and dropped, by reason (docs/PROTOCOL.md).")
            for (code, reason) in prometheusRejectReasons {
                families[f].add(name, nodeLabel + [("reason", reason)], byID[MetricID.rejected(code: code)] ?? 0)
            }
        }
        // Node-wide response time summary.
        if byID[MetricID.responseP50Ms] != nil {
            let name = "tdos_response_time_seconds"
            let f = family(name, "summary", "Response times of the calls this node answered or made.")
            addSummary(&families[f], name, nodeLabel,
                       quantiles: [byID[MetricID.responseP50Ms], byID[MetricID.responseP90Ms], byID[MetricID.responseP99Ms]],
                       sumMs: byID[MetricID.responseTimeSumMs],
                       count: (byID[MetricID.requestsServed] ?? 0) + (byID[MetricID.requestsFailed] ?? 0))
        }
        // Per-service blocks.
        var slots: [Int: [MetricID.ServiceField: Double]] = [:]
        for (id, v) in byID {
            if let (slot, field) = MetricID.serviceField(id) { slots[slot, default: [:]][field] = v }
        }
        for slot in slots.keys.sorted() {
            let fields = slots[slot]!
            guard let sid = fields[.serviceID], sid >= 0, sid <= Double(UInt32.max) else { continue }
            let labels = nodeLabel + [("service", node.serviceLabel(UInt32(sid)))]
            for spec in PrometheusFamily.serviceScalars {
                guard let v = fields[spec.field] else { continue }
                let f = family(spec.name, spec.type, spec.help)
                families[f].add(spec.name, labels, v, single: spec.field == .slaCompliance)
            }
            if fields[.p50Ms] != nil {
                let name = "tdos_service_response_time_seconds"
                let f = family(name, "summary", "Response times per service.")
                addSummary(&families[f], name, labels,
                           quantiles: [fields[.p50Ms], fields[.p90Ms], fields[.p99Ms]],
                           sumMs: fields[.responseTimeSumMs],
                           count: (fields[.served] ?? 0) + (fields[.failed] ?? 0))
            }
        }
    }
    var out = ""
    for f in families where !f.lines.isEmpty {
        out += "# HELP \(f.name) \(prometheusEscapeHelp(f.help))\n"
        out += "# TYPE \(f.name) \(f.type)\n"
        for l in f.lines { out += l + "\n" }
    }
    return out
}

private func addSummary(_ f: inout PrometheusFamily, _ name: String, _ labels: [(String, String)],
                        quantiles: [Double?], sumMs: Double?, count: Double) {
    for (q, v) in zip(["0.5", "0.9", "0.99"], quantiles) {
        guard let v else { continue }
        f.add(name, labels + [("quantile", q)], v / 1000, single: true)
    }
    f.add(name + "_sum", labels, (sumMs ?? 0) / 1000)
    f.add(name + "_count", labels, count)
}

let prometheusRejectReasons: [(UInt8, String)] = [
    (WireError.truncated.code, "truncated"),
    (WireError.badVersion(major: 0).code, "bad_version"),
    (WireError.badTag.code, "bad_tag"),
    (WireError.replayed.code, "replayed"),
    (WireError.oversized.code, "oversized"),
    (WireError.malformedHeader.code, "malformed_header"),
    (WireError.malformedCBOR.code, "malformed_cbor"),
    (WireError.badCompression.code, "bad_compression"),
]

struct PrometheusFamily {
    var name: String
    var type: String
    var help: String
    var lines: [String] = []

    /// `single`: the value was sent in single precision (fractions and
    /// quantiles, see MetricsRegistry.report): printed with 7 significant digits.
    mutating func add(_ sample: String, _ labels: [(String, String)], _ value: Double, single: Bool = false) {
        let l = labels.map { "\($0.0)=\"\(prometheusEscapeLabel($0.1))\"" }.joined(separator: ",")
        lines.append("\(sample){\(l)} \(prometheusValue(value, single: single))")
    }

    struct Scalar {
        var id: UInt16
        var name: String
        var type: String
        var help: String
        var scale: Double = 1
    }

    static let nodeScalars: [Scalar] = [
        Scalar(id: MetricID.uptimeS, name: "tdos_uptime_seconds", type: "gauge", help: "Time since the node started."),
        Scalar(id: MetricID.requestsServed, name: "tdos_requests_served_total", type: "counter", help: "Requests answered with status ok."),
        Scalar(id: MetricID.requestsFailed, name: "tdos_requests_failed_total", type: "counter", help: "Requests that failed (error status or no answer)."),
        Scalar(id: MetricID.framesSent, name: "tdos_frames_sent_total", type: "counter", help: "Frames (datagrams) sent."),
        Scalar(id: MetricID.framesReceived, name: "tdos_frames_received_total", type: "counter", help: "Frames (datagrams) received and accepted."),
        Scalar(id: MetricID.framesRejected, name: "tdos_frames_rejected_total", type: "counter", help: "Frames rejected and dropped, all reasons."),
        Scalar(id: MetricID.rateLimitedDrops, name: "tdos_rate_limited_drops_total", type: "counter", help: "Frames dropped by the per-sender rate limiter."),
        Scalar(id: MetricID.heapInUseBytes, name: "tdos_heap_in_use_bytes", type: "gauge", help: "Heap in use."),
        Scalar(id: MetricID.heapHighWaterBytes, name: "tdos_heap_high_water_bytes", type: "gauge", help: "Most heap ever in use."),
        Scalar(id: MetricID.freeMemoryBytes, name: "tdos_free_memory_bytes", type: "gauge", help: "Free memory."),
        Scalar(id: MetricID.stackHighWaterBytes, name: "tdos_stack_high_water_bytes", type: "gauge", help: "Most stack ever used (boards)."),
        Scalar(id: MetricID.deadlineMisses, name: "tdos_deadline_misses_total", type: "counter", help: "Task ticks that overran their deadline."),
        Scalar(id: MetricID.taskRestarts, name: "tdos_task_restarts_total", type: "counter", help: "Tasks restarted by their watchdog or circuit breaker."),
        Scalar(id: MetricID.bootCount, name: "tdos_boots_total", type: "counter", help: "Times the node has started (its message-id epoch)."),
        Scalar(id: MetricID.activeServices, name: "tdos_active_services", type: "gauge", help: "Services the node knows to be alive."),
        Scalar(id: MetricID.configVersion, name: "tdos_config_version", type: "gauge", help: "Version of the config update in force (0 = none)."),
        Scalar(id: MetricID.slaCompliance, name: "tdos_sla_compliance_ratio", type: "gauge", help: "Share of calls answered ok within the SLA target."),
        Scalar(id: MetricID.slaTargetMs, name: "tdos_sla_target_seconds", type: "gauge", help: "The SLA target latency.", scale: 0.001),
    ]

    struct ServiceScalar {
        var field: MetricID.ServiceField
        var name: String
        var type: String
        var help: String
    }

    static let serviceScalars: [ServiceScalar] = [
        ServiceScalar(field: .served, name: "tdos_service_requests_served_total", type: "counter", help: "Requests answered ok, per service."),
        ServiceScalar(field: .failed, name: "tdos_service_requests_failed_total", type: "counter", help: "Requests failed, per service."),
        ServiceScalar(field: .slaCompliance, name: "tdos_service_sla_compliance_ratio", type: "gauge", help: "Share of calls answered ok within the SLA target, per service."),
    ]
}

/// A sample value as Prometheus reads it (Go's ParseFloat): integers plainly,
/// single-precision values without the noise of their Double expansion.
func prometheusValue(_ v: Double, single: Bool = false) -> String {
    if v.isNaN { return "NaN" }
    if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
    if v == v.rounded(.towardZero) && abs(v) < 1e15 { return String(Int64(v)) }
    if single { return String(format: "%.7g", v) }
    return "\(v)"
}

func prometheusEscapeLabel(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        default: out.append(c)
        }
    }
    return out
}

func prometheusEscapeHelp(_ s: String) -> String {
    s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
}
