// Datagram intake: decode and authenticate (Frame.decode), replay check
// (ReplayWindow), then one handler per message type. Every rejection is
// counted by WireError.code, surfaced as an event, and the datagram dropped.

extension MeshNode {
    /// Feeds one received datagram. `from` is its source address.
    public mutating func handleDatagram(_ bytes: [UInt8], from: NodeAddress, nowMs: UInt64) {
        guard lifecycle == .running else {
            counters.notRunningDrops &+= 1
            return
        }
        counters.framesReceived &+= 1
        let nowMs = advanceClock(nowMs)
        let frame: Frame
        do {
            frame = try Frame.decode(bytes, keys: keys)
        } catch {
            reject(error, from: from)
            if case .badVersion = error { answerUnsupportedVersion(to: from, nowMs: nowMs) }
            return
        }
        // Our own broadcasts may loop back; they must not enter our replay state.
        if frame.sender == nodeID {
            counters.ownFramesIgnored &+= 1
            return
        }
        do {
            try replay.accept(sender: frame.sender, id: frame.id, nowMs: nowMs)
        } catch {
            reject(error, from: from)
            return
        }
        if rateLimiter?.admit(sender: frame.sender, nowMs: nowMs) == false {
            counters.rateLimited &+= 1
            return
        }
        do {
            try dispatch(frame, from: from, nowMs: nowMs)
        } catch {
            reject(error, from: from)
        }
    }

    @inline(never)
    mutating func reject(_ error: WireError, from: NodeAddress) {
        counters.rejected[Int(error.code)] &+= 1
        emit(.frameRejected(error, from: from))
    }

    @inline(never)
    mutating func dispatch(_ frame: Frame, from: NodeAddress, nowMs: UInt64) throws(WireError) {
        let relayed = frame.flags.contains(.relayed)
        switch frame.type {
        case .heartbeat: try onHeartbeat(frame, from: from, relayed: relayed, nowMs: nowMs)
        case .announce: try onAnnounce(frame, from: from, relayed: relayed, nowMs: nowMs)
        case .query: try onQuery(frame, from: from, relayed: relayed, nowMs: nowMs)
        case .leave: try onLeave(frame, nowMs: nowMs)
        case .request: try onRequest(frame, from: from, relayed: relayed, nowMs: nowMs)
        case .response: try onResponse(frame, from: from, relayed: relayed, nowMs: nowMs)
        case .ack: onAck(frame, from: from, relayed: relayed, nowMs: nowMs)
        case .error: try onError(frame, from: from, relayed: relayed, nowMs: nowMs)
        case .relay: try onRelay(frame, from: from, relayed: relayed, nowMs: nowMs)
        case .configUpdate, .metrics, .subscribe, .notify,
             .raftRequestVote, .raftRequestVoteResponse, .raftAppendEntries, .raftAppendEntriesResponse:
            guard touch(frame, from: from, relayed: relayed, nowMs: nowMs) != .stale else { return }
            emit(.deliver(frame))
        default:
            if frame.type.rawValue >= 128 {
                guard touch(frame, from: from, relayed: relayed, nowMs: nowMs) != .stale else { return }
                emit(.deliver(frame))
            } else {
                // Reserved for a later minor of the protocol: counted and dropped.
                counters.unknownTypes &+= 1
            }
        }
    }

    /// A node that restarted (a new boot epoch) is a new instance: the failures
    /// of its previous boot say nothing of it, so its breakers start closed.
    @inline(never)
    mutating func resetBreakers(node: UInt32) {
        for i in instanceTable.indices where instanceTable[i].node == node {
            let wasOpen = instanceTable[i].breaker.state != .closed
            instanceTable[i].breaker = CircuitBreaker()
            if wasOpen { emit(.breakerClosed(node: node, service: instanceTable[i].serviceID)) }
        }
    }

    enum Touch: Equatable {
        /// Tracked in the peer table at this index.
        case tracked(Int)
        /// Authentic and fresh, but the peer table is full of live peers.
        case untracked
        /// From an older epoch than we know for this sender: ignore.
        case stale
    }

    /// An authentic, fresh frame is proof of life: creates or refreshes the
    /// sender's peer entry, its route, and asks it for its services when we
    /// do not know them.
    @inline(never)
    mutating func touch(_ frame: Frame, from: NodeAddress, relayed: Bool, nowMs: UInt64,
                        isAnnounce: Bool = false) -> Touch {
        let sender = frame.sender
        var needsQuery = false
        let pi: Int
        if let found = peerIndex(sender) {
            pi = found
            // The peer's own bookkeeping in place (one access to the table, not one per field).
            let heard = peerTable[pi].heard(frame.id)
            if heard.contains(.stale) {
                counters.staleFrames &+= 1
                return .stale
            }
            needsQuery = heard.contains(.needsQuery)
            if heard.contains(.restarted) { emit(.peerRestarted(sender)) }
            if heard.contains(.newEpoch) { resetBreakers(node: sender) }
            if heard.contains(.recovered) {
                dropProbes(target: sender)
                emit(.peerRecovered(sender))
            }
            if heard.contains(.joined) { emit(.peerJoined(sender)) }
        } else {
            guard let slot = freePeerSlot() else {
                counters.peerTableFull &+= 1
                return .untracked
            }
            let peer = Peer(nodeID: sender, epoch: frame.id.epoch, lastHeardMs: nowMs)
            if slot == peerTable.count {
                peerTable.append(peer)
                peerNames.append([])
            } else {
                peerTable[slot] = peer
                peerNames[slot] = []
            }
            pi = slot
            needsQuery = true
            emit(.peerJoined(sender))
        }
        peerTable[pi].lastHeardMs = nowMs
        updateRoute(pi, from: from, relayed: relayed, nowMs: nowMs)
        if needsQuery && !isAnnounce { sendQuery(pi, nowMs: nowMs) }
        return .tracked(pi)
    }

    /// A slot for a new peer: a free one, else the longest-gone tombstone
    /// (dead or left). Live peers are never evicted.
    @inline(never)
    mutating func freePeerSlot() -> Int? {
        if peerTable.count < config.peersMax { return peerTable.count }
        var victim: Int?
        for i in peerTable.indices where peerTable[i].state == .dead || peerTable[i].state == .left {
            if victim == nil || peerTable[i].lastHeardMs < peerTable[victim!].lastHeardMs { victim = i }
        }
        return victim
    }

    /// Direct frames fix the peer's address and route. A relayed one means the
    /// relay (found by the datagram's source address) reaches the peer; it
    /// becomes the route when the direct path has been silent for suspectAfterMs.
    @inline(never)
    mutating func updateRoute(_ pi: Int, from: NodeAddress, relayed: Bool, nowMs: UInt64) {
        let sender = peerTable[pi].nodeID
        if !relayed {
            if peerTable[pi].heardDirect(from: from, nowMs: nowMs) { emit(.directPathRestored(sender)) }
            return
        }
        guard let ri = peerIndex(address: from) else { return }
        let via = peerTable[ri].nodeID
        guard via != sender, peerTable[ri].relayVia == nil else { return }
        // Sticky: answers through other helpers do not move the route (it is
        // cleared when this relay dies or the direct path comes back).
        if peerTable[pi].useRelay(via, nowMs: nowMs, directFreshMs: UInt64(config.suspectAfterMs),
                                  probeIntervalMs: UInt64(config.relayProbeIntervalMs)) {
            emit(.relayUsed(target: sender, via: via))
            toClient(.newRoute(sender), nowMs: nowMs)
        }
    }

    // MARK: Relay (type 11)

    @inline(never)
    mutating func onRelay(_ frame: Frame, from: NodeAddress, relayed: Bool, nowMs: UInt64) throws(WireError) {
        let envelope = try RelayEnvelope.decode(frame.payload)
        guard !relayed else {  // envelopes are never nested
            counters.relaysDropped &+= 1
            return
        }
        guard touch(frame, from: from, relayed: false, nowMs: nowMs) != .stale else { return }
        guard config.relayEnabled, envelope.destination != nodeID,
              RelayEnvelope.innerFrameIsForwardable(envelope.frame, envelopeSender: frame.sender),
              let di = peerIndex(envelope.destination),
              peerTable[di].state == .alive || peerTable[di].state == .suspect,
              peerTable[di].relayVia == nil,  // one hop only: we must reach it directly
              let to = peerTable[di].address
        else {
            counters.relaysDropped &+= 1
            return
        }
        counters.relaysForwarded &+= 1
        emitSend(to, envelope.frame)
    }

    // MARK: Unsupported major

    /// The version error of PROTOCOL.md "Receiving", step 2: at most one per
    /// source per versionReplyIntervalMs, from a fixed table (LRU).
    @inline(never)
    mutating func answerUnsupportedVersion(to: NodeAddress, nowMs: UInt64) {
        let key = UInt64(to.host) << 16 | UInt64(to.port)
        guard MeshNode.admit(&versionReplies, key: key, capacity: config.versionReplySourcesMax,
                             intervalMs: UInt64(config.versionReplyIntervalMs), evictOnlyExpired: true, nowMs: nowMs)
        else {
            counters.versionErrorsSuppressed &+= 1
            return
        }
        counters.versionErrorsSent &+= 1
        emitSend(to, frame(.error, ErrorReply.unsupportedVersion().encode(), nowMs: nowMs))
    }
}

extension MeshNode.Peer {
    /// What `touch` makes of a frame with id `id` from this (known) peer.
    struct Heard: OptionSet {
        let rawValue: UInt8
        /// From an older epoch, or sent before its leave: nothing was changed.
        static let stale = Heard(rawValue: 1)
        /// A newer epoch (the node rebooted): its breakers start closed.
        static let newEpoch = Heard(rawValue: 2)
        /// ... and it was alive or suspect: `peerRestarted`.
        static let restarted = Heard(rawValue: 4)
        /// It was suspect: its probes go, `peerRecovered`.
        static let recovered = Heard(rawValue: 8)
        /// It was dead or had left: `peerJoined`.
        static let joined = Heard(rawValue: 16)
        /// Its services must be asked for.
        static let needsQuery = Heard(rawValue: 32)
    }

    /// touch's changes to the peer itself: a newer epoch resets it, any fresh
    /// frame makes it alive. The node does the rest (events, breakers, probes).
    mutating func heard(_ id: MessageID) -> Heard {
        if id.epoch < epoch { return .stale }
        if state == .left, let leaveID, id.epoch == leaveID.epoch, id.sequence < leaveID.sequence {
            return .stale  // sent before its leave, delivered after
        }
        var heard = Heard(rawValue: 0)
        if id.epoch > epoch {
            epoch = id.epoch
            incarnation = 0
            announcedDigest = nil
            heard = Heard(rawValue: Heard.newEpoch.rawValue | Heard.needsQuery.rawValue
                | (state == .alive || state == .suspect ? Heard.restarted.rawValue : 0))
        }
        switch state {
        case .alive:
            break
        case .suspect:
            state = .alive
            heard.insert(.recovered)
        case .dead, .left:
            state = .alive
            announcedDigest = nil
            relayVia = nil
            heardDirectMs = nil
            heard = Heard(rawValue: heard.rawValue | Heard.joined.rawValue | Heard.needsQuery.rawValue)
        }
        return heard
    }

    /// Heard directly from `from`: true if that ends its relay route.
    mutating func heardDirect(from: NodeAddress, nowMs: UInt64) -> Bool {
        address = from
        heardDirectMs = nowMs
        guard relayVia != nil else { return false }
        relayVia = nil
        return true
    }

    /// Heard through relay `via`: takes it as the route (true) unless it was
    /// heard directly within `directFreshMs` or already has a route.
    mutating func useRelay(_ via: UInt32, nowMs: UInt64, directFreshMs: UInt64, probeIntervalMs: UInt64) -> Bool {
        if let direct = heardDirectMs, nowMs - direct < directFreshMs { return false }
        guard relayVia == nil else { return false }
        relayVia = via
        nextRelayProbeAtMs = nowMs + probeIntervalMs
        return true
    }
}
