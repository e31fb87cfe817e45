// Failure detection. Every authentic frame from a peer refreshes its
// last-heard time. A peer silent for suspectAfterMs becomes suspect and is
// probed (SWIM, Das et al. 2002): a `status` request to it directly and, in
// `relay` envelopes, through indirectProbeCount random live peers, so that one
// broken link does not evict a healthy node. Any answer refutes the suspicion
// (and an answer that came through a relay makes that relay the peer's
// route); silence until deadAfterMs declares it dead. Probes carry the
// incarnation at which the target is suspected; the target raises its
// incarnation above it and broadcasts a heartbeat: the refutation reaches every
// node that suspects it, even one whose probe was lost.

extension MeshNode {
    @inline(never)
    mutating func checkPeerTimers(nowMs: UInt64) {
        let suspectAfter = UInt64(config.suspectAfterMs)
        let deadAfter = UInt64(config.deadAfterMs)
        let relayProbeInterval = UInt64(config.relayProbeIntervalMs)
        // Tombstones are never removed here, so indices are stable.
        for pi in peerTable.indices {
            // The peer's own fields change in place, in one access; the node acts on the flags.
            let due = peerTable[pi].timersDue(nowMs: nowMs, suspectAfterMs: suspectAfter,
                                              deadAfterMs: deadAfter, relayProbeIntervalMs: relayProbeInterval)
            if due.rawValue == 0 { continue }
            let node = peerTable[pi].nodeID
            if due.contains(.dead) {
                declareDead(pi, nowMs: nowMs)
                continue
            }
            if due.contains(.suspected) { emit(.peerSuspected(node)) }
            if due.contains(.probes) { sendProbes(pi, nowMs: nowMs) }
            if due.contains(.relayProbe), let via = peerTable[pi].relayVia {
                // Stands in for the heartbeats the broken direct path no longer carries.
                sendProbe(target: node, via: via, suspected: false, nowMs: nowMs)
            }
        }
    }

    @inline(never)
    mutating func declareDead(_ pi: Int, nowMs: UInt64) {
        let node = peerTable[pi].nodeID
        peerTable[pi].state = .dead
        emit(.peerDead(node))
        peerGone(node, reason: .dead, nowMs: nowMs)
    }

    /// A direct probe plus up to indirectProbeCount relayed ones through
    /// distinct live peers chosen at random (seeded).
    @inline(never)
    mutating func sendProbes(_ pi: Int, nowMs: UInt64) {
        let target = peerTable[pi].nodeID
        if peerTable[pi].address != nil {
            sendProbe(target: target, via: nil, suspected: true, nowMs: nowMs)
        }
        guard config.indirectProbeCount > 0 else { return }
        var helpers: [Int] = []
        helpers.reserveCapacity(peerTable.count)
        for i in peerTable.indices where i != pi {
            let p = peerTable[i]
            if p.state == .alive && p.address != nil && p.relayVia == nil { helpers.append(i) }
        }
        var picked = 0
        while picked < config.indirectProbeCount && picked < helpers.count {
            // Partial Fisher-Yates: helpers[picked] becomes a random one of the rest.
            let j = picked + Int(rng.below(UInt64(helpers.count - picked)))
            helpers.swapAt(picked, j)
            sendProbe(target: target, via: peerTable[helpers[picked]].nodeID, suspected: true, nowMs: nowMs)
            picked += 1
        }
    }

    /// A node `status` request to `target`, directly (via nil) or relayed.
    /// `suspected`: carries the incarnation at which we suspect it.
    @inline(never)
    mutating func sendProbe(target: UInt32, via: UInt32?, suspected: Bool, nowMs: UInt64) {
        guard let ti = peerIndex(target) else { return }
        let arguments = suspected ? ProbeArguments(suspectedIncarnation: peerTable[ti].incarnation).encode() : []
        let request = Request(service: 0, operation: .status, arguments: arguments,
                              deadlineMs: config.deadAfterMs - config.suspectAfterMs)
        let id = ids.make()
        // The address first, then one encode (one per branch was inlined twice).
        var hop = ti  // the peer the datagram goes to: the target or the relay
        if let via {
            guard let vi = peerIndex(via) else { return }
            hop = vi
        }
        guard let to = peerTable[hop].address else { return }
        let payload = request.encode()
        if via == nil {
            emitSend(to, frame(.request, payload, id: id, priority: .high, nowMs: nowMs))
        } else {
            guard sendRelayed(destination: target, relayAddress: to, .request, payload, id: id,
                              priority: .high, nowMs: nowMs) else { return }
        }
        if probes.count >= config.probesMax { probes.removeFirst() }  // the oldest is the least likely answered
        probes.append(Probe(via: via, target: target, messageID: id))
        counters.probesSent &+= 1
    }

    /// A probe was answered (the frame was already `touch`ed: the peer is alive
    /// and its route updated). Its status result carries incarnation and digest.
    @inline(never)
    mutating func probeAnswered(_ frame: Frame, _ response: Response, nowMs: UInt64) {
        counters.probesAnswered &+= 1
        dropProbes(target: frame.sender)
        guard let pi = peerIndex(frame.sender), !response.result.isEmpty,
              let status = try? NodeStatus.decode(response.result) else { return }
        peerTable[pi].incarnation = max(peerTable[pi].incarnation, status.incarnation)
        confirmDigest(pi, status.servicesDigest, nowMs: nowMs)
    }

    /// Answers service 0's `status` itself (the SWIM probe); a probe naming our
    /// current incarnation (or above) makes us refute it. Other service-0
    /// operations go to the application (MeshNode+Server).
    @inline(never)
    mutating func answerNodeRequest(_ frame: Frame, _ request: Request, from: NodeAddress, relayed: Bool,
                                    nowMs: UInt64) {
        if let probe = ProbeArguments.decode(request.arguments), probe.suspectedIncarnation >= incarnation,
           probe.suspectedIncarnation < UInt32.max {
            incarnation = probe.suspectedIncarnation + 1
            emit(.refuted(incarnation: incarnation))
            sendHeartbeat(nowMs: nowMs)
        }
        let response = Response(result: nodeStatus(nowMs: nowMs).encode())
        reply(to: frame.sender, at: from, relayed: relayed, .response, response.encode(),
              ref: frame.ref ?? frame.id, nowMs: nowMs)
    }
}

extension MeshNode.Peer {
    /// What `checkPeerTimers` must do for this peer.
    struct TimersDue: OptionSet {
        let rawValue: UInt8
        /// It went silent: now suspect (`peerSuspected`).
        static let suspected = TimersDue(rawValue: 1)
        /// Probe it (first or second round).
        static let probes = TimersDue(rawValue: 2)
        /// Suspect for too long: `declareDead` (nothing else).
        static let dead = TimersDue(rawValue: 4)
        /// A probe through its relay is due.
        static let relayProbe = TimersDue(rawValue: 8)
    }

    /// checkPeerTimers' changes to the peer itself: alive -> suspect (its relay
    /// route forgotten, a second probe round halfway to the dead deadline), the
    /// second round's time, the next relay probe's time.
    mutating func timersDue(nowMs: UInt64, suspectAfterMs: UInt64, deadAfterMs: UInt64,
                            relayProbeIntervalMs: UInt64) -> TimersDue {
        var due = TimersDue(rawValue: 0)
        switch state {
        case .alive where nowMs >= lastHeardMs + suspectAfterMs:
            state = .suspect
            // A working relay route would have kept it fresh: forget it and
            // let the probe answers pick a route that works.
            relayVia = nil
            // A second round halfway to the dead deadline: with one round,
            // 10 % loss evicted ~1 healthy node per 70 node-hours (simulation).
            reprobeAtMs = nowMs + (deadAfterMs - suspectAfterMs) / 2
            return TimersDue(rawValue: TimersDue.suspected.rawValue | TimersDue.probes.rawValue)
        case .suspect where nowMs >= lastHeardMs + deadAfterMs:
            return .dead
        case .suspect:
            if let at = reprobeAtMs, nowMs >= at {
                reprobeAtMs = nil
                due = .probes
            }
        case .alive:
            break
        default:
            return due
        }
        if relayVia != nil, nowMs >= nextRelayProbeAtMs {
            nextRelayProbeAtMs = nowMs + relayProbeIntervalMs
            due.insert(.relayProbe)
        }
        return due
    }
}
