import Foundation
import TDOSCore

/// The CLI's seat in the mesh: a client node (no services) that speaks the same
/// authenticated protocol as every node, learns the mesh from announces and
/// heartbeats, and makes calls through the same MeshNode (retries, failover,
/// breakers and all).
public final class MeshClient {
    public let transport: UDPTransport
    public var mesh: MeshNode
    /// This client's subscriptions (`tdos watch SERVICE`).
    public var pubsub = PubSub()
    public var onSubscriptionEvent: ((PubSubEvent) -> Void)?
    public private(set) var completed: [(CallID, CallResult)] = []
    public private(set) var events: [MeshEvent] = []
    public var onEvent: ((MeshEvent) -> Void)?
    public var onDeliver: ((Frame) -> Void)?
    /// Adaptive polling (HostPolling, `TDOS_POLL_US`): after sending a call,
    /// `run` polls the socket this long before it blocks in poll().
    public var pollWindowUs: UInt64
    private var pollUntilNs: UInt64 = 0

    public init(key: MeshKey, discovery: DiscoveryMode = .defaultLoopback, bindHost: UInt32 = 0x7F00_0001,
                name: String = "tdos-cli") throws {
        pollWindowUs = UInt64(try HostPolling.windowUs(environment: ProcessInfo.processInfo.environment))
        transport = try UDPTransport(mode: discovery, bindHost: bindHost)
        var config = MeshConfig()
        config.peersMax = 64
        config.instancesMax = 128
        let id = hostNodeID(name: "\(name)-\(getpid())")
        mesh = MeshNode(config: config, nodeID: id, name: Array(name.utf8), epoch: UInt32(truncatingIfNeeded: time(nil)),
                        keys: Keyring(id: key.id, key: key.bytes), address: transport.local, services: [],
                        rngSeed: UInt64(id) ^ UInt64(monotonicNs()))
        mesh.start(nowMs: monotonicMs())
        pump()
    }

    deinit {
        mesh.leave(nowMs: monotonicMs())
        pump()
    }

    public func pump() {
        while let a = mesh.pollAction() {
            switch a {
            case .send(let to, let bytes): transport.send(bytes, to: to)
            case .broadcast(let bytes): transport.broadcast(bytes)
            case .serve(let h, _, _): mesh.respond(h, Response(status: Status.unknownService.rawValue), nowMs: monotonicMs())
            case .complete(let id, let r): completed.append((id, r))
            case .deliver(let f):
                if !pubsub.handle(f, nowMs: monotonicMs(), mesh: &mesh) { onDeliver?(f) }
            case .event(let e):
                events.append(e)
                onEvent?(e)
                pubsub.handleMeshEvent(e, nowMs: monotonicMs(), mesh: &mesh)
            }
        }
        while let e = pubsub.pollEvent() { onSubscriptionEvent?(e) }
    }

    /// Subscribes to a service; events reach `onSubscriptionEvent` while `run` runs.
    public func subscribe(service: String, version: SemVer = SemVer(1, 0, 0), minIntervalMs: UInt32,
                          maxIntervalMs: UInt32, threshold: Double, leaseMs: UInt32) -> SubscriptionID? {
        let id = pubsub.subscribe(service: Array(service.utf8), version: version, minIntervalMs: minIntervalMs,
                                  maxIntervalMs: maxIntervalMs, threshold: threshold, leaseMs: leaseMs,
                                  nowMs: monotonicMs(), mesh: &mesh)
        pump()
        return id
    }

    public func unsubscribe(_ id: SubscriptionID) {
        pubsub.unsubscribe(id, nowMs: monotonicMs(), mesh: &mesh)
        pump()
    }

    /// The earliest of the mesh's and the subscriptions' timers.
    var nextTimeoutMs: UInt64? {
        switch (mesh.nextTimeoutMsInPlace(), pubsub.nextTimeoutMsInPlace()) {
        case (let a?, let b?): return min(a, b)
        case (let a, let b): return a ?? b
        }
    }

    /// Runs the mesh for `ms` milliseconds, or until `until` says stop.
    public func run(ms: UInt64, until: () -> Bool = { false }) {
        let end = monotonicMs() + ms
        while monotonicMs() < end && !until() && !isStopRequested {
            let now = monotonicMs()
            var wait = end - now
            if let t = nextTimeoutMs { wait = t <= now ? 0 : min(wait, t - now) }
            var polled: (bytes: [UInt8], from: NodeAddress)?
            if wait > 0, monotonicNs() < pollUntilNs {
                polled = pollReceive(untilNs: min(pollUntilNs, monotonicNs() + wait * 1_000_000))
            }
            if polled != nil || transport.waitReadable(timeoutMs: Int32(min(wait, 200))) {
                var next = polled ?? transport.receive()
                while let d = next {
                    mesh.handleDatagram(d.bytes, from: d.from, nowMs: monotonicMs())
                    pump()
                    next = transport.receive()
                }
            }
            let after = monotonicMs()
            if let t = mesh.nextTimeoutMsInPlace(), t <= after {
                mesh.handleTimeout(nowMs: after)
                pump()
            }
            if let t = pubsub.nextTimeoutMsInPlace(), t <= after {
                pubsub.handleTimeout(nowMs: after, mesh: &mesh)
                pump()
            }
        }
    }

    /// The spin of adaptive polling: non-blocking receives until a datagram
    /// comes or the clock reaches `untilNs`.
    private func pollReceive(untilNs: UInt64) -> (bytes: [UInt8], from: NodeAddress)? {
        repeat {
            if let d = transport.receive(dontWait: true) { return d }
            HostPolling.pause()
        } while monotonicNs() < untilNs
        return nil
    }

    /// Opens the polling window: a call was just sent and its answer is near.
    private func pollAfterSend() {
        if pollWindowUs > 0 { pollUntilNs = monotonicNs() + pollWindowUs * 1000 }
    }

    /// Waits until at least one heartbeat round has been heard (or `ms` passes).
    /// Nodes answer the start-up query with announces at once; heartbeats carry
    /// uptime and load, so waiting a little over one interval fills the table.
    public func discover(ms: UInt64 = 1500) { run(ms: ms) }

    public func call(service: String, version: SemVer = SemVer(1, 0, 0), operation: TDOSCore.Operation = .read,
                     arguments: [UInt8] = [], deadlineMs: UInt32) -> CallResult {
        let id = mesh.call(service: Array(service.utf8), version: version, operation: operation, arguments: arguments,
                           deadlineMs: deadlineMs, nowMs: monotonicMs())
        pump()
        pollAfterSend()
        run(ms: UInt64(deadlineMs) + 1000) { self.completed.contains { $0.0 == id } }
        if let i = completed.firstIndex(where: { $0.0 == id }) { return completed.remove(at: i).1 }
        return .failed(.deadlineExceeded)
    }

    /// Calls service 0 of one node (status, metrics, tasks, config get...): no failover.
    public func call(node: UInt32, operation: TDOSCore.Operation, arguments: [UInt8] = [],
                     deadlineMs: UInt32) -> CallResult {
        call(nodes: [node], operation: operation, arguments: arguments, deadlineMs: deadlineMs)[0]
    }

    /// The same node call on several nodes at once (a whole-mesh scrape), at most
    /// callsInFlightMax in flight; results in the order of `nodes`.
    public func call(nodes: [UInt32], operation: TDOSCore.Operation, arguments: [UInt8] = [],
                     deadlineMs: UInt32) -> [CallResult] {
        var results: [CallResult] = []
        var start = 0
        while start < nodes.count {
            let batch = nodes[start..<min(nodes.count, start + mesh.config.callsInFlightMax)]
            var ids: [CallID] = []
            for n in batch {
                ids.append(mesh.call(node: n, operation: operation, arguments: arguments, deadlineMs: deadlineMs,
                                     nowMs: monotonicMs()))
            }
            pump()
            pollAfterSend()
            run(ms: UInt64(deadlineMs) + 1000) { ids.allSatisfy { id in self.completed.contains { $0.0 == id } } }
            for id in ids {
                if let i = completed.firstIndex(where: { $0.0 == id }) {
                    results.append(completed.remove(at: i).1)
                } else {
                    results.append(.failed(.deadlineExceeded))
                }
            }
            start += batch.count
        }
        return results
    }
}
