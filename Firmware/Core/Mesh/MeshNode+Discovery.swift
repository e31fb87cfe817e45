// Discovery and the service registry. Announces are broadcast at start, every
// announceIntervalMs, and when the local services change; heartbeats carry a
// digest of the sender's services, and a receiver whose copy differs (or that
// has never seen the sender) sends it a `query`, answered by a unicast
// announce. So a node that missed an announce, or spent time in another
// partition, catches up within one heartbeat of hearing the sender again.

extension MeshNode {
    // MARK: Sending

    mutating func announcePayload() -> [UInt8] {
        Announce(services: services, nodeName: name).encode()
    }

    @inline(never)
    mutating func broadcastAnnounce(nowMs: UInt64) {
        counters.announcesSent &+= 1
        emitBroadcast(frame(.announce, announcePayload(), nowMs: nowMs))
    }

    @inline(never)
    mutating func sendHeartbeat(nowMs: UInt64) {
        let hb = Heartbeat(uptimeS: UInt32(truncatingIfNeeded: (nowMs - startMs) / 1000),
                           freeMemoryBytes: localFreeMemoryBytes, activity: localActivity,
                           loadPercent: localLoadPercent, servicesDigest: localDigest, incarnation: incarnation)
        counters.heartbeatsSent &+= 1
        emitBroadcast(frame(.heartbeat, hb.encode(), nowMs: nowMs))
    }

    /// Asks one peer for all its services; at most once per queryIntervalMinMs.
    @inline(never)
    mutating func sendQuery(_ pi: Int, nowMs: UInt64) {
        guard peerTable[pi].queryDue(nowMs: nowMs, intervalMs: UInt64(config.queryIntervalMinMs)) else { return }
        counters.queriesSent &+= 1
        sendToNode(peerTable[pi].nodeID, .query, Query().encode(), nowMs: nowMs)
    }

    /// Broadcast query for one service a call is waiting for; rate-limited per service.
    @inline(never)
    mutating func seek(_ ci: Int, nowMs: UInt64) {
        guard MeshNode.admit(&sought, key: UInt64(calls[ci].serviceID), capacity: config.callsInFlightMax,
                             intervalMs: UInt64(config.queryIntervalMinMs), evictOnlyExpired: false, nowMs: nowMs)
        else { return }
        counters.queriesSent &+= 1
        emitBroadcast(frame(.query, Query(name: callNames[ci], version: calls[ci].version).encode(),
                            nowMs: nowMs))
    }

    // MARK: Receiving

    @inline(never)
    mutating func onHeartbeat(_ frame: Frame, from: NodeAddress, relayed: Bool, nowMs: UInt64) throws(WireError) {
        let hb = try Heartbeat.decode(frame.payload)
        if let pi = peerIndex(frame.sender), peerTable[pi].epoch == frame.id.epoch,
           hb.incarnation < peerTable[pi].incarnation {
            counters.staleFrames &+= 1  // older than a refutation we already saw
            return
        }
        guard case .tracked(let pi) = touch(frame, from: from, relayed: relayed, nowMs: nowMs) else { return }
        peerTable[pi].heartbeat = hb
        peerTable[pi].incarnation = max(peerTable[pi].incarnation, hb.incarnation)
        confirmDigest(pi, hb.servicesDigest, nowMs: nowMs)
    }

    /// A digest equal to the last announce's confirms every instance of the
    /// peer (they stay in the registry); a different one asks for the list.
    @inline(never)
    mutating func confirmDigest(_ pi: Int, _ digest: UInt16, nowMs: UInt64) {
        let node = peerTable[pi].nodeID
        if peerTable[pi].announcedDigest == digest {
            for i in instanceTable.indices where instanceTable[i].node == node {
                instanceTable[i].confirmedMs = nowMs
            }
        } else {
            sendQuery(pi, nowMs: nowMs)
        }
    }

    @inline(never)
    mutating func onAnnounce(_ frame: Frame, from: NodeAddress, relayed: Bool, nowMs: UInt64) throws(WireError) {
        let announce = try Announce.decode(frame.payload)
        guard case .tracked(let pi) = touch(frame, from: from, relayed: relayed, nowMs: nowMs, isAnnounce: true) else {
            return
        }
        if !announce.nodeName.isEmpty { peerNames[pi] = announce.nodeName }
        peerTable[pi].announcedDigest = servicesDigest(announce.services)
        applyAnnounce(node: frame.sender, announce.services, nowMs: nowMs)
    }

    /// Makes the registry's instances of `node` exactly `list`.
    @inline(never)
    mutating func applyAnnounce(node: UInt32, _ list: [ServiceDescriptor], nowMs: UInt64) {
        var i = 0
        while i < instanceTable.count {
            if instanceTable[i].node == node && !list.contains(where: { $0.name == instanceDescriptors[i].name }) {
                removeInstance(at: i, reason: .unannounced, nowMs: nowMs)
            } else {
                i += 1
            }
        }
        var added = false
        for s in list {
            let sid = serviceID(s.name)
            if let j = instanceIndex(node: node, serviceID: sid) {
                instanceDescriptors[j] = s
                instanceTable[j].confirmedMs = nowMs
            } else if instanceTable.count < config.instancesMax {
                instanceTable.append(Instance(node: node, serviceID: sid, confirmedMs: nowMs))
                instanceDescriptors.append(s)
                emit(.serviceAdded(node: node, service: sid))
                added = true
            } else {
                counters.registryFull &+= 1
            }
        }
        if added { toClient(.instancesChanged, nowMs: nowMs) }
    }

    @inline(never)
    mutating func onQuery(_ frame: Frame, from: NodeAddress, relayed: Bool, nowMs: UInt64) throws(WireError) {
        let query = try Query.decode(frame.payload)
        guard touch(frame, from: from, relayed: relayed, nowMs: nowMs) != .stale else { return }
        if !query.name.isEmpty {
            let offered = services.contains(where: { s in
                guard s.name == query.name else { return false }
                guard let v = query.version else { return true }
                return s.version.satisfies(caret: v)
            })
            guard offered else { return }
        }
        counters.announcesSent &+= 1
        reply(to: frame.sender, at: from, relayed: relayed, .announce, announcePayload(), ref: nil, nowMs: nowMs)
    }

    @inline(never)
    mutating func onLeave(_ frame: Frame, nowMs: UInt64) throws(WireError) {
        _ = try Leave.decode(frame.payload)
        // The peer's fields in place, in one access (one per field before).
        guard let pi = peerIndex(frame.sender), peerTable[pi].left(frame.id, nowMs: nowMs) else { return }
        emit(.peerLeft(frame.sender))
        peerGone(frame.sender, reason: .left, nowMs: nowMs)
    }

    // MARK: Registry maintenance

    /// Removes a peer's services, its probes and the routes through it; calls
    /// on it fail over. Used for leave and death.
    @inline(never)
    mutating func peerGone(_ node: UInt32, reason: ServiceRemovalReason, nowMs: UInt64) {
        if let pi = peerIndex(node) {
            peerTable[pi].relayVia = nil
            peerTable[pi].announcedDigest = nil
        }
        dropProbes(target: node, alsoVia: true)
        for i in peerTable.indices where peerTable[i].relayVia == node {
            peerTable[i].relayVia = nil  // back to the direct path; probes will find another relay
        }
        var i = 0
        while i < instanceTable.count {
            if instanceTable[i].node == node {
                removeInstance(at: i, reason: reason, nowMs: nowMs)
            } else {
                i += 1
            }
        }
        toClient(.nodeLost(node, serviceID: nil, .unreachable), nowMs: nowMs)
    }

    @inline(never)
    mutating func removeInstance(at i: Int, reason: ServiceRemovalReason, nowMs: UInt64) {
        let inst = instanceTable[i]
        instanceTable.remove(at: i)
        instanceDescriptors.remove(at: i)
        emit(.serviceRemoved(node: inst.node, service: inst.serviceID, reason: reason))
        toClient(.nodeLost(inst.node, serviceID: inst.serviceID, .unreachable), nowMs: nowMs)
    }

    /// Expiry of unconfirmed instances and breaker open -> half-open, each at
    /// its own time (the earliest one is in nextTimeoutMs).
    @inline(never)
    mutating func checkInstanceTimers(nowMs: UInt64) {
        let ttl = UInt64(config.serviceTTLMs)
        var i = 0
        while i < instanceTable.count {
            if nowMs >= instanceTable[i].confirmedMs + ttl {
                removeInstance(at: i, reason: .expired, nowMs: nowMs)
            } else {
                i += 1
            }
        }
        var halfOpened = false
        for j in instanceTable.indices {
            if pollBreaker(j, nowMs: nowMs) { halfOpened = true }
        }
        if halfOpened { toClient(.instancesChanged, nowMs: nowMs) }
    }

    /// Moves an open breaker to half-open when its time has come; true if it did.
    @inline(never)
    mutating func pollBreaker(_ j: Int, nowMs: UInt64) -> Bool {
        guard instanceTable[j].breaker.poll(nowMs: nowMs) != nil else { return false }
        emit(.breakerHalfOpen(node: instanceTable[j].node, service: instanceTable[j].serviceID))
        return true
    }
}

extension MeshNode.Peer {
    /// onLeave's change to the peer: alive or suspect, and the leave not
    /// from an older epoch, it has left (true); else nothing changes.
    @inline(__always)
    mutating func left(_ id: MessageID, nowMs: UInt64) -> Bool {
        guard id.epoch >= epoch, state == .alive || state == .suspect else { return false }
        state = .left
        leaveID = id
        lastHeardMs = nowMs
        return true
    }

    /// sendQuery's rate limit: true, with the time noted, when no query went
    /// to it within `intervalMs`.
    @inline(__always)
    mutating func queryDue(nowMs: UInt64, intervalMs: UInt64) -> Bool {
        if let last = lastQueryMs, nowMs - last < intervalMs { return false }
        lastQueryMs = nowMs
        return true
    }
}
