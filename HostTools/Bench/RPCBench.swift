// `tdos-bench rpc`: RPC round trip between two processes over loopback — a
// sensor node (`tdos node`, the real NodeRuntime on the POSIX platform) and
// two clients in this process: a MeshNode over a UDP socket (encode, HMAC,
// CBOR, retransmission state, the same code as the CLI) and a wire-level
// client (request frame, tag, replay window, nothing else) — and, in the same
// run, the same pattern against libcoap's coap-server (Debian libcoap3-bin)
// with a raw UDP CoAP client written here (confirmable GET, piggybacked 2.05).
// Latency: sequential calls in alternating rounds, p50/p99, with the CPU time
// each side spent per call. Throughput: 8 calls in flight for 1 s. The node
// polls after traffic as configured (TDOS_POLL_US); the clients block unless
// TDOS_BENCH_CLIENT_POLL_US makes every one of them, CoAP's too, poll.
// The ratio is TDOS p50 / libcoap p50 (goal <= 0.8).
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSHost
import TDOSHostC

private let rpcWarmup = 300
/// `TDOS_BENCH_RPC_SAMPLES` raises it for profiling runs.
private let rpcSamples = ProcessInfo.processInfo.environment["TDOS_BENCH_RPC_SAMPLES"].flatMap { Int($0) } ?? 3000
private let rpcInFlight = 8
/// `TDOS_BENCH_CLIENT_POLL_US`: each client, TDOS and CoAP alike, polls its
/// socket this long after sending before it blocks for the answer (0: block
/// at once, the default). The node's own window is `TDOS_POLL_US` (HostPolling).
private let rpcClientPollNs = UInt64(ProcessInfo.processInfo.environment["TDOS_BENCH_CLIENT_POLL_US"].flatMap { UInt32($0) } ?? 0) * 1000
private let rpcThroughputSeconds = 1.0
/// `TDOS_BENCH_SPLIT=1`: each client also times its own part of a call, from
/// the call's start to its send system call and from its receive's return to
/// the answer in hand (user space, outside the kernel's round trip). Off by
/// default: the clock reads it costs every client (two per call) stay out of
/// the figures.
private let rpcSplit = ProcessInfo.processInfo.environment["TDOS_BENCH_SPLIT"] == "1"

/// A client's own time per call (`rpcSplit`): before its send, after its receive.
struct RPCSplit {
    var sendAtNs: UInt64 = 0
    var receivedAtNs: UInt64 = 0
    var beforeSend: [UInt64] = []
    var afterReceive: [UInt64] = []
    @inline(__always) mutating func sending() { if rpcSplit { sendAtNs = monotonicNs() } }
    @inline(__always) mutating func received() { if rpcSplit { receivedAtNs = monotonicNs() } }
    /// One call from `startNs` to `endNs`, while sampling.
    mutating func record(startNs: UInt64, endNs: UInt64) {
        guard rpcSplit, sendAtNs >= startNs, receivedAtNs >= sendAtNs, endNs >= receivedAtNs else { return }
        beforeSend.append(sendAtNs - startNs)
        afterReceive.append(endNs - receivedAtNs)
    }
    var summary: String {
        "before send \(rpcFmt(rpcPercentile(beforeSend, 0.5) * 1000)) ns, after receive \(rpcFmt(rpcPercentile(afterReceive, 0.5) * 1000)) ns"
    }
}

private func rpcPercentile(_ xs: [UInt64], _ p: Double) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return 0 }
    return Double(s[min(s.count - 1, Int(Double(s.count) * p))]) / 1000
}

private func rpcFmt(_ v: Double) -> String { String(format: "%.1f", v) }

/// The directory of this executable (tdos is built next to it).
private func rpcSiblingBinary(_ name: String) -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent(name).path
}

private func rpcSpawn(_ path: String, _ args: [String], env: [String: String] = [:]) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    for (k, v) in env { e[k] = v }
    p.environment = e
    p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try p.run()
    return p
}

private func rpcStop(_ p: Process) {
    guard p.isRunning else { return }
    kill(p.processIdentifier, SIGTERM)
    let deadline = Date().addingTimeInterval(3)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
}

/// Nanoseconds on a CPU (user + kernel) of every thread of `pid` so far: the
/// load-independent cost of a call per side. By the process's CPU clock (ns).
/// For another process the kernel adds a running thread's time only at a
/// context switch or a tick, as in /proc/PID/schedstat: read it while the
/// process sleeps (see `measured`), never while a polling node spins.
func rpcCPUNs(pid: Int32) -> UInt64 {
    var clock = clockid_t()
    guard clock_getcpuclockid(pid, &clock) == 0 else { return 0 }
    var ts = timespec()
    guard clock_gettime(clock, &ts) == 0 else { return 0 }
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// The calling thread's time on a CPU (the client's own cost).
func rpcThreadCPUNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// CPU spent per sequential call, server and client side, in ns.
struct RPCCPU {
    var serverNs: UInt64 = 0
    var clientNs: UInt64 = 0
    var calls = 0
    mutating func add(server: UInt64, client: UInt64, calls n: Int) {
        serverNs += server
        clientNs += client
        calls += n
    }
    var serverUs: Double { calls == 0 ? 0 : Double(serverNs) / Double(calls) / 1000 }
    var clientUs: Double { calls == 0 ? 0 : Double(clientNs) / Double(calls) / 1000 }
}

/// A port range of its own per run (33 ports from 47200 up, by pid): two
/// benches at once (other worktrees, CI) must not join each other's mesh,
/// where one client would call both sensors and each node serve both clients.
let rpcPortBase = UInt16(47_200 + Int(getpid() % 60) * 40)

struct RPCFigures {
    var p50Us: Double
    var p99Us: Double
    var callsPerS: Double
    var failures: Int
}

extension CallResult {
    /// A fresh answer (not the stale tier, not an error), read in place.
    var isFreshValue: Bool {
        switch self {
        case .value(let v): return v.staleAgeMs == nil
        case .failed: return false
        }
    }
}

/// A bare client: one MeshNode over one socket, driven in a tight loop.
final class RPCBenchClient {
    let transport: UDPTransport
    var mesh: MeshNode
    /// Completed calls not yet collected (at most rpcInFlight): a list, not a
    /// dictionary, so a sequential call costs no hashing.
    var done: [(id: CallID, ok: Bool)] = []
    var pollUntilNs: UInt64 = 0
    /// The service's name as an application keeps it: built once, not per call.
    let serviceName = Array("temp_sensor".utf8)
    var split = RPCSplit()

    init(portBase: UInt16) throws {
        transport = try UDPTransport(mode: .loopbackRange(base: portBase, count: 32))
        // Blocking receive with a timeout, as the CoAP client below: one syscall
        // per answer instead of poll + recvfrom + a recvfrom that finds nothing.
        _ = fcntl(transport.fd, F_SETFL, fcntl(transport.fd, F_GETFL) & ~O_NONBLOCK)
        var tv = timeval(tv_sec: 0, tv_usec: 20_000)
        setsockopt(transport.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        mesh = MeshNode(nodeID: 0xBE_0001, name: Array("bench-client".utf8), epoch: UInt32(truncatingIfNeeded: time(nil)),
                        keys: Keyring(id: MeshKey.development.id, key: MeshKey.development.bytes),
                        address: transport.local, services: [], rngSeed: 1)
        mesh.start(nowMs: monotonicMs())
        pump()
    }

    func pump() {
        while let a = mesh.pollAction() {
            switch a {
            case .send(let to, let bytes):
                split.sending()
                transport.send(bytes, to: to)
            case .broadcast(let bytes): transport.broadcast(bytes)
            case .complete(let id, let r):
                done.append((id, r.isFreshValue))
            case .serve(let h, _, _): mesh.respond(h, Response(status: Status.unknownService.rawValue), nowMs: monotonicMs())
            default: break
            }
        }
    }

    /// One round of I/O: waits (up to 20 ms, the socket's timeout) for one
    /// datagram and handles it, then fires due timers.
    /// `drain`: then every datagram already queued, before one pump (throughput).
    func step(timeoutMs: Int32, drain: Bool = false) {
        var received: (bytes: [UInt8], from: NodeAddress)?
        if rpcClientPollNs > 0 {
            while monotonicNs() < pollUntilNs {
                received = transport.receive(dontWait: true)
                if received != nil { break }
                HostPolling.pause()
            }
        }
        if received == nil { received = transport.receive() }
        split.received()
        let now = monotonicMs()  // one clock read per step
        if let d = received {
            mesh.handleDatagram(d.bytes, from: d.from, nowMs: now)
            while drain && transport.waitReadable(timeoutMs: 0), let more = transport.receive() {
                mesh.handleDatagram(more.bytes, from: more.from, nowMs: now)
            }
            pump()
        }
        if let t = mesh.nextTimeoutMsInPlace(), t <= now {
            mesh.handleTimeout(nowMs: now)
            pump()
        }
    }

    /// Starts one call; `nowNs` is the caller's clock reading, if it has one.
    func read(nowNs: UInt64 = monotonicNs()) -> CallID {
        let id = mesh.call(service: serviceName, version: SemVer(1, 0, 0), deadlineMs: 2000, nowMs: nowNs / 1_000_000)
        pump()
        if rpcClientPollNs > 0 { pollUntilNs = monotonicNs() + rpcClientPollNs }
        return id
    }

    /// The outcome of call `id` if it has completed (and forgets it).
    func collect(_ id: CallID) -> Bool? {
        guard let i = done.firstIndex(where: { $0.id == id }) else { return nil }
        return done.remove(at: i).ok
    }

    /// One call, waited for; its round trip in ns, nil if it failed.
    func timedRead() -> UInt64? {
        let start = monotonicNs()
        let id = read(nowNs: start)
        var ok = collect(id)
        while ok == nil {
            step(timeoutMs: 100)
            ok = collect(id)
        }
        let end = monotonicNs()
        split.record(startNs: start, endNs: end)
        return ok! ? end - start : nil
    }
}

/// The TDOS protocol and nothing else, as CoAPBenchClient is CoAP and nothing
/// else: each call is one request frame (HMAC-SHA256 tag, fresh message id),
/// and the answer counts only if its tag verifies, its id passes a replay
/// window, it refers to the request and it carries a value. No MeshNode
/// around it (no discovery, instance choice, retransmission or breaker state):
/// this side measures the node and the protocol, the MeshNode client above
/// measures what an application calling through the mesh sees.
final class TDOSWireClient {
    let transport: UDPTransport
    let keys = Keyring(id: MeshKey.development.id, key: MeshKey.development.bytes)
    let nodeID: UInt32 = 0xBE_0002
    var ids = MessageIDGenerator(epoch: UInt32(truncatingIfNeeded: time(nil)))
    var replay = ReplayWindow(capacity: 4)
    let server: NodeAddress
    let requestPayload = Request(service: serviceID("temp_sensor"), deadlineMs: 2000).encode()
    var split = RPCSplit()

    init(portBase: UInt16, server: NodeAddress) throws {
        self.server = server
        transport = try UDPTransport(mode: .loopbackRange(base: portBase, count: 32))
        _ = fcntl(transport.fd, F_SETFL, fcntl(transport.fd, F_GETFL) & ~O_NONBLOCK)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(transport.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func timedRead() -> UInt64? {
        let start = monotonicNs()
        let id = ids.make()
        let request = Frame(type: .request, sender: nodeID, id: id, timestampMs: UInt32(truncatingIfNeeded: start / 1_000_000),
                            payload: requestPayload, flags: [.ackRequested], keyID: keys.sendKeyID)
        let bytes = request.encode(key: keys.sendKey)
        split.sending()
        transport.send(bytes, to: server)
        let pollUntilNs = rpcClientPollNs > 0 ? monotonicNs() + rpcClientPollNs : 0
        func receive() -> (bytes: [UInt8], from: NodeAddress)? {
            while monotonicNs() < pollUntilNs {
                if let d = transport.receive(dontWait: true) {
                    split.received()
                    return d
                }
                HostPolling.pause()
            }
            let d = transport.receive()
            split.received()
            return d
        }
        while let d = receive() {
            // Anything else (the node's query to a new peer, a heartbeat) is read and skipped.
            guard let frame = try? Frame.decode(d.bytes, keys: keys),
                  (try? replay.accept(sender: frame.sender, id: frame.id, nowMs: start / 1_000_000)) != nil,
                  frame.type == .response, frame.ref == id else { continue }
            guard let response = try? Response.decode(frame.payload), response.value != nil else { return nil }
            let end = monotonicNs()
            split.record(startNs: start, endNs: end)
            return end - start
        }
        return nil
    }

    func sample(_ n: Int, into rtts: inout [UInt64], failures: inout Int) {
        for _ in 0..<n {
            if let ns = timedRead() { rtts.append(ns) } else { failures += 1 }
        }
    }
}

/// The TDOS side: a sensor node process and a bare client, ready for calls.
final class TDOSBenchSide {
    let runDir: String
    let node: Process
    let client: RPCBenchClient
    var failures = 0

    init(portBase: UInt16) throws {
        runDir = NSTemporaryDirectory() + "tdos-bench-rpc-\(getpid())"
        makeDirectories(runDir + "/state")
        // The bench is one chatty sender: lift the per-sender limit to its maximum.
        node = try rpcSpawn(rpcSiblingBinary("tdos"),
                            ["node", "--role", "sensor", "--name", "bench-sensor-\(getpid())", "--service", "temp_sensor",
                             "--port-base", "\(portBase)", "--state-dir", runDir + "/state", "--parent-pid", "\(getpid())"],
                            env: ["TDOS_RATE_LIMIT__RATE_PER_S": "10000", "TDOS_RATE_LIMIT__BURST": "10000"])
        client = try RPCBenchClient(portBase: portBase)
        // Wait for the announce and the first sample.
        let ready = Date().addingTimeInterval(5)
        var ok = false
        while !ok && Date() < ready {
            client.step(timeoutMs: 50)
            if !client.mesh.instances(of: Array("temp_sensor".utf8)).isEmpty { ok = client.timedRead() != nil }
        }
        guard ok else {
            rpcStop(node)
            throw HostError("rpc bench: the sensor node did not answer within 5 s")
        }
    }

    func stop() {
        rpcStop(node)
        try? FileManager.default.removeItem(atPath: runDir)
    }

    func sample(_ n: Int, into rtts: inout [UInt64]) {
        for _ in 0..<n {
            if let ns = client.timedRead() { rtts.append(ns) } else { failures += 1 }
        }
    }

    /// Calls per second with rpcInFlight outstanding.
    func throughput() -> Double {
        var inFlight: Set<UInt32> = []
        var completed = 0
        let start = monotonicNs()
        let end = start + UInt64(rpcThroughputSeconds * 1e9)
        while monotonicNs() < end {
            while inFlight.count < rpcInFlight { inFlight.insert(client.read().raw) }
            client.step(timeoutMs: 10, drain: true)
            for (id, success) in client.done {
                inFlight.remove(id.raw)
                if success { completed += 1 } else { failures += 1 }
            }
            client.done.removeAll(keepingCapacity: true)
        }
        // Let the stragglers finish so they do not land in a later measurement.
        let drain = monotonicNs() + 500_000_000
        while !inFlight.isEmpty && monotonicNs() < drain {
            client.step(timeoutMs: 10)
            for (id, _) in client.done { inFlight.remove(id.raw) }
            client.done.removeAll(keepingCapacity: true)
        }
        return Double(completed) / (Double(monotonicNs() - start) / 1e9)
    }
}

/// Raw CoAP over UDP (RFC 7252): confirmable GET /PATH, answered by a piggybacked ACK.
final class CoAPBenchClient {
    let fd: Int32
    var server = sockaddr_in()
    var nextMessageID: UInt16 = 1
    let pathSegments: [[UInt8]]
    var pollUntilNs: UInt64 = 0
    /// One receive buffer for every answer, as the TDOS clients' transport keeps.
    var buffer = [UInt8](repeating: 0, count: 1500)
    var split = RPCSplit()

    init(port: UInt16, path: String) throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw HostError("socket failed") }
        server.sin_family = sa_family_t(AF_INET)
        server.sin_port = port.bigEndian
        server.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        pathSegments = path.split(separator: "/").map { Array($0.utf8) }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends one CON GET; returns its message id (also its 2-byte token).
    func send() -> UInt16 {
        let mid = nextMessageID
        nextMessageID &+= 1
        var m: [UInt8] = [0x42, 0x01, UInt8(mid >> 8), UInt8(mid & 0xFF), UInt8(mid >> 8), UInt8(mid & 0xFF)]
        var last = 0
        for seg in pathSegments {  // Uri-Path (11), delta-encoded, short lengths only
            let delta = 11 - last
            last = 11
            m.append(UInt8(delta << 4 | seg.count))
            m += seg
        }
        split.sending()
        _ = withUnsafePointer(to: &server) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, m, m.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rpcClientPollNs > 0 { pollUntilNs = monotonicNs() + rpcClientPollNs }
        return mid
    }

    /// The message id of the next ACK 2.05 received, nil on timeout or anything else.
    func receive() -> UInt16? {
        let fd = fd
        let pollUntilNs = pollUntilNs
        return buffer.withUnsafeMutableBytes { buf -> UInt16? in
            var n = -1
            while monotonicNs() < pollUntilNs {
                n = recv(fd, buf.baseAddress, buf.count, Int32(MSG_DONTWAIT))
                if n >= 0 { break }
                HostPolling.pause()
            }
            if n < 0 { n = recv(fd, buf.baseAddress, buf.count, 0) }
            split.received()
            guard n >= 4, buf[0] >> 6 == 1, (buf[0] >> 4) & 3 == 2, buf[1] == 0x45 else { return nil }  // v1, ACK, 2.05
            return UInt16(buf[2]) << 8 | UInt16(buf[3])
        }
    }

    func timedGet() -> UInt64? {
        let start = monotonicNs()
        let mid = send()
        while let got = receive() {
            if got == mid {
                let end = monotonicNs()
                split.record(startNs: start, endNs: end)
                return end - start
            }
        }
        return nil
    }
}

extension CoAPBenchClient {
    func sample(_ n: Int, into rtts: inout [UInt64], failures: inout Int) {
        for _ in 0..<n {
            if let ns = timedGet() { rtts.append(ns) } else { failures += 1 }
        }
    }

    func throughput(failures: inout Int) -> Double {
        var outstanding = 0
        var completed = 0
        let start = monotonicNs()
        let end = start + UInt64(rpcThroughputSeconds * 1e9)
        while monotonicNs() < end {
            while outstanding < rpcInFlight { _ = send(); outstanding += 1 }
            if receive() != nil { completed += 1; outstanding -= 1 } else { failures += outstanding; outstanding = 0 }
        }
        while outstanding > 0, receive() != nil { outstanding -= 1 }
        return Double(completed) / (Double(monotonicNs() - start) / 1e9)
    }
}

/// Both sides run at once and are sampled in alternating rounds, so the load
/// of the machine (other builds, other benches) weighs on both alike.
func rpcBench() {
    // Short rounds: a burst of load from elsewhere on the machine lands on both sides.
    let rounds = 30
    func line(_ name: String, _ f: RPCFigures) {
        print("rpc: \(name.rightPad(26)) p50 \(rpcFmt(f.p50Us).leftPad(7)) us   p99 \(rpcFmt(f.p99Us).leftPad(7)) us   "
              + "\(String(Int(f.callsPerS)).leftPad(7)) calls/s (\(rpcInFlight) in flight)   failures \(f.failures)")
    }
    print("rpc: round trip over loopback, two processes; \(rpcSamples) sequential calls each, in \(rounds) alternating rounds, after \(rpcWarmup) warm-up; "
          + "SHA-256 by \(hardwareSHA256 ? "the CPU's SHA extensions" : "the Swift rounds")")
    let nodePoll = (try? HostPolling.windowUs(environment: ProcessInfo.processInfo.environment)).map { "\($0) us" } ?? "invalid"
    print("rpc: polling after traffic: tdos node \(nodePoll) (TDOS_POLL_US); every client \(rpcClientPollNs / 1000) us after its send "
          + "(TDOS_BENCH_CLIENT_POLL_US); coap-server blocks in epoll as built")
    let tdos: TDOSBenchSide
    do {
        tdos = try TDOSBenchSide(portBase: rpcPortBase)
    } catch {
        print("rpc: tdos: \(error)")
        return
    }
    defer { tdos.stop() }
    // Debian's libcoap3-bin names it by TLS library; plain UDP CoAP is the same in each.
    let candidates = ["coap-server", "coap-server-notls", "coap-server-openssl", "coap-server-gnutls"].map { "/usr/bin/" + $0 }
    let coapPath = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) })
    let port: UInt16 = rpcPortBase + 32
    // coap-server's "/" resource: its short banner text, no observe, no blocks.
    let server = coapPath.flatMap { try? rpcSpawn($0, ["-A", "127.0.0.1", "-p", "\(port)"]) }
    defer { if let server { rpcStop(server) } }
    usleep(300_000)
    let coap = server == nil ? nil : try? CoAPBenchClient(port: port, path: "")
    var coapFailures = 0
    // Placement: left to the kernel it differed between runs (a server next to
    // the client or next to a busy build) and one side's p50 moved by up to 2x.
    // Pinned, the client thread runs on CPU 0 and both servers on CPU 1, alike.
    let pinned = ProcessInfo.processInfo.environment["TDOS_BENCH_NO_PIN"] == nil && sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2
    if pinned {
        _ = tdos_pin_to_cpu(0, 0)
        _ = tdos_pin_to_cpu(tdos.node.processIdentifier, 1)
        if let server { _ = tdos_pin_to_cpu(server.processIdentifier, 1) }
    }
    print("rpc: placement: \(pinned ? "client thread on CPU 0, both servers on CPU 1" : "left to the kernel (TDOS_BENCH_NO_PIN)")")
    var warm: [UInt64] = []
    var tdosRTT: [UInt64] = [], coapRTT: [UInt64] = [], wireRTT: [UInt64] = []
    var tdosCPU = RPCCPU(), coapCPU = RPCCPU(), wireCPU = RPCCPU()
    var wireFailures = 0
    let nodeAddress = tdos.client.mesh.instances(of: Array("temp_sensor".utf8)).first
        .flatMap { inst in tdos.client.mesh.peers.first(where: { $0.nodeID == inst.node })?.address }
    let wire = nodeAddress.flatMap { try? TDOSWireClient(portBase: rpcPortBase, server: $0) }
    wire?.sample(rpcWarmup, into: &warm, failures: &wireFailures)
    wireFailures = 0
    tdos.sample(rpcWarmup, into: &warm)
    coap?.sample(rpcWarmup, into: &warm, failures: &coapFailures)
    tdos.failures = 0
    coapFailures = 0
    tdos.client.split = RPCSplit()
    wire?.split = RPCSplit()
    coap?.split = RPCSplit()
    // The kernel brings another process's CPU clock up to date only when it
    // stops running: a node still polling after the round would be read short.
    // So its clock is read once it is back asleep (its window, and a margin),
    // which also counts the poll after the round's last call.
    let settleUs = UInt32((try? HostPolling.windowUs(environment: ProcessInfo.processInfo.environment)) ?? HostPolling.windowUsMax) + 1000
    func measured(_ cpu: inout RPCCPU, server pid: Int32, calls: Int, _ body: () -> Void) {
        let s0 = rpcCPUNs(pid: pid), c0 = rpcThreadCPUNs()
        body()
        let c1 = rpcThreadCPUNs()
        usleep(settleUs)
        cpu.add(server: rpcCPUNs(pid: pid) - s0, client: c1 - c0, calls: calls)
    }
    for _ in 0..<rounds {
        measured(&tdosCPU, server: tdos.node.processIdentifier, calls: rpcSamples / rounds) {
            tdos.sample(rpcSamples / rounds, into: &tdosRTT)
        }
        if let coap, let server {
            measured(&coapCPU, server: server.processIdentifier, calls: rpcSamples / rounds) {
                coap.sample(rpcSamples / rounds, into: &coapRTT, failures: &coapFailures)
            }
        }
        if let wire {
            measured(&wireCPU, server: tdos.node.processIdentifier, calls: rpcSamples / rounds) {
                wire.sample(rpcSamples / rounds, into: &wireRTT, failures: &wireFailures)
            }
        }
    }
    let tdosThroughput = tdos.throughput()
    let t = RPCFigures(p50Us: rpcPercentile(tdosRTT, 0.5), p99Us: rpcPercentile(tdosRTT, 0.99),
                       callsPerS: tdosThroughput, failures: tdos.failures)
    line("tdos read temp_sensor", t)
    let w = RPCFigures(p50Us: rpcPercentile(wireRTT, 0.5), p99Us: rpcPercentile(wireRTT, 0.99), callsPerS: 0,
                       failures: wireFailures)
    if wire != nil {
        print("rpc: \("tdos read, wire client".rightPad(26)) p50 \(rpcFmt(w.p50Us).leftPad(7)) us   p99 \(rpcFmt(w.p99Us).leftPad(7)) us"
              + "   (request frame + tag + replay check, no MeshNode)   failures \(w.failures)")
    }
    guard let coap else {
        print("rpc: libcoap: coap-server missing or not starting (scripts/bench.sh installs libcoap3-bin); no ratio")
        return
    }
    let coapThroughput = coap.throughput(failures: &coapFailures)
    let c = RPCFigures(p50Us: rpcPercentile(coapRTT, 0.5), p99Us: rpcPercentile(coapRTT, 0.99),
                       callsPerS: coapThroughput, failures: coapFailures)
    line("libcoap coap-server GET /", c)
    // Time on a CPU per sequential call (user + kernel, this process's thread
    // and every thread of the server): what the code costs, whatever the load;
    // the rest of a round trip is waiting (wake-ups, the scheduler of the machine).
    print("rpc: CPU per call (sequential): tdos node \(rpcFmt(tdosCPU.serverUs)) us + client \(rpcFmt(tdosCPU.clientUs)) us; "
          + "wire client: node \(rpcFmt(wireCPU.serverUs)) us + client \(rpcFmt(wireCPU.clientUs)) us; "
          + "coap-server \(rpcFmt(coapCPU.serverUs)) us + client \(rpcFmt(coapCPU.clientUs)) us")
    if rpcSplit {
        print("rpc: each client's own part of a call, p50 (TDOS_BENCH_SPLIT): MeshNode \(tdos.client.split.summary); "
              + "wire client \(wire?.split.summary ?? "-"); CoAP client \(coap.split.summary)")
    }
    if wire != nil {
        print("rpc: wire client (like for like with the raw CoAP client): ratio tdos p50 / libcoap p50 = \(String(format: "%.2f", w.p50Us / c.p50Us)), "
              + "p99 ratio \(String(format: "%.2f", w.p99Us / c.p99Us))")
    }
    let ratio = t.p50Us / c.p50Us
    print("rpc: ratio tdos p50 / libcoap p50 = \(String(format: "%.2f", ratio)) (goal <= 0.80: \(ratio <= 0.8 ? "met" : "not met")); "
          + "p99 ratio \(String(format: "%.2f", t.p99Us / c.p99Us)), throughput ratio \(String(format: "%.2f", t.callsPerS / c.callsPerS))")
}
