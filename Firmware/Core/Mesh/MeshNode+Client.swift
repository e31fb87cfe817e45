// Calls. A call picks the best instance (primary before backups by priority,
// healthy before suspect, local before remote, lighter load, lower node id),
// sends a request and retransmits it on CoAP's schedule: a first timeout drawn
// in [T, T * randomFactor], doubled after every retransmission, at most
// rpcRetransmitMax retransmissions, each with a fresh message id and `ref` = the
// first id (the server's dedup key). The call fails over to the next instance,
// within its remaining deadline, when its instance dies, leaves or expires,
// when its breaker opens, when it answers busy/unavailable/internal error, or
// when the retransmission budget runs out. With nothing left: the last known
// value marked stale with its age, then a typed error naming why.
//
// Stack discipline (Embedded, 8 KB test stack): records are read once into a
// local (`let call = calls[ci]`), never field by field through the array, and
// the rarer paths are @inline(never) so their temporaries only exist when taken.

/// What the rest of the node tells the client half (the calls in flight).
/// Everything that reaches client code goes through `MeshNode.client`, a hook
/// that only `call(service:)` and `call(node:)` install: a firmware image that
/// never calls (the sensor and storage boards) then references none of the
/// client's functions and the linker drops them (~14 KB), while the node's
/// behaviour is the same (with no call made, `calls` is empty and every one of
/// these inputs would have been a no-op).
enum ClientInput {
    /// handleTimeout: deadlines and retransmissions.
    case timers
    /// An answer (response, error, or a local serve's answer) to the attempt of `calls[call]`.
    case answer(call: Int, status: UInt8, Response)
    /// An instance appeared, a breaker half-opened, the local services changed.
    case instancesChanged
    /// The attempts on `node` (on `serviceID` only, if given) fail over.
    case nodeLost(UInt32, serviceID: UInt32?, CallError)
    /// A new route to the node: its requests go out again at once.
    case newRoute(UInt32)
    /// leave: every call fails with `.stopped`.
    case stop
}

extension MeshNode {
    /// Hands `input` to the client half, if this node ever made a call.
    @inline(never)
    mutating func toClient(_ input: ClientInput, nowMs: UInt64) {
        guard let client else { return }
        client(&self, input, nowMs)
    }

    /// The client half (installed as `client` by the first call).
    @inline(never)
    static func runClient(_ node: inout MeshNode, _ input: ClientInput, _ nowMs: UInt64) {
        switch input {
        case .timers: node.checkCallTimers(nowMs: nowMs)
        case .answer(let ci, let status, let response): node.handleAnswer(ci, status: status, response: response, nowMs: nowMs)
        case .instancesChanged: node.dispatchWaitingCalls(nowMs: nowMs)
        case .nodeLost(let n, let sid, let reason): node.failoverCalls(onNode: n, serviceID: sid, reason: reason, nowMs: nowMs)
        case .newRoute(let n): node.retransmitNow(toNode: n, nowMs: nowMs)
        case .stop:
            while let call = node.calls.first {
                node.finish(call.id, .stopped, nowMs: nowMs)
            }
        }
    }

    /// Starts a call of `operation` on a service named `name` whose version
    /// satisfies `^version`. Exactly one `.complete(id, ...)` follows, before
    /// `deadlineMs` from now has passed (at the latest from the handleTimeout at it).
    @inline(never)
    public mutating func call(service name: [UInt8], version: SemVer, operation: Operation = .read,
                              arguments: [UInt8] = [], deadlineMs: UInt32, nowMs: UInt64) -> CallID {
        let id = newCallID()
        if let error = admitCall(arguments: arguments, nameIsValid: !name.isEmpty && name.count <= nameBytesMax,
                                 nowMs: nowMs) {
            return failNow(id, error)
        }
        let nowMs = advanceClock(nowMs)
        return startCall(Call(id: id, serviceID: serviceID(name), version: version, operation: operation,
                              readsValue: operation == .read && arguments.isEmpty,
                              deadlineAtMs: nowMs + UInt64(min(deadlineMs, config.callDeadlineMaxMs))),
                         name: name, arguments: arguments, descriptor: .blank, nowMs: nowMs)
    }

    /// Installs the client half and names a new call.
    mutating func newCallID() -> CallID {
        client = MeshNode.runClient
        let id = CallID(raw: nextCallRaw)
        nextCallRaw = nextCallRaw == UInt32.max ? 1 : nextCallRaw + 1
        counters.callsStarted &+= 1
        return id
    }

    /// The checks every call (service or node) starts with, in this order;
    /// nil when it may go on.
    @inline(never)
    mutating func admitCall(arguments: [UInt8], nameIsValid: Bool, nowMs: UInt64) -> CallError? {
        guard lifecycle == .running else { return .stopped }
        _ = advanceClock(nowMs)
        guard arguments.count <= MeshConfig.rpcPayloadBytesMax else { return .argumentsTooLarge }
        guard isOneCBORItem(arguments) else { return .badArguments }
        guard nameIsValid else { return .noInstance }
        guard calls.count < config.callsInFlightMax else { return .tooManyCalls }
        return nil
    }

    @inline(never)
    mutating func startCall(_ call: Call, name: [UInt8], arguments: [UInt8], descriptor: ServiceDescriptor,
                            nowMs: UInt64) -> CallID {
        calls.append(call)
        callNames.append(name)
        callArguments.append(arguments)
        callDescriptors.append(descriptor)
        dispatch(call.id, previousNode: nil, nowMs: nowMs)
        return call.id
    }

    public mutating func call(service name: StaticString, version: SemVer, operation: Operation = .read,
                              arguments: [UInt8] = [], deadlineMs: UInt32, nowMs: UInt64) -> CallID {
        let bytes = Array(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        return call(service: bytes, version: version, operation: operation, arguments: arguments,
                    deadlineMs: deadlineMs, nowMs: nowMs)
    }

    @inline(never)
    mutating func failNow(_ id: CallID, _ error: CallError) -> CallID {
        counters.callsFailed &+= 1
        complete(id, .failed(error))
        return id
    }

    /// The one place a call's result leaves the node.
    @inline(never)
    mutating func complete(_ id: CallID, _ result: CallResult) {
        emit(.complete(id, result))
    }

    /// Returns nothing: handing back the removed records costs ~1 KB on the
    /// board (an `Attempt?` inside a `Call` is moved byte by byte); callers
    /// read what they need first.
    @inline(never)
    mutating func removeCall(at ci: Int) {
        let id = calls[ci].id
        calls.remove(at: ci)
        callNames.remove(at: ci)
        callArguments.remove(at: ci)
        callDescriptors.remove(at: ci)
        triedNodes.removeAll(where: { $0.call == id })
    }

    /// Whether the call `id` has tried `node`.
    @inline(never)
    func hasTried(_ id: CallID, _ node: UInt32) -> Bool {
        triedNodes.contains(where: { $0.call == id && $0.node == node })
    }

    /// How many nodes the call `id` has tried.
    @inline(never)
    func triedCount(_ id: CallID) -> Int {
        var n = 0
        for i in triedNodes.indices where triedNodes[i].call == id { n += 1 }
        return n
    }

    // MARK: Choosing an instance

    enum Choice {
        case remote(Int)  // index in instanceTable
        case local(Int)   // index in services
        case none(CallError)
    }

    /// The best instance for the call now, or why there is none.
    @inline(never)
    mutating func choose(_ ci: Int, nowMs: UInt64) -> Choice {
        let call = calls[ci]
        let name = callNames[ci]
        var anyInstance = false
        var anyCompatible = false
        var anyUntried = false
        var best = SemVer(0, 0, 0)
        var choice: Choice?
        var choiceRank = UInt64.max
        // This node's services first (index k), then the registry's instances
        // (index k - localCount): one loop, so the checks exist once.
        let localCount = services.count
        for k in 0..<(localCount + instanceTable.count) {
            let isLocal = k < localCount
            let ii = k - localCount
            var node = nodeID
            var suspect = false
            var load = localLoadPercent
            if !isLocal {
                let inst = instanceTable[ii]
                guard inst.serviceID == call.serviceID, let pi = peerIndex(inst.node) else { continue }
                let state = peerTable[pi].state
                guard state == .alive || state == .suspect else { continue }
                node = inst.node
                suspect = state == .suspect
                load = peerTable[pi].heartbeat?.loadPercent ?? 0
            }
            let descriptor = isLocal ? services[k] : instanceDescriptors[ii]
            guard descriptor.name == name else { continue }
            let version = descriptor.version
            if !anyInstance || best < version { best = version }
            anyInstance = true
            guard version.satisfies(caret: call.version) else { continue }
            anyCompatible = true
            guard !hasTried(call.id, node) else { continue }
            anyUntried = true
            if !isLocal {
                _ = pollBreaker(ii, nowMs: nowMs)
                guard instanceTable[ii].breaker.allowsCall else { continue }
            }
            // Rank, lower first: priority, suspect, remote, load, node id,
            // packed most significant first (one integer compare, not a tuple's).
            let rank = UInt64(descriptor.priority) << 42 | (suspect ? 1 << 41 : 0) | (isLocal ? 0 : 1 << 40)
                | UInt64(load) << 32 | UInt64(node)
            if rank < choiceRank {
                choice = isLocal ? .local(k) : .remote(ii)
                choiceRank = rank
            }
        }
        if let choice { return choice }
        if !anyInstance { return .none(.noInstance) }
        if !anyCompatible { return .none(.incompatibleVersion(available: best)) }
        if anyUntried { return .none(.allBreakersOpen) }
        return .none(call.lastError ?? .unreachable)
    }

    /// Starts (or restarts, after a failover) the call on the best instance,
    /// waits for discovery when none is known yet, or finishes it.
    @inline(never)
    mutating func dispatch(_ id: CallID, previousNode: UInt32?, nowMs: UInt64) {
        guard let ci = callIndex(id) else { return }
        if let target = calls[ci].targetNode {  // one node only: never fails over
            dispatchNodeCall(ci, target: target, nowMs: nowMs)
            return
        }
        switch choose(ci, nowMs: nowMs) {
        case .remote(let ii):
            noteFailover(ci, from: previousNode, to: instanceTable[ii].node)
            let trial = instanceTable[ii].breaker.begin()
            callDescriptors[ci] = instanceDescriptors[ii]
            startRemoteAttempt(ci, node: instanceTable[ii].node, trial: trial, nowMs: nowMs)
        case .local(let li):
            noteFailover(ci, from: previousNode, to: nodeID)
            callDescriptors[ci] = services[li]
            startLocalAttempt(ci, nowMs: nowMs)
        case .none(let error):
            let neverTried = triedCount(id) == 0
            if neverTried && error == .noInstance {
                // Nothing known yet (e.g. just booted): ask, and wait for an
                // announce until the deadline.
                seek(ci, nowMs: nowMs)
                return
            }
            var why = error
            if !neverTried && (error == .noInstance || error.isIncompatibleVersion) {
                // Every instance we tried is gone: say why the last one failed.
                why = calls[ci].lastError ?? .unreachable
            }
            finish(id, why, nowMs: nowMs)
        }
    }

    @inline(never)
    mutating func noteFailover(_ ci: Int, from previous: UInt32?, to next: UInt32) {
        guard let previous else { return }
        calls[ci].failovers &+= 1
        counters.failovers &+= 1
        emit(.failover(call: calls[ci].id, from: previous, to: next))
    }

    /// Calls waiting for an instance to appear get another chance (an
    /// instance was added, a breaker half-opened, local services changed).
    @inline(never)
    mutating func dispatchWaitingCalls(nowMs: UInt64) {
        // An index loop, not a list of ids: dispatch removes at most this
        // call (when it finishes it), so the next one then moved to `ci`.
        var ci = 0
        while ci < calls.count {
            let id = calls[ci].id
            if calls[ci].attempt == nil { dispatch(id, previousNode: nil, nowMs: nowMs) }
            if ci < calls.count && calls[ci].id == id { ci += 1 }
        }
    }

    // MARK: Attempts

    /// The call's attempt on `node` (service calls and node calls alike):
    /// CoAP's first timeout, the first transmission.
    @inline(never)
    mutating func startRemoteAttempt(_ ci: Int, node: UInt32, trial: Bool, nowMs: UInt64) {
        let initial = UInt64(config.rpcInitialTimeoutMs)
        let timeout = rng.between(initial, initial * UInt64(config.rpcRandomFactorPercent) / 100)
        calls[ci].attempt = Attempt(node: node, serviceID: calls[ci].serviceID, isLocal: false,
                                    callMessageID: ids.make(), localHandle: nil, transmissions: 1, timeoutMs: timeout,
                                    nextEventAtMs: nowMs + timeout, trial: trial)
        transmit(ci, first: true, nowMs: nowMs)
    }

    /// The call's attempt on this node itself: handed to the application as
    /// a `.serve`, answered through `respond` (service calls and node calls).
    @inline(never)
    mutating func startLocalAttempt(_ ci: Int, nowMs: UInt64) {
        let call = calls[ci]
        let handle = newServeHandle()
        appendServeEntry(ServeEntry(handle: handle, client: nodeID, callMessageID: MessageID(raw: 0),
                                     replyAddress: address, relayed: false, localCall: call.id, stampMs: nowMs))
        calls[ci].attempt = Attempt(node: nodeID, serviceID: call.serviceID, isLocal: true, callMessageID: MessageID(raw: 0), localHandle: handle,
                                    transmissions: 0, timeoutMs: 0, nextEventAtMs: nil, trial: false)
        let left = UInt32(min(UInt64(UInt32.max), call.deadlineAtMs > nowMs ? call.deadlineAtMs - nowMs : 0))
        emit(.serve(handle, Request(service: call.serviceID, operation: call.operation,
                                    arguments: callArguments[ci], deadlineMs: left), from: nodeID))
    }

    /// One transmission of the attempt's request: the first carries the call
    /// id as its own id; retransmissions get fresh ids and ref = the call id.
    /// Key 4 tells the server the time left until the deadline.
    @inline(never)
    mutating func transmit(_ ci: Int, first: Bool, nowMs: UInt64) {
        let call = calls[ci]
        guard let a = call.attempt else { return }
        let left = UInt32(min(UInt64(UInt32.max), call.deadlineAtMs > nowMs ? call.deadlineAtMs - nowMs : 0))
        let payload = Request(service: call.serviceID, operation: call.operation, arguments: callArguments[ci],
                              deadlineMs: left).encode()
        counters.requestsSent &+= 1
        sendToNode(a.node, .request, payload, id: first ? a.callMessageID : nil,
                   ref: first ? nil : a.callMessageID, flags: [.ackRequested], nowMs: nowMs)
    }

    /// A new route to `node`: requests waiting for an answer from it go out
    /// again at once on it (the schedule and the budget are unchanged; the
    /// server deduplicates).
    @inline(never)
    mutating func retransmitNow(toNode node: UInt32, nowMs: UInt64) {
        for ci in calls.indices {
            guard let a = calls[ci].attempt, !a.isLocal, a.node == node, !a.acked else { continue }
            counters.retransmissions &+= 1
            transmit(ci, first: false, nowMs: nowMs)
        }
    }

    @inline(never)
    mutating func checkCallTimers(nowMs: UInt64) {
        // The first due call, again and again: a breaker that opens fails
        // over (or finishes) other calls, anywhere in the table. A handled
        // call is no longer due (finished, or its next event is later), and a
        // failover never makes another one due, so this is each call due now,
        // once, in table order; the bound is a backstop.
        for _ in 0..<calls.count {
            guard let ci = firstDueCall(nowMs: nowMs) else { return }
            if nowMs >= calls[ci].deadlineAtMs {
                callDeadlinePassed(ci, nowMs: nowMs)
            } else {
                attemptTimerFired(ci, nowMs: nowMs)
            }
        }
    }

    func firstDueCall(nowMs: UInt64) -> Int? {
        for ci in calls.indices {
            let c = calls[ci]
            if nowMs >= c.deadlineAtMs || (c.attempt?.nextEventAtMs ?? UInt64.max) <= nowMs { return ci }
        }
        return nil
    }

    /// Retransmits, or gives up on this instance when the budget is spent.
    @inline(never)
    mutating func attemptTimerFired(_ ci: Int, nowMs: UInt64) {
        guard var a = calls[ci].attempt else { return }
        if a.transmissions <= config.rpcRetransmitMax {
            a.transmissions += 1
            a.timeoutMs *= UInt64(config.rpcBackoffFactor)
            a.nextEventAtMs = nowMs + a.timeoutMs
            calls[ci].attempt = a
            counters.retransmissions &+= 1
            transmit(ci, first: false, nowMs: nowMs)
        } else if a.acked {
            a.nextEventAtMs = nil  // the server has it: wait for the deadline
            calls[ci].attempt = a
        } else {
            failover(calls[ci].id, reason: .unreachable, breakerFailure: true, nowMs: nowMs)
        }
    }

    @inline(never)
    mutating func callDeadlinePassed(_ ci: Int, nowMs: UInt64) {
        let call = calls[ci]
        if let a = call.attempt {
            calls[ci].attempt = nil
            if !a.isLocal && !a.acked {
                // A timeout is a failure of the instance (Hystrix semantics).
                breakerVerdict(node: a.node, serviceID: call.serviceID, success: false, nowMs: nowMs)
            } else {
                abandon(a)
            }
            finish(call.id, .deadlineExceeded, nowMs: nowMs)
            return
        }
        // Waited for discovery in vain: name what is missing.
        var why = CallError.deadlineExceeded
        if case .none(let e) = choose(ci, nowMs: nowMs) { why = e }
        finish(call.id, why, nowMs: nowMs)
    }

    /// Leaves the current instance and tries the next one.
    @inline(never)
    mutating func failover(_ id: CallID, reason: CallError, breakerFailure: Bool, nowMs: UInt64) {
        guard let ci = callIndex(id) else { return }
        let call = calls[ci]
        guard let a = call.attempt else { return }
        calls[ci].attempt = nil
        calls[ci].lastError = reason
        noteTried(ci, a.node)
        if breakerFailure && !a.isLocal {
            breakerVerdict(node: a.node, serviceID: call.serviceID, success: false, nowMs: nowMs)
        } else {
            abandon(a)
        }
        dispatch(id, previousNode: a.node, nowMs: nowMs)
    }

    @inline(never)
    mutating func noteTried(_ ci: Int, _ node: UInt32) {
        let id = calls[ci].id
        if !hasTried(id, node) && triedCount(id) <= config.instancesMax {
            triedNodes.append(TriedNode(call: id, node: node))
        }
    }

    /// Every call whose attempt is on `node` (and `serviceID`, if given) fails over.
    @inline(never)
    mutating func failoverCalls(onNode node: UInt32, serviceID sid: UInt32?, reason: CallError, nowMs: UInt64) {
        // As in dispatchWaitingCalls: failover (with no breaker verdict)
        // removes at most this call.
        var ci = 0
        while ci < calls.count {
            let c = calls[ci]
            if let a = c.attempt, !a.isLocal, a.node == node, sid == nil || c.serviceID == sid {
                failover(c.id, reason: reason, breakerFailure: false, nowMs: nowMs)
            }
            if ci < calls.count && calls[ci].id == c.id { ci += 1 }
        }
    }

    /// The attempt ends without a verdict on the instance.
    @inline(never)
    mutating func abandon(_ a: Attempt) {
        if a.isLocal {
            if let h = a.localHandle, let si = serveTable.firstIndex(where: { $0.handle == h }) {
                removeServeEntry(at: si)  // handles are unique: one entry at most
            }
            return
        }
        guard a.trial, let ii = instanceIndex(node: a.node, serviceID: a.serviceID) else { return }
        instanceTable[ii].breaker.endTrial()
    }

    /// Records a success or failure on an instance's breaker and reports its
    /// transition; an opening breaker moves every call on it elsewhere.
    @inline(never)
    mutating func breakerVerdict(node: UInt32, serviceID sid: UInt32, success: Bool, nowMs: UInt64) {
        guard let ii = instanceIndex(node: node, serviceID: sid) else { return }
        let closeAfter = config.breakerHalfOpenSuccesses
        let threshold = config.breakerFailureThreshold
        let openMs = config.breakerOpenMs
        let transition = success
            ? instanceTable[ii].breaker.recordSuccess(closeAfter: closeAfter)
            : instanceTable[ii].breaker.recordFailure(nowMs: nowMs, threshold: threshold, openMs: openMs)
        switch transition {
        case .opened?:
            emit(.breakerOpened(node: node, service: sid))
            failoverCalls(onNode: node, serviceID: sid, reason: .allBreakersOpen, nowMs: nowMs)
        case .closed?:
            emit(.breakerClosed(node: node, service: sid))
        case .halfOpened?, nil:
            break
        }
    }

    // MARK: Answers

    /// How the caller treats a response status or error code.
    enum AnswerKind { case success, callerError, serviceMissing, deadline, failure }

    static func classify(_ status: UInt8) -> AnswerKind {
        switch status {
        case Status.ok.rawValue: return .success
        // noQuorum: the replica is healthy, and so would its peers answer.
        case Status.unknownOperation.rawValue, Status.badArguments.rawValue, Status.noQuorum.rawValue: return .callerError
        // notLeader: a healthy replica that does not lead: try the next one.
        case Status.unknownService.rawValue, Status.notLeader.rawValue: return .serviceMissing
        case Status.deadlineExceeded.rawValue: return .deadline
        default: return .failure  // busy, unavailable, internal error, version, frame rejected (1-8)
        }
    }

    @inline(never)
    mutating func onResponse(_ frame: Frame, from: NodeAddress, relayed: Bool, nowMs: UInt64) throws(WireError) {
        let response = try Response.decode(frame.payload)
        guard touch(frame, from: from, relayed: relayed, nowMs: nowMs) != .stale else { return }
        guard let ref = frame.ref else {
            counters.lateResponses &+= 1
            return
        }
        if probes.contains(where: { $0.target == frame.sender && $0.messageID == ref }) {
            probeAnswered(frame, response, nowMs: nowMs)
            return
        }
        guard let ci = attemptIndex(node: frame.sender, ref: ref) else {
            counters.lateResponses &+= 1  // after a failover, a deadline, or a duplicate answer
            return
        }
        toClient(.answer(call: ci, status: response.status, response), nowMs: nowMs)
    }

    @inline(never)
    mutating func onAck(_ frame: Frame, from: NodeAddress, relayed: Bool, nowMs: UInt64) {
        guard touch(frame, from: from, relayed: relayed, nowMs: nowMs) != .stale else { return }
        guard let ref = frame.ref, let ci = attemptIndex(node: frame.sender, ref: ref),
              var a = calls[ci].attempt else {
            // Not one of our calls: the answer to a message the application
            // sent (a config_update): it matches it by `ref`.
            emit(.deliver(frame))
            return
        }
        a.acked = true
        calls[ci].attempt = a
    }

    @inline(never)
    mutating func onError(_ frame: Frame, from: NodeAddress, relayed: Bool, nowMs: UInt64) throws(WireError) {
        let error = try ErrorReply.decode(frame.payload)
        if frame.ref == nil && error.code == Status.unsupportedVersion.rawValue {
            // A node of another major telling us its range: not a mesh member
            // for us (its own frames are rejected), so it stays out of the peer table.
            emit(.versionMismatch(from: from, majorMin: error.majorMin ?? 0, majorMax: error.majorMax ?? 0))
            return
        }
        guard touch(frame, from: from, relayed: relayed, nowMs: nowMs) != .stale else { return }
        guard let ref = frame.ref else { return }
        if probes.contains(where: { $0.target == frame.sender && $0.messageID == ref }) {
            counters.probesAnswered &+= 1  // it answered: alive, whatever it said
            dropProbes(target: frame.sender)
            return
        }
        guard let ci = attemptIndex(node: frame.sender, ref: ref) else {
            emit(.deliver(frame))  // as for acks: an answer to the application's message
            return
        }
        let code = error.code == 0 ? Status.internalError.rawValue : error.code
        toClient(.answer(call: ci, status: code, Response(status: code)), nowMs: nowMs)
    }

    @inline(never)
    func attemptIndex(node: UInt32, ref: MessageID) -> Int? {
        calls.firstIndex(where: { c in
            guard let a = c.attempt else { return false }
            return !a.isLocal && a.node == node && a.callMessageID == ref
        })
    }

    @inline(never)
    mutating func handleAnswer(_ ci: Int, status: UInt8, response: Response, nowMs: UInt64) {
        let call = calls[ci]
        guard let a = call.attempt else { return }
        switch MeshNode.classify(status) {
        case .success:
            calls[ci].attempt = nil
            if !a.isLocal { breakerVerdict(node: a.node, serviceID: call.serviceID, success: true, nowMs: nowMs) }
            succeed(call.id, node: a.node, response: response, nowMs: nowMs)
        case .callerError:
            // The instance is healthy; the call itself is wrong everywhere.
            calls[ci].attempt = nil
            if !a.isLocal { breakerVerdict(node: a.node, serviceID: call.serviceID, success: true, nowMs: nowMs) }
            finish(call.id, .remoteError(status), nowMs: nowMs)
        case .deadline:
            finish(call.id, .deadlineExceeded, nowMs: nowMs)  // abandons the attempt
        case .serviceMissing:
            // Our registry is stale for that node (drop the instance, ask
            // again), or it is a consensus follower (try the next instance).
            failover(call.id, reason: .remoteError(status), breakerFailure: false, nowMs: nowMs)
            if !a.isLocal && status == Status.unknownService.rawValue {
                forgetInstance(node: a.node, serviceID: call.serviceID, nowMs: nowMs)
            }
        case .failure:
            failover(call.id, reason: .remoteError(status), breakerFailure: !a.isLocal, nowMs: nowMs)
        }
    }

    @inline(never)
    mutating func succeed(_ id: CallID, node: UInt32, response: Response, nowMs: UInt64) {
        guard let ci = callIndex(id) else { return }
        let call = calls[ci]
        let descriptor = callDescriptors[ci]
        removeCall(at: ci)
        guard !descriptor.name.isEmpty else { return }  // no attempt was ever started
        if call.readsValue {
            rememberValue(call.serviceID, node: node, descriptor: descriptor, response: response, nowMs: nowMs)
        }
        counters.callsSucceeded &+= 1
        complete(id, .value(CallValue(response: response, node: node, service: descriptor, failovers: call.failovers)))
    }

    @inline(never)
    mutating func forgetInstance(node: UInt32, serviceID sid: UInt32, nowMs: UInt64) {
        if let ii = instanceIndex(node: node, serviceID: sid) {
            removeInstance(at: ii, reason: .unannounced, nowMs: nowMs)
        }
        if let pi = peerIndex(node) {
            peerTable[pi].announcedDigest = nil
            sendQuery(pi, nowMs: nowMs)
        }
    }

    /// Ends a call without a fresh value: the stale tier when the reason allows
    /// it and a last value is known, else the typed error.
    @inline(never)
    mutating func finish(_ id: CallID, _ error: CallError, nowMs: UInt64) {
        guard let ci = callIndex(id) else { return }
        let call = calls[ci]
        let serviceName = callNames[ci]
        removeCall(at: ci)
        if let a = call.attempt { abandon(a) }
        if call.readsValue && MeshNode.degradable(error),
           let si = staleValues.firstIndex(where: { $0.serviceID == call.serviceID }) {
            let s = staleValues[si]
            let age = nowMs - s.receivedMs + UInt64(s.ageMs)
            if staleDescriptors[si].name == serviceName && staleDescriptors[si].version.satisfies(caret: call.version)
                && age <= UInt64(config.staleValueMaxAgeMs) {
                counters.callsStale &+= 1
                let response = Response(status: s.status, value: s.value, unit: s.unit, ageMs: s.ageMs,
                                        result: staleResults[si])
                complete(id, .value(CallValue(response: response, node: s.node, service: staleDescriptors[si],
                                              staleAgeMs: UInt32(age), degradedBecause: error,
                                              failovers: call.failovers)))
                return
            }
        }
        counters.callsFailed &+= 1
        complete(id, .failed(error))
    }

    /// Failures a last-known value may stand in for (not the caller's own mistakes).
    static func degradable(_ error: CallError) -> Bool {
        switch error {
        case .noInstance, .incompatibleVersion, .allBreakersOpen, .unreachable, .deadlineExceeded:
            return true
        case .remoteError(let code):
            return code == Status.busy.rawValue || code == Status.unavailable.rawValue
                || code == Status.internalError.rawValue || code == Status.deadlineExceeded.rawValue
        case .tooManyCalls, .argumentsTooLarge, .badArguments, .stopped, .unknownNode, .nodeDown:
            return false
        }
    }

    @inline(never)
    mutating func rememberValue(_ sid: UInt32, node: UInt32, descriptor: ServiceDescriptor, response: Response,
                                nowMs: UInt64) {
        guard config.staleCacheMax > 0 else { return }
        let value = StaleValue(serviceID: sid, node: node, ageMs: response.ageMs, status: response.status,
                               unit: response.unit, value: response.value, receivedMs: nowMs)
        // The slot: this service's, a free one, or the oldest.
        var slot = staleValues.count
        if let i = staleValues.firstIndex(where: { $0.serviceID == sid }) {
            slot = i
        } else if staleValues.count >= config.staleCacheMax {
            slot = 0
            for i in staleValues.indices where staleValues[i].receivedMs < staleValues[slot].receivedMs { slot = i }
        }
        if slot == staleValues.count {
            staleValues.append(value)
            staleDescriptors.append(descriptor)
            staleResults.append(response.result)
        } else {
            staleValues[slot] = value
            staleDescriptors[slot] = descriptor
            staleResults[slot] = response.result
        }
    }
}

extension CallError {
    var isIncompatibleVersion: Bool {
        if case .incompatibleVersion = self { return true }
        return false
    }
}

/// Empty (no arguments) or exactly one well-formed CBOR item, as Request key 3 requires.
func isOneCBORItem(_ bytes: [UInt8]) -> Bool {
    if bytes.isEmpty { return true }
    var r = CBORReader(bytes, depthMax: WireLimits.cborDepthMax)
    guard (try? r.skip()) != nil else { return false }
    return r.isAtEnd
}
