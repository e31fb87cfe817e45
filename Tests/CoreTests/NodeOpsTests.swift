// Node operations served by NodeRuntime (Firmware/Node/NodeOps.swift): metrics
// from the registry, task introspection, config get; the rate limiter wired
// from the config. A one-node runtime over a fake platform; requests arrive
// as real authenticated frames from a MeshNode client.
import Testing
@testable import TDOSCore
@testable import TDOSNode

final class OpsTestPlatform: Platform {
    var clockUs: UInt64 = 1_000_000
    var inbox: [Datagram] = []
    var sent: [(bytes: [UInt8], to: NodeAddress?)] = []
    func nowUs() -> UInt64 { clockUs }
    func send(_ bytes: [UInt8], to: NodeAddress) { sent.append((bytes, to)) }
    func broadcast(_ bytes: [UInt8]) { sent.append((bytes, nil)) }
    func receive() -> Datagram? { inbox.isEmpty ? nil : inbox.removeFirst() }
    func sample(_ kind: SensorKind, nowMs: UInt64) -> Double? { 21.5 }
    func show(_ lines: [TextLine]) {}
    func nextBootEpoch() -> UInt32 { 3 }
    func openLogFlash() -> RAMLogFlash? { RAMLogFlash(sectorCount: 8, sectorSize: 4096, pageSize: 256) }
    var configCopies: (a: [UInt8], b: [UInt8]) = ([], [])
    func loadConfigRecord() -> (a: [UInt8], b: [UInt8]) { configCopies }
    func storeConfigRecord(_ record: [UInt8]) -> Bool {
        if ConfigImage.writeToB(a: configCopies.a, b: configCopies.b) { configCopies.b = record } else { configCopies.a = record }
        return true
    }
    var consensusState: [UInt8] = []
    func loadConsensusState() -> [UInt8] { consensusState }
    func storeConsensusState(_ record: [UInt8]) -> Bool {
        consensusState = record
        return true
    }
    func log(_ line: TextLine) {}
    func freeMemoryBytes() -> UInt32 { 100_000 }
    func heapInUseBytes() -> UInt32 { 4096 }
    func feedHardwareWatchdog() {}
}

/// A sensor runtime (node 0x200 at 10.0.0.2) and a client MeshNode (0x300 at 10.0.0.3).
struct OpsRig {
    let platform = OpsTestPlatform()
    let runtime: NodeRuntime<OpsTestPlatform>
    var client: MeshNode
    var completions: [CallID: CallResult] = [:]
    static let nodeAddress = NodeAddress(host: 0x0A00_0002, port: 4210)
    static let clientAddress = NodeAddress(host: 0x0A00_0003, port: 4210)

    init(settings: ConfigTree? = nil) {
        var c = NodeConfig(name: meshBytes("temp-a"), nodeID: 0x200, role: .sensor, address: OpsRig.nodeAddress,
                           keyID: 1, key: meshTestKey, rngSeed: 7)
        c.sensors = [SensorService(name: meshBytes("temp_sensor"), kind: .temperature)]
        c.settings = settings
        runtime = NodeRuntime(platform: platform, config: c)
        client = MeshNode(nodeID: 0x300, name: meshBytes("cli"), epoch: 1, keys: meshKeyring(),
                          address: OpsRig.clientAddress, services: [], rngSeed: 9)
    }

    mutating func start() {
        runtime.start()
        client.start(nowMs: platform.clockUs / 1000)
        exchange()
    }

    /// Moves datagrams both ways until both sides are quiet.
    mutating func exchange(rounds: Int = 20) {
        for _ in 0..<rounds {
            var moved = false
            while let a = client.pollAction() {
                switch a {
                case .send(let to, let bytes) where to == OpsRig.nodeAddress:
                    platform.inbox.append(Datagram(bytes: bytes, from: OpsRig.clientAddress)); moved = true
                case .broadcast(let bytes):
                    platform.inbox.append(Datagram(bytes: bytes, from: OpsRig.clientAddress)); moved = true
                case .complete(let id, let r): completions[id] = r
                default: break
                }
            }
            if !platform.inbox.isEmpty { runtime.datagramsReady() }
            runtime.runOnce()
            let out = platform.sent
            platform.sent.removeAll()
            for (bytes, to) in out where to == nil || to == OpsRig.clientAddress {
                client.handleDatagram(bytes, from: OpsRig.nodeAddress, nowMs: platform.clockUs / 1000)
                moved = true
            }
            if !moved { return }
        }
    }

    mutating func call(_ op: TDOSCore.Operation, _ arguments: [UInt8] = []) -> CallResult? {
        let id = client.call(node: 0x200, operation: op, arguments: arguments, deadlineMs: 2000,
                             nowMs: platform.clockUs / 1000)
        exchange()
        return completions[id]
    }
}

@Suite struct NodeOpsTests {
    @Test func metricsReportTheRegistry() throws {
        var rig = OpsRig()
        rig.start()
        rig.platform.clockUs += 2_000_000
        rig.runtime.runOnce()  // the sampler has run at start; reads now succeed
        // Two reads of the sensor through the mesh, then the metrics.
        for _ in 0..<2 {
            let id = rig.client.call(service: meshBytes("temp_sensor"), version: SemVer(1, 0, 0), deadlineMs: 2000,
                                     nowMs: rig.platform.clockUs / 1000)
            rig.exchange()
            #expect(meshValue(rig.completions[id]) != nil)
        }
        let v = try #require(meshValue(rig.call(.metrics)))
        var byID: [UInt16: Double] = [:]
        for s in try MetricsReport.decode(v.response.result).samples { byID[s.id] = s.value }
        #expect(byID[MetricID.requestsServed] == 2)
        #expect(byID[MetricID.requestsFailed] == 0)
        #expect(byID[MetricID.bootCount] == 3)
        #expect(byID[MetricID.heapInUseBytes] == 4096 && byID[MetricID.freeMemoryBytes] == 100_000)
        #expect((byID[MetricID.framesReceived] ?? 0) >= 3 && (byID[MetricID.framesSent] ?? 0) >= 3)
        #expect(byID[MetricID.framesRejected] == 0 && byID[MetricID.rateLimitedDrops] == 0)
        #expect(byID[MetricID.activeServices] == 1)
        // The sensor service has its own slot.
        let slot = try #require(rig.runtime.metrics.slotIndex(of: serviceID(meshBytes("temp_sensor"))))
        #expect(byID[MetricID.service(slot: slot, .served)] == 2)
    }

    @Test func rejectionsByReasonReachTheReport() throws {
        var rig = OpsRig()
        rig.start()
        // A forged frame (wrong key) and a replay of an authentic one.
        let f = Frame(type: .request, sender: 0x301, id: MessageID(epoch: 1, sequence: 900), timestampMs: 0,
                      payload: Request(service: 0, operation: .tasks).encode(), keyID: 1)
        let good = f.encode(key: meshKeyring().sendKey)
        var forged = good
        forged[forged.count - 1] ^= 0x01
        rig.platform.inbox += [Datagram(bytes: forged, from: OpsRig.clientAddress),
                               Datagram(bytes: good, from: OpsRig.clientAddress),
                               Datagram(bytes: good, from: OpsRig.clientAddress)]
        rig.exchange()
        let v = try #require(meshValue(rig.call(.metrics)))
        var byID: [UInt16: Double] = [:]
        for s in try MetricsReport.decode(v.response.result).samples { byID[s.id] = s.value }
        #expect(byID[MetricID.rejected(code: WireError.badTag.code)] == 1)
        #expect(byID[MetricID.rejected(code: WireError.replayed.code)] == 1)
        #expect(byID[MetricID.framesRejected] == 2)
    }

    @Test func tasksDescribeTheScheduler() throws {
        var rig = OpsRig()
        rig.start()
        let v = try #require(meshValue(rig.call(.tasks)))
        let report = try TaskReport.decode(v.response.result)
        let names = report.entries.map { String(decoding: $0.name, as: UTF8.self) }
        #expect(names == ["net", "mesh-timer", "sampler", "power"])
        let net = report.entries[0]
        #expect(net.critical && net.priority == TaskPriority.urgent && net.watchdogTimeoutUs == 5_000_000)
        #expect(net.totalTicks > 0 && net.watchdog == TaskWatchdogState.ok.rawValue)
        #expect(report.entries[3].tickRateHz == 1)
        // Round trip of every field, and the codec skips unknown keys.
        var e = TaskReport.Entry()
        e.id = 0x1_0002; e.name = meshBytes("x"); e.priority = 2; e.state = 3; e.critical = true
        e.totalTicks = 1 << 40; e.totalFailures = 4; e.consecutiveFailures = 2; e.deadlineMisses = 5
        e.watchdog = 2; e.tickRateHz = 100; e.restarts = 6; e.timeUsedTotalUs = 77; e.timeUsedMaxUs = 8
        e.breaker = 1; e.watchdogTimeoutUs = 9; e.deadlineUs = 10; e.fault = 1; e.skippedTicks = 11
        e.watchdogStalls = 12
        #expect(try TaskReport.decode(TaskReport(entries: [e, TaskReport.Entry()]).encode()).entries == [e, TaskReport.Entry()])
        #expect(throws: WireError.self) { try TaskReport.decode([0x81, 0x01]) }
    }

    @Test func configGetAnswersTheEffectiveConfig() throws {
        var local = ConfigSchema.defaults()
        try local.set(configBytes("rate_limit.burst"), .int(77))
        var rig = OpsRig(settings: local)
        rig.start()
        func get(_ path: String) -> CallResult? {
            var w = CBORWriter()
            w.text(meshBytes(path))
            return rig.call(.configGet, w.bytes)
        }
        var r = CBORReader(try #require(meshValue(get("rate_limit.burst"))).response.result)
        #expect(try r.int() == 77)
        r = CBORReader(try #require(meshValue(get("logging.level"))).response.result)
        #expect(Array(try r.text()) == meshBytes("INFO"))
        let sub = try ConfigTree.decodeCBOR(try #require(meshValue(get("rate_limit"))).response.result)
        #expect(sub.int("burst", default: 0) == 77 && sub.int("rate_per_s", default: 0) == 20 && sub.leafCount == 2)
        #expect(meshFailure(get("no.such.path")) == .remoteError(Status.badArguments.rawValue))
        #expect(meshFailure(rig.call(.configGet, [0x01])) == .remoteError(Status.badArguments.rawValue))
        let whole = try #require(meshValue(rig.call(.configGet)))
        #expect(try ConfigTree.decodeCBOR(whole.response.result).int("rate_limit.burst", default: 0) == 77)
        // The limiter took its burst from the config.
        #expect(rig.runtime.mesh.config.rateLimit?.burst == 77)
        #expect(meshFailure(rig.call(TDOSCore.Operation(rawValue: 999))) == .remoteError(Status.unknownOperation.rawValue))
    }
}
