// Subscriptions: HORUS's Hub/Link and CoAP Observe (RFC 7641) with LwM2M's
// notification attributes (pmin, pmax, step). A deterministic state machine
// beside MeshNode, like it without I/O or clock: frames of types 12/13 come in
// through `handle`, mesh events through `handleMeshEvent`, readings through
// `publish`; what it sends goes out through the MeshNode (same authentication,
// routes and relays); what the application sees is drained with `pollEvent`.
//
// Publisher side: one entry per (subscriber node, subscription id), a fixed
// table. A new sample is pushed when it moved by the threshold and the minimum
// interval has passed (otherwise when it has), and the latest value at least
// every maximum interval. The entry is a lease: it lapses when not renewed, and
// goes at once when the mesh declares its subscriber dead, gone or rebooted,
// so a dead subscriber costs nothing.
//
// Subscriber side: each subscription follows one publisher instance, chosen
// like an RPC call's (priority, health, node id). It renews the lease every
// third of it, and moves to another instance when its publisher is declared
// dead, drops the service, refuses, or is silent past its maximum interval (or
// a third of the lease) plus a grace. It stays on the backup afterwards: moving
// back would only add a second gap in the readings.

public struct PubSubConfig {
    /// Publisher: subscriptions held for other nodes (a full table answers busy).
    public var publicationsMax = 16
    /// Subscriber: this node's own subscriptions.
    public var subscriptionsMax = 8
    /// Events waiting for `pollEvent`; beyond it they are dropped and counted.
    public var eventQueueMax = 32
    /// Bounds the publisher applies to what subscribers ask.
    public var minIntervalFloorMs: UInt32 = 100
    public var maxIntervalCeilingMs: UInt32 = 3_600_000
    public var leaseMinMs: UInt32 = 2_000
    public var leaseMaxMs: UInt32 = 600_000
    /// Subscriber: an unanswered `subscribe` is sent again after this...
    public var answerTimeoutMs: UInt32 = 1_000
    /// ...this many times in all before the publisher is given up.
    public var triesMax = 3
    /// Silence tolerated beyond the expected push (maximum interval, or a third
    /// of the lease for the renewal's answer) before failing over.
    public var silenceGraceMs: UInt32 = 2_000
    /// No instance known: look again this often (and at once when one is announced).
    public var searchIntervalMs: UInt32 = 1_000
    /// Publishers a subscription remembers as failed (not chosen again until
    /// nothing else is left).
    public var avoidMax = 4

    public init() {}

    public func check() {
        precondition(publicationsMax > 0 && subscriptionsMax > 0 && eventQueueMax > 0)
        precondition(minIntervalFloorMs > 0 && minIntervalFloorMs <= maxIntervalCeilingMs)
        precondition(leaseMinMs >= 3 && leaseMinMs <= leaseMaxMs)
        precondition(answerTimeoutMs > 0 && triesMax > 0 && searchIntervalMs > 0 && avoidMax > 0)
    }
}

/// Names one subscription of this node until `unsubscribe`.
public struct SubscriptionID: Hashable {
    public let raw: UInt32
    public init(raw: UInt32) { self.raw = raw }
}

/// A reading pushed to one of this node's subscriptions.
public struct SubscriptionNotification: Equatable {
    public var subscription: SubscriptionID
    public var publisher: UInt32
    public var sequence: UInt32
    /// ok, or unavailable when the publisher has no sample.
    public var status: UInt8
    public var value: Double?
    public var unit: Unit
    /// Age of the value when the publisher sent it.
    public var ageMs: UInt32
}

public enum PubSubEvent: Equatable {
    case notification(SubscriptionNotification)
    /// The subscription follows another publisher (`to` nil: none is left; it
    /// keeps looking). `from` nil for the first choice.
    case publisherChanged(SubscriptionID, from: UInt32?, to: UInt32?)
}

public struct PubSubCounters: Equatable {
    // Publisher.
    public var subscribesReceived: UInt32 = 0
    public var subscriptionsCreated: UInt32 = 0
    /// Refused: unknown service, incompatible version, or table full.
    public var subscriptionsRefused: UInt32 = 0
    public var cancelsReceived: UInt32 = 0
    public var leasesExpired: UInt32 = 0
    /// Dropped because the mesh declared the subscriber dead, gone or rebooted.
    public var subscribersDropped: UInt32 = 0
    public var notificationsSent: UInt32 = 0
    // Subscriber.
    public var subscribesSent: UInt32 = 0
    public var notificationsReceived: UInt32 = 0
    /// Gaps in the sequence (lost pushes).
    public var notificationsMissed: UInt32 = 0
    /// Not above the last sequence taken (duplicated or reordered): dropped.
    public var notificationsOutOfOrder: UInt32 = 0
    /// For no subscription of ours, or from a publisher we left: answered with a cancel.
    public var strayNotifications: UInt32 = 0
    public var failovers: UInt32 = 0
    // Both.
    /// Payloads of types 12/13 that do not decode (the frame itself was authentic).
    public var malformed: UInt32 = 0
    public var eventsDropped: UInt32 = 0

    public init() {}
}

public struct PubSub {
    public let config: PubSubConfig
    public internal(set) var counters = PubSubCounters()

    struct Sample {
        var value: Double
        var unit: Unit
        var atMs: UInt64
    }

    struct Publication {
        var subscriber: UInt32
        var id: UInt32
        /// Index in the mesh node's `services`.
        var service: Int
        var minIntervalMs: UInt32
        var maxIntervalMs: UInt32
        var threshold: Double
        var leaseUntilMs: UInt64
        var lastSentMs: UInt64
        var lastSentValue: Double?
        /// A change is waiting for the minimum interval to pass.
        var pending: Bool
        var sequence: UInt32

        /// A renewal's new terms (one write access to the table, not four);
        /// returns the sequence, for the answer.
        mutating func renew(minMs: UInt32, maxMs: UInt32, threshold: Double, leaseUntilMs: UInt64) -> UInt32 {
            minIntervalMs = minMs
            maxIntervalMs = maxMs
            self.threshold = threshold
            self.leaseUntilMs = leaseUntilMs
            return sequence
        }
    }

    struct Subscription {
        var id: UInt32
        var request: Subscribe
        /// nil: looking for an instance.
        var publisher: UInt32?
        /// The publisher answered the last (re)subscribe.
        var confirmed = false
        var tries = 0
        var grantedLeaseMs: UInt32
        var lastSequence: UInt32 = 0
        var avoid: [UInt32] = []
        // The UInt64s last: no tail padding (see MeshNode.Peer).
        var lastHeardMs: UInt64
        /// Next resend, renewal or search.
        var nextAtMs: UInt64
    }

    /// Latest sample of each of this node's services (index as in MeshNode.services).
    var samples: Table<Sample?>
    var publications = Table<Publication>()
    var subscriptions: Table<Subscription>
    var events: DrainQueue<PubSubEvent>
    var nextID: UInt32 = 1
    /// The subscriber half, set by the first `subscribe` (`SubscriberInput`):
    /// nil on a node that only publishes, whose image can then leave it out.
    var subscriber: ((inout PubSub, SubscriberInput, UInt64, inout MeshNode) -> Void)? = nil

    public init(config: PubSubConfig = PubSubConfig()) {
        config.check()
        self.config = config
        samples = Table(repeating: nil, count: servicesPerNodeMax)
        publications.reserveCapacity(config.publicationsMax)
        subscriptions = Table(capacity: config.subscriptionsMax)
        events = DrainQueue(capacity: config.eventQueueMax)
    }

    // MARK: Views

    /// Subscriptions held for other nodes.
    public var publicationCount: Int { publications.count }
    public func publicationCount(subscriber: UInt32) -> Int {
        var n = 0
        for p in publications where p.subscriber == subscriber { n += 1 }
        return n
    }
    public var subscriptionCount: Int { subscriptions.count }
    /// The publisher a subscription follows now (nil: none, or no such subscription).
    public func publisher(of id: SubscriptionID) -> UInt32? {
        subscriptions.first(where: { $0.id == id.raw })?.publisher
    }

    // MARK: Events

    public mutating func pollEvent() -> PubSubEvent? { events.pop() }

    mutating func emit(_ e: PubSubEvent) {
        guard events.count < config.eventQueueMax else {
            counters.eventsDropped &+= 1
            return
        }
        events.append(e)
    }

    // MARK: Timers

    public var nextTimeoutMs: UInt64? {
        var t: UInt64?
        func consider(_ v: UInt64) { t = min(t ?? v, v) }
        for p in publications {
            consider(p.leaseUntilMs)
            consider(p.lastSentMs + UInt64(p.pending ? p.minIntervalMs : p.maxIntervalMs))
        }
        // By index: `for s in` copied each subscription (retaining its arrays).
        for k in subscriptions.indices {
            consider(subscriptions[k].nextAtMs)
            if subscriptions[k].publisher != nil && subscriptions[k].confirmed { consider(silenceDeadline(k)) }
        }
        return t
    }

    /// `nextTimeoutMs` for a PubSub held in a class (NodeRuntime.pubsub): a
    /// mutating call reads it in place, where the getter copies it first
    /// (every table retained and released), on every datagram the node pumps.
    public mutating func nextTimeoutMsInPlace() -> UInt64? { nextTimeoutMs }

    /// The intervals a publisher with this config grants for a request: the
    /// subscriber expects pushes on the same terms (max 0 means 60 s).
    func granted(_ r: Subscribe) -> (minMs: UInt32, maxMs: UInt32, leaseMs: UInt32) {
        let minMs = max(config.minIntervalFloorMs, r.minIntervalMs)
        let maxMs = max(minMs, min(config.maxIntervalCeilingMs, r.maxIntervalMs == 0 ? 60_000 : r.maxIntervalMs))
        return (minMs, maxMs, max(config.leaseMinMs, min(config.leaseMaxMs, r.leaseMs)))
    }

    /// Renewals every third of the lease, never faster than an answer can come back.
    func renewalMs(_ s: Subscription) -> UInt32 { max(config.answerTimeoutMs, s.grantedLeaseMs / 3) }

    func silenceDeadline(_ k: Int) -> UInt64 {
        let expected = min(granted(subscriptions[k].request).maxMs, renewalMs(subscriptions[k]))
        return subscriptions[k].lastHeardMs + UInt64(expected) + UInt64(config.silenceGraceMs)
    }

    public mutating func handleTimeout(nowMs: UInt64, mesh: inout MeshNode) {
        var i = publications.count - 1
        while i >= 0 {
            let p = publications[i]
            if nowMs >= p.leaseUntilMs {
                publications.remove(at: i)
                counters.leasesExpired &+= 1
            } else if (p.pending && nowMs >= p.lastSentMs + UInt64(p.minIntervalMs))
                        || nowMs >= p.lastSentMs + UInt64(p.maxIntervalMs) {
                push(i, nowMs: nowMs, mesh: &mesh)
            }
            i -= 1
        }
        toSubscriber(.timers, nowMs: nowMs, mesh: &mesh)
    }

    /// The subscriptions' timers: answers, renewals, silence, searches.
    mutating func checkSubscriptionTimers(nowMs: UInt64, mesh: inout MeshNode) {
        for k in subscriptions.indices {
            let s = subscriptions[k]
            if s.publisher == nil {
                if nowMs >= s.nextAtMs { choose(k, nowMs: nowMs, mesh: &mesh) }
            } else if !s.confirmed {
                guard nowMs >= s.nextAtMs else { continue }
                if s.tries >= config.triesMax {
                    failover(k, nowMs: nowMs, mesh: &mesh)
                } else {
                    sendSubscribe(k, nowMs: nowMs, mesh: &mesh)
                }
            } else if nowMs >= silenceDeadline(k) {
                failover(k, nowMs: nowMs, mesh: &mesh)
            } else if nowMs >= s.nextAtMs {
                // Renewal: the answer is the publisher's sign of life between pushes.
                sendSubscribe(k, nowMs: nowMs, mesh: &mesh)
            }
        }
    }

    // MARK: Publisher

    /// A new sample of one of this node's services; pushes it to the
    /// subscribers it concerns.
    public mutating func publish(service name: [UInt8], value: Double, unit: Unit, nowMs: UInt64,
                                 mesh: inout MeshNode) {
        guard let si = Self.serviceIndex(name, in: mesh) else { return }
        samples[si] = Sample(value: value, unit: unit, atMs: nowMs)
        for i in publications.indices where publications[i].service == si {
            let p = publications[i]
            if let last = p.lastSentValue, p.threshold > 0, abs(value - last) < p.threshold { continue }
            if p.lastSentValue == nil || nowMs >= p.lastSentMs + UInt64(p.minIntervalMs) {
                push(i, nowMs: nowMs, mesh: &mesh)
            } else {
                publications[i].pending = true
            }
        }
    }

    /// The index in `mesh.services` of the service named `name`. Out of line:
    /// the search was inlined into both callers.
    @inline(never)
    static func serviceIndex(_ name: [UInt8], in mesh: borrowing MeshNode) -> Int? {
        mesh.services.firstIndex(where: { $0.name == name })
    }

    /// Sends the latest sample (or "unavailable") to entry `i`. Out of line:
    /// `publish` and `handleTimeout` each had a copy.
    @inline(never)
    mutating func push(_ i: Int, nowMs: UInt64, mesh: inout MeshNode) {
        publications[i].sequence &+= 1
        publications[i].lastSentMs = nowMs
        publications[i].pending = false
        let p = publications[i]
        var n = Notify(id: p.id, sequence: p.sequence, status: Status.unavailable.rawValue)
        if let s = samples[p.service] {
            n = Notify(id: p.id, sequence: p.sequence, value: s.value, unit: s.unit,
                       ageMs: UInt32(clamping: nowMs - min(nowMs, s.atMs)))
            publications[i].lastSentValue = s.value
        }
        send(n, to: p.subscriber, nowMs: nowMs, mesh: &mesh)
    }

    /// Out of line: each send inlined `MeshNode.send` (clock, checks, release).
    @inline(never)
    mutating func send(_ n: Notify, to node: UInt32, nowMs: UInt64, mesh: inout MeshNode) {
        if mesh.send(.notify, payload: n.encode(), to: node, nowMs: nowMs) { counters.notificationsSent &+= 1 }
    }

    mutating func onSubscribe(_ frame: Frame, nowMs: UInt64, mesh: inout MeshNode) {
        let s: Subscribe
        do { s = try Subscribe.decode(frame.payload) } catch {
            counters.malformed &+= 1
            return
        }
        counters.subscribesReceived &+= 1
        let from = frame.sender
        let existing = publications.firstIndex(where: { $0.subscriber == from && $0.id == s.id })
        if s.isCancel {
            if let existing {
                publications.remove(at: existing)
                counters.cancelsReceived &+= 1
            }
            return
        }
        let (minMs, maxMs, lease) = granted(s)
        // Every answer (renewal, refusal, registration) is sent once, at the end.
        var n = Notify(id: s.id, sequence: 0, leaseMs: lease)
        // Service names are unique on a node (MeshNode.checkServices): the
        // entry is for this service exactly when its index is the name's.
        let si = Self.serviceIndex(s.service, in: mesh)
        if let i = existing, publications[i].service == si {
            // Renewal (or new parameters): extend the lease, answer without a value.
            n.sequence = publications[i].renew(minMs: minMs, maxMs: maxMs, threshold: s.threshold,
                                               leaseUntilMs: nowMs + UInt64(lease))
        } else {
            if let existing { publications.remove(at: existing) }
            var status = Status.ok
            if let si {
                if !mesh.services[si].version.satisfies(caret: s.version) {
                    status = .unsupportedVersion
                } else if publications.count >= config.publicationsMax {
                    status = .busy
                }
            } else {
                status = .unknownService
            }
            if let si, status == .ok {
                counters.subscriptionsCreated &+= 1
                var p = Publication(subscriber: from, id: s.id, service: si, minIntervalMs: minMs,
                                    maxIntervalMs: maxMs, threshold: s.threshold,
                                    leaseUntilMs: nowMs + UInt64(lease), lastSentMs: nowMs, lastSentValue: nil,
                                    pending: false, sequence: 0)
                // The answer carries the current value (Observe's registration response).
                if let sample = samples[si] {
                    p.sequence = 1
                    p.lastSentValue = sample.value
                    n = Notify(id: s.id, sequence: 1, value: sample.value, unit: sample.unit,
                               ageMs: UInt32(clamping: nowMs - min(nowMs, sample.atMs)), leaseMs: lease)
                }
                publications.append(p)
            } else {
                counters.subscriptionsRefused &+= 1
                n.status = status.rawValue
            }
        }
        send(n, to: from, nowMs: nowMs, mesh: &mesh)
    }

    // MARK: Subscriber

    /// Subscribes to a service (any instance satisfying `version` by the caret
    /// rule). nil when `subscriptionsMax` subscriptions exist already.
    public mutating func subscribe(service: [UInt8], version: SemVer = SemVer(1, 0, 0), minIntervalMs: UInt32 = 1000,
                                   maxIntervalMs: UInt32 = 10_000, threshold: Double = 0, leaseMs: UInt32 = 30_000,
                                   nowMs: UInt64, mesh: inout MeshNode) -> SubscriptionID? {
        precondition(!service.isEmpty && service.count <= nameBytesMax, "service names are 1-24 bytes")
        precondition(threshold >= 0 && threshold.isFinite && leaseMs > 0)
        subscriber = PubSub.runSubscriber
        guard subscriptions.count < config.subscriptionsMax else { return nil }
        let id = nextID
        nextID &+= 1
        let request = Subscribe(id: id, service: service, version: version, minIntervalMs: minIntervalMs,
                                maxIntervalMs: maxIntervalMs, threshold: threshold, leaseMs: leaseMs)
        var s = Subscription(id: id, request: request, grantedLeaseMs: granted(request).leaseMs,
                             lastHeardMs: nowMs, nextAtMs: nowMs)
        s.avoid.reserveCapacity(config.avoidMax)
        subscriptions.append(s)
        choose(subscriptions.count - 1, nowMs: nowMs, mesh: &mesh)
        return SubscriptionID(raw: id)
    }

    /// Cancels at the publisher and forgets the subscription.
    public mutating func unsubscribe(_ id: SubscriptionID, nowMs: UInt64, mesh: inout MeshNode) {
        guard let k = subscriptions.firstIndex(where: { $0.id == id.raw }) else { return }
        if let p = subscriptions[k].publisher { sendCancel(id.raw, to: p, nowMs: nowMs, mesh: &mesh) }
        subscriptions.remove(at: k)
    }

    mutating func sendCancel(_ id: UInt32, to node: UInt32, nowMs: UInt64, mesh: inout MeshNode) {
        let cancel = Subscribe(id: id, service: [], leaseMs: 0)
        _ = mesh.send(.subscribe, payload: cancel.encode(), to: node, nowMs: nowMs)
    }

    mutating func sendSubscribe(_ k: Int, nowMs: UInt64, mesh: inout MeshNode) {
        guard let p = subscriptions[k].publisher else { return }
        subscriptions[k].tries += 1
        subscriptions[k].nextAtMs = nowMs + UInt64(config.answerTimeoutMs)
        counters.subscribesSent &+= 1
        _ = mesh.send(.subscribe, payload: subscriptions[k].request.encode(), to: p, nowMs: nowMs)
    }

    /// Picks the best instance not to avoid (priority, then alive before
    /// suspect, closed breaker first, then node id) and subscribes there.
    mutating func choose(_ k: Int, nowMs: UInt64, mesh: inout MeshNode) {
        let old = subscriptions[k].publisher
        var best: UInt32?
        var retriedAvoided = false
        for pass in 0..<2 {
            var bestRank = (UInt8.max, 1, 1, UInt32.max)
            for inst in mesh.instances(of: subscriptions[k].request.service) where !inst.isLocal {
                guard inst.descriptor.version.satisfies(caret: subscriptions[k].request.version),
                      !subscriptions[k].avoid.contains(inst.node),
                      let peer = mesh.peer(inst.node), peer.state == .alive || peer.state == .suspect else { continue }
                let rank = (inst.descriptor.priority, peer.state == .suspect ? 1 : 0,
                            inst.breaker == .open ? 1 : 0, inst.node)
                if best == nil || rank < bestRank {
                    best = inst.node
                    bestRank = rank
                }
            }
            // Every instance left failed us once: try them again rather than none.
            if best != nil || subscriptions[k].avoid.isEmpty || pass == 1 { break }
            subscriptions[k].avoid.removeAll(keepingCapacity: true)
            retriedAvoided = true
        }
        subscriptions[k].publisher = best
        subscriptions[k].confirmed = false
        subscriptions[k].tries = 0
        subscriptions[k].lastSequence = 0
        subscriptions[k].lastHeardMs = nowMs
        if best != nil && !retriedAvoided {
            sendSubscribe(k, nowMs: nowMs, mesh: &mesh)
        } else {
            // None left, or only ones that just failed us (a refusal, silence):
            // ask again after a pause, not at the speed answers come back.
            subscriptions[k].nextAtMs = nowMs + UInt64(config.searchIntervalMs)
        }
        if best != old { emit(.publisherChanged(SubscriptionID(raw: subscriptions[k].id), from: old, to: best)) }
    }

    /// The publisher failed this subscription: remember it, cancel there (it
    /// may be alive but unreachable one way), and choose again.
    mutating func failover(_ k: Int, nowMs: UInt64, mesh: inout MeshNode) {
        if let old = subscriptions[k].publisher {
            counters.failovers &+= 1
            if subscriptions[k].avoid.count == config.avoidMax { subscriptions[k].avoid.removeFirst() }
            subscriptions[k].avoid.append(old)
            sendCancel(subscriptions[k].id, to: old, nowMs: nowMs, mesh: &mesh)
        }
        choose(k, nowMs: nowMs, mesh: &mesh)
    }

    mutating func onNotify(_ frame: Frame, nowMs: UInt64, mesh: inout MeshNode) {
        let n: Notify
        do { n = try Notify.decode(frame.payload) } catch {
            counters.malformed &+= 1
            return
        }
        counters.notificationsReceived &+= 1
        guard let k = subscriptions.firstIndex(where: { $0.id == n.id }),
              subscriptions[k].publisher == frame.sender else {
            // A cancelled subscription, or a publisher we left: stop it. A
            // refusal holds nothing at the sender, so it needs no cancel.
            counters.strayNotifications &+= 1
            if n.status == Status.ok.rawValue || !n.isAnswer { sendCancel(n.id, to: frame.sender, nowMs: nowMs, mesh: &mesh) }
            return
        }
        toSubscriber(.notify(k, n, from: frame.sender), nowMs: nowMs, mesh: &mesh)
    }

    /// A push or an answer for subscription `k` from its publisher.
    mutating func notified(_ k: Int, _ n: Notify, from sender: UInt32, nowMs: UInt64, mesh: inout MeshNode) {
        subscriptions[k].lastHeardMs = nowMs
        if n.isAnswer {
            guard n.status == Status.ok.rawValue else {
                failover(k, nowMs: nowMs, mesh: &mesh)
                return
            }
            subscriptions[k].confirmed = true
            subscriptions[k].tries = 0
            subscriptions[k].grantedLeaseMs = n.leaseMs
            subscriptions[k].nextAtMs = nowMs + UInt64(renewalMs(subscriptions[k]))
            if n.value == nil {
                // A renewal's answer may overtake a push: never move backwards.
                subscriptions[k].lastSequence = max(subscriptions[k].lastSequence, n.sequence)
                return
            }
        } else if !subscriptions[k].confirmed {
            // A push before the answer (the answer was lost): the publisher
            // holds us; renew at once to learn the lease it granted.
            subscriptions[k].confirmed = true
            subscriptions[k].tries = 0
            subscriptions[k].nextAtMs = nowMs
        }
        let last = subscriptions[k].lastSequence
        if n.sequence <= last && !n.isAnswer {
            counters.notificationsOutOfOrder &+= 1
            return
        }
        if last != 0 && n.sequence > last &+ 1 { counters.notificationsMissed &+= n.sequence - last - 1 }
        subscriptions[k].lastSequence = n.sequence
        emit(.notification(SubscriptionNotification(subscription: SubscriptionID(raw: n.id), publisher: sender,
                                                    sequence: n.sequence, status: n.status, value: n.value,
                                                    unit: n.unit, ageMs: n.ageMs)))
    }

    // MARK: Input

    /// Takes a delivered frame of type `subscribe` or `notify`; false for any other type.
    @discardableResult
    public mutating func handle(_ frame: Frame, nowMs: UInt64, mesh: inout MeshNode) -> Bool {
        switch frame.type {
        case .subscribe: onSubscribe(frame, nowMs: nowMs, mesh: &mesh)
        case .notify: onNotify(frame, nowMs: nowMs, mesh: &mesh)
        default: return false
        }
        return true
    }

    /// What the mesh's failure detector and registry say, applied to both sides.
    public mutating func handleMeshEvent(_ event: MeshEvent, nowMs: UInt64, mesh: inout MeshNode) {
        switch event {
        case .peerDead(let node), .peerLeft(let node), .peerRestarted(let node):
            let before = publications.count
            publications.removeAll(where: { $0.subscriber == node })
            counters.subscribersDropped &+= UInt32(before - publications.count)
        default:
            break
        }
        toSubscriber(.meshEvent(event), nowMs: nowMs, mesh: &mesh)
    }

    /// A mesh event, for the subscriptions: their publisher died, left,
    /// restarted or lost the service, or a first instance appeared.
    mutating func subscriptionsSee(_ event: MeshEvent, nowMs: UInt64, mesh: inout MeshNode) {
        switch event {
        case .peerDead(let node), .peerLeft(let node), .peerRestarted(let node):
            for k in subscriptions.indices where subscriptions[k].publisher == node {
                if case .peerRestarted = event {
                    // It lost our subscription with its memory: subscribe again there.
                    subscriptions[k].confirmed = false
                    subscriptions[k].tries = 0
                    subscriptions[k].lastSequence = 0
                    sendSubscribe(k, nowMs: nowMs, mesh: &mesh)
                } else {
                    failover(k, nowMs: nowMs, mesh: &mesh)
                }
            }
        case .serviceRemoved(let node, let service, _):
            for k in subscriptions.indices
            where subscriptions[k].publisher == node && serviceID(subscriptions[k].request.service) == service {
                failover(k, nowMs: nowMs, mesh: &mesh)
            }
        case .serviceAdded(_, let service):
            for k in subscriptions.indices
            where subscriptions[k].publisher == nil && serviceID(subscriptions[k].request.service) == service {
                choose(k, nowMs: nowMs, mesh: &mesh)
            }
        default:
            break
        }
    }
}

/// What the rest of PubSub tells its subscriber half. As for MeshNode's
/// client (`ClientInput`), everything that reaches subscriber code goes
/// through `PubSub.subscriber`, which only `subscribe` installs: an image that
/// publishes but never subscribes (the sensor board) then leaves the
/// subscriber half out, and behaves the same (with no subscription each of
/// these inputs would have been a no-op).
enum SubscriberInput {
    /// handleTimeout.
    case timers
    /// A notify for `subscriptions[k]` from its publisher.
    case notify(Int, Notify, from: UInt32)
    case meshEvent(MeshEvent)
}

extension PubSub {
    /// Hands `input` to the subscriber half, if this node ever subscribed.
    @inline(never)
    mutating func toSubscriber(_ input: SubscriberInput, nowMs: UInt64, mesh: inout MeshNode) {
        guard let subscriber else { return }
        subscriber(&self, input, nowMs, &mesh)
    }

    /// The subscriber half (installed as `subscriber` by the first subscribe).
    @inline(never)
    static func runSubscriber(_ pubsub: inout PubSub, _ input: SubscriberInput, _ nowMs: UInt64,
                              _ mesh: inout MeshNode) {
        switch input {
        case .timers: pubsub.checkSubscriptionTimers(nowMs: nowMs, mesh: &mesh)
        case .notify(let k, let n, let from): pubsub.notified(k, n, from: from, nowMs: nowMs, mesh: &mesh)
        case .meshEvent(let event): pubsub.subscriptionsSee(event, nowMs: nowMs, mesh: &mesh)
        }
    }
}
