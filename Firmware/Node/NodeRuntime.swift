// A TDOS node: the scheduler every node runs on, the mesh state machine, and
// the role's tasks, over a Platform. The same class runs on the board, in a
// Linux process and inside the deterministic simulation.
//
// Tasks (priority 0 runs first):
//   net         urgent, critical  drains datagrams into the mesh
//   mesh-timer  urgent, critical  fires the mesh's timers (heartbeats, retransmissions, expiry)
//   sampler     normal            sensor role: samples its sensors
//   weather     normal            kernel role: the weather-station app
//   power       background        activity decay and the metrics the heartbeats carry
//
// Platform loop contract:
//   runtime.start()
//   loop {
//       let next = runtime.runOnce()            // runs every ready task
//       wait until a datagram arrives or the clock reaches `next` (µs)
//       if a datagram arrived { runtime.datagramsReady() }
//   }
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
#endif

/// A sensor's latest calibrated reading.
public struct SensorSample: BitwiseCopyable {
    public var value: Double
    public var atMs: UInt64
}

/// A struct the runtime may or may not have, kept at its own address (`raft`,
/// `log`): a nil test is a pointer test and a field is read in place. As an
/// optional struct each read tested or copied the ~160 bytes through outlined
/// calls; in a class box each mutating call retained and released the box.
/// `makeSlot` allocates it, `freeSlot` frees it (the runtime's deinit too).
func makeSlot<T>(_ value: consuming T) -> UnsafeMutablePointer<T> {
    let slot = UnsafeMutablePointer<T>.allocate(capacity: 1)
    slot.initialize(to: value)
    return slot
}

func freeSlot<T>(_ slot: inout UnsafeMutablePointer<T>?) {
    slot?.deinitialize(count: 1).deallocate()
    slot = nil
}

public final class NodeRuntime<P: Platform> {
    public let platform: P
    public let config: NodeConfig
    public var scheduler: Scheduler
    public var mesh: MeshNode
    /// Subscriptions (pushes of this node's readings, and its own subscriptions).
    public var pubsub: PubSub
    public let bootUs: UInt64

    /// Calls completed but not yet claimed by the task that made them.
    var completed = Table<(id: CallID, result: CallResult)>()  // Table: no Array code per type
    static var completedMax: Int { 32 }

    // Sensor role: the latest calibrated sample per configured service.
    public private(set) var latest: Table<SensorSample?>
    public private(set) var samplesTaken: UInt64 = 0

    // Kernel role: the weather station and its log producer. In a slot
    // (`makeSlot`) made only where the role can run (every node on a host,
    // the kernel image on the board): the other images neither build nor
    // release these fields.
    struct KernelState {
        var station = WeatherStation()
        var lastReadings = WeatherReadings()
        var displayUpdates: UInt64 = 0
        var calls = Table<CallID>()
        /// What each call in `calls` answered (same order), as plain values:
        /// `[CallResult?]` cost Array's growth and move code for its type (~0.5 KB).
        var results = Table<Reading>()
        var deadlineUs: UInt64 = 0
        /// The weather station's readings go to the storage log.
        var producer: LogProducer
        init(epoch: UInt32) { producer = LogProducer(epoch: epoch) }
    }
    /// One weather call's outcome: `done` once it completed; `hasValue` when it
    /// answered a value (`staleAgeMs` then its age if stale). Ends on a word
    /// (no tail padding).
    struct Reading: BitwiseCopyable {
        var value = 0.0
        var staleAgeMs: UInt32 = 0
        var done = false, hasValue = false, isStale = false, spare = false
    }
    var kernelSlot: UnsafeMutablePointer<KernelState>?
    /// Whether this build can run the kernel role: the slot exists then.
    @inline(__always) static var hasKernelState: Bool { P.imageRole == nil || P.imageRole == .kernel }
    public var station: WeatherStation { kernelSlot!.pointee.station }
    public var lastReadings: WeatherReadings { kernelSlot!.pointee.lastReadings }
    public var displayUpdates: UInt64 { kernelSlot!.pointee.displayUpdates }
    public var producer: LogProducer { kernelSlot!.pointee.producer }

    // Storage role: the durable record log (LogService over the platform's log flash).
    /// nil when the flash could not be opened or read. In a slot (`makeSlot`).
    var logSlot: UnsafeMutablePointer<RecordLog<P.LogStore>>?
    /// A copy of the log (the simulation's view).
    public var log: RecordLog<P.LogStore>? { logSlot?.pointee }

    /// Whether there is a log to serve from (a halted one answers with errors).
    /// A log that failed to open, or halted on a flash error (a timeout, an
    /// fsync error), is opened again first, at most every 10 s: recovery re-reads
    /// the flash, so one transient error does not stop the log until a reboot.
    func logUsable(nowMs: UInt64) -> Bool {
        if let log = logSlot, !log.pointee.isHalted { return true }
        guard role == .storage, nowMs >= nextLogReopenMs else { return logSlot != nil }
        nextLogReopenMs = nowMs + 10_000
        let flash = logSlot?.pointee.flash ?? platform.openLogFlash()
        freeSlot(&logSlot)
        guard let flash else { return false }
        openLog(flash)
        platform.log(TextLine(logSlot == nil ? "log: reopening failed (flash unreadable); retrying in 10 s"
                                              : "log: reopened after a flash error (recovery ran again)"))
        return logSlot != nil
    }

    func openLog(_ flash: P.LogStore) {
        // Not `try?`: an optional RecordLog is tested and copied through outlined calls.
        do { logSlot = makeSlot(try RecordLog(flash: flash)) } catch {}
    }

    // Storage role: config consensus (NodeRuntime+Consensus.swift).
    /// Raft over the config replicas; nil on other roles, or when consensus is
    /// off on this replica (`consensusHalt` says why). In a slot (`makeSlot`).
    var raftSlot: UnsafeMutablePointer<RaftNode>?
    /// A copy of the Raft node (the tests' and the simulation's view).
    public var raft: RaftNode? { raftSlot?.pointee }

    /// The storage role's tables and references (consensus, distribution,
    /// replication). In a slot made only where the role can run (every node
    /// on a host, the storage image on the board), like `KernelState`: the
    /// other images neither build nor release them. The extensions reach each
    /// field in place through the accessors below. Scalars stay in the class
    /// (a store each at init, nothing to release; in the slot each access was
    /// a nil test). `committed` and `distribution` are read through
    /// addressors (in place: with `_read`/`_modify` every non-mutating call
    /// on them copied them first).
    struct StorageState {
        /// What the platform last stored for `raft` (Figure 2's persistent state).
        var raftStored = RaftPersistentState()
        /// `config set` requests waiting for their proposal's outcome.
        var pendingSets = Table<PendingSet>()
        /// Leader: who has the committed config.
        var distributedTo: [UInt32] = []
        // With several replicas: log replication (NodeRuntime+Replication.swift).
        var pendingAppends = Table<PendingAppend>()
        var waitingAppends = Table<WaitingAppend>()
        var replicationCalls = Table<ReplicationCall>()
        var catchUpWaiting: [UInt32] = []
        /// The config state machine (`committed`).
        var committed = ConfigManager()
        /// Leader: the committed config on its way to the nodes (`distribution`).
        var distribution: ConfigPush? = nil
        init() {}
    }
    var storageSlot: UnsafeMutablePointer<StorageState>?
    /// Whether this build can run the storage role: the slot exists then.
    @inline(__always) static var hasStorageState: Bool { P.imageRole == nil || P.imageRole == .storage }

    var raftStored: RaftPersistentState {
        _read { yield storageSlot!.pointee.raftStored }
        _modify { yield &storageSlot!.pointee.raftStored }
    }
    /// The config state machine: the committed entries applied in index order.
    public internal(set) var committed: ConfigManager {
        unsafeAddress { UnsafePointer(storageSlot!.pointer(to: \.committed)!) }
        unsafeMutableAddress { storageSlot!.pointer(to: \.committed)! }
    }
    var pendingSets: Table<PendingSet> {
        _read { yield storageSlot!.pointee.pendingSets }
        _modify { yield &storageSlot!.pointee.pendingSets }
    }
    var distributedTo: [UInt32] {
        _read { yield storageSlot!.pointee.distributedTo }
        _modify { yield &storageSlot!.pointee.distributedTo }
    }
    var pendingAppends: Table<PendingAppend> {
        _read { yield storageSlot!.pointee.pendingAppends }
        _modify { yield &storageSlot!.pointee.pendingAppends }
    }
    var waitingAppends: Table<WaitingAppend> {
        _read { yield storageSlot!.pointee.waitingAppends }
        _modify { yield &storageSlot!.pointee.waitingAppends }
    }
    var replicationCalls: Table<ReplicationCall> {
        _read { yield storageSlot!.pointee.replicationCalls }
        _modify { yield &storageSlot!.pointee.replicationCalls }
    }
    var catchUpWaiting: [UInt32] {
        _read { yield storageSlot!.pointee.catchUpWaiting }
        _modify { yield &storageSlot!.pointee.catchUpWaiting }
    }
    /// Entries committed but refused by the state machine (every replica alike).
    public internal(set) var committedSkipped: UInt32 = 0
    public internal(set) var consensusHalt: StaticString? = nil
    /// Leader: the committed config on its way to the nodes.
    var distribution: ConfigPush? {
        unsafeAddress { UnsafePointer(storageSlot!.pointer(to: \.distribution)!) }
        unsafeMutableAddress { storageSlot!.pointer(to: \.distribution)! }
    }
    var distributionVersion: UInt32 = 0
    var distributedVersion: UInt32 = 0
    var nextDistributionMs: UInt64 = 0
    var wasLeader = false
    /// Leader only: caught up from the other replicas, takes appends.
    public internal(set) var primaryReady = false
    var catchUpAnswers = 0
    var catchUpRetryAtMs: UInt64 = 0
    var leadershipStint: UInt32 = 0
    /// When `logUsable` may try to open the log again.
    var nextLogReopenMs: UInt64 = 0

    /// Record kind of a weather-station reading: payload {1: °C, 2: %RH, 3: lux} (present ones).
    public static var weatherRecordKind: UInt8 { 1 }

    // Power manager (seeds' PowerManager): 100 = busy, decays while idle.
    public private(set) var activity: Double = 100
    var lastActivityMs: UInt64 = 0

    public private(set) var requestsServed: UInt64 = 0
    public private(set) var schedulerEvents: UInt64 = 0

    /// The node's metrics (served by NodeOps) and its config: the built-in
    /// defaults, merged on Linux with the file and environment (`NodeConfig.settings`).
    public internal(set) var metrics: MetricsRegistry
    public internal(set) var settings: ConfigManager
    /// What the config record held at boot (logged at start).
    public let configRestore: ConfigRestoreOutcome
    /// config_update messages whose record could not be written (not applied, not acknowledged).
    public private(set) var configPersistFailures: UInt32 = 0

    // The three observers are host hooks (the simulation sets them; no board
    // code does): a board image (`P.imageRole` set) never calls them, so it
    // keeps no optional-closure call and release at their sites.
    /// Test hook (the deterministic simulation): sees every mesh action before it is carried out.
    public var actionObserver: ((MeshAction) -> Void)? = nil
    /// Sees every subscription event of this node's own subscriptions (`subscribe`).
    public var subscriptionObserver: ((PubSubEvent) -> Void)? = nil
    /// Test hook (the simulation's agreement check): a config version this node
    /// now runs (`committed: false`), or one its consensus state machine took (true).
    public var configObserver: ((_ version: UInt32, _ overlay: ConfigTree, _ committed: Bool) -> Void)? = nil
    /// While the net task runs: its tick's time, the start of a request's service time.
    var servingSinceUs: UInt64? = nil
    /// When the mesh-timer task wakes on its own (µs); 0 until its first tick.
    var meshTimerWakeUs: UInt64 = 0
    /// Set by the power task; runOnce refreshes the metrics outside the scheduler.
    var metricsDue = false
    /// Requests whose answer reads `scheduler` (metrics, tasks, status), served
    /// by runOnce after runReady for the same reason (NodeOps).
    var deferredServes = Table<DeferredServe>()  // Table: no Array code per type

    public static var datagramSource: SourceID { SourceID(0) }
    static var meshWake: SignalID { SignalID(0) }
    static var callDone: SignalID { SignalID(1) }

    public init(platform: P, config: NodeConfig) {
        self.platform = platform
        self.config = config
        bootUs = platform.nowUs()
        let epoch = platform.nextBootEpoch()
        var manager = config.settings.map { ConfigManager(local: $0) } ?? ConfigManager()
        let stored = platform.loadConfigRecord()
        configRestore = manager.restore(regionA: stored.a, regionB: stored.b)
        settings = manager
        metrics = MetricsRegistry(nowMs: bootUs / 1000,
                                  slaTargetMs: UInt32(clamping: manager.int("metrics.sla_target_ms", default: 100)))
        var meshConfig = config.mesh
        if meshConfig.rateLimit == nil {  // rate_limit.* of the config (20/s, burst 40 by default)
            meshConfig.rateLimit = RateLimiterConfig(config: manager.effective, sendersMax: meshConfig.peersMax)
        }
        mesh = MeshNode(config: meshConfig, nodeID: config.nodeID, name: config.name, epoch: epoch,
                        keys: Keyring(id: config.keyID, key: config.key), address: config.address,
                        services: config.services, rngSeed: config.rngSeed)
        var pubsubConfig = config.pubsub
        if !Self.usesSubscriptions {  // unused tables: the smallest the config allows
            pubsubConfig.publicationsMax = 1
            pubsubConfig.subscriptionsMax = 1
            pubsubConfig.eventQueueMax = 1
        }
        pubsub = PubSub(config: pubsubConfig)
        scheduler = Scheduler(config: config.scheduler, clockUs: { platform.nowUs() })
        latest = Table(repeating: nil, count: config.sensors.count)
        if Self.hasKernelState { kernelSlot = makeSlot(KernelState(epoch: epoch)) }
        if Self.hasStorageState { storageSlot = makeSlot(StorageState()) }
        if role == .storage {
            if let flash = platform.openLogFlash() { openLog(flash) }
            openConsensus()
        }
    }

    deinit {
        // Each role's slots (constant tests on the board).
        if Self.hasKernelState { freeSlot(&kernelSlot) }
        guard Self.hasStorageState else { return }
        freeSlot(&storageSlot)
        freeSlot(&logSlot)
        freeSlot(&raftSlot)
    }

    /// The role this node runs: the image's when the platform fixes it (then
    /// a constant, and the other roles' tasks and serving are not compiled in).
    @inline(__always) var role: NodeRole { P.imageRole ?? config.role }

    /// Subscriptions run where something publishes or subscribes: every Linux
    /// and simulated node, and the sensor image. The kernel and storage board
    /// images publish nothing and subscribe to nothing, so the constant false
    /// lets the linker drop PubSub from them (~12 KB of flash).
    @inline(__always) static var usesSubscriptions: Bool { P.imageRole == nil || P.imageRole == .sensor }

    /// Whether this node makes calls (and so sees them complete). The sensor
    /// image never calls: the RPC client is not linked into it, so no call can
    /// complete there, and the constant false drops the `completed` list's
    /// code (its array growth and removal, ~0.5 KB) from that image.
    @inline(__always) static var makesCalls: Bool { P.imageRole != .sensor }

    @inline(__always) func ms(_ us: UInt64) -> UInt64 { us / 1000 }
    public var nowMs: UInt64 { platform.nowUs() / 1000 }
    public var uptimeMs: UInt64 { (platform.nowUs() - bootUs) / 1000 }

    // MARK: - Lifecycle

    public func start() {
        mesh.start(nowMs: nowMs)
        if usesConsensus { raftSlot?.pointee.start(nowMs: nowMs) }
        pump { scheduler.raise($0) }
        spawnTasks()
        var l = TextLine("node ")
        l.append(bytes: config.name)
        l.append(" started as ")
        l.append(config.role.name)
        l.append(", epoch ")
        l.append(UInt64(mesh.epoch))
        l.append(", config version ")
        l.append(UInt64(settings.version))
        if role == .storage {
            if let log = logSlot {
                l.append(", log: ")
                l.append(UInt64(log.pointee.recordCount))
                l.append(" records in ")
                l.append(UInt64(log.pointee.segmentCount))
                l.append(" segments")
                if log.pointee.recovery.tornTailCut { l.append(", torn tail cut (a write cut by power loss: it was never acknowledged)") }
                if log.pointee.recovery.corruptionFound { l.append(", CORRUPT regions skipped: check the flash") }
            } else {
                l.append(", log UNAVAILABLE (flash could not be opened or read): appends are refused")
            }
            if let raft = raftSlot {
                l.append(", consensus: ")
                l.append(UInt64(raft.pointee.members.count))
                l.append(" replicas, term ")
                l.append(UInt64(raft.pointee.currentTerm))
                l.append(", ")
                l.append(UInt64(raft.pointee.log.count))
                l.append(" log entries")
            } else if let why = consensusHalt {
                l.append(", consensus OFF: ")
                l.append(why)
            }
        }
        switch configRestore {
        case .restored, .noImage: break
        case .corrupt: l.append(" (stored config record corrupt: ignored, defaults in force; the next update rewrites it)")
        }
        platform.log(l)
    }

    /// A `config_update` from a peer: applied all or nothing if newer than the
    /// version in force, persisted before the `ack` (an older or equal version is
    /// acknowledged without effect so its sender stops retrying; a refused one
    /// gets an `error` with status bad_arguments; one that cannot be persisted is
    /// undone and left unanswered, so the sender retries).
    func applyConfigUpdate(_ frame: Frame, nowMs: UInt64) {
        guard let update = try? ConfigUpdate.decode(frame.payload) else {
            mesh.send(.error, payload: ErrorReply(code: Status.badArguments.rawValue).encode(), to: frame.sender,
                      ref: frame.id, nowMs: nowMs)
            return
        }
        guard let outcome = adoptConfig(update) else { return }
        if outcome.acknowledge {
            mesh.send(.ack, payload: [], to: frame.sender, ref: frame.id, nowMs: nowMs)
        } else {
            mesh.send(.error, payload: ErrorReply(code: outcome.replyStatus.rawValue).encode(), to: frame.sender,
                      ref: frame.id, nowMs: nowMs)
        }
    }

    /// Applies an update to the config in force and persists the record; nil
    /// when the record could not be written (the update is then undone).
    func adoptConfig(_ update: ConfigUpdate) -> ConfigUpdateOutcome? {
        let before = settings
        let outcome = settings.apply(update)
        if outcome.persist {
            let stored = platform.loadConfigRecord()
            let onFlash = max(ConfigImage.sequence(stored.a) ?? 0, ConfigImage.sequence(stored.b) ?? 0)
            settings.raiseSequence(to: onFlash &+ 1)
        }
        if outcome.persist && !platform.storeConfigRecord(inPlace(&settings) { $0.image() }) {
            settings = before
            configPersistFailures &+= 1
            platform.log(TextLine("config update not applied: the config record could not be written (flash or state directory); the sender will retry"))
            return nil
        }
        if case .applied(let version, _) = outcome {
            if P.imageRole == nil { configObserver?(version, settings.remote, false) }
            var l = TextLine("config version ")
            l.append(UInt64(version))
            l.append(" applied")
            platform.log(l)
        }
        return outcome
    }

    /// Clean leave: peers drop this node at once instead of waiting for the timeout.
    public func stop() {
        mesh.leave(nowMs: nowMs)
        pump { _ in }
    }

    public func datagramsReady() { scheduler.markReadable(Self.datagramSource) }

    /// A call made outside any task (the simulation's extra clients); its
    /// result is seen by `actionObserver` as `.complete`.
    public func call(service name: [UInt8], version: SemVer, operation: Operation = .read, arguments: [UInt8],
                     deadlineMs: UInt32) -> CallID {
        let id = mesh.call(service: name, version: version, operation: operation, arguments: arguments,
                           deadlineMs: deadlineMs, nowMs: nowMs)
        pump { scheduler.raise($0) }
        return id
    }

    /// Subscribes this node to a service (outside any task: the simulation's
    /// subscribers); events reach `subscriptionObserver`.
    public func subscribe(service name: [UInt8], version: SemVer = SemVer(1, 0, 0), minIntervalMs: UInt32,
                          maxIntervalMs: UInt32, threshold: Double = 0, leaseMs: UInt32) -> SubscriptionID? {
        let id = pubsub.subscribe(service: name, version: version, minIntervalMs: minIntervalMs,
                                  maxIntervalMs: maxIntervalMs, threshold: threshold, leaseMs: leaseMs,
                                  nowMs: nowMs, mesh: &mesh)
        pump { scheduler.raise($0) }
        return id
    }

    /// Carries out what code outside the tasks queued on `mesh` (a ConfigPush
    /// driven by the simulation, the CLI's own state machines).
    public func flushMesh() { pump { scheduler.raise($0) } }

    public func unsubscribe(_ id: SubscriptionID) {
        pubsub.unsubscribe(id, nowMs: nowMs, mesh: &mesh)
        pump { scheduler.raise($0) }
    }

    /// Runs every ready task; returns when to call again (µs), nil if idle.
    @discardableResult
    public func runOnce() -> UInt64? {
        var next = scheduler.runReady(nowUs: platform.nowUs())
        if metricsDue {
            metricsDue = false
            refreshMetrics()
        }
        if !deferredServes.isEmpty { next = answerDeferredServes() }
        while let e = scheduler.popEvent() {
            schedulerEvents &+= 1
            platform.log(describe(e))
        }
        if scheduler.criticalTasksHealthy { platform.feedHardwareWatchdog() }
        return next
    }

    // MARK: - Tasks

    func spawnTasks() {
        // Task bodies reach the runtime unretained (Embedded Swift has no
        // `unowned`): the scheduler is owned by the runtime, so they never outlive it.
        let me = Unmanaged.passUnretained(self)
        do {
            try scheduler.spawn("net", options: TaskOptions(priority: TaskPriority.urgent, watchdogTimeoutUs: 5_000_000,
                                                             critical: true)) { ctx in
                me.takeUnretainedValue().netTick(&ctx)
            }
            try scheduler.spawn("mesh-timer", options: TaskOptions(priority: TaskPriority.urgent, watchdogTimeoutUs: 5_000_000,
                                                                    critical: true)) { ctx in
                me.takeUnretainedValue().meshTimerTick(&ctx)
            }
            switch role {
            case .sensor:
                try scheduler.spawn("sampler", options: TaskOptions(priority: TaskPriority.normal,
                                                                     watchdogTimeoutUs: 10_000_000)) { ctx in
                    me.takeUnretainedValue().samplerTick(&ctx)
                }
            case .kernel:
                try scheduler.spawn("weather", options: TaskOptions(priority: TaskPriority.normal,
                                                                     watchdogTimeoutUs: 60_000_000)) { ctx in
                    me.takeUnretainedValue().weatherTick(&ctx)
                }
                try scheduler.spawn("logship", options: TaskOptions(priority: TaskPriority.normal,
                                                                     watchdogTimeoutUs: 30_000_000)) { ctx in
                    me.takeUnretainedValue().logShipTick(&ctx)
                }
            case .storage, .client:
                break
            }
            try scheduler.spawn("power", options: TaskOptions(priority: TaskPriority.background,
                                                               rate: .periodic(hz: 1))) { ctx in
                me.takeUnretainedValue().powerTick(&ctx)
            }
        } catch {
            preconditionFailure("task table too small for the node's tasks: raise SchedulerConfig.taskCapacity")
        }
    }

    /// Datagrams per tick before the net task yields, so one flood cannot hold the CPU.
    static var datagramsPerTickMax: Int { 32 }

    func netTick(_ ctx: inout TaskContext) -> TaskStep {
        var n = 0
        servingSinceUs = ctx.nowUs
        defer { servingSinceUs = nil }
        while n < Self.datagramsPerTickMax, let d = platform.receive() {
            // The request is answered here, in this pass: handleDatagram emits
            // `.serve`, pump serves it and sends the response.
            mesh.handleDatagram(d.bytes, from: d.from, nowMs: ms(ctx.nowUs))
            pump(nowMs: ms(ctx.nowUs)) { ctx.signal($0) }
            n += 1
        }
        if n == Self.datagramsPerTickMax { return .yield }
        // Wake at least every second: the watchdog sees progress on a quiet network too.
        return .waitReadable(Self.datagramSource, untilUs: ctx.nowUs + 1_000_000)
    }

    func meshTimerTick(_ ctx: inout TaskContext) -> TaskStep {
        let now = ms(ctx.nowUs)
        if let t = mesh.nextTimeoutMsInPlace(), t <= now {
            mesh.handleTimeout(nowMs: now)
            pump { ctx.signal($0) }
        }
        if Self.usesSubscriptions, let t = pubsub.nextTimeoutMsInPlace(), t <= now {
            pubsub.handleTimeout(nowMs: now, mesh: &mesh)
            pump { ctx.signal($0) }
        }
        if usesConsensus, let t = consensusNextTimeoutMs, t <= now {
            consensusTimeout(nowMs: now)
            pump { ctx.signal($0) }
        }
        let cap = ctx.nowUs + 1_000_000
        var next = mesh.nextTimeoutMsInPlace().map { $0 * 1000 } ?? cap
        if Self.usesSubscriptions, let t = pubsub.nextTimeoutMsInPlace() { next = min(next, t * 1000) }
        if usesConsensus, let t = consensusNextTimeoutMs { next = min(next, t * 1000) }
        meshTimerWakeUs = min(next, cap)
        return .waitSignal(Self.meshWake, untilUs: meshTimerWakeUs)
    }

    func samplerTick(_ ctx: inout TaskContext) -> TaskStep {
        let now = ms(ctx.nowUs)
        for i in config.sensors.indices {
            let s = config.sensors[i]
            if let raw = platform.sample(s.kind, nowMs: now) {
                latest[i] = SensorSample(value: raw + s.calibrationOffset, atMs: now)
                samplesTaken &+= 1
                pubsub.publish(service: s.name, value: raw + s.calibrationOffset, unit: s.kind.unit, nowMs: now,
                               mesh: &mesh)
            }
        }
        pump { ctx.signal($0) }
        return .sleep(untilUs: ctx.nowUs + UInt64(config.sampleIntervalMs) * 1000)
    }

    func powerTick(_ ctx: inout TaskContext) -> TaskStep {
        let now = ms(ctx.nowUs)
        // The seeds' PowerManager: activity decays by 5 % a second after 10 s idle.
        if now > lastActivityMs + 10_000 { activity *= 0.95 }
        mesh.setLocalMetrics(freeMemoryBytes: platform.freeMemoryBytes(), activity: UInt8(max(0, min(100, activity))),
                             loadPercent: 0)
        // Not refreshMetrics() here: it reads `scheduler`, which runReady is
        // modifying while this task runs (an exclusivity violation, a trap).
        metricsDue = true
        return .yield
    }

    func noteActivity(_ nowMs: UInt64) {
        lastActivityMs = nowMs
        activity = min(100, activity + 10)
    }

    // MARK: - Kernel: the weather station

    func weatherTick(_ ctx: inout TaskContext) -> TaskStep {
        let now = ms(ctx.nowUs)
        let k = kernelSlot!  // made in init for this role
        if k.pointee.calls.isEmpty {
            for svc in config.weatherServices {
                k.pointee.calls.append(mesh.call(service: svc.name, version: svc.version, deadlineMs: config.readDeadlineMs,
                                                 nowMs: now))
            }
            k.pointee.results = Table(repeating: Reading(), count: k.pointee.calls.count)
            k.pointee.deadlineUs = ctx.nowUs + UInt64(config.readDeadlineMs) * 1000
            pump { ctx.signal($0) }
        }
        claimCompletions(k.pointee.calls, into: &k.pointee.results)
        // The mesh completes every call by its deadline; the slack covers timer granularity.
        var waiting = false
        for i in k.pointee.results.indices where !k.pointee.results[i].done { waiting = true }
        if waiting && ctx.nowUs < k.pointee.deadlineUs + 500_000 {
            return .waitSignal(Self.callDone, untilUs: k.pointee.deadlineUs + 500_000)
        }
        var r = WeatherReadings()
        for i in k.pointee.calls.indices {
            let c = k.pointee.results[i]
            guard c.hasValue else { continue }
            let age: UInt32? = c.isStale ? c.staleAgeMs : nil
            switch i {
            case 0: r.temperatureC = c.value; r.temperatureAgeMs = age
            case 1: r.humidityPercent = c.value; r.humidityAgeMs = age
            default: r.lightLux = c.value; r.lightAgeMs = age
            }
        }
        k.pointee.station.record(r)
        k.pointee.lastReadings = r
        var w = CBORWriter(capacity: 32)
        w.mapHeader(count: (r.temperatureC == nil ? 0 : 1) + (r.humidityPercent == nil ? 0 : 1) + (r.lightLux == nil ? 0 : 1))
        if let t = r.temperatureC { w.unsigned(1); w.double(t) }
        if let h = r.humidityPercent { w.unsigned(2); w.double(h) }
        if let l = r.lightLux { w.unsigned(3); w.double(l) }
        k.pointee.producer.add(kind: Self.weatherRecordKind, payload: w.bytes, nowMs: now)
        ctx.signal(Self.callDone)  // wakes the log shipper
        platform.show(inPlace(&k.pointee.station) { $0.lines(r) })
        k.pointee.displayUpdates &+= 1
        k.pointee.calls.removeAll()
        noteActivity(now)
        return .sleep(untilUs: ctx.nowUs + UInt64(config.weatherIntervalMs) * 1000)
    }

    /// Ships the producer's batches to the storage node and takes their answers.
    func logShipTick(_ ctx: inout TaskContext) -> TaskStep {
        let now = ms(ctx.nowUs)
        let k = kernelSlot!  // made in init for this role
        if let id = k.pointee.producer.inFlight, let result = takeCompleted(id) {
            k.pointee.producer.complete(id, result, nowMs: now)
        }
        if k.pointee.producer.poll(nowMs: now, mesh: &mesh) != nil { pump { ctx.signal($0) } }
        var next = ctx.nowUs + 1_000_000
        if let t = k.pointee.producer.nextTimeoutMs { next = min(next, max(t * 1000, ctx.nowUs + 1)) }
        return .waitSignal(Self.callDone, untilUs: next)
    }

    /// Moves finished calls named in `ids` into `results` (same order).
    func claimCompletions(_ ids: Table<CallID>, into results: inout Table<Reading>) {
        for k in ids.indices where !results[k].done {
            guard let result = takeCompleted(ids[k]) else { continue }
            // Built here and stored once (each field stored in the table was a uniqueness check).
            var c = Reading()
            c.done = true
            if case .value(let v) = result, let value = v.response.value {
                c.hasValue = true
                c.value = value
                if let age = v.staleAgeMs { c.isStale = true; c.staleAgeMs = age }
            }
            results[k] = c
        }
    }

    /// Removes the completion of `id` from `completed` and returns its result
    /// (nil: not completed yet). The kernel's two readers share it.
    @inline(never)
    func takeCompleted(_ id: CallID) -> CallResult? {
        guard let i = completed.firstIndex(where: { $0.id == id }) else { return nil }
        return completed.remove(at: i).result
    }

    // MARK: - Serving

    func serve(_ request: Request, from: UInt32, nowMs: UInt64) -> Response {
        requestsServed &+= 1
        noteActivity(nowMs)
        if request.service == 0 { return serveNodeOperation(request, from: from, nowMs: nowMs) }
        if request.operation == .status { return statusResponse(nowMs: nowMs) }
        switch role {
        case .sensor:
            guard let i = config.sensors.firstIndex(where: { serviceID($0.name) == request.service }) else {
                return Response(status: Status.unknownService.rawValue)
            }
            guard request.operation == .read else { return Response(status: Status.unknownOperation.rawValue) }
            guard let sample = latest[i] else { return Response(status: Status.unavailable.rawValue) }
            return Response(value: sample.value, unit: config.sensors[i].kind.unit,
                            ageMs: UInt32(min(nowMs - sample.atMs, UInt64(UInt32.max))))
        case .storage:
            if request.service == Self.configServiceID { return serveConfig(request) }
            guard request.operation == .logAppend || request.operation == .logQuery else {
                return Response(status: Status.unknownOperation.rawValue)
            }
            guard logUsable(nowMs: nowMs) else { return Response(status: Status.unavailable.rawValue) }
            return LogService.serve(request, from: from, nowMs: nowMs, log: &logSlot!.pointee)
        case .kernel, .client:
            return Response(status: Status.unknownService.rawValue)
        }
    }

    /// `status`: key 1 uptime s, 2 role, 3 tasks, 4 requests served, 5 samples taken.
    func statusResponse(nowMs: UInt64) -> Response {
        var w = CBORWriter()
        w.mapHeader(count: 5)
        w.unsigned(1); w.unsigned(uptimeMs / 1000)
        w.unsigned(2); w.unsigned(UInt64(config.role.rawValue))
        w.unsigned(3); w.unsigned(UInt64(scheduler.taskCount))
        w.unsigned(4); w.unsigned(requestsServed)
        w.unsigned(5); w.unsigned(samplesTaken)
        return Response(result: w.bytes)
    }

    // MARK: - Actions

    /// Carries out every action the mesh produced. `signal` raises a scheduler
    /// signal: through the TaskContext inside a task, on the scheduler outside.
    /// `nowMs`: the caller's time if it has one (a task's tick), else the clock's.
    func pump(nowMs callerNowMs: UInt64? = nil, _ signal: (SignalID) -> Void) {
        if carryOutActions(nowMs: callerNowMs ?? nowMs) { signal(Self.callDone) }
        // The timer task runs again only if the mesh's or the subscriptions'
        // next timer moved before its wake-up (a new call, a retransmission, a
        // lease), not after every datagram.
        let pubsubMs = Self.usesSubscriptions ? pubsub.nextTimeoutMsInPlace() ?? UInt64.max : UInt64.max
        let consensusMs = usesConsensus ? consensusNextTimeoutMs ?? UInt64.max : UInt64.max
        let nextTimerMs = min(mesh.nextTimeoutMsInPlace() ?? UInt64.max, min(pubsubMs, consensusMs))
        if nextTimerMs != UInt64.max && nextTimerMs * 1000 < meshTimerWakeUs { signal(Self.meshWake) }
    }

    /// pump's work, apart from the closure: pump is specialised per closure,
    /// and this loop (~0.9 KB on the board) must exist only once. True when a call completed.
    @inline(never)
    func carryOutActions(nowMs now: UInt64) -> Bool {
        var callsDone = false
        while let action = mesh.pollAction() {
            if P.imageRole == nil { actionObserver?(action) }
            switch action {
            case .send(let to, let bytes):
                platform.send(bytes, to: to)
            case .broadcast(let bytes):
                platform.broadcast(bytes)
            case .serve(let handle, let request, let from):
                serveAndRecord(handle, request, from: from, nowMs: now)
            case .complete(let id, let result):
                guard Self.makesCalls else { break }
                if usesConsensus && replicationCallDone(id, result, nowMs: now) { break }
                if completed.count == Self.completedMax { completed.removeFirst() }
                completed.append((id, result))
                callsDone = true
            case .deliver(let frame):
                if frame.type == .configUpdate {
                    applyConfigUpdate(frame, nowMs: now)
                } else if usesConsensus && consensusDeliver(frame, nowMs: now) {
                    break
                } else if Self.usesSubscriptions {
                    pubsub.handle(frame, nowMs: now, mesh: &mesh)
                }
            case .event(let e):
                platform.log(describe(e))
                if Self.usesSubscriptions { pubsub.handleMeshEvent(e, nowMs: now, mesh: &mesh) }
                if usesConsensus { consensusMeshEvent(e) }
            }
        }
        if Self.usesSubscriptions {
            while let e = pubsub.pollEvent() { if P.imageRole == nil { subscriptionObserver?(e) } }
        }
        return callsDone
    }
}
