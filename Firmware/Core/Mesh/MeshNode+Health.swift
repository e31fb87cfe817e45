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
        // Tombstones are never removed here, so indices are stable.
        for pi in peerTable.indices {
            let node = peerTable[pi].nodeID
            switch peerTable[pi].state {
            case .alive where nowMs >= peerTable[pi].lastHeardMs + suspectAfter:
                peerTable[pi].state = .suspect
                // A working relay route would have kept it fresh: forget it and
                // let the probe answers pick a route that works.
                peerTable[pi].relayVia = nil
                emit(.peerSuspected(node))
                sendProbes(pi, nowMs: nowMs)
                // A second round halfway to the dead deadline: with one round,
                // 10 % loss evicted ~1 healthy node per 70 node-hours (simulation).
                peerTable[pi].reprobeAtMs = nowMs + (deadAfter - suspectAfter) / 2
            case .suspect where nowMs >= peerTable[pi].lastHeardMs + deadAfter:
                declareDead(pi, nowMs: nowMs)
                continue
            case .suspect:
                if let at = peerTable[pi].reprobeAtMs, nowMs >= at {
                    peerTable[pi].reprobeAtMs = nil
                    sendProbes(pi, nowMs: nowMs)
                }
            default:
                break
            }
            let state = peerTable[pi].state
            if let via = peerTable[pi].relayVia, state == .alive || state == .suspect,
               nowMs >= peerTable[pi].nextRelayProbeAtMs {
                // Stands in for the heartbeats the broken direct path no longer carries.
                peerTable[pi].nextRelayProbeAtMs = nowMs + UInt64(config.relayProbeIntervalMs)
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
        let sent: Bool
        if let via {
            guard let vi = peerIndex(via), let relayAddress = peerTable[vi].address else { return }
            sent = sendRelayed(destination: target, relayAddress: relayAddress, .request, request.encode(), id: id,
                               priority: .high, nowMs: nowMs)
        } else {
            guard let to = peerTable[ti].address else { return }
            emitSend(to, frame(.request, request.encode(), id: id, priority: .high, nowMs: nowMs))
            sent = true
        }
        guard sent else { return }
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
