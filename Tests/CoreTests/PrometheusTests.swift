// Prometheus text exposition of metrics reports, checked by `promtool check
// metrics` (Debian's prometheus package, installed via scripts/ensure-packages.sh
// when missing; the tests are cancelled, with the reason, if it cannot be), and
// the scrape endpoint over a real TCP socket.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import TDOSCore
@testable import TDOSHost

/// The path of promtool, installing Debian's prometheus package if needed;
/// cancels the calling test with the reason when that is not possible.
private func promtool() throws -> String {
    for p in ["/usr/bin/promtool", "/usr/local/bin/promtool"] where FileManager.default.isExecutableFile(atPath: p) {
        return p
    }
    do {
        try run("bash", ["-c", "ENSURE_PACKAGES_FOR='the promtool test' scripts/ensure-packages.sh prometheus 2>&1"])
    } catch {
        try Test.cancel("promtool unavailable: Debian's prometheus package could not be installed: \(error)")
    }
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") else {
        try Test.cancel("promtool unavailable: the prometheus package installed no /usr/bin/promtool")
    }
    return "/usr/bin/promtool"
}

/// promtool's verdict on `text`: nil if it passes, its output if not.
private func promtoolProblems(_ text: String) throws -> String? {
    let tool = try promtool()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = ["check", "metrics"]
    let inp = Pipe(), out = Pipe()
    p.standardInput = inp
    p.standardOutput = out
    p.standardError = out
    try p.run()
    inp.fileHandleForWriting.write(Data(text.utf8))
    try inp.fileHandleForWriting.close()
    let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return p.terminationStatus == 0 && output.isEmpty ? nil : "exit \(p.terminationStatus): \(output)"
}

/// A node's registry after some traffic.
private func busyNode(seed: UInt64, services: [String]) -> MetricsReport {
    var rng = TestRNG(seed: seed)
    var m = MetricsRegistry(nowMs: 0, slaTargetMs: 50)
    for i in 0..<5000 {
        let s = services[i % services.count]
        m.recordResponse(service: serviceID(Array(s.utf8)), latencyUs: UInt32.random(in: 200...120_000, using: &rng),
                         ok: Int.random(in: 0..<100, using: &rng) != 0)
    }
    m.recordSent(9000); m.recordReceived(8800)
    m.recordRejected(.badTag); m.recordRejected(.replayed)
    m.recordRateLimited(4)
    m.setMemory(heapInUseBytes: 41_000, freeBytes: 180_000)
    m.setStackHighWater(bytes: 1900)
    m.setTaskTotals(deadlineMisses: 3, restarts: 1)
    m.setBootCount(5); m.setActiveServices(UInt32(services.count)); m.setConfigVersion(2)
    return m.report(nowMs: 7_200_000)
}

private func meshText() -> String {
    let kernel = busyNode(seed: 1, services: ["display", "scheduler"])
    let sensor = busyNode(seed: 2, services: ["temp_sensor", "humidity", "light"])
    let odd = busyNode(seed: 3, services: ["we\"ird\\name"])
    return prometheusText(mesh: [
        (node: PrometheusNode(name: "kernel", services: ["display", "scheduler"]), samples: kernel.samples),
        (node: PrometheusNode(name: "sensor-1", services: ["temp_sensor", "humidity"]), samples: sensor.samples),
        (node: PrometheusNode(id: 0x0A0B_0C0D), samples: odd.samples),
    ])
}

/// GET (or another method) over a plain TCP socket: status line, headers, body.
private func httpRequest(port: UInt16, _ request: String) throws -> (status: String, head: String, body: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #expect(fd >= 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    #expect(rc == 0)
    let bytes = Array(request.utf8)
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var response: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += buf[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    let parts = text.components(separatedBy: "\r\n\r\n")
    let head = parts[0]
    return (String(head.split(separator: "\r\n").first ?? ""), head, parts.dropFirst().joined(separator: "\r\n\r\n"))
}

@Suite struct PrometheusTests {
    @Test func meshTextPassesPromtool() throws {
        let text = meshText()
        if let problems = try promtoolProblems(text) {
            Issue.record("promtool check metrics: \(problems)\n\(text)")
        }
        // An empty mesh is an empty (valid) exposition.
        #expect(prometheusText(mesh: []) == "")
        // promtool does catch what it should: the check is not vacuous.
        #expect(try promtoolProblems("# TYPE x counter\nx{a=\"1\" 2\n") != nil)
        #expect(try promtoolProblems("# HELP tdos_x_total x\n# TYPE tdos_x_total counter\ntdos_x_total 1\n# TYPE tdos_x_total counter\ntdos_x_total 2\n") != nil)
    }

    @Test func familiesAreGroupedAndLabelled() {
        let text = meshText()
        let lines = text.split(separator: "\n").map(String.init)
        // Each family's HELP and TYPE exactly once, before its samples, which are contiguous.
        var seen = Set<String>()
        var current = ""
        for l in lines {
            if l.hasPrefix("# TYPE ") {
                let name = String(l.split(separator: " ")[2])
                #expect(seen.insert(name).inserted, "TYPE \(name) twice")
                current = name
            } else if !l.hasPrefix("#") {
                let sampleName = String(l.prefix { $0 != "{" && $0 != " " })
                #expect(sampleName.hasPrefix(current), "\(sampleName) outside its family \(current)")
            }
        }
        #expect(text.contains("# TYPE tdos_response_time_seconds summary"))
        #expect(text.contains("# TYPE tdos_requests_served_total counter"))
        #expect(text.contains("tdos_uptime_seconds{node=\"kernel\"} 7200\n"))
        #expect(text.contains("tdos_frames_rejected_by_reason_total{node=\"kernel\",reason=\"bad_tag\"} 1\n"))
        #expect(text.contains("tdos_frames_rejected_by_reason_total{node=\"kernel\",reason=\"truncated\"} 0\n"))
        #expect(text.contains("tdos_sla_target_seconds{node=\"kernel\"} 0.05\n"))
        #expect(text.contains("tdos_response_time_seconds{node=\"sensor-1\",quantile=\"0.99\"} "))
        #expect(text.contains("tdos_response_time_seconds_count{node=\"sensor-1\"} 5000\n"))
        #expect(text.contains("tdos_service_requests_served_total{node=\"sensor-1\",service=\"temp_sensor\"} "))
        // A service the host cannot name is labelled by its id; label values are escaped.
        #expect(text.contains("service=\"\(prometheusHex(serviceID(Array("light".utf8))))\""))
        #expect(text.contains("node=\"0x0a0b0c0d\""))
        let odd = PrometheusNode(name: "n\"1\\\n", services: [])
        #expect(prometheusText(node: odd, samples: [.init(id: 1, value: 3)]).contains("{node=\"n\\\"1\\\\\\n\"} 3"))
    }

    @Test func summaryQuantilesComeFromTheReport() {
        var m = MetricsRegistry(nowMs: 0)
        for v in 1...1000 { m.recordResponse(service: 1, latencyUs: UInt32(v) * 1000, ok: true) }  // 1..1000 ms
        let text = prometheusText(node: PrometheusNode(name: "n"), samples: m.report(nowMs: 1000).samples)
        func value(_ prefix: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.split(separator: " ").last!) }
        }
        let p50 = value("tdos_response_time_seconds{node=\"n\",quantile=\"0.5\"}")!
        let p99 = value("tdos_response_time_seconds{node=\"n\",quantile=\"0.99\"}")!
        #expect(abs(p50 - 0.5) <= 0.5 / 16 && abs(p99 - 0.99) <= 0.99 / 16)
        #expect(value("tdos_response_time_seconds_sum{node=\"n\"}") == 500.5)
        #expect(value("tdos_response_time_seconds_count{node=\"n\"}") == 1000)
    }

    /// The endpoint serves what a stock Prometheus scrapes, over TCP.
    @Test func httpEndpointServesMetrics() throws {
        let text = meshText()
        let server = try MetricsHTTPServer(port: 0) { text }
        #expect(server.port != 0)
        server.start()
        defer { server.stop() }
        let ok = try httpRequest(port: server.port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n")
        #expect(ok.status == "HTTP/1.1 200 OK")
        #expect(ok.head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"))
        #expect(ok.head.contains("Content-Length: \(text.utf8.count)"))
        #expect(ok.body == text)
        if let problems = try promtoolProblems(ok.body) { Issue.record("served text: \(problems)") }
        #expect(try httpRequest(port: server.port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").status == "HTTP/1.1 200 OK")
        #expect(try httpRequest(port: server.port, "GET / HTTP/1.1\r\n\r\n").status == "HTTP/1.1 404 Not Found")
        #expect(try httpRequest(port: server.port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status
                == "HTTP/1.1 405 Method Not Allowed")
        #expect(try httpRequest(port: server.port, "garbage\r\n\r\n").status == "HTTP/1.1 400 Bad Request")
        let head = try httpRequest(port: server.port, "HEAD /metrics HTTP/1.1\r\n\r\n")
        #expect(head.status == "HTTP/1.1 200 OK" && head.body.isEmpty)
        #expect(server.served == 6)
    }
}
