// Serving. A request is keyed by (sender, ref ?? id), its call id: the first
// copy is handed to the application (`.serve`), a copy arriving while the
// application works on it gets an `ack` ("have it, working"), a copy arriving
// after the answer gets the same answer again from the bounded table, with a
// fresh message id. So a retransmitted request is never executed twice while
// its entry lives (dedupLifetimeMs >= the client's whole retransmission span).

extension MeshNode {
    @inline(never)
    mutating func onRequest(_ frame: Frame, from: NodeAddress, relayed: Bool, nowMs: UInt64) throws(WireError) {
        let request = try Request.decode(frame.payload)
        // Served even when the peer table is full (.untracked): the answer goes
        // back to the datagram's source.
        guard touch(frame, from: from, relayed: relayed, nowMs: nowMs) != .stale else { return }
        let client = frame.sender
        let callMessageID = frame.ref ?? frame.id

        // `status` is the SWIM probe: answered by the mesh itself. Every other
        // service-0 operation (metrics, tasks, config get...) goes to the application.
        if request.service == 0 && request.operation == .status {
            answerNodeRequest(frame, request, from: from, relayed: relayed, nowMs: nowMs)
            return
        }
        if let ei = serveTable.firstIndex(where: { $0.localCall == nil && $0.client == client && $0.callMessageID == callMessageID }) {
            counters.duplicateRequests &+= 1
            // Answer along the path the latest copy took.
            serveTable[ei].replyAddress = from
            serveTable[ei].relayed = relayed
            // One reply site: the answer again, or an `ack` while in progress.
            let answerType = serveTable[ei].answerType
            reply(to: client, at: from, relayed: relayed, answerType ?? .ack,
                  answerType == nil ? [] : servePayloads[ei], ref: callMessageID, nowMs: nowMs)
            return
        }
        // The refusals share one reply site (each had its own encode and reply).
        let refusal: Status
        if request.service != 0 && !services.contains(where: { serviceID($0.name) == request.service }) {
            refusal = .unknownService
        } else if request.deadlineMs == 0 {
            refusal = .deadlineExceeded
        } else if makeServeRoom(nowMs: nowMs) {
            let handle = newServeHandle()
            appendServeEntry(ServeEntry(handle: handle, client: client, callMessageID: callMessageID,
                                         replyAddress: from, relayed: relayed, stampMs: nowMs))
            emit(.serve(handle, request, from: client))
            return
        } else {
            counters.busyReplies &+= 1
            refusal = .busy
        }
        reply(to: client, at: from, relayed: relayed, .response, Response(status: refusal.rawValue).encode(),
              ref: callMessageID, nowMs: nowMs)
    }

    /// Room for one more remote entry: drops answers older than
    /// dedupLifetimeMs, else the oldest answer. Entries still being served are
    /// never dropped (the application will answer them); if all are, no room.
    @inline(never)
    mutating func makeServeRoom(nowMs: UInt64) -> Bool {
        let lifetime = UInt64(config.dedupLifetimeMs)
        // A loop, not removeAll(where:): that costs ~0.5 KB per closure on the board.
        // One pass: expired answers go, the rest are counted and the oldest
        // answered one found (this runs for every request served).
        var remote = 0
        var oldestAnswered = -1
        var oldestMs = UInt64.max
        var i = 0
        while i < serveTable.count {
            let e = serveTable[i]
            if e.localCall == nil {
                if e.answerType != nil {
                    if nowMs - e.stampMs >= lifetime {
                        removeServeEntry(at: i)
                        continue
                    }
                    if e.stampMs < oldestMs || oldestAnswered < 0 {
                        oldestAnswered = i
                        oldestMs = e.stampMs
                    }
                }
                remote += 1
            }
            i += 1
        }
        if remote < config.dedupCacheMax { return true }
        guard oldestAnswered >= 0 else { return false }
        removeServeEntry(at: oldestAnswered)
        counters.dedupEvictions &+= 1
        return true
    }

    @inline(never)
    mutating func appendServeEntry(_ entry: ServeEntry) {
        serveTable.append(entry)
        servePayloads.append([])
    }

    @inline(never)
    mutating func removeServeEntry(at i: Int) {
        serveTable.remove(at: i)
        servePayloads.remove(at: i)
    }

    mutating func newServeHandle() -> ServeHandle {
        let h = ServeHandle(raw: nextServeRaw)
        nextServeRaw = nextServeRaw == UInt32.max ? 1 : nextServeRaw + 1
        return h
    }

    /// The application's answer to `.serve(handle, ...)`, now or later. An
    /// answer for a request that is gone (the node left, a local caller gave
    /// up) or already answered is counted and dropped.
    public mutating func respond(_ handle: ServeHandle, _ response: Response, nowMs: UInt64) {
        guard lifecycle == .running, let ei = serveTable.firstIndex(where: { $0.handle == handle }) else {
            counters.lateServeAnswers &+= 1
            return
        }
        let nowMs = advanceClock(nowMs)
        var answer = response
        var payload = answer.encode()  // encoded once: the size check and the reply use it
        if payload.count > MeshConfig.rpcPayloadBytesMax {
            answer = Response(status: Status.internalError.rawValue)
            payload = answer.encode()
        }
        if let callID = serveTable[ei].localCall {
            removeServeEntry(at: ei)
            counters.requestsServed &+= 1
            guard let ci = callIndex(callID) else { return }
            toClient(.answer(call: ci, status: answer.status, answer), nowMs: nowMs)
            return
        }
        // The entry's fields in place, in one access (one per field before).
        guard serveTable[ei].answered(nowMs: nowMs) else {
            counters.lateServeAnswers &+= 1
            return
        }
        servePayloads[ei] = payload
        counters.requestsServed &+= 1
        let e = serveTable[ei]
        reply(to: e.client, at: e.replyAddress, relayed: e.relayed, .response, payload, ref: e.callMessageID,
              nowMs: nowMs)
    }
}

extension MeshNode.ServeEntry {
    /// respond's change to the entry: not yet answered, it is now (a
    /// response, stamped `nowMs`: true); answered already, nothing changes.
    @inline(__always)
    mutating func answered(nowMs: UInt64) -> Bool {
        guard answerType == nil else { return false }
        answerType = .response
        stampMs = nowMs
        return true
    }
}
