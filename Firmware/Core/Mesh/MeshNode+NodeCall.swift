// Node-targeted calls: service 0 (the node itself) on one named node, for
// `status`, `metrics`, `tasks`, `config get` and the like. Same machinery as a
// service call (a Call record, CoAP retransmission with `ref` = the call id,
// server dedup, the caller's deadline, exactly one `.complete`), but the node
// is fixed: no instance choice, no failover, no breaker, no stale tier. The
// call fails with a typed error when the node is unknown (`unknownNode`), dead
// or gone (`nodeDown`, also when it dies during the call), silent through the
// whole retransmission budget (`unreachable`), or answers an error status
// (`remoteError`).
//
// A call to this node itself is served locally: `status` by the mesh, every
// other operation by the application (`.serve` with service 0).

extension MeshNode {
    /// Calls `operation` on service 0 of `node`. Exactly one `.complete(id, ...)`
    /// follows, before `deadlineMs` from now has passed. On success the value's
    /// `service` is a placeholder descriptor named "node".
    @inline(never)
    public mutating func call(node: UInt32, operation: Operation, arguments: [UInt8] = [], deadlineMs: UInt32,
                              nowMs: UInt64) -> CallID {
        client = MeshNode.runClient
        let id = CallID(raw: nextCallRaw)
        nextCallRaw = nextCallRaw == UInt32.max ? 1 : nextCallRaw + 1
        counters.callsStarted &+= 1
        guard lifecycle == .running else { return failNow(id, .stopped) }
        let nowMs = advanceClock(nowMs)
        guard arguments.count <= MeshConfig.rpcPayloadBytesMax else { return failNow(id, .argumentsTooLarge) }
        guard isOneCBORItem(arguments) else { return failNow(id, .badArguments) }
        guard calls.count < config.callsInFlightMax else { return failNow(id, .tooManyCalls) }
        if node != nodeID {
            guard let pi = peerIndex(node) else { return failNow(id, .unknownNode) }
            let state = peerTable[pi].state
            guard state == .alive || state == .suspect else { return failNow(id, .nodeDown) }
        }
        let deadline = nowMs + UInt64(min(deadlineMs, config.callDeadlineMaxMs))
        calls.append(Call(id: id, serviceID: 0, version: SemVer(0, 0, 0), operation: operation, readsValue: false,
                          targetNode: node, deadlineAtMs: deadline))
        callInputs.append(CallInputs(serviceName: [], arguments: arguments, descriptor: nodeCallDescriptor()))
        dispatch(id, previousNode: nil, nowMs: nowMs)
        return id
    }

    /// What a node call's CallValue names as its service.
    func nodeCallDescriptor() -> ServiceDescriptor {
        ServiceDescriptor(name: [0x6E, 0x6F, 0x64, 0x65], version: SemVer(1, 0, 0), role: .client,  // "node"
                          capabilities: [], priority: 0, port: address.port)
    }

    /// Starts the one attempt of a node call, or (reached again after the
    /// attempt failed: `dispatch` from `failover`) finishes it with the reason.
    @inline(never)
    mutating func dispatchNodeCall(_ ci: Int, target: UInt32, nowMs: UInt64) {
        let call = calls[ci]
        if !callInputs[ci].tried.isEmpty {
            var why = call.lastError ?? .unreachable
            if let pi = peerIndex(target), peerTable[pi].state == .dead || peerTable[pi].state == .left {
                why = .nodeDown
            }
            finish(call.id, why, nowMs: nowMs)
            return
        }
        callInputs[ci].tried.append(target)
        if target == nodeID {
            startLocalNodeAttempt(ci, nowMs: nowMs)
            return
        }
        let initial = UInt64(config.rpcInitialTimeoutMs)
        let timeout = rng.between(initial, initial * UInt64(config.rpcRandomFactorPercent) / 100)
        calls[ci].attempt = Attempt(node: target, serviceID: 0, isLocal: false, callMessageID: ids.make(),
                                    localHandle: nil, transmissions: 1, timeoutMs: timeout,
                                    nextEventAtMs: nowMs + timeout, trial: false)
        transmit(ci, first: true, nowMs: nowMs)
    }

    @inline(never)
    mutating func startLocalNodeAttempt(_ ci: Int, nowMs: UInt64) {
        let call = calls[ci]
        if call.operation == .status {
            succeed(call.id, node: nodeID, response: Response(result: nodeStatus(nowMs: nowMs).encode()), nowMs: nowMs)
            return
        }
        let handle = newServeHandle()
        serveTable.append(ServeEntry(handle: handle, client: nodeID, callMessageID: MessageID(raw: 0),
                                     replyAddress: address, relayed: false, localCall: call.id, stampMs: nowMs))
        calls[ci].attempt = Attempt(node: nodeID, serviceID: 0, isLocal: true, callMessageID: MessageID(raw: 0),
                                    localHandle: handle, transmissions: 0, timeoutMs: 0, nextEventAtMs: nil,
                                    trial: false)
        let left = UInt32(min(UInt64(UInt32.max), call.deadlineAtMs > nowMs ? call.deadlineAtMs - nowMs : 0))
        emit(.serve(handle, Request(service: 0, operation: call.operation, arguments: callInputs[ci].arguments,
                                    deadlineMs: left), from: nodeID))
    }

    /// This node's `status` result (PROTOCOL.md "Failure detection"): what a
    /// probe's answer carries.
    func nodeStatus(nowMs: UInt64) -> NodeStatus {
        NodeStatus(incarnation: incarnation, uptimeS: UInt32(truncatingIfNeeded: (nowMs - startMs) / 1000),
                   servicesDigest: localDigest, freeMemoryBytes: localFreeMemoryBytes,
                   loadPercent: localLoadPercent, activity: localActivity)
    }
}
