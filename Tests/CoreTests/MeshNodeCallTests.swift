// Node-targeted calls (MeshNode+NodeCall): service 0 on one node, with the
// call machinery (retransmission, dedup, deadline, one completion) and no
// failover to any other node.
import Testing
@testable import TDOSCore

@Suite struct MeshNodeCallTests {
    func completions(_ net: MeshTestNet, _ node: Int, _ id: CallID) -> Int {
        net.completions.filter { $0.node == node && $0.id == id }.count
    }

    @Test func statusIsAnsweredByTheTargetsMesh() throws {
        var net = primaryBackupNet()
        net.startAll()
        net.run(for: 100)
        let id = net.nodes[0].call(node: meshNodeID(2), operation: .status, deadlineMs: 2000, nowMs: net.now)
        net.drain(0)
        net.run(for: 10)
        let v = try #require(meshValue(net.result(0, id)))
        #expect(v.node == meshNodeID(2) && v.failovers == 0 && v.staleAgeMs == nil)
        let status = try NodeStatus.decode(v.response.result)
        #expect(status.servicesDigest == servicesDigest(net.nodes[2].services))
        #expect(net.served[1].isEmpty && net.served[2].isEmpty)  // the mesh answered, not the app
        // Only node 2 got the request.
        let requests = net.sent(0, .request)
        #expect(!requests.isEmpty && requests.allSatisfy { $0.to == 2 })
        #expect(completions(net, 0, id) == 1)
    }

    @Test func otherOperationsReachTheTargetsApplication() throws {
        var net = primaryBackupNet()
        net.serveModes[1] = .answer(Response(result: [0xA1, 0x01, 0x02]))
        net.startAll()
        net.run(for: 100)
        let id = net.nodes[0].call(node: meshNodeID(1), operation: .tasks, arguments: [0xA0], deadlineMs: 2000,
                                   nowMs: net.now)
        net.drain(0)
        net.run(for: 10)
        let v = try #require(meshValue(net.result(0, id)))
        #expect(v.node == meshNodeID(1) && v.response.result == [0xA1, 0x01, 0x02])
        #expect(net.served[1].count == 1 && net.served[2].isEmpty)
        #expect(net.served[1].first?.service == 0 && net.served[1].first?.operation == .tasks)
        #expect(net.served[1].first?.arguments == [0xA0])
        #expect(completions(net, 0, id) == 1)
    }

    @Test func anUnknownNodeFailsAtOnce() {
        var net = primaryBackupNet()
        net.startAll()
        net.run(for: 100)
        let id = net.nodes[0].call(node: 0xDEAD_BEEF, operation: .status, deadlineMs: 2000, nowMs: net.now)
        net.drain(0)
        #expect(meshFailure(net.result(0, id)) == .unknownNode)
        #expect(net.completedAt(0, id) == net.now)
        net.run(for: 5000)
        #expect(completions(net, 0, id) == 1)
        #expect(net.nodes[0].callsInFlight == 0)
    }

    @Test func aDeadNodeFailsAtOnce() {
        var net = primaryBackupNet()
        net.startAll()
        net.run(for: 100)
        net.crash(1)
        net.run(for: 5000)
        #expect(net.nodes[0].peer(meshNodeID(1))?.state == .dead)
        let id = net.nodes[0].call(node: meshNodeID(1), operation: .status, deadlineMs: 2000, nowMs: net.now)
        net.drain(0)
        #expect(meshFailure(net.result(0, id)) == .nodeDown)
        #expect(completions(net, 0, id) == 1)
    }

    /// The node crashes while serving: the call ends with nodeDown when the
    /// node is declared dead, and never moves to the backup.
    @Test func aNodeDyingDuringTheCallFailsItWithoutFailover() {
        var net = primaryBackupNet()
        net.serveModes[1] = .never
        net.startAll()
        net.run(for: 100)
        let t0 = net.now
        let id = net.nodes[0].call(node: meshNodeID(1), operation: .tasks, deadlineMs: 20_000, nowMs: net.now)
        net.drain(0)
        net.run(for: 50)
        net.crash(1)
        net.run(for: 10_000)
        #expect(meshFailure(net.result(0, id)) == .nodeDown)
        let at = net.completedAt(0, id) ?? 0
        #expect(at > t0 && at <= t0 + 50 + UInt64(MeshConfig().deadAfterMs) + 1000)
        #expect(net.served[2].isEmpty)
        #expect(net.sent(0, .request).filter { $0.at >= t0 }.allSatisfy { $0.to == 1 || $0.inner != nil })
        #expect(net.nodes[0].counters.failovers == 0)
        #expect(completions(net, 0, id) == 1)
    }

    /// Lost requests are retransmitted on the CoAP schedule with ref = the call
    /// id; the server executes the operation once (dedup) and the answer arrives.
    @Test func lostRequestsAreRetransmittedAndExecutedOnce() throws {
        var config = MeshConfig()
        config.rpcRandomFactorPercent = 100
        var net = primaryBackupNet(config: config)
        var lost = 0
        net.dropIf = { from, _, frame in
            guard from == 1 && frame.type == .response && lost < 2 else { return false }
            lost += 1
            return true
        }
        net.startAll()
        net.run(for: 100)
        let t0 = net.now
        let id = net.nodes[0].call(node: meshNodeID(1), operation: .configGet, arguments: [0x61, 0x78],
                                   deadlineMs: 20_000, nowMs: net.now)
        net.drain(0)
        net.run(for: 15_000)
        let v = try #require(meshValue(net.result(0, id)))
        #expect(v.node == meshNodeID(1))
        #expect(net.served[1].count == 1)
        let requests = net.sent(0, .request).filter { $0.at >= t0 && $0.to == 1 }
        #expect(requests.map { $0.at - t0 } == [0, 2000, 6000])
        #expect(requests.dropFirst().allSatisfy { $0.frame.ref == requests[0].frame.id })
        #expect(net.nodes[1].counters.duplicateRequests == 2)
        #expect(net.completedAt(0, id) == t0 + 6002)
        #expect(completions(net, 0, id) == 1)
    }

    /// The node stays alive (heartbeats) but never gets a request: after the
    /// whole retransmission budget the call fails unreachable, not elsewhere.
    @Test func aSilentNodeIsUnreachableAfterTheBudget() {
        var config = MeshConfig()
        config.rpcRandomFactorPercent = 100
        var net = primaryBackupNet(config: config)
        net.dropIf = { from, _, frame in from == 0 && frame.type == .request }
        net.startAll()
        net.run(for: 100)
        let t0 = net.now
        let id = net.nodes[0].call(node: meshNodeID(1), operation: .status, deadlineMs: 100_000, nowMs: net.now)
        net.drain(0)
        net.run(for: 70_000)
        #expect(meshFailure(net.result(0, id)) == .unreachable)
        #expect(net.completedAt(0, id) == t0 + 62_000)
        #expect(net.nodes[0].counters.retransmissions == 4)
        #expect(completions(net, 0, id) == 1)
    }

    @Test func theDeadlineEndsACallWhoseAnswerNeverComes() {
        var net = primaryBackupNet()
        net.serveModes[1] = .never
        net.startAll()
        net.run(for: 100)
        let t0 = net.now
        let id = net.nodes[0].call(node: meshNodeID(1), operation: .tasks, deadlineMs: 500, nowMs: net.now)
        net.drain(0)
        net.run(for: 5000)
        #expect(meshFailure(net.result(0, id)) == .deadlineExceeded)
        #expect(net.completedAt(0, id) == t0 + 500)
        #expect(completions(net, 0, id) == 1)
        #expect(net.served[2].isEmpty)
    }

    @Test func anErrorStatusIsReturnedNotFailedOver() {
        var net = primaryBackupNet()
        net.serveModes[1] = .answer(Response(status: Status.internalError.rawValue))
        net.startAll()
        net.run(for: 100)
        let id = net.nodes[0].call(node: meshNodeID(1), operation: .tasks, deadlineMs: 2000, nowMs: net.now)
        net.drain(0)
        net.run(for: 3000)
        #expect(meshFailure(net.result(0, id)) == .remoteError(Status.internalError.rawValue))
        #expect(net.served[1].count == 1 && net.served[2].isEmpty)
        #expect(completions(net, 0, id) == 1)
        // No breaker or registry side effects on the node's services.
        #expect(net.nodes[0].registry.allSatisfy { $0.breaker == .closed })
    }

    @Test func callingThisNodeItselfIsServedLocally() throws {
        var net = primaryBackupNet()
        net.serveModes[1] = .answer(Response(result: [0xA0]))
        net.startAll()
        net.run(for: 100)
        let statusID = net.nodes[1].call(node: meshNodeID(1), operation: .status, deadlineMs: 2000, nowMs: net.now)
        net.drain(1)
        let status = try #require(meshValue(net.result(1, statusID)))
        #expect(try NodeStatus.decode(status.response.result).servicesDigest == servicesDigest(net.nodes[1].services))
        let tasksID = net.nodes[1].call(node: meshNodeID(1), operation: .tasks, deadlineMs: 2000, nowMs: net.now)
        net.drain(1)
        #expect(meshValue(net.result(1, tasksID))?.response.result == [0xA0])
        #expect(net.served[1].count == 1 && net.served[1][0].service == 0)
        #expect(net.sent(1, .request).isEmpty)
        #expect(net.nodes[1].callsInFlight == 0 && net.nodes[1].serveEntries == 0)
    }

    @Test func limitsAreChecked() {
        var config = MeshConfig()
        config.callsInFlightMax = 1
        config.dedupCacheMax = 1
        var net = primaryBackupNet(config: config)
        net.serveModes[1] = .never
        net.startAll()
        net.run(for: 100)
        let a = net.nodes[0].call(node: meshNodeID(1), operation: .tasks, deadlineMs: 2000, nowMs: net.now)
        let b = net.nodes[0].call(node: meshNodeID(1), operation: .tasks, deadlineMs: 2000, nowMs: net.now)
        let big = net.nodes[0].call(node: meshNodeID(1), operation: .tasks,
                                    arguments: Array(repeating: 0, count: MeshConfig.rpcPayloadBytesMax + 1),
                                    deadlineMs: 2000, nowMs: net.now)
        net.drain(0)
        #expect(net.result(0, a) == nil)
        #expect(meshFailure(net.result(0, b)) == .tooManyCalls)
        #expect(meshFailure(net.result(0, big)) == .argumentsTooLarge)
        var stopped = net.nodes[2]
        stopped.leave(nowMs: net.now)
        let c = stopped.call(node: meshNodeID(1), operation: .status, deadlineMs: 100, nowMs: net.now)
        var sawStopped = false
        while let action = stopped.pollAction() {
            if case .complete(let id, .failed(.stopped)) = action, id == c { sawStopped = true }
        }
        #expect(sawStopped)
    }

    /// `metrics` on service 0 is the application's (NodeRuntime answers it from
    /// its MetricsRegistry); `status` stays with the mesh (the SWIM probe).
    @Test func serviceZeroMetricsGoesToTheApplication() throws {
        var net = primaryBackupNet()
        let report = MetricsReport(samples: [.init(id: MetricID.uptimeS, value: 7)])
        net.serveModes[1] = .answer(Response(result: report.encode()))
        net.startAll()
        net.run(for: 100)
        let id = net.nodes[0].call(node: meshNodeID(1), operation: .metrics, deadlineMs: 2000, nowMs: net.now)
        net.drain(0)
        net.run(for: 10)
        let v = try #require(meshValue(net.result(0, id)))
        #expect(try MetricsReport.decode(v.response.result) == report)
        #expect(net.served[1].count == 1 && net.served[1][0].operation == .metrics && net.served[1][0].service == 0)
        // A duplicate of the metrics request is answered from the dedup table, not served twice.
        #expect(net.nodes[1].serveEntries == 1)
    }

    /// The per-sender limiter drops what exceeds the bucket, after the tag and
    /// the replay window: replayed copies do not spend the sender's tokens.
    @Test func theRateLimiterDropsAFloodAndCountsIt() throws {
        var config = MeshConfig()
        config.rateLimit = RateLimiterConfig(ratePerS: 1, burst: 5, sendersMax: 4)
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 0, 0))]], config: config)
        net.startAll()
        net.run(for: 100)
        let before = net.nodes[1].counters.rateLimited
        let servedBefore = net.served[1].count
        // 20 authentic requests from a stranger at once: burst 5 gets through.
        let stranger: UInt32 = 0x7777
        var frames: [[UInt8]] = []
        for seq in 1...20 {
            let f = Frame(type: .request, sender: stranger, id: MessageID(epoch: 1, sequence: UInt32(seq)), ref: nil,
                          timestampMs: 0, payload: Request(service: serviceID(meshBytes(meshTemp))).encode(),
                          keyID: 1)
            frames.append(f.encode(key: meshKeyring().sendKey))
        }
        let from = NodeAddress(host: 0x0A00_0099, port: 4210)
        // Replays of the first frame first: rejected as replayed, no token spent.
        net.inject(frames[0], to: 1, from: from)
        for _ in 0..<5 { net.inject(frames[0], to: 1, from: from) }
        #expect(net.nodes[1].counters.rejected(.replayed) == 5)
        for f in frames.dropFirst() { net.inject(f, to: 1, from: from) }
        #expect(net.served[1].count - servedBefore == 5)
        #expect(net.nodes[1].counters.rateLimited - before == 15)
        // Other senders are not affected.
        let id = net.call(0, meshTemp, SemVer(1, 0, 0))
        net.run(for: 10)
        #expect(meshValue(net.result(0, id)) != nil)
    }
}
