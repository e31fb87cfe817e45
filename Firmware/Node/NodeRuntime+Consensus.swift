// Storage role: configuration changes agreed by the config replicas with Raft
// (Firmware/Core/Consensus/RaftNode.swift; Ongaro and Ousterhout, USENIX ATC
// 2014), in mesh frames (types 20-23), and delivered to every node.
//
//   config set      service `config`, operation configSet, arguments a
//                   ConfigUpdate (its version ignored). The leader checks it
//                   against the committed config and proposes it; the answer
//                   comes once it is committed (result {1: version}), or
//                   notLeader (a follower: the client tries the next replica),
//                   noQuorum (no majority within RaftConfig.proposalTimeoutMs),
//                   badArguments (entry and reason, as ConfigManager.apply).
//   committed entry every replica applies it, in index order, to `committed`
//                   (the config state machine; the entry's log index is the
//                   config version it creates; a leader's no-op changes
//                   nothing) and takes the resulting overlay as its own config.
//   distribution    the leader sends the committed overlay to every node as a
//                   config_update of that version that clears each section
//                   before setting it (ConfigManager.overlayUpdate; ConfigPush, resent
//                   every 500 ms), and every 5 s again to each live node that
//                   has not acknowledged it: a node that was down, partitioned
//                   or restarted without its record catches up. A node applies
//                   only versions newer than its own, and the update carries the
//                   whole committed state, so it never mixes two versions.
//   config get      the committed config: {1 version, 2 overlay (CBOR map),
//                   3 leader node id (when known), 4 commit index, 5 term}.
//   config history  the committed entries, newest last, as many as fit a frame:
//                   {1 commit index, 2 [[index, term, ConfigUpdate or empty (no-op)], ...]}.
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
#endif

/// A `config set` waiting for its proposal's outcome.
struct PendingSet {
    var proposal: RaftProposalID
    var handle: ServeHandle
}

extension NodeRuntime {
    static var configServiceID: UInt32 { serviceID(bytes("config")) }
    static var redistributeIntervalMs: UInt64 { 5_000 }
    static var consensusWriteFailed: StaticString {
        "the consensus state could not be written (flash or state directory): this replica stopped voting; fix the storage and restart it"
    }

    /// Consensus runs on storage nodes; a constant on the board's images, so
    /// the kernel and sensor images leave this code out.
    @inline(__always) var usesConsensus: Bool { role == .storage }

    /// Builds the Raft node from the persisted state (init, storage role).
    func openConsensus() {
        let members = config.configReplicas.isEmpty ? [config.nodeID] : config.configReplicas
        guard members.contains(config.nodeID), members.count <= RaftLimits.membersMax else {
            consensusHalt = "this node is not in its config replica list, or the list has more than 9 replicas: fix the storage nodes' replica list"
            return
        }
        do throws(RaftStateError) {
            raftStored = try RaftPersistentState.decode(platform.loadConsensusState(), entriesMax: config.raft.entriesMax)
        } catch {
            consensusHalt = error == .corrupt
                ? "the stored consensus state is corrupt: restore it, or wipe it and rejoin as a new replica"
                : "the stored consensus log is longer than this build keeps: use a build with a larger RaftConfig.entriesMax"
            return
        }
        raftSlot = makeSlot(RaftNode(config: config.raft, nodeID: config.nodeID, members: members, persisted: raftStored,
                                 rngSeed: config.rngSeed ^ 0x5241_4654))
    }

    /// This replica leads. Out of line: read at eight places.
    @inline(never)
    var leadsConsensus: Bool { raftSlot?.pointee.role == .leader }

    /// The consensus timers' next deadline (ms), nil if none.
    var consensusNextTimeoutMs: UInt64? {
        guard let raft = raftSlot else { return nil }
        var t = inPlace(&raft.pointee) { $0.nextTimeoutMs } ?? UInt64.max
        if let d = distribution?.nextTimeoutMs { t = min(t, d) }
        if raft.pointee.role == .leader { t = min(t, nextDistributionMs) }
        if let r = replicationNextTimeoutMs { t = min(t, r) }
        return t == UInt64.max ? nil : t
    }

    func consensusTimeout(nowMs now: UInt64) {
        // Called at every timer: does nothing before its nextTimeoutMs.
        guard let raft = raftSlot else { return }  // no consensus here
        raft.pointee.handleTimeout(nowMs: now)
        carryOutConsensus(nowMs: now)
        if distribution != nil {
            distribution!.handleTimeout(nowMs: now, mesh: &mesh)
            collectDistribution()
        }
        if leadsConsensus && now >= nextDistributionMs { distributeConfig(nowMs: now) }
        if replicatesLog { replicationTimeout(nowMs: now) }
    }

    /// Takes a delivered frame meant for consensus (a Raft message, or the
    /// answer to the leader's config_update); false for any other.
    func consensusDeliver(_ frame: Frame, nowMs now: UInt64) -> Bool {
        if frame.type == .ack || frame.type == .error {
            guard distribution != nil, distribution!.handle(frame) else { return false }
            collectDistribution()
            return true
        }
        guard let m = (try? RaftMessage.decode(type: frame.type, payload: frame.payload)) ?? nil else {
            return false
        }
        raftSlot?.pointee.handleMessage(m, from: frame.sender, nowMs: now)
        carryOutConsensus(nowMs: now)
        return true
    }

    /// A node that restarted, left or died is sent the committed config again
    /// (when it is back), even if it acknowledged it before.
    func consensusMeshEvent(_ e: MeshEvent) {
        switch e {
        case .peerRestarted(let id), .peerLeft(let id), .peerDead(let id):
            if let k = distributedTo.firstIndex(of: id) { distributedTo.remove(at: k) }
        case .peerJoined:
            nextDistributionMs = 0  // someone new: distribute at the next tick
        default:
            break
        }
    }

    /// Carries out Raft's actions in order. A persist that fails stops
    /// consensus on this replica before anything that depends on it is sent.
    func carryOutConsensus(nowMs now: UInt64) {
        while let action = raftSlot?.pointee.pollAction() {
            switch action {
            case .persist(let p):
                raftStored.apply(p)
                raftStored.commitIndex = min(raftSlot?.pointee.commitIndex ?? 0, UInt32(raftStored.log.count))
                guard storeConsensus(nowMs: now) else { return }
            case .send(let to, let m):
                mesh.send(m.type, payload: m.encode(), to: to, nowMs: now)
            case .apply(let index, let entry):
                applyCommitted(index: index, entry: entry, nowMs: now)
            case .proposalDone(let id, let result):
                answerProposal(id, result, nowMs: now)
            }
        }
        // The commit index advanced with nothing else to persist: keep it too (a hint, see RaftPersistentState).
        if let c = raftSlot?.pointee.commitIndex, c > raftStored.commitIndex, UInt32(raftStored.log.count) >= c {
            raftStored.commitIndex = c
            guard storeConsensus(nowMs: now) else { return }
        }
        noteLeadership(nowMs: now)
    }

    /// Answers a served request with a bare status: one out-of-line copy of the
    /// Response for the many places consensus and replication refuse.
    @inline(never)
    func respond(_ handle: ServeHandle, _ status: Status, nowMs now: UInt64) {
        mesh.respond(handle, Response(status: status.rawValue), nowMs: now)
    }

    /// Writes `raftStored`; false, with consensus stopped, when that failed.
    func storeConsensus(nowMs now: UInt64) -> Bool {
        if platform.storeConsensusState(raftStored.encode()) { return true }
        haltConsensus(Self.consensusWriteFailed, nowMs: now)
        return false
    }

    func haltConsensus(_ why: StaticString, nowMs now: UInt64) {
        freeSlot(&raftSlot)
        consensusHalt = why
        distribution = nil
        platform.log(TextLine(why))
        // No longer a primary: what waits for replication is answered not_leader.
        if wasLeader { replicationLeadershipChanged(leads: false, nowMs: now) }
        wasLeader = false
        while !pendingSets.isEmpty { respond(pendingSets.removeFirst().handle, .unavailable, nowMs: now) }
    }

    func noteLeadership(nowMs now: UInt64) {
        let leads = leadsConsensus
        guard leads != wasLeader else { return }
        wasLeader = leads
        var l = TextLine(leads ? "consensus: leading the config replicas in term " : "consensus: no longer leading, term ")
        l.append(UInt64(raftSlot?.pointee.currentTerm ?? 0))
        platform.log(l)
        distribution = nil
        distributedTo.removeAll()
        nextDistributionMs = now  // a new leader distributes at once
        replicationLeadershipChanged(leads: leads, nowMs: now)
    }

    /// A committed entry, in index order: the config state machine takes it,
    /// and this replica runs the result.
    func applyCommitted(index: UInt32, entry: RaftEntry, nowMs now: UInt64) {
        guard !entry.data.isEmpty else { return }  // a new leader's no-op
        guard var update = try? ConfigUpdate.decode(entry.data) else {
            committedSkipped &+= 1  // cannot happen: the leader proposes only what decodes
            return
        }
        update.version = index
        guard case .applied = committed.apply(update) else {
            committedSkipped &+= 1  // valid when proposed, not on this state: skipped by every replica alike
            return
        }
        if P.imageRole == nil { configObserver?(committed.version, committed.remote, true) }
        _ = adoptConfig(inPlace(&committed) { $0.overlayUpdate() })
        if leadsConsensus { nextDistributionMs = now }
    }

    /// Leader: sends the committed config to every live node that has not acknowledged it.
    func distributeConfig(nowMs now: UInt64) {
        nextDistributionMs = now + Self.redistributeIntervalMs
        guard committed.version > 0 else { return }
        if distributedVersion != committed.version {
            distributedVersion = committed.version
            distributedTo.removeAll()
        }
        if distribution != nil && distributionVersion == committed.version { return }  // still going
        var targets: [UInt32] = []
        for p in inPlace(&mesh, { $0.peers }) where (p.state == .alive || p.state == .suspect) && p.serviceCount > 0
            && !distributedTo.contains(p.nodeID) {
            targets.append(p.nodeID)
        }
        distribution = nil
        guard !targets.isEmpty else { return }
        distribution = ConfigPush(update: inPlace(&committed) { $0.overlayUpdate() }, targets: targets)
        distributionVersion = committed.version
        distribution!.start(nowMs: now, mesh: &mesh)  // in place: no copy of the push
    }

    func collectDistribution() {
        guard distribution?.isDone == true, let d = distribution.take() else { return }
        guard distributionVersion == distributedVersion else { return }
        for i in d.targets.indices {
            switch d.answers[i] {
            case .acked:
                distributedTo.append(d.targets[i])
            case .refused:
                var l = TextLine("consensus: node ")
                l.appendHex32(d.targets[i])
                l.append(" refused config version ")
                l.append(UInt64(distributionVersion))
                l.append(" (a firmware that does not know a field?): it keeps its config")
                platform.log(l)
                distributedTo.append(d.targets[i])  // asked again only after it restarts
            case .pending, .unreachable:
                break  // the next round asks again
            }
        }
    }

    // MARK: Serving the `config` service

    /// `config set`: proposed by the leader, answered when its outcome is known.
    func proposeConfig(_ handle: ServeHandle, _ request: Request, nowMs now: UInt64) {
        guard let raft = raftSlot else {
            respond(handle, .unavailable, nowMs: now)
            return
        }
        guard let update = try? ConfigUpdate.decode(request.arguments), !update.entries.isEmpty else {
            respond(handle, .badArguments, nowMs: now)
            return
        }
        var probe = committed
        let outcome = probe.apply(ConfigUpdate(version: committed.version &+ 1, entries: update.entries))
        // The committed config travels whole in one frame (the leader's update, config get).
        if case .applied = outcome, probe.overlayUpdate().encode().count > MeshConfig.rpcPayloadBytesMax - 64 {
            var w = CBORWriter()
            w.mapHeader(count: 2)
            w.unsigned(1); w.unsigned(UInt64(update.entries.count - 1))
            w.unsigned(2); w.text("the committed config would not fit one frame: reset fields to their local values first")
            mesh.respond(handle, Response(status: Status.badArguments.rawValue, result: w.bytes), nowMs: now)
            return
        }
        if case .rejected(let entry, let reason) = outcome {
            var w = CBORWriter()
            w.mapHeader(count: 2)
            w.unsigned(1); w.unsigned(UInt64(entry))
            w.unsigned(2); w.text(reason.name)
            mesh.respond(handle, Response(status: Status.badArguments.rawValue, result: w.bytes), nowMs: now)
            return
        }
        let id = raft.pointee.propose(ConfigUpdate(version: 0, entries: update.entries).encode(), nowMs: now)
        pendingSets.append(PendingSet(proposal: id, handle: handle))
        carryOutConsensus(nowMs: now)
    }

    func answerProposal(_ id: RaftProposalID, _ result: RaftProposalResult, nowMs now: UInt64) {
        guard let k = pendingSets.firstIndex(where: { $0.proposal == id }) else { return }
        let handle = pendingSets.remove(at: k).handle
        var w = CBORWriter()
        var status = Status.ok
        switch result {
        case .committed(let index, _):
            if committed.version == index {
                w.mapHeader(count: 1)
                w.unsigned(1); w.unsigned(UInt64(index))
            } else {
                status = .badArguments  // committed, but skipped by the state machine
            }
        case .failed(.notLeader(let leader)):
            status = .notLeader
            w.mapHeader(count: 1)
            w.unsigned(1); w.unsigned(UInt64(leader))
        case .failed(.superseded):
            status = .notLeader
        case .failed(.noLeader):
            status = .noQuorum
        case .failed(.noMajority):
            status = .noQuorum
            w.mapHeader(count: 1)
            w.unsigned(1); w.bool(true)  // appended: it may still commit
        case .failed(.tooLarge):
            status = .badArguments
        case .failed(.logFull):
            status = .unavailable
            platform.log(TextLine("consensus: the config log is full (no compaction yet): changes are refused"))
        case .failed(.busy):
            status = .busy
        }
        mesh.respond(handle, Response(status: status.rawValue, result: w.bytes), nowMs: now)
    }

    /// `config get` and `config history` on the `config` service.
    func serveConfig(_ request: Request) -> Response {
        guard let raft = raftSlot else { return Response(status: Status.unavailable.rawValue) }
        var w = CBORWriter(capacity: 256)
        switch request.operation {
        case .configGet:
            w.mapHeader(count: raft.pointee.leaderID == nil ? 4 : 5)
            w.unsigned(1); w.unsigned(UInt64(committed.version))
            w.unsigned(2); w.bytes.append(contentsOf: committed.remote.encodeCBOR())
            if let leader = raft.pointee.leaderID { w.unsigned(3); w.unsigned(UInt64(leader)) }
            w.unsigned(4); w.unsigned(UInt64(raft.pointee.commitIndex))
            w.unsigned(5); w.unsigned(UInt64(raft.pointee.currentTerm))
        case .configHistory:
            // Newest first until the frame is full, then written oldest first.
            var first = Int(raft.pointee.commitIndex)
            var bytes = 16
            while first > 0 && bytes + raft.pointee.log[first - 1].data.count + 16 <= MeshConfig.rpcPayloadBytesMax - 32 {
                bytes += raft.pointee.log[first - 1].data.count + 16
                first -= 1
            }
            w.mapHeader(count: 2)
            w.unsigned(1); w.unsigned(UInt64(raft.pointee.commitIndex))
            w.unsigned(2); w.arrayHeader(count: Int(raft.pointee.commitIndex) - first)
            for i in first..<Int(raft.pointee.commitIndex) {
                w.arrayHeader(count: 3)
                w.unsigned(UInt64(i + 1))
                w.unsigned(UInt64(raft.pointee.log[i].term))
                w.bytes(raft.pointee.log[i].data)
            }
        default:
            return Response(status: Status.unknownOperation.rawValue)
        }
        return Response(result: w.bytes)
    }
}
