import Testing
@testable import TDOSCore

@Suite struct MeshBreakerTests {
    @Test func breakerStateMachine() {
        var b = CircuitBreaker()
        #expect(b.recordFailure(nowMs: 0, threshold: 3, openMs: 30_000) == nil)
        #expect(b.recordFailure(nowMs: 1, threshold: 3, openMs: 30_000) == nil)
        #expect(b.recordSuccess(closeAfter: 2) == nil)  // resets the count
        #expect(b.recordFailure(nowMs: 2, threshold: 3, openMs: 30_000) == nil)
        #expect(b.recordFailure(nowMs: 3, threshold: 3, openMs: 30_000) == nil)
        #expect(b.recordFailure(nowMs: 4, threshold: 3, openMs: 30_000) == .opened)
        #expect(!b.allowsCall && b.openUntilMs == 30_004)
        #expect(b.poll(nowMs: 30_003) == nil)
        #expect(b.poll(nowMs: 30_004) == .halfOpened)
        #expect(b.allowsCall)
        let trial = b.begin()
        #expect(trial)
        #expect(!b.allowsCall, "one trial at a time")
        #expect(b.recordSuccess(closeAfter: 2) == nil)
        let trial2 = b.begin()
        #expect(trial2)
        #expect(b.recordSuccess(closeAfter: 2) == .closed)
        #expect(b.state == .closed && b.allowsCall)
        // Half-open failure reopens.
        for t in 0..<3 { _ = b.recordFailure(nowMs: UInt64(100 + t), threshold: 3, openMs: 30_000) }
        _ = b.poll(nowMs: 40_000)
        let trial3 = b.begin()
        #expect(trial3)
        #expect(b.recordFailure(nowMs: 40_001, threshold: 3, openMs: 30_000) == .opened)
        #expect(b.openUntilMs == 70_001)
    }

    /// Three failed calls open temp-a's breaker; calls fail fast (stale or
    /// error) without touching it; after 30 s trials go through, and two
    /// successes close it.
    @Test func breakerOpensFailsFastHalfOpensAndCloses() {
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))]])
        net.serveModes[1] = .answer(Response(status: Status.unavailable.rawValue))
        net.startAll()
        net.run(for: 100)
        let node = meshNodeID(1), sid = serviceID(meshBytes(meshTemp))
        for _ in 0..<3 {
            let id = net.call(0, meshTemp, SemVer(1, 0, 0))
            net.run(for: 10)
            #expect(meshFailure(net.result(0, id)) == .remoteError(Status.unavailable.rawValue))
        }
        let opened = net.eventTimes(0) { $0 == .breakerOpened(node: node, service: sid) }
        #expect(opened.count == 1)
        let servedBefore = net.served[1].count
        let fast = net.call(0, meshTemp, SemVer(1, 0, 0))
        #expect(meshFailure(net.result(0, fast)) == .allBreakersOpen, "fails at once, no datagram")
        #expect(net.served[1].count == servedBefore)
        net.serveModes[1] = .answer(Response(value: 5))
        net.run(until: opened[0] + 30_000)
        #expect(net.eventTimes(0) { $0 == .breakerHalfOpen(node: node, service: sid) } == [opened[0] + 30_000])
        let trial1 = net.call(0, meshTemp, SemVer(1, 0, 0))
        let refused = net.call(0, meshTemp, SemVer(1, 0, 0))
        #expect(meshFailure(net.result(0, refused)) == .allBreakersOpen, "only one trial at a time")
        net.run(for: 10)
        #expect(meshValue(net.result(0, trial1))?.response.value == 5)
        #expect(net.nodes[0].registry.first { $0.node == node }?.breaker == .halfOpen)
        let trial2 = net.call(0, meshTemp, SemVer(1, 0, 0))
        net.run(for: 10)
        #expect(meshValue(net.result(0, trial2)) != nil)
        #expect(net.hasEvent(0, .breakerClosed(node: node, service: sid)))
        #expect(net.nodes[0].registry.first { $0.node == node }?.breaker == .closed)
    }

    /// When the primary's breaker opens, calls use the backup.
    @Test func openBreakerRoutesToTheBackup() {
        var net = primaryBackupNet()
        net.serveModes[1] = .answer(Response(status: Status.internalError.rawValue))
        net.startAll()
        net.run(for: 100)
        var nodes: [UInt32] = []
        for _ in 0..<5 {
            let id = net.call(0, meshTemp, SemVer(1, 0, 0))
            net.run(for: 10)
            nodes.append(meshValue(net.result(0, id))?.node ?? 0)
        }
        #expect(nodes.allSatisfy { $0 == meshNodeID(2) })
        #expect(net.served[1].count == 3, "the primary stops being asked once its breaker is open")
    }
}
