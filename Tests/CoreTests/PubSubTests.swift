// Subscriptions (Firmware/Core/Mesh/PubSub.swift): the wire, the push rules
// against a model, leases, failover, refusals, and many seeds of the
// deterministic simulation with the real node runtime.
import Testing
@testable import TDOSCore
@testable import TDOSHost

@Suite struct PubSubWireTests {
    @Test func subscribeAndNotifyRoundTrip() throws {
        let s = Subscribe(id: 7, service: meshBytes("temp_sensor"), version: SemVer(1, 2, 0), minIntervalMs: 250,
                          maxIntervalMs: 4000, threshold: 0.25, leaseMs: 12_000)
        #expect(try Subscribe.decode(s.encode()) == s)
        let cancel = Subscribe(id: 9, service: [], leaseMs: 0)
        #expect(cancel.encode().count == 3)  // {1: 9}
        let c = try Subscribe.decode(cancel.encode())
        #expect(c.isCancel && c.id == 9)
        let n = Notify(id: 7, sequence: 42, value: 21.5, unit: .celsius, ageMs: 120, leaseMs: 12_000)
        #expect(try Notify.decode(n.encode()) == n)
        #expect(try Notify.decode(Notify(id: 1, sequence: 2, status: Status.busy.rawValue).encode()).status == Status.busy.rawValue)
    }

    @Test func hostilePayloadsAreMalformedNotTraps() {
        // A live subscription needs its service; thresholds must be finite and >= 0; ids are required.
        var w = CBORWriter()
        w.mapHeader(count: 2); w.unsigned(1); w.unsigned(1); w.unsigned(7); w.unsigned(5000)
        #expect(throws: WireError.malformedCBOR) { try Subscribe.decode(w.bytes) }
        var neg = CBORWriter()
        neg.mapHeader(count: 3); neg.unsigned(1); neg.unsigned(1); neg.unsigned(2); neg.text(meshBytes("t"))
        neg.unsigned(6); neg.double(-1)
        #expect(throws: WireError.malformedCBOR) { try Subscribe.decode(neg.bytes) }
        var noSeq = CBORWriter()
        noSeq.mapHeader(count: 1); noSeq.unsigned(1); noSeq.unsigned(3)
        #expect(throws: WireError.malformedCBOR) { try Notify.decode(noSeq.bytes) }
        // Every truncation and random bytes: an error or a value, never a trap.
        let full = Subscribe(id: 3, service: meshBytes("light_sensor"), threshold: 2).encode()
        for k in 0..<full.count { _ = try? Subscribe.decode(Array(full[0..<k])) }
        var rng = SeededRandom(seed: 77)
        for _ in 0..<5000 {
            let bytes = (0..<Int(rng.below(24))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? Subscribe.decode(bytes)
            _ = try? Notify.decode(bytes)
        }
    }
}

/// Node 0 subscribes; node 1 is the primary temp_sensor, node 2 the backup.
func pubsubNet(seed: UInt64 = 1, config: PubSubConfig = PubSubConfig(), extraSubscriber: Bool = false) -> MeshTestNet {
    var services: [[ServiceDescriptor]] = [[], [meshService("temp_sensor", SemVer(1, 2, 0))],
                                           [meshService("temp_sensor", SemVer(1, 0, 0), priority: 1)]]
    if extraSubscriber { services.append([]) }
    var net = MeshTestNet(services: services, seed: seed, pubsub: config)
    net.startAll()
    net.run(for: 2000)
    return net
}

@Suite struct PubSubBehaviourTests {
    /// The LwM2M rules (pmin, pmax, step) as a model, fed the same random
    /// samples: the pushes must match it exactly, value and time.
    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func pushesFollowTheModel(seed: UInt64) {
        var net = pubsubNet(seed: seed)
        var rng = SeededRandom(seed: seed)
        let minMs = UInt32(200 + rng.below(800)), maxMs = UInt32(2000 + rng.below(4000))
        let threshold = Double(rng.below(3)) * 0.5
        net.publish(1, "temp_sensor", 20)
        let t0 = net.now
        #expect(net.subscribe(0, "temp_sensor", minMs: minMs, maxMs: maxMs, threshold: threshold, leaseMs: 60_000) != nil)
        // Model state, from the answer (which carries the sample of t0), sent
        // when the subscribe arrives one link latency later.
        var expected: [(at: UInt64, value: Double)] = [(t0 + net.latencyMs, 20)]
        var lastAt = t0 + net.latencyMs, lastValue = 20.0, latest = 20.0, pending = false
        var t = t0
        for _ in 0..<300 {
            t += 1 + rng.below(400)
            // Timers due up to t fire first (the net runs them before the publish).
            while true {
                let due = lastAt + UInt64(pending ? minMs : maxMs)
                guard due <= t else { break }
                expected.append((due, latest))
                lastAt = due; lastValue = latest; pending = false
            }
            latest = 20 + Double(rng.below(40)) / 10
            if threshold == 0 || abs(latest - lastValue) >= threshold {
                if t >= lastAt + UInt64(minMs) {
                    expected.append((t, latest))
                    lastAt = t; lastValue = latest; pending = false
                } else {
                    pending = true
                }
            }
            net.run(until: t)
            net.publish(1, "temp_sensor", latest)
        }
        net.run(for: 5)
        let got = net.notifications(0).map { (at: $0.at - net.latencyMs, value: $0.n.value ?? -1) }
        let compared = min(got.count, expected.count)
        #expect(compared > 30)
        for k in 0..<compared where got[k].at != expected[k].at || got[k].value != expected[k].value {
            Issue.record("seed \(seed) push \(k): got \(got[k]), model \(expected[k]) (min \(minMs) max \(maxMs) step \(threshold))")
            break
        }
        // The model may have one push due after the net's last step.
        #expect(abs(got.count - expected.count) <= 1, "seed \(seed): \(got.count) pushes, model \(expected.count)")
        #expect(net.notifications(0).allSatisfy { $0.n.publisher == meshNodeID(1) })
    }

    @Test func renewalKeepsTheLeaseAndAStoppedSubscriberLapses() {
        var net = pubsubNet()
        net.publish(1, "temp_sensor", 20)
        _ = net.subscribe(0, "temp_sensor", minMs: 500, maxMs: 3000, leaseMs: 6000)
        net.run(for: 30_000)  // five leases: renewals every 2 s keep it
        #expect(net.pubsubs[1].publicationCount == 1)
        #expect(net.pubsubs[1].counters.leasesExpired == 0)
        // The subscriber stays alive in the mesh (heartbeats pass) but its renewals are lost.
        let stop = net.now
        net.dropIf = { from, _, frame in from == 0 && frame.type == .subscribe }
        var lapsedAt: UInt64?
        while net.now < stop + 10_000 {
            net.run(for: 10)
            if lapsedAt == nil && net.pubsubs[1].publicationCount == 0 { lapsedAt = net.now }
        }
        let lapse = try! #require(lapsedAt)
        #expect(lapse - stop <= 6000, "lapsed \(lapse - stop) ms after the last renewal could arrive; lease 6000")
        #expect(lapse - stop > 6000 - 2000 - 100, "the lease ran from the last renewal (every 2 s)")
        #expect(net.pubsubs[1].counters.leasesExpired == 1)
        #expect(net.nodes[1].peer(meshNodeID(0))?.state == .alive)
    }

    @Test func deadSubscriberIsDroppedWithoutWaitingForTheLease() {
        var net = pubsubNet()
        net.publish(1, "temp_sensor", 20)
        _ = net.subscribe(0, "temp_sensor", leaseMs: 60_000)
        net.run(for: 1000)
        #expect(net.pubsubs[1].publicationCount == 1)
        let crash = net.now
        net.crash(0)
        net.run(for: 5000)
        #expect(net.pubsubs[1].publicationCount == 0)
        #expect(net.pubsubs[1].counters.subscribersDropped == 1)
        let dead = net.eventTimes(1) { $0 == .peerDead(meshNodeID(0)) }
        #expect(dead.count == 1 && dead[0] - crash <= UInt64(net.nodes[1].config.deadAfterMs) + 1000)
    }

    @Test func failsOverToTheBackupAndStaysThere() {
        var net = pubsubNet()
        net.publish(1, "temp_sensor", 20)
        net.publish(2, "temp_sensor", 30)
        let sub = net.subscribe(0, "temp_sensor", minMs: 200, maxMs: 1000, leaseMs: 9000)!
        net.run(for: 3000)
        #expect(net.pubsubs[0].publisher(of: sub) == meshNodeID(1))
        let crash = net.now
        net.crash(1)
        var switchedAt: UInt64?
        while net.now < crash + 8000 {
            net.run(for: 10)
            if switchedAt == nil, net.notifications(0).last?.n.publisher == meshNodeID(2) { switchedAt = net.now }
        }
        let at = try! #require(switchedAt)
        // Silence: last push + max interval 1 s + grace 2 s, before the mesh's 3 s death verdict.
        #expect(at - crash <= 3500, "backup's first push \(at - crash) ms after the crash")
        #expect(net.pubsubEvents.contains { $0.event == .publisherChanged(sub, from: meshNodeID(1), to: meshNodeID(2)) })
        #expect(net.pubsubs[0].counters.failovers == 1)
        // The primary returns (a reboot): the subscription stays on the backup.
        net.crashed.remove(1)
        net.nodes[1] = MeshNode(config: MeshConfig(), nodeID: meshNodeID(1), name: meshBytes("node-1"), epoch: 2,
                                keys: meshKeyring(), address: meshAddress(1), services: net.nodes[1].services,
                                rngSeed: 99)
        net.pubsubs[1] = PubSub()
        net.start(1)
        net.run(for: 10_000)
        #expect(net.pubsubs[0].publisher(of: sub) == meshNodeID(2))
        #expect(net.notifications(0).last?.n.value == 30)
    }

    @Test func rebootedPublisherIsSubscribedAgain() {
        var net = pubsubNet()
        net.publish(1, "temp_sensor", 20)
        let sub = net.subscribe(0, "temp_sensor", minMs: 200, maxMs: 5000, leaseMs: 30_000)!
        net.run(for: 1000)
        // Reboot in 100 ms: too fast for the failure detector; the new epoch tells.
        net.crash(1)
        net.run(for: 100)
        net.crashed.remove(1)
        net.nodes[1] = MeshNode(config: MeshConfig(), nodeID: meshNodeID(1), name: meshBytes("node-1"), epoch: 2,
                                keys: meshKeyring(), address: meshAddress(1), services: net.nodes[1].services,
                                rngSeed: 98)
        net.pubsubs[1] = PubSub()
        net.start(1)
        net.publish(1, "temp_sensor", 25)
        net.run(for: 3000)
        #expect(net.pubsubs[1].publicationCount == 1, "the rebooted publisher holds the subscription again")
        #expect(net.pubsubs[0].publisher(of: sub) == meshNodeID(1))
        #expect(net.notifications(0).last?.n.value == 25)
    }

    @Test func fullPublisherAnswersBusyAndTheSubscriberMovesOn() {
        var config = PubSubConfig()
        config.publicationsMax = 1
        var net = pubsubNet(config: config, extraSubscriber: true)
        net.publish(1, "temp_sensor", 20)
        net.publish(2, "temp_sensor", 30)
        let a = net.subscribe(0, "temp_sensor")!
        let b = net.subscribe(3, "temp_sensor")!
        net.run(for: 500)
        #expect(net.pubsubs[0].publisher(of: a) == meshNodeID(1))
        #expect(net.pubsubs[3].publisher(of: b) == meshNodeID(2))
        #expect(net.pubsubs[1].counters.subscriptionsRefused == 1)
        #expect(net.notifications(3).first?.n.value == 30)
    }

    /// A refusal from the only instance is asked again after searchIntervalMs,
    /// not at the speed answers come back (which would spend the subscriber's
    /// rate-limit budget at the publisher, heartbeats included).
    @Test func refusalByTheOnlyInstanceBacksOff() {
        var config = PubSubConfig()
        config.publicationsMax = 1
        var net = MeshTestNet(services: [[], [meshService("temp_sensor", SemVer(1, 0, 0))], []], pubsub: config)
        net.startAll()
        net.run(for: 2000)
        net.publish(1, "temp_sensor", 20)
        _ = net.subscribe(0, "temp_sensor")
        let start = net.pubsubs[2].counters.subscribesSent
        _ = net.subscribe(2, "temp_sensor")
        net.run(for: 5000)
        let sent = net.pubsubs[2].counters.subscribesSent - start
        #expect(sent >= 3 && sent <= 8, "\(sent) subscribes in 5 s to a full publisher")
        #expect(net.nodes[1].peer(meshNodeID(2))?.state == .alive)
    }

    /// Max interval 0 means the publisher's 60 s: the subscriber must expect
    /// the same, not fail over every 2 s while the value holds still.
    @Test func subscriberExpectsTheGrantedIntervals() {
        var net = pubsubNet()
        net.publish(1, "temp_sensor", 20)
        net.publish(2, "temp_sensor", 30)
        let sub = net.subscribe(0, "temp_sensor", minMs: 0, maxMs: 0, threshold: 5, leaseMs: 30_000)!
        for _ in 0..<30 {
            net.run(for: 1000)
            net.publish(1, "temp_sensor", 20.5)  // below the threshold: no push
        }
        #expect(net.pubsubs[0].counters.failovers == 0)
        #expect(net.pubsubs[0].publisher(of: sub) == meshNodeID(1))
    }

    /// The publisher's answers to `subscribe` frames, one case each: the
    /// registration (with the sample), a renewal (same id and service: new
    /// terms, no value), the refusals, a re-subscription of the same id to
    /// another service, and a cancel.
    @Test func publisherAnswersEverySubscribe() throws {
        var config = PubSubConfig()
        config.publicationsMax = 2
        var net = MeshTestNet(services: [[], [meshService("temp_sensor", SemVer(1, 2, 0)),
                                              meshService("humidity", SemVer(1, 0, 0))]], pubsub: config)
        net.startAll()
        net.run(for: 2000)
        net.publish(1, "temp_sensor", 20)
        var frameID: UInt32 = 1
        // `net` inout, not captured: a captured variable is checked as a whole
        // for exclusive access, and `handle` writes two of its fields at once.
        func ask(_ s: Subscribe, _ net: inout MeshTestNet) throws -> Notify? {
            frameID += 1
            let frame = Frame(type: .subscribe, sender: meshNodeID(0), id: MessageID(epoch: 9, sequence: frameID),
                              timestampMs: 0, payload: s.encode())
            net.pubsubs[1].handle(frame, nowMs: net.now, mesh: &net.nodes[1])
            var answer: Notify?
            while let action = net.nodes[1].pollAction() {
                guard case .send(_, let bytes) = action else { continue }
                let f = try Frame.decode(bytes, keys: meshKeyring())
                if f.type == .notify { answer = try Notify.decode(f.payload) }
            }
            return answer
        }
        let first = try ask(Subscribe(id: 5, service: meshBytes("temp_sensor"), minIntervalMs: 10, leaseMs: 9000), &net)
        #expect(first == Notify(id: 5, sequence: 1, value: 20, unit: .celsius, ageMs: 0, leaseMs: 9000))
        net.now += 100
        let renewal = try ask(Subscribe(id: 5, service: meshBytes("temp_sensor"), leaseMs: 12_000), &net)
        #expect(renewal == Notify(id: 5, sequence: 1, leaseMs: 12_000), "a renewal answers without a value")
        #expect(net.pubsubs[1].publicationCount == 1)
        #expect(net.pubsubs[1].publications[0].leaseUntilMs == net.now + 12_000)
        #expect(net.pubsubs[1].publications[0].minIntervalMs == 1000)
        // The same id for another service: the entry is replaced (no sample there yet).
        let moved = try ask(Subscribe(id: 5, service: meshBytes("humidity"), leaseMs: 5000), &net)
        #expect(moved == Notify(id: 5, sequence: 0, leaseMs: 5000))
        #expect(net.pubsubs[1].publicationCount == 1 && net.pubsubs[1].publications[0].service == 1)
        let unknown = try ask(Subscribe(id: 6, service: meshBytes("pressure")), &net)
        #expect(unknown == Notify(id: 6, sequence: 0, status: Status.unknownService.rawValue, leaseMs: 30_000))
        let version = try ask(Subscribe(id: 6, service: meshBytes("temp_sensor"), version: SemVer(2, 0, 0)), &net)
        #expect(version == Notify(id: 6, sequence: 0, status: Status.unsupportedVersion.rawValue, leaseMs: 30_000))
        _ = try ask(Subscribe(id: 7, service: meshBytes("temp_sensor")), &net)
        let busy = try ask(Subscribe(id: 8, service: meshBytes("temp_sensor")), &net)
        #expect(busy == Notify(id: 8, sequence: 0, status: Status.busy.rawValue, leaseMs: 30_000))
        #expect(net.pubsubs[1].counters.subscriptionsRefused == 3)
        #expect(net.pubsubs[1].counters.subscriptionsCreated == 3)
        let cancelled = try ask(Subscribe(id: 5, service: [], leaseMs: 0), &net)
        #expect(cancelled == nil, "a cancel is not answered")
        #expect(net.pubsubs[1].publicationCount == 1 && net.pubsubs[1].counters.cancelsReceived == 1)
    }

    @Test func unknownServiceIsRefusedAndUnsubscribeCancels() {
        var net = pubsubNet()
        net.publish(1, "temp_sensor", 20)
        // Version 2 exists nowhere: no instance, the subscription keeps looking.
        let none = net.subscribe(0, "temp_sensor", version: SemVer(2, 0, 0))!
        net.run(for: 3000)
        #expect(net.pubsubs[0].publisher(of: none) == nil)
        #expect(net.notifications(0).isEmpty)
        let sub = net.subscribe(0, "temp_sensor", minMs: 100, maxMs: 500)!
        net.run(for: 2000)
        #expect(net.notifications(0).count >= 3)
        net.pubsubs[0].unsubscribe(sub, nowMs: net.now, mesh: &net.nodes[0])
        net.drain(0)
        net.run(for: 2000)
        #expect(net.pubsubs[1].publicationCount == 0)
        #expect(net.pubsubs[1].counters.cancelsReceived == 1)
    }

    /// Loss, duplication and reordering on every link: the subscriber never
    /// takes a push twice or out of order, and keeps receiving.
    @Test(arguments: Array(1...12) as [UInt64])
    func lossyNetworkNeverDeliversTwiceOrOutOfOrder(seed: UInt64) {
        var net = pubsubNet(seed: seed)
        net.faultRNG = SeededRandom(seed: seed)
        net.lossPercent = 10
        net.duplicatePercent = 10
        net.jitterMs = 30
        _ = net.subscribe(0, "temp_sensor", minMs: 100, maxMs: 2000, leaseMs: 6000)
        for k in 0..<400 {
            net.run(for: 100)
            net.publish(1, "temp_sensor", Double(k))
        }
        let got = net.notifications(0)
        #expect(got.count > 150, "seed \(seed): \(got.count) pushes")
        for k in got.indices.dropFirst() where got[k].n.publisher == got[k - 1].n.publisher {
            if got[k].n.sequence <= got[k - 1].n.sequence {
                Issue.record("seed \(seed): sequence \(got[k].n.sequence) after \(got[k - 1].n.sequence)")
                break
            }
        }
        #expect(net.pubsubs[1].publicationCount(subscriber: meshNodeID(0)) <= 1)
    }
}

@Suite struct PubSubSimulationTests {
    /// The real node runtime (samplers at 1 Hz) in the deterministic simulation, many seeds.
    @Test(arguments: 0..<4)
    func failoverAndLapseOverSeeds(chunk: Int) {
        for seed in UInt64(chunk * 10 + 1)...UInt64(chunk * 10 + 10) {
            let loss = seed % 2 == 0 ? 5.0 : 0
            let r = SimExperiments.subscription(seed: seed, lossPercent: loss)
            #expect(r.failures.isEmpty, "seed \(seed): \(r.failures)")
            #expect(r.notifications.count > 10, "seed \(seed): \(r.notifications.count) notifications")
            #expect(r.ordered, "seed \(seed): a push taken twice or out of order")
            #expect(!r.duplicatesAtPublisher, "seed \(seed)")
            // Failover: the mesh declares the primary dead in <= 3 s (+1 s heartbeat
            // jitter), the silence rule fires at max 2 s + grace 2 s: 4.5 s at most.
            let f = r.failoverMs ?? .max
            #expect(f <= 4500, "seed \(seed) (loss \(loss) %): backup's first push \(f) ms after the crash")
            // Lapse: within the 9 s lease (the death verdict usually comes first).
            let l = r.lapseMs ?? .max
            #expect(l <= 9000, "seed \(seed): the backup dropped the dead subscriber after \(l) ms")
            // Steady state: 1 Hz samples, max interval 2 s; loss stretches a gap.
            #expect(r.steadyGapMaxMs <= (loss > 0 ? 4000 : 2100), "seed \(seed): gap \(r.steadyGapMaxMs) ms")
        }
    }
}

@Suite struct ConfigUpdateSimulationTests {
    /// Issue 7: a config update reaches every live node (applied, persisted,
    /// acknowledged) over a lossy network; an older version never wins; a
    /// restarted node comes back with the version it persisted.
    @Test(arguments: Array(1...16) as [UInt64])
    func updateReachesEveryLiveNodeAndOldNeverWins(seed: UInt64) {
        let loss = Double(seed % 4) * 5  // 0, 5, 10, 15 %
        let r = SimExperiments.configPush(seed: seed, lossPercent: loss)
        #expect(r.failures.isEmpty, "seed \(seed): \(r.failures)")
        #expect(r.answers.count == 5 && r.answers.allSatisfy { $0 == .acked }, "seed \(seed) loss \(loss) %: \(r.answers)")
        #expect(r.nodesAtNewVersion == r.liveNodes, "seed \(seed): \(r.nodesAtNewVersion)/\(r.liveNodes) at version 5")
        #expect(r.nodesKeptNewer == r.liveNodes, "seed \(seed): the stale version 3 overwrote version 5 somewhere")
        #expect(r.restoredAfterRestart, "seed \(seed): node 2 lost its persisted config across a restart")
        #expect((r.allAckedMs ?? .max) <= 5000, "seed \(seed): acks took \(r.allAckedMs.map { "\($0) ms" } ?? "forever")")
    }
}
