import Testing
@testable import TDOSCore

/// kernel, temp-a (primary, priority 0), temp-b (backup, priority 1)
func primaryBackupNet(config: MeshConfig = MeshConfig(), seed: UInt64 = 1) -> MeshTestNet {
    MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0), priority: 0)], [meshService(meshTemp, SemVer(1, 1, 0), priority: 1)]],
                config: config, seed: seed, names: ["kernel", "temp-a", "temp-b"])
}

func meshValue(_ r: CallResult?) -> CallValue? {
    if case .value(let v)? = r { return v }
    return nil
}

func meshFailure(_ r: CallResult?) -> CallError? {
    if case .failed(let e)? = r { return e }
    return nil
}

@Suite struct MeshRPCTests {
    @Test func readGoesToThePrimary() {
        var net = primaryBackupNet()
        net.startAll()
        net.run(for: 100)
        let id = net.call(0, meshTemp, SemVer(1, 0, 0))
        net.run(for: 10)
        let v = meshValue(net.result(0, id))
        #expect(v?.node == meshNodeID(1) && v?.response.value == 21.0 && v?.response.unit == .celsius)
        #expect(v?.isStale == false && v?.failovers == 0)
        #expect(net.completedAt(0, id) == 102)  // one hop there, one back
        #expect(net.served[1].count == 1 && net.served[2].isEmpty)
    }

    /// CoAP schedule without jitter: transmissions at 0, 2, 6, 14, 30 s (gaps
    /// 2, 4, 8, 16 s), each with a fresh id and ref = the first id; then the
    /// instance counts as failed at 62 s.
    @Test func retransmissionScheduleDoublesFromTwoSeconds() {
        var config = MeshConfig()
        config.rpcRandomFactorPercent = 100
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))]], config: config)
        net.dropIf = { from, _, frame in from == 0 && frame.type == .request }
        net.startAll()
        net.run(for: 100)
        let t0 = net.now
        let id = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 100_000)
        net.run(for: 70_000)
        let requests = net.sent(0, .request).filter { $0.at >= t0 }
        #expect(requests.map { $0.at - t0 } == [0, 2000, 6000, 14_000, 30_000])
        let first = requests[0].frame.id
        #expect(requests[0].frame.ref == nil)
        for r in requests.dropFirst() {
            #expect(r.frame.ref == first && r.frame.id != first)
        }
        #expect(Set(requests.map { $0.frame.id }).count == 5)
        #expect(net.completedAt(0, id) == t0 + 62_000)
        #expect(meshFailure(net.result(0, id)) == .unreachable)
        #expect(net.nodes[0].counters.retransmissions == 4)
    }

    @Test func firstTimeoutIsJitteredWithinCoAPBounds() {
        for seed in 1...8 {
            var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))]], seed: UInt64(seed))
            net.dropIf = { from, _, frame in from == 0 && frame.type == .request }
            net.startAll()
            net.run(for: 100)
            let t0 = net.now
            _ = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 30_000)
            net.run(for: 25_000)
            let at = net.sent(0, .request).filter { $0.at >= t0 }.map { $0.at - t0 }
            #expect(at.count == 4)
            #expect(at[1] >= 2000 && at[1] <= 3000)
            #expect(at[2] - at[1] == 2 * at[1] && at[3] - at[2] == 4 * at[1])
        }
    }

    /// Answers lost twice: the client retransmits, the server answers every
    /// copy from its dedup table and executes the request exactly once.
    @Test func duplicatedRequestsAreExecutedOnce() {
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))]])
        var lost = 0
        net.startAll()
        net.run(for: 100)
        net.dropIf = { from, _, frame in
            guard from == 1 && frame.type == .response else { return false }
            lost += 1
            return lost <= 2
        }
        let id = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 20_000)
        net.run(for: 20_000)
        #expect(meshValue(net.result(0, id))?.node == meshNodeID(1))
        #expect(net.served[1].count == 1)
        #expect(net.nodes[1].counters.duplicateRequests == 2)
        #expect(net.sent(0, .request).count == 3)
    }

    /// A slow server (answers after 5 s): the retransmission at ~2 s gets an
    /// `ack`, not a second execution; the answer arrives once.
    @Test func slowServerAcksRetransmissionsAndExecutesOnce() {
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))]])
        net.serveModes[1] = .later(5000, Response(value: 7, unit: .celsius))
        net.startAll()
        net.run(for: 100)
        let t0 = net.now
        let id = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 20_000)
        net.run(for: 20_000)
        #expect(meshValue(net.result(0, id))?.response.value == 7)
        #expect(net.completedAt(0, id) == t0 + 1 + 5000 + 1)
        #expect(net.served[1].count == 1)
        #expect(net.sent(1, .ack).count >= 1)
    }

    @Test func deadlineIsHonoured() {
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))]])
        net.serveModes[1] = .never
        net.startAll()
        net.run(for: 100)
        let t0 = net.now
        let id = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 1500)
        net.run(for: 5000)
        #expect(meshFailure(net.result(0, id)) == .deadlineExceeded)
        #expect(net.completedAt(0, id) == t0 + 1500)
        // The request told the server how long it had.
        let sentDeadline = try? Request.decode(net.sent(0, .request).last!.frame.payload).deadlineMs
        #expect(sentDeadline == 1500)
    }

    @Test func caretRuleFiltersInstances() {
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0), priority: 1)],
                                         [meshService(meshTemp, SemVer(2, 0, 1))], [meshService(meshTemp, SemVer(1, 5, 0), priority: 0)]])
        net.startAll()
        net.run(for: 100)
        let v1 = net.call(0, meshTemp, SemVer(1, 0, 0))
        let v13 = net.call(0, meshTemp, SemVer(1, 3, 0))
        let v2 = net.call(0, meshTemp, SemVer(2, 0, 0))
        let v3 = net.call(0, meshTemp, SemVer(3, 0, 0))
        let v16 = net.call(0, meshTemp, SemVer(1, 6, 0))
        net.run(for: 50)
        #expect(meshValue(net.result(0, v1))?.node == meshNodeID(3), "1.5.0 is the primary of the ^1.0 instances")
        #expect(meshValue(net.result(0, v13))?.node == meshNodeID(3))
        #expect(meshValue(net.result(0, v2))?.node == meshNodeID(2))
        #expect(meshFailure(net.result(0, v3)) == .incompatibleVersion(available: SemVer(2, 0, 1)))
        #expect(meshFailure(net.result(0, v16)) == .incompatibleVersion(available: SemVer(2, 0, 1)))
        #expect(SemVer(0, 3, 1).satisfies(caret: SemVer(0, 3, 0)) && !SemVer(0, 4, 0).satisfies(caret: SemVer(0, 3, 0)))
    }

    /// The primary crashes while a call is in flight: declared dead within
    /// 3 s, the call fails over to the backup and succeeds within its deadline.
    @Test func failoverFromPrimaryToBackupMidCall() {
        var net = primaryBackupNet()
        net.serveModes[1] = .never
        net.startAll()
        net.run(for: 3000)
        let t0 = net.now
        let id = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 8000)
        net.run(for: 50)
        net.crash(1)
        net.run(for: 10_000)
        let v = meshValue(net.result(0, id))
        #expect(v?.node == meshNodeID(2) && v?.failovers == 1 && v?.isStale == false)
        #expect(net.hasEvent(0, .failover(call: id, from: meshNodeID(1), to: meshNodeID(2))))
        let done = net.completedAt(0, id) ?? .max
        #expect(done <= t0 + 3100)
        #expect(done == (net.eventTimes(0) { $0 == .peerDead(meshNodeID(1)) }.first ?? 0) + 2)
    }

    /// The primary is alive but never answers: when its retransmission budget
    /// runs out the call moves to the backup.
    @Test func failoverWhenTheRetransmissionBudgetRunsOut() {
        var config = MeshConfig()
        config.rpcInitialTimeoutMs = 200
        config.rpcRetransmitMax = 2
        config.rpcRandomFactorPercent = 100
        var net = primaryBackupNet(config: config)
        net.dropIf = { from, to, frame in from == 0 && to == 1 && frame.type == .request }
        net.startAll()
        net.run(for: 100)
        let t0 = net.now
        let id = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 5000)
        net.run(for: 5000)
        #expect(meshValue(net.result(0, id))?.node == meshNodeID(2))
        #expect(net.completedAt(0, id) == t0 + 200 + 400 + 800 + 2)
        let inst = net.nodes[0].instances(of: meshBytes(meshTemp)).first { $0.node == meshNodeID(1) }
        #expect(inst?.consecutiveFailures == 1)
    }

    /// Two calls in flight fail over together: each keeps its own tried
    /// nodes (one shared table), and a finished call leaves nothing behind.
    @Test func concurrentCallsFailOverEachOnce() {
        var net = primaryBackupNet()
        net.serveModes[1] = .never
        net.startAll()
        net.run(for: 3000)
        let a = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 8000)
        let b = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 8000)
        net.run(for: 50)
        #expect(net.nodes[0].triedNodes.count == 0 && net.nodes[0].calls.count == 2)
        net.crash(1)
        net.run(for: 10_000)
        for id in [a, b] {
            let v = meshValue(net.result(0, id))
            #expect(v?.node == meshNodeID(2) && v?.failovers == 1)
            #expect(v?.service == meshService(meshTemp, SemVer(1, 1, 0), priority: 1))
        }
        let m = net.nodes[0]
        #expect(m.calls.isEmpty && m.triedNodes.isEmpty && m.callNames.isEmpty)
        #expect(m.callArguments.isEmpty && m.callDescriptors.isEmpty)
    }

    /// Node 0 calls `service` (v1.0) while node 1 serves it, node 1 crashes,
    /// and node 0 calls again once it is declared dead (1 s deadline): the
    /// two calls and when the fresh one completed, for the stale-tier tests.
    private func freshThenAfterCrash(_ net: inout MeshTestNet, _ service: String)
        -> (fresh: CallID, freshAt: UInt64, later: CallID) {
        net.startAll()
        net.run(for: 100)
        let fresh = net.call(0, service, SemVer(1, 0, 0))
        net.run(for: 10)
        let freshAt = net.completedAt(0, fresh)!
        net.crash(1)
        net.run(for: 10_000)
        let later = net.call(0, service, SemVer(1, 0, 0), deadlineMs: 1000)
        net.run(for: 2000)
        return (fresh, freshAt, later)
    }

    /// Tiers: fresh from the primary, then nothing answers: the last value,
    /// marked stale with its age and the reason.
    @Test func staleValueTier() {
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))]])
        let (fresh, freshAt, later) = freshThenAfterCrash(&net, meshTemp)
        #expect(meshValue(net.result(0, fresh))?.isStale == false)
        let v = meshValue(net.result(0, later))
        #expect(v?.isStale == true)
        #expect(v?.staleAgeMs.map { UInt64($0) } == net.completedAt(0, later)! - freshAt)
        #expect(v?.degradedBecause == .noInstance)
        #expect(v?.response.value == 21)
        #expect(net.nodes[0].counters.callsStale == 1)
        // A call with arguments never gets a stale value.
        let write = net.nodes[0].call(service: meshBytes(meshTemp), version: SemVer(1, 0, 0), operation: .read,
                                      arguments: [0x01], deadlineMs: 500, nowMs: net.now)
        net.drain(0)
        net.run(for: 1000)
        #expect(meshFailure(net.result(0, write)) == .noInstance)
    }

    /// A full stale cache replaces its oldest value; a service's newer value
    /// replaces its own. What comes back is the value as it was received.
    @Test func staleCacheReplacesTheOldest() {
        var config = MeshConfig()
        config.staleCacheMax = 2
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))],
                                         [meshService(meshHumid, SemVer(1, 0, 0))], [meshService("wind", SemVer(2, 0, 0))]],
                              config: config)
        net.serveModes[2] = .answer(Response(value: 55, unit: .percentRH, ageMs: 7, result: [0x01]))
        net.startAll()
        net.run(for: 100)
        for name in [meshTemp, meshHumid, meshTemp, "wind"] {
            let id = net.call(0, name, name == "wind" ? SemVer(2, 0, 0) : SemVer(1, 0, 0))
            net.run(for: 10)
            #expect(meshValue(net.result(0, id))?.isStale == false)
        }
        #expect(net.nodes[0].staleValues.count == 2)
        #expect(net.nodes[0].staleDescriptors.count == 2 && net.nodes[0].staleResults.count == 2)
        for i in 1...3 { net.crash(i) }
        net.run(for: 10_000)
        let temp = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 1000)
        let humid = net.call(0, meshHumid, SemVer(1, 0, 0), deadlineMs: 1000)
        let wind = net.call(0, "wind", SemVer(2, 0, 0), deadlineMs: 1000)
        net.run(for: 2000)
        let t = meshValue(net.result(0, temp))
        #expect(t?.isStale == true && t?.response == Response(value: 21, unit: .celsius))
        #expect(t?.service == meshService(meshTemp, SemVer(1, 2, 0)) && t?.node == meshNodeID(1))
        #expect(meshFailure(net.result(0, humid)) == .noInstance)  // the oldest: replaced by wind
        let w = meshValue(net.result(0, wind))
        #expect(w?.isStale == true && w?.response.value == 23 && w?.node == meshNodeID(3))
        #expect(w?.service.name == meshBytes("wind"))
    }

    /// The stale tier hands back every field of the response it kept.
    @Test func staleValueKeepsTheWholeResponse() {
        var net = MeshTestNet(services: [[], [meshService(meshHumid, SemVer(1, 0, 0))]])
        let kept = Response(value: 55, unit: .percentRH, ageMs: 7, result: [0x82, 0x01, 0x02])
        net.serveModes[1] = .answer(kept)
        let (_, freshAt, later) = freshThenAfterCrash(&net, meshHumid)
        let v = meshValue(net.result(0, later))
        #expect(v?.response == kept)
        #expect(v?.staleAgeMs.map { UInt64($0) } == net.completedAt(0, later)! - freshAt + 7)
        #expect(v?.service == meshService(meshHumid, SemVer(1, 0, 0)))
    }

    /// A server that is busy fails over, then degrades to stale with the remote reason.
    @Test func busyEverywhereDegradesToStaleWithTheReason() {
        var net = primaryBackupNet()
        net.startAll()
        net.run(for: 100)
        let first = net.call(0, meshTemp, SemVer(1, 0, 0))
        net.run(for: 10)
        #expect(meshValue(net.result(0, first))?.node == meshNodeID(1))
        net.serveModes[1] = .answer(Response(status: Status.busy.rawValue))
        net.serveModes[2] = .answer(Response(status: Status.unavailable.rawValue))
        let id = net.call(0, meshTemp, SemVer(1, 0, 0))
        net.run(for: 10)
        let v = meshValue(net.result(0, id))
        #expect(v?.isStale == true && v?.degradedBecause == .remoteError(Status.unavailable.rawValue))
        #expect(v?.failovers == 1)
    }

    @Test func callerErrorsAreNotRetriedElsewhere() {
        var net = primaryBackupNet()
        net.serveModes[1] = .answer(Response(status: Status.badArguments.rawValue))
        net.startAll()
        net.run(for: 100)
        let id = net.call(0, meshTemp, SemVer(1, 0, 0))
        net.run(for: 10)
        #expect(meshFailure(net.result(0, id)) == .remoteError(Status.badArguments.rawValue))
        #expect(net.served[2].isEmpty)
    }

    /// A call made before discovery completes waits (and asks) instead of failing.
    @Test func callBeforeDiscoveryWaitsForTheAnnounce() {
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))]])
        net.start(0)
        let id = net.call(0, meshTemp, SemVer(1, 0, 0), deadlineMs: 3000)
        #expect(net.result(0, id) == nil)
        net.run(for: 500)
        net.start(1)
        net.run(for: 100)
        #expect(meshValue(net.result(0, id))?.node == meshNodeID(1))
        #expect(net.sent(0, .query).contains { (try? Query.decode($0.frame.payload))?.name == meshBytes(meshTemp) })
        let none = net.call(0, "pressure", SemVer(1, 0, 0), deadlineMs: 700)
        net.run(for: 1000)
        #expect(meshFailure(net.result(0, none)) == .noInstance)
    }

    @Test func localServiceIsServedWithoutTheNetwork() {
        var net = MeshTestNet(services: [[meshService(meshTemp, SemVer(1, 0, 0))], []])
        net.startAll()
        net.run(for: 100)
        let before = net.log.count
        let id = net.call(0, meshTemp, SemVer(1, 0, 0))
        #expect(meshValue(net.result(0, id))?.node == meshNodeID(0))
        #expect(net.log.count == before)
        let remote = net.call(1, meshTemp, SemVer(1, 0, 0))
        net.run(for: 10)
        #expect(meshValue(net.result(1, remote))?.node == meshNodeID(0))
    }

    @Test func callLimitsAreTyped() {
        var config = MeshConfig()
        config.callsInFlightMax = 2
        config.dedupCacheMax = 2
        var net = MeshTestNet(services: [[], [meshService(meshTemp, SemVer(1, 2, 0))]], config: config)
        net.serveModes[1] = .never
        net.startAll()
        net.run(for: 100)
        _ = net.call(0, meshTemp, SemVer(1, 0, 0))
        _ = net.call(0, meshTemp, SemVer(1, 0, 0))
        let third = net.call(0, meshTemp, SemVer(1, 0, 0))
        #expect(meshFailure(net.result(0, third)) == .tooManyCalls)
        let big = net.nodes[0].call(service: meshBytes(meshTemp), version: SemVer(1, 0, 0),
                                    arguments: [0x59, 0x04, 0x4C] + [UInt8](repeating: 0, count: 1100),
                                    deadlineMs: 100, nowMs: net.now)
        net.drain(0)
        #expect(meshFailure(net.result(0, big)) == .argumentsTooLarge)
        // Two items, a cut-off item: refused at once, not left to time out at the server.
        for bad: [UInt8] in [[0x01, 0x02], [0x62, 0x61]] {
            let call = net.nodes[0].call(service: meshBytes(meshTemp), version: SemVer(1, 0, 0), arguments: bad,
                                         deadlineMs: 100, nowMs: net.now)
            net.drain(0)
            #expect(meshFailure(net.result(0, call)) == .badArguments)
        }
        net.nodes[0].leave(nowMs: net.now)
        net.drain(0)
        #expect(net.completions.filter { $0.node == 0 && $0.result == .failed(.stopped) }.count == 2)
    }
}
