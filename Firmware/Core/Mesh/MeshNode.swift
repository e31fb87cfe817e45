// The mesh node: discovery, failure detection, RPC with failover, circuit
// breakers, relaying. A deterministic state machine in the style of quinn-proto:
// no I/O, no clock, no system randomness. Inputs are `start`, `handleDatagram`,
// `handleTimeout`, `call`, `respond`, `leave`, each with the current time;
// outputs are drained with `pollAction()`; `nextTimeoutMs` says when to call
// `handleTimeout` next (timers are data: the earliest deadline of every peer,
// service instance, breaker and call, not a periodic sweep).
//
// Split by concern over several files: MeshNode+Receive (datagram intake and
// dispatch), +Discovery (announce/query/heartbeat, the registry), +Health
// (suspect/dead, probes, relays), +Client (calls, retransmission, failover,
// breakers, stale tier), +Server (serving, dedup).

public struct MeshNode {
    // MARK: Identity and configuration

    public let config: MeshConfig
    public let nodeID: UInt32
    public let name: [UInt8]
    public let address: NodeAddress
    public internal(set) var keys: Keyring
    /// This node's own services, as announced.
    public internal(set) var services: [ServiceDescriptor]
    /// Raised when a peer probes us as suspect (SWIM refutation); carried in heartbeats.
    public internal(set) var incarnation: UInt32 = 0
    public internal(set) var counters = MeshCounters()

    // MARK: State

    enum Lifecycle: Equatable { case created, running, left }

    // Peer and Instance hold only scalars too (a peer's name lives in
    // peerNames, an instance's descriptor in instanceDescriptors, same index):
    // see Call below.
    //
    // Every table entry ends with a field as wide as its alignment (a
    // UInt64 here), so its size is a multiple of its alignment. When it is
    // not (an optional's tag byte last), Embedded Swift on armv6m reads and
    // writes every field of an array element byte by byte: 8 loads and 6
    // shifts/adds for a UInt32 instead of one load.
    struct Peer {
        var nodeID: UInt32
        var address: NodeAddress?
        var state: PeerState = .alive
        var epoch: UInt32
        var incarnation: UInt32 = 0
        var heardDirectMs: UInt64?
        var relayVia: UInt32?
        var nextRelayProbeAtMs: UInt64 = 0
        var heartbeat: Heartbeat?
        /// Digest of the service list last announced by it (nil: none seen since it (re)joined).
        var announcedDigest: UInt16?
        var lastQueryMs: UInt64?
        /// Id of its `leave`: older frames of that epoch arriving late do not revive it.
        var leaveID: MessageID?
        /// While suspect: when the probes are sent a second time (one lost
        /// round must not evict a healthy node at 10 % loss).
        var reprobeAtMs: UInt64?
        var lastHeardMs: UInt64  // last: see above
    }

    struct Instance {
        var node: UInt32
        var serviceID: UInt32
        var confirmedMs: UInt64
        var breaker = CircuitBreaker()
    }

    // Call and Attempt hold only scalars, so reading one field of calls[i]
    // is a load, not a copy of the record (on Embedded -Osize a record with
    // references is copied whole, with retains, into a new stack slot at
    // every access). Their names, arguments and descriptors live in parallel
    // arrays, same index; the nodes they tried in `triedNodes`.
    struct Attempt {
        var node: UInt32
        var serviceID: UInt32
        var isLocal: Bool
        /// Id of the first transmission: the `ref` of retransmissions and answers.
        var callMessageID: MessageID
        var localHandle: ServeHandle?
        var transmissions: Int
        var timeoutMs: UInt64
        /// Next retransmission (or giving up on the instance); nil: wait for the deadline.
        var nextEventAtMs: UInt64?
        /// The server said it has the request (an `ack` to a retransmission).
        var acked = false
        /// This attempt is its half-open breaker's trial call.
        var trial: Bool
    }

    struct Call {
        var id: CallID
        var serviceID: UInt32
        var version: SemVer
        var operation: Operation
        /// A read without arguments: may fall back on the last known value.
        var readsValue: Bool
        var attempt: Attempt?
        var lastError: CallError?
        var failovers: UInt8 = 0
        /// Set for a node-targeted call (service 0 on this node only; MeshNode+NodeCall).
        var targetNode: UInt32? = nil
        var deadlineAtMs: UInt64  // last: see Peer
    }

    /// A node a call has tried (never tried twice): one table for every call.
    struct TriedNode {
        var call: CallID
        var node: UInt32
    }

    struct ServeEntry {
        var handle: ServeHandle
        var client: UInt32
        var callMessageID: MessageID
        var replyAddress: NodeAddress
        var relayed: Bool
        /// nil while the application works on it.
        var answerType: MessageType?
        /// Set when the caller is this node itself (no network, no dedup).
        var localCall: CallID?
        /// Creation, then answer time: answers are kept dedupLifetimeMs from it.
        var stampMs: UInt64  // last: see Peer
    }

    struct Probe {
        var via: UInt32?
        var target: UInt32
        var messageID: MessageID  // last: see Peer
    }

    /// The stale tier's last value of a service: its scalars (in a Table,
    /// no per-type Array code); the descriptor and the response's bytes are in
    /// `staleDescriptors` and `staleResults`, same index.
    struct StaleValue {
        var serviceID: UInt32
        var node: UInt32
        /// The response's fields but `result`.
        var ageMs: UInt32
        var status: UInt8
        var unit: Unit
        var value: Double?
        var receivedMs: UInt64  // last: see Peer
    }

    /// When `key` (a source address, a sought service) last got through a
    /// rate limit (`admit`): one type for both tables, one copy of the code.
    struct Stamp {
        var key: UInt64
        var lastMs: UInt64
    }

    var lifecycle: Lifecycle = .created
    var ids: MessageIDGenerator
    var replay: ReplayWindow
    var rateLimiter: RateLimiter?
    var rng: SeededRandom
    var startMs: UInt64 = 0
    var localDigest: UInt16
    var localFreeMemoryBytes: UInt32 = 0
    var localActivity: UInt8 = 0
    var localLoadPercent: UInt8 = 0
    var nextHeartbeatAtMs: UInt64 = 0
    var nextAnnounceAtMs: UInt64 = 0
    var peerTable: Table<Peer>
    /// Parallel to `peerTable`: each peer's name from its announce (empty until then).
    var peerNames: [[UInt8]]
    var instanceTable: Table<Instance>
    /// Parallel to `instanceTable`: each instance as announced.
    var instanceDescriptors: [ServiceDescriptor]
    var calls: Table<Call>
    // Parallel to `calls` (element types whose Array code the node has anyway;
    // one array of a struct of them had its own, ~0.6 KB).
    var callNames: [[UInt8]]
    var callArguments: [[UInt8]]
    /// The instance of the current attempt, as it was announced; before the
    /// first one, `ServiceDescriptor.blank` (an empty name: none).
    var callDescriptors: [ServiceDescriptor]
    var triedNodes: Table<TriedNode>
    var serveTable: Table<ServeEntry>
    /// Parallel to `serveTable`: the answer's payload (empty until answered),
    /// apart so that a ServeEntry holds only scalars.
    var servePayloads: [[UInt8]]
    var probes: Table<Probe>
    var staleValues: Table<StaleValue>
    /// Parallel to `staleValues` (element types whose Array code the node has anyway).
    var staleDescriptors: [ServiceDescriptor]
    var staleResults: [[UInt8]]
    /// Sources sent a version error (answerUnsupportedVersion), by address.
    var versionReplies: Table<Stamp>
    /// Services queried for waiting calls (seek), by service id.
    var sought: Table<Stamp>
    var actions: DrainQueue<MeshAction>
    /// Latest time seen: an earlier `nowMs` from a careless caller is taken as
    /// this one, so no time difference can go negative.
    var lastNowMs: UInt64 = 0
    /// The client half, set by the first call (MeshNode+Client, `ClientInput`):
    /// nil in a node that never calls, whose image can then leave it out.
    var client: ((inout MeshNode, ClientInput, UInt64) -> Void)? = nil
    var nextCallRaw: UInt32 = 1
    var nextServeRaw: UInt32 = 1

    // The public init is in an extension below (it delegates to the memberwise one).

    static func checkServices(_ services: [ServiceDescriptor]) {
        precondition(services.count <= servicesPerNodeMax, "a node announces at most servicesPerNodeMax services")
        for i in services.indices {
            for j in services.indices where j > i {
                precondition(services[i].name != services[j].name, "service names must be unique on a node")
            }
        }
    }

    // MARK: Lifecycle

    mutating func advanceClock(_ nowMs: UInt64) -> UInt64 {
        lastNowMs = max(lastNowMs, nowMs)
        return lastNowMs
    }

    /// Announces this node's services, asks every node for theirs, arms the timers.
    public mutating func start(nowMs: UInt64) {
        precondition(lifecycle == .created, "start once")
        let nowMs = advanceClock(nowMs)
        lifecycle = .running
        startMs = nowMs
        broadcastAnnounce(nowMs: nowMs)
        emitBroadcast(frame(.query, Query().encode(), nowMs: nowMs))
        counters.queriesSent &+= 1
        nextHeartbeatAtMs = nowMs + jittered(config.heartbeatIntervalMs)
        nextAnnounceAtMs = nowMs + jittered(config.announceIntervalMs)
    }

    /// Clean leave: broadcasts `leave` (peers drop our services at once), fails
    /// the calls in flight with `.stopped`, and stops all timers.
    public mutating func leave(nowMs: UInt64, reason: UInt8 = 0) {
        guard lifecycle == .running else { return }
        let nowMs = advanceClock(nowMs)
        emitBroadcast(frame(.leave, Leave(reason: reason).encode(), priority: .high, nowMs: nowMs))
        toClient(.stop, nowMs: nowMs)
        serveTable.removeAll()
        servePayloads.removeAll(keepingCapacity: true)
        probes.removeAll()
        lifecycle = .left
    }

    public var isRunning: Bool { lifecycle == .running }

    /// Replaces this node's services (registration / deregistration) and announces at once.
    public mutating func setServices(_ newServices: [ServiceDescriptor], nowMs: UInt64) {
        MeshNode.checkServices(newServices)
        services = newServices
        localDigest = servicesDigest(newServices)
        guard lifecycle == .running else { return }
        let nowMs = advanceClock(nowMs)
        broadcastAnnounce(nowMs: nowMs)
        toClient(.instancesChanged, nowMs: nowMs)
    }

    /// Figures carried by the next heartbeats.
    public mutating func setLocalMetrics(freeMemoryBytes: UInt32, activity: UInt8, loadPercent: UInt8) {
        localFreeMemoryBytes = freeMemoryBytes
        localActivity = min(100, activity)
        localLoadPercent = min(100, loadPercent)
    }

    /// Key rotation (see Keyring): the new ring applies to the next frame.
    public mutating func setKeys(_ newKeys: Keyring) { keys = newKeys }

    /// Stored, not computed from `ids`: a getter on a node held in a class
    /// (NodeRuntime.mesh) copies the whole node first on the board.
    public let epoch: UInt32

    // MARK: Actions

    /// The next thing to do, in order; nil when there is nothing left.
    public mutating func pollAction() -> MeshAction? { actions.pop() }

    public var pendingActionCount: Int { actions.count }

    @inline(never)
    mutating func emit(_ action: MeshAction) {
        switch action {
        case .complete, .serve:
            break  // bounded by callsInFlightMax / dedupCacheMax; never dropped
        default:
            if pendingActionCount >= config.actionQueueMax {
                counters.actionsDropped &+= 1
                return
            }
        }
        actions.append(action)
    }

    @inline(never)
    mutating func emit(_ event: MeshEvent) { emit(.event(event)) }

    // MARK: Timers

    /// When `handleTimeout` must next be called; nil when nothing is armed
    /// (before start, after leave).
    public var nextTimeoutMs: UInt64? {
        guard lifecycle == .running else { return nil }
        var t = min(nextHeartbeatAtMs, nextAnnounceAtMs)
        let suspectAfter = UInt64(config.suspectAfterMs), deadAfter = UInt64(config.deadAfterMs)
        for pi in peerTable.indices {
            t = min(t, peerTable[pi].nextDueMs(suspectAfterMs: suspectAfter, deadAfterMs: deadAfter))
        }
        let ttl = UInt64(config.serviceTTLMs)
        for ii in instanceTable.indices { t = min(t, instanceTable[ii].nextDueMs(ttlMs: ttl)) }
        for call in calls {
            t = min(t, call.deadlineAtMs)
            if let e = call.attempt?.nextEventAtMs { t = min(t, e) }
        }
        return t
    }

    /// `nextTimeoutMs` for a node held in a class (NodeRuntime.mesh): a mutating
    /// call reads it in place, where the getter copies the whole node (every
    /// table retained and released) on the board, twice per timer tick.
    public mutating func nextTimeoutMsInPlace() -> UInt64? { nextTimeoutMs }

    /// Runs every timer that is due at `nowMs` (call it when nowMs >= nextTimeoutMs;
    /// calling it early is harmless).
    public mutating func handleTimeout(nowMs: UInt64) {
        guard lifecycle == .running else { return }
        let nowMs = advanceClock(nowMs)
        if nowMs >= nextHeartbeatAtMs {
            sendHeartbeat(nowMs: nowMs)
            nextHeartbeatAtMs = nowMs + jittered(config.heartbeatIntervalMs)
        }
        if nowMs >= nextAnnounceAtMs {
            broadcastAnnounce(nowMs: nowMs)
            nextAnnounceAtMs = nowMs + jittered(config.announceIntervalMs)
        }
        checkPeerTimers(nowMs: nowMs)
        checkInstanceTimers(nowMs: nowMs)
        toClient(.timers, nowMs: nowMs)
    }

    /// An interval with the configured +/- jitter.
    mutating func jittered(_ intervalMs: UInt32) -> UInt64 {
        let base = UInt64(intervalMs)
        let spread = base * UInt64(config.heartbeatJitterPercent) / 100
        return rng.between(base - spread, base + spread)
    }

    // MARK: Sending

    /// Encodes and authenticates one frame from this node with a fresh id (or `id`).
    @inline(never)
    mutating func frame(_ type: MessageType, _ payload: [UInt8], id: MessageID? = nil, ref: MessageID? = nil,
                        flags: FrameFlags = [], priority: Priority = .normal, nowMs: UInt64) -> [UInt8] {
        let f = Frame(type: type, sender: nodeID, id: id ?? ids.make(), ref: ref,
                      timestampMs: UInt32(truncatingIfNeeded: nowMs), payload: payload,
                      priority: priority, flags: flags, keyID: keys.sendKeyID)
        // Envelopes carry an already compact frame: no point deflating them.
        return f.encode(key: keys.sendKey, compress: type != .relay)
    }

    @inline(never)
    mutating func emitSend(_ to: NodeAddress, _ bytes: [UInt8]) {
        counters.framesSent &+= 1
        emit(.send(to, bytes))
    }

    @inline(never)
    mutating func emitBroadcast(_ bytes: [UInt8]) {
        counters.broadcastsSent &+= 1
        emit(.broadcast(bytes))
    }

    /// Sends to a peer along its current route: directly, or wrapped in a
    /// `relay` envelope to the peer that reaches it. False when there is no route.
    @inline(never)
    @discardableResult
    mutating func sendToNode(_ node: UInt32, _ type: MessageType, _ payload: [UInt8], id: MessageID? = nil,
                             ref: MessageID? = nil, flags: FrameFlags = [], priority: Priority = .normal,
                             nowMs: UInt64) -> Bool {
        guard let pi = peerIndex(node) else { return false }
        let peer = peerTable[pi]
        if let via = peer.relayVia, let ri = peerIndex(via), let relayAddress = peerTable[ri].address {
            return sendRelayed(destination: node, relayAddress: relayAddress, type, payload, id: id, ref: ref,
                               flags: flags, priority: priority, nowMs: nowMs)
        }
        guard let to = peer.address else { return false }
        emitSend(to, frame(type, payload, id: id, ref: ref, flags: flags, priority: priority, nowMs: nowMs))
        return true
    }

    /// The inner frame gets the `relayed` flag (covered by its tag) and goes to
    /// `relayAddress` inside a type-11 envelope naming `destination`.
    @inline(never)
    @discardableResult
    mutating func sendRelayed(destination: UInt32, relayAddress: NodeAddress, _ type: MessageType, _ payload: [UInt8],
                              id: MessageID? = nil, ref: MessageID? = nil, flags: FrameFlags = [],
                              priority: Priority = .normal, nowMs: UInt64) -> Bool {
        let inner = frame(type, payload, id: id, ref: ref, flags: flags.union(.relayed), priority: priority, nowMs: nowMs)
        guard inner.count <= WireLimits.frameBytesMax - MeshConfig.relayOverheadBytes else {
            counters.relaysDropped &+= 1
            return false
        }
        let envelope = RelayEnvelope(destination: destination, frame: inner).encode()
        emitSend(relayAddress, frame(.relay, envelope, priority: priority, nowMs: nowMs))
        return true
    }

    /// Answers a frame along the path it came by (through the same relay if it was relayed).
    @inline(never)
    mutating func reply(to client: UInt32, at replyAddress: NodeAddress, relayed: Bool, _ type: MessageType,
                        _ payload: [UInt8], ref: MessageID?, nowMs: UInt64) {
        if relayed {
            sendRelayed(destination: client, relayAddress: replyAddress, type, payload, ref: ref, nowMs: nowMs)
        } else {
            emitSend(replyAddress, frame(type, payload, ref: ref, nowMs: nowMs))
        }
    }

    /// Sends a message the mesh layer does not generate itself (config_update,
    /// metrics, application types 128-255, or the `ack` of a delivered
    /// config_update: pass its id as `ref`) to one peer along its route, or to
    /// every node when `node` is nil. False when the peer has no route or the
    /// node is not running; traps on a payload over Frame.payloadBytesMaxUncompressed
    /// (a caller bug, as in Frame.encode).
    @discardableResult
    public mutating func send(_ type: MessageType, payload: [UInt8], to node: UInt32?, ref: MessageID? = nil,
                              flags: FrameFlags = [], priority: Priority = .normal, nowMs: UInt64) -> Bool {
        precondition(payload.count <= Frame.payloadBytesMaxUncompressed, "payload over the frame limit")
        guard lifecycle == .running else { return false }
        let nowMs = advanceClock(nowMs)
        guard let node else {
            emitBroadcast(frame(type, payload, ref: ref, flags: flags, priority: priority, nowMs: nowMs))
            return true
        }
        return sendToNode(node, type, payload, ref: ref, flags: flags, priority: priority, nowMs: nowMs)
    }

    /// Like `send` to one node, with a fresh message id that is returned (nil:
    /// no route, or not running): the `ref` of the peer's `ack` or `error`,
    /// which reach the application as `.deliver`. A resend must use a new id
    /// (the same id again is a replay to the receiver).
    public mutating func sendTracked(_ type: MessageType, payload: [UInt8], to node: UInt32,
                                     nowMs: UInt64) -> MessageID? {
        precondition(payload.count <= Frame.payloadBytesMaxUncompressed, "payload over the frame limit")
        guard lifecycle == .running else { return nil }
        let nowMs = advanceClock(nowMs)
        let id = ids.make()
        return sendToNode(node, type, payload, id: id, flags: [.ackRequested], nowMs: nowMs) ? id : nil
    }

    /// Rate limit per key over a fixed table (LRU): true, with the time
    /// noted, when `key` has not got through within `intervalMs`. A new key
    /// in a full table takes the oldest entry's place; with `evictOnlyExpired`,
    /// only if that entry too is older than the interval (else false).
    static func admit(_ table: inout Table<Stamp>, key: UInt64, capacity: Int, intervalMs: UInt64,
                      evictOnlyExpired: Bool, nowMs: UInt64) -> Bool {
        var i = 0
        while i < table.count && table[i].key != key { i += 1 }
        if i < table.count {
            guard nowMs - table[i].lastMs >= intervalMs else { return false }
        } else if table.count < capacity {
            table.append(Stamp(key: key, lastMs: nowMs))
            return true
        } else {
            i = 0
            for j in table.indices where table[j].lastMs < table[i].lastMs { i = j }
            guard !evictOnlyExpired || nowMs - table[i].lastMs >= intervalMs else { return false }
            table[i].key = key
        }
        table[i].lastMs = nowMs
        return true
    }

    // MARK: Lookups

    func peerIndex(_ node: UInt32) -> Int? { peerTable.firstIndex(where: { $0.nodeID == node }) }

    func peerIndex(address: NodeAddress) -> Int? {
        peerTable.firstIndex(where: { $0.address == address && ($0.state == .alive || $0.state == .suspect) })
    }

    // Out of line, as `callIndex` and `attemptIndex`: inlined, each search was copied into every caller.
    @inline(never)
    func instanceIndex(node: UInt32, serviceID: UInt32) -> Int? {
        instanceTable.firstIndex(where: { $0.node == node && $0.serviceID == serviceID })
    }

    @inline(never)
    func callIndex(_ id: CallID) -> Int? { calls.firstIndex(where: { $0.id == id }) }

    /// Drops the probes of `node` (with `alsoVia`, also those relayed through
    /// it), keeping the order of the rest. One loop rather than
    /// `removeAll(where:)`, which the board build specialises per closure (~0.4 KB each).
    @inline(never)
    mutating func dropProbes(target node: UInt32, alsoVia: Bool = false) {
        var i = 0
        while i < probes.count {
            if probes[i].target == node || (alsoVia && probes[i].via == node) {
                probes.remove(at: i)
            } else {
                i += 1
            }
        }
    }

    // MARK: Views (CLI, tests, simulator)

    public var peers: [PeerInfo] {
        var out: [PeerInfo] = []
        out.reserveCapacity(peerTable.count)
        for i in peerTable.indices { out.append(info(i)) }
        return out
    }

    public func peer(_ node: UInt32) -> PeerInfo? {
        guard let i = peerIndex(node) else { return nil }
        return info(i)
    }

    func info(_ i: Int) -> PeerInfo {
        let p = peerTable[i]
        var count = 0
        for inst in instanceTable where inst.node == p.nodeID { count += 1 }
        return PeerInfo(nodeID: p.nodeID, name: peerNames[i], address: p.address, state: p.state, epoch: p.epoch,
                        incarnation: p.incarnation, lastHeardMs: p.lastHeardMs, relayVia: p.relayVia,
                        heartbeat: p.heartbeat, serviceCount: count)
    }

    /// Every service instance known, this node's own first.
    public var registry: [ServiceInstanceInfo] {
        var out: [ServiceInstanceInfo] = []
        out.reserveCapacity(services.count + instanceTable.count)
        for s in services {
            out.append(ServiceInstanceInfo(node: nodeID, descriptor: s, serviceID: serviceID(s.name), isLocal: true,
                                           confirmedMs: startMs, breaker: .closed, consecutiveFailures: 0))
        }
        for i in instanceTable.indices {
            let inst = instanceTable[i]
            out.append(ServiceInstanceInfo(node: inst.node, descriptor: instanceDescriptors[i], serviceID: inst.serviceID,
                                           isLocal: false, confirmedMs: inst.confirmedMs, breaker: inst.breaker.state,
                                           consecutiveFailures: inst.breaker.consecutiveFailures))
        }
        return out
    }

    /// The instances of one service (any version).
    public func instances(of serviceName: [UInt8]) -> [ServiceInstanceInfo] {
        var out: [ServiceInstanceInfo] = []
        for i in registry where i.descriptor.name == serviceName { out.append(i) }
        return out
    }

    public var callsInFlight: Int { calls.count }
    /// Requests being served or remembered for retransmissions.
    public var serveEntries: Int { serveTable.count }
}

extension MeshNode {
    /// `epoch` is this boot's persisted boot counter (see PROTOCOL.md, "Message
    /// id"); `rngSeed` seeds every random choice the node makes.
    ///
    /// In an extension, so that it can delegate to the memberwise initialiser:
    /// a node built field by field in `self` was then copied out whole (a
    /// retain and a release of every reference it holds: 1.1 KB of code on
    /// the board), where the memberwise initialiser's value is moved out.
    public init(config: MeshConfig = MeshConfig(), nodeID: UInt32, name: [UInt8], epoch: UInt32, keys: Keyring,
                address: NodeAddress, services: [ServiceDescriptor], rngSeed: UInt64) {
        config.check()
        WireLimits.check()
        precondition(name.count <= nameBytesMax)
        MeshNode.checkServices(services)
        // Everything allocated up front: no table grows after start. Each
        // table is assigned once (reserveCapacity on a stored table inlines
        // its uniqueness check and growth at every call: ~90 bytes each).
        let serveMax = config.dedupCacheMax + config.callsInFlightMax
        self.init(config: config, nodeID: nodeID, name: name, address: address, keys: keys, services: services,
                  counters: MeshCounters(),
                  ids: MessageIDGenerator(epoch: epoch), replay: ReplayWindow(capacity: WireLimits.replayPeersMax),
                  rateLimiter: config.rateLimit.map { RateLimiter($0) }, rng: SeededRandom(seed: rngSeed),
                  localDigest: servicesDigest(services),
                  peerTable: Table(capacity: config.peersMax), peerNames: reservedTable(config.peersMax),
                  instanceTable: Table(capacity: config.instancesMax),
                  instanceDescriptors: reservedTable(config.instancesMax),
                  calls: Table(capacity: config.callsInFlightMax), callNames: reservedTable(config.callsInFlightMax),
                  callArguments: reservedTable(config.callsInFlightMax),
                  callDescriptors: reservedTable(config.callsInFlightMax),
                  triedNodes: Table(capacity: 2 * config.callsInFlightMax),
                  serveTable: Table(capacity: serveMax), servePayloads: reservedTable(serveMax),
                  probes: Table(capacity: config.probesMax), staleValues: Table(capacity: config.staleCacheMax),
                  staleDescriptors: reservedTable(config.staleCacheMax), staleResults: reservedTable(config.staleCacheMax),
                  versionReplies: Table(capacity: config.versionReplySourcesMax),
                  sought: Table(capacity: config.callsInFlightMax),
                  actions: DrainQueue(capacity: config.actionQueueMax + serveMax),
                  epoch: epoch)
    }
}

/// An empty table with room for `capacity` entries. Allocated empty rather
/// than grown by `reserveCapacity`, whose growth path (a copy of the elements)
/// is specialised per element type even for a table that never grows.
@inline(never)
func reservedTable<Element>(_ capacity: Int) -> [Element] {
    [Element](unsafeUninitializedCapacity: capacity) { _, count in count = 0 }
}

extension MeshNode.Peer {
    /// The peer's part of `nextTimeoutMs` (UInt64.max: none); read by index,
    /// the getter's loop does not copy each record.
    func nextDueMs(suspectAfterMs: UInt64, deadAfterMs: UInt64) -> UInt64 {
        var t: UInt64
        switch state {
        case .alive: t = lastHeardMs + suspectAfterMs
        case .suspect:
            t = lastHeardMs + deadAfterMs
            if let r = reprobeAtMs { t = min(t, r) }
        case .dead, .left: return UInt64.max
        }
        if relayVia != nil { t = min(t, nextRelayProbeAtMs) }
        return t
    }
}

extension MeshNode.Instance {
    /// The instance's part of `nextTimeoutMs`: its expiry, or its open breaker's end.
    func nextDueMs(ttlMs: UInt64) -> UInt64 {
        let t = confirmedMs + ttlMs
        return breaker.state == .open ? min(t, breaker.openUntilMs) : t
    }
}
