// Node operations: the service-0 requests the application answers (the mesh
// answers `status` itself: it is the SWIM probe), and the node's metrics.
//
//   metrics     the MetricsRegistry report (docs/PROTOCOL.md "Metric ids")
//   tasks       scheduler introspection, one map per task (TaskReport)
//   config get  the effective config value at a dotted path (CBOR text
//               argument); no argument: the whole tree
//
// Every request the node serves is timed and recorded in the registry (per
// service slot; node operations under service id 0). Totals the mesh and the
// scheduler keep (frames, rejections by reason, rate-limited drops, deadline
// misses, restarts) are copied in when a report is made and once a second.
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
#endif

/// A request answered after the scheduler's tick (see `serveAndRecord`).
struct DeferredServe {
    var handle: ServeHandle
    var request: Request
    var from: UInt32
}

extension NodeRuntime {
    /// Serves one `.serve` request, answers it, and records its outcome and time.
    /// Requests whose answer reads `scheduler` are kept for `answerDeferredServes`:
    /// inside a task runReady is modifying `scheduler`, and reading it there
    /// would be an exclusivity violation (a trap).
    func serveAndRecord(_ handle: ServeHandle, _ request: Request, from: UInt32, nowMs: UInt64) {
        let op = request.operation
        if usesConsensus && op == .configSet && request.service == Self.configServiceID {
            proposeConfig(handle, request, nowMs: nowMs)  // answered once committed
            return
        }
        if op == .logAppend && replicatesLog && request.service != 0 {
            appendReplicated(handle, request, from: from, nowMs: nowMs)  // answered once a majority holds it
            return
        }
        if op == .status || (request.service == 0 && (op == .metrics || op == .tasks)) {
            if deferredServes.isEmpty { deferredServes.reserveCapacity(mesh.config.dedupCacheMax) }
            deferredServes.append(DeferredServe(handle: handle, request: request, from: from))
            return
        }
        answer(handle, request, from: from, nowMs: nowMs)
    }

    /// Answers the deferred requests (outside any task); returns when to run the
    /// scheduler next, which their actions may have moved earlier.
    /// In order, by index (requests deferred meanwhile are appended and answered
    /// too), then emptied (keeping the capacity).
    func answerDeferredServes() -> UInt64? {
        var i = 0
        while i < deferredServes.count {
            let d = deferredServes[i]
            answer(d.handle, d.request, from: d.from, nowMs: nowMs)
            pump { scheduler.raise($0) }
            i += 1
        }
        deferredServes.removeAll()
        return scheduler.nextWakeUs
    }

    func answer(_ handle: ServeHandle, _ request: Request, from: UInt32, nowMs: UInt64) {
        // Inside the net task the request's time starts with the tick that
        // received it (one clock read fewer per request); elsewhere, now.
        let startUs = servingSinceUs ?? platform.nowUs()
        let response = serve(request, from: from, nowMs: nowMs)
        let endUs = platform.nowUs()
        metrics.recordResponse(service: request.service, latencyUs: UInt32(clamping: endUs &- min(startUs, endUs)),
                               ok: response.status == Status.ok.rawValue)
        mesh.respond(handle, response, nowMs: nowMs)
    }

    /// Service 0: the node itself.
    func serveNodeOperation(_ request: Request, from: UInt32, nowMs: UInt64) -> Response {
        switch request.operation {
        case .status:
            return statusResponse(nowMs: nowMs)
        case .metrics:
            return Response(result: metricsReport(nowMs: nowMs).encode())
        case .tasks:
            return Response(result: inPlace(&scheduler) { TaskReport.encode(scheduler: $0) })
        case .configGet:
            return configGet(request.arguments)
        case .logReplicate, .logHighWaters, .logFetch, .logQuery:
            guard usesConsensus else { return Response(status: Status.unknownOperation.rawValue) }
            // Replication comes from the other replicas only (it writes records under any source).
            if request.operation != .logQuery && !config.configReplicas.contains(from) {
                return Response(status: Status.badArguments.rawValue)
            }
            guard logUsable(nowMs: nowMs) else { return Response(status: Status.unavailable.rawValue) }
            switch request.operation {
            case .logReplicate:
                // From a primary of an earlier term (cut off while another was elected): refused.
                if let raft = raftSlot, LogReplication.term(of: request.arguments) < raft.pointee.currentTerm {
                    return Response(status: Status.notLeader.rawValue)
                }
                return LogReplication.serveReplicate(request.arguments, log: &logSlot!.pointee)
            case .logFetch: return LogReplication.serveFetch(request.arguments, log: &logSlot!.pointee)
            case .logQuery: return LogService.serve(request, from: 0, nowMs: nowMs, log: &logSlot!.pointee)  // this replica's log
            default: return inPlace(&logSlot!.pointee) { LogReplication.serveHighWaters(log: $0) }
            }
        default:
            return Response(status: Status.unknownOperation.rawValue)
        }
    }

    /// The registry's report, with the totals kept elsewhere brought up to date.
    public func metricsReport(nowMs: UInt64) -> MetricsReport {
        refreshMetrics()
        return inPlace(&metrics) { $0.report(nowMs: nowMs) }
    }

    /// Copies the mesh's and the scheduler's totals and the memory figures into the registry.
    func refreshMetrics() {
        inPlace(&mesh) { m in
            let c = m.counters
            metrics.setFrameTotals(sent: c.framesSent &+ c.broadcastsSent, received: c.framesReceived,
                                   rateLimited: c.rateLimited)
            for code in 1..<WireError.codeCount where code < c.rejected.count {
                metrics.setRejectedTotal(code: UInt8(code), c.rejected[code])
            }
        }
        let totals = inPlace(&scheduler) { $0.taskTotals() }
        metrics.setTaskTotals(deadlineMisses: totals.deadlineMisses, restarts: totals.restarts)
        metrics.setMemory(heapInUseBytes: platform.heapInUseBytes(), freeBytes: platform.freeMemoryBytes())
        metrics.setBootCount(mesh.epoch)
        metrics.setActiveServices(UInt32(mesh.services.count))
        metrics.setConfigVersion(settings.version)
    }

    /// `config get`: argument a CBOR text path ("rate_limit.burst"), or nothing
    /// for the whole tree. A leaf answers its value, a map its subtree (CBOR
    /// map, text keys); an unknown path or a malformed argument, status 21.
    func configGet(_ arguments: [UInt8]) -> Response {
        let tree = settings.effective
        if arguments.isEmpty { return Response(result: tree.encodeCBOR()) }
        var r = CBORReader(arguments)
        let path: [UInt8]
        do {
            path = Array(try r.text())
        } catch {
            return Response(status: Status.badArguments.rawValue)
        }
        guard r.isAtEnd, let value = tree.value(at: path) else {
            return Response(status: Status.badArguments.rawValue)
        }
        var w = CBORWriter()
        switch value {
        case .bool(let v): w.bool(v)
        case .int(let v): w.int(v)
        case .number(let v): w.double(v)
        case .text(let v): w.text(v)
        case .map: return Response(result: tree.subtree(at: path).encodeCBOR())
        }
        return Response(result: w.bytes)
    }
}

/// Passes `x` by address. A non-mutating call on a struct stored in a class
/// copies the struct first (a retain per reference in it, and an outlined copy
/// function per type): through `inout` the callee reads it in place.
@inline(__always)
func inPlace<T, R>(_ x: inout T, _ body: (inout T) -> R) -> R { body(&x) }
