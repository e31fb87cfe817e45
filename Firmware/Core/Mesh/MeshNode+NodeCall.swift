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
        let id = newCallID()
        if let error = admitCall(arguments: arguments, nameIsValid: true, nowMs: nowMs) { return failNow(id, error) }
        let nowMs = advanceClock(nowMs)
        if node != nodeID {
            guard let pi = peerIndex(node) else { return failNow(id, .unknownNode) }
            let state = peerTable[pi].state
            guard state == .alive || state == .suspect else { return failNow(id, .nodeDown) }
        }
        return startCall(Call(id: id, serviceID: 0, version: SemVer(0, 0, 0), operation: operation, readsValue: false,
                              targetNode: node, deadlineAtMs: nowMs + UInt64(min(deadlineMs, config.callDeadlineMaxMs))),
                         name: [], arguments: arguments, descriptor: nodeCallDescriptor(), nowMs: nowMs)
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
        if triedCount(call.id) != 0 {
            var why = call.lastError ?? .unreachable
            if let pi = peerIndex(target), peerTable[pi].state == .dead || peerTable[pi].state == .left {
                why = .nodeDown
            }
            finish(call.id, why, nowMs: nowMs)
            return
        }
        triedNodes.append(TriedNode(call: call.id, node: target))
        if target != nodeID {
            startRemoteAttempt(ci, node: target, trial: false, nowMs: nowMs)
        } else if call.operation == .status {
            // Answered by the mesh itself, as for a remote caller.
            succeed(call.id, node: nodeID, response: Response(result: nodeStatus(nowMs: nowMs).encode()), nowMs: nowMs)
        } else {
            startLocalAttempt(ci, nowMs: nowMs)
        }
    }

    /// This node's `status` result (PROTOCOL.md "Failure detection"): what a
    /// probe's answer carries.
    func nodeStatus(nowMs: UInt64) -> NodeStatus {
        NodeStatus(incarnation: incarnation, uptimeS: UInt32(truncatingIfNeeded: (nowMs - startMs) / 1000),
                   servicesDigest: localDigest, freeMemoryBytes: localFreeMemoryBytes,
                   loadPercent: localLoadPercent, activity: localActivity)
    }
}
