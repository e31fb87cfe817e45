// The mesh layer's vocabulary: addresses, handles, what a node asks its
// platform to do (MeshAction), what it reports (MeshEvent), results of calls,
// and read-only views for the CLI and the tests. No I/O anywhere.

/// Where a node's datagrams come from and go to: IPv4 address in host byte
/// order (10.0.0.7 = 0x0A00_0007) and UDP port.
public struct NodeAddress: Hashable, BitwiseCopyable {
    public var host: UInt32
    public var port: UInt16
    public init(host: UInt32, port: UInt16) {
        self.host = host
        self.port = port
    }
}

/// Names one `call()` until its `.complete`. Local to the calling node.
public struct CallID: Hashable, BitwiseCopyable {
    public let raw: UInt32
    public init(raw: UInt32) { self.raw = raw }
}

/// Names one request handed to the application by `.serve`; pass it back to
/// `respond()`.
public struct ServeHandle: Hashable, BitwiseCopyable {
    public let raw: UInt32
    public init(raw: UInt32) { self.raw = raw }
}

/// A peer as this node sees it. `dead` and `left` peers stay in the table as
/// tombstones (shown by the CLI) until their slot is needed.
public enum PeerState: UInt8, Equatable, BitwiseCopyable {
    case alive, suspect, dead, left
    public var name: StaticString {
        switch self {
        case .alive: return "alive"
        case .suspect: return "suspect"
        case .dead: return "dead"
        case .left: return "left"
        }
    }
}

public enum BreakerState: UInt8, Equatable, BitwiseCopyable {
    case closed, open, halfOpen
    public var name: StaticString {
        switch self {
        case .closed: return "closed"
        case .open: return "open"
        case .halfOpen: return "half_open"
        }
    }
}

/// Why a service instance left the registry.
public enum ServiceRemovalReason: UInt8, Equatable {
    /// Its node sent `leave`.
    case left
    /// Its node was declared dead.
    case dead
    /// Not confirmed for `serviceTTLMs`.
    case expired
    /// Its node announced a service list without it, or answered "unknown service".
    case unannounced
}

/// Things worth telling the application, the CLI and the logs.
public enum MeshEvent: Equatable {
    /// First frame from a node, or the first after it was dead or had left.
    case peerJoined(UInt32)
    /// Silent for suspectAfterMs: being probed.
    case peerSuspected(UInt32)
    /// A suspect answered (heartbeat, probe, anything authentic).
    case peerRecovered(UInt32)
    case peerDead(UInt32)
    case peerLeft(UInt32)
    /// A frame with a newer epoch: the node rebooted.
    case peerRestarted(UInt32)
    case serviceAdded(node: UInt32, service: UInt32)
    case serviceRemoved(node: UInt32, service: UInt32, reason: ServiceRemovalReason)
    case breakerOpened(node: UInt32, service: UInt32)
    case breakerHalfOpen(node: UInt32, service: UInt32)
    case breakerClosed(node: UInt32, service: UInt32)
    /// A call moved from one instance's node to another's.
    case failover(call: CallID, from: UInt32, to: UInt32)
    /// A datagram was dropped; also counted in `counters.rejected`.
    case frameRejected(WireError, from: NodeAddress)
    /// `target` is now reached through `via` (its direct path is silent).
    case relayUsed(target: UInt32, via: UInt32)
    /// `target` is heard directly again.
    case directPathRestored(UInt32)
    /// A peer probed us as suspect: our incarnation went up to refute it.
    case refuted(incarnation: UInt32)
    /// A node speaking another protocol major answered us with its range.
    case versionMismatch(from: NodeAddress, majorMin: UInt8, majorMax: UInt8)
}

/// Why a call produced no fresh value.
public enum CallError: Error, Equatable, BitwiseCopyable {
    /// No instance of the service is known (none appeared before the deadline).
    case noInstance
    /// Instances exist, none satisfies the caret rule; the best one offered.
    case incompatibleVersion(available: SemVer)
    /// Every compatible instance's breaker is open.
    case allBreakersOpen
    /// Every compatible instance was tried and none answered (silent, dead, or gone).
    case unreachable
    case deadlineExceeded
    /// The serving node answered with this status (or error code).
    case remoteError(UInt8)
    /// callsInFlightMax calls are already in flight.
    case tooManyCalls
    /// Arguments longer than MeshConfig.rpcPayloadBytesMax.
    case argumentsTooLarge
    /// Arguments that are not exactly one well-formed CBOR item: the server
    /// would drop the request as malformed, so it is refused before sending.
    case badArguments
    /// The node is not running (before start, or after leave).
    case stopped
    /// A node-targeted call (`call(node:...)`) names a node not in the peer table.
    case unknownNode
    /// A node-targeted call's node is dead or has left (or died during the call).
    case nodeDown

    public var name: StaticString {
        switch self {
        case .noInstance: return "no_instance"
        case .incompatibleVersion: return "incompatible_version"
        case .allBreakersOpen: return "all_breakers_open"
        case .unreachable: return "unreachable"
        case .deadlineExceeded: return "deadline_exceeded"
        case .remoteError: return "remote_error"
        case .tooManyCalls: return "too_many_calls"
        case .argumentsTooLarge: return "arguments_too_large"
        case .badArguments: return "bad_arguments"
        case .stopped: return "stopped"
        case .unknownNode: return "unknown_node"
        case .nodeDown: return "node_down"
        }
    }
}

/// A successful call: the answer and who gave it.
public struct CallValue: Equatable {
    public var response: Response
    /// Node that served it.
    public var node: UInt32
    /// The instance that served it (name, version, priority...).
    public var service: ServiceDescriptor
    /// nil: a fresh answer. Otherwise the stale tier: the last value known,
    /// this old (time since it was received plus its age when sent).
    public var staleAgeMs: UInt32?
    /// For a stale value: why no fresh one could be had.
    public var degradedBecause: CallError?
    /// Instances tried before this answer (0 = the first one answered).
    public var failovers: UInt8

    public init(response: Response, node: UInt32, service: ServiceDescriptor, staleAgeMs: UInt32? = nil,
                degradedBecause: CallError? = nil, failovers: UInt8 = 0) {
        self.response = response
        self.node = node
        self.service = service
        self.staleAgeMs = staleAgeMs
        self.degradedBecause = degradedBecause
        self.failovers = failovers
    }

    public var isStale: Bool { staleAgeMs != nil }
}

public enum CallResult: Equatable {
    // Boxed: a CallValue is ~60 bytes with three references; inline, every
    // copy and destroy of a result (or of an action carrying one) was a
    // memcpy plus a retain or release per reference (~2 KB of code). Boxed,
    // the enum is one reference.
    indirect case value(CallValue)
    case failed(CallError)
}

/// What the node asks its platform to do. Drain with `pollAction()` until nil
/// after every `start`, `handle*`, `call`, `respond`, `leave`.
public enum MeshAction: Equatable {
    /// One datagram to one node.
    case send(NodeAddress, [UInt8])
    /// One datagram to every node (the subnet broadcast on the board).
    case broadcast([UInt8])
    /// A request for one of this node's services: answer with `respond(handle, ...)`,
    /// now or later. `from` is the calling node.
    indirect case serve(ServeHandle, Request, from: UInt32)
    /// The outcome of `call()`; exactly one per CallID.
    case complete(CallID, CallResult)
    /// An authentic frame of a type the mesh layer does not consume itself
    /// (config_update, metrics, subscribe/notify, application types 128-255),
    /// or an `ack`/`error` that answers none of the mesh's own calls and probes
    /// (the answer to a message the application sent: match it by `ref`).
    indirect case deliver(Frame)
    case event(MeshEvent)
}

/// A peer, for the CLI and tests.
public struct PeerInfo: Equatable {
    public var nodeID: UInt32
    public var name: [UInt8]
    /// Where it was last heard directly; nil if only ever heard through a relay.
    public var address: NodeAddress?
    public var state: PeerState
    public var epoch: UInt32
    public var incarnation: UInt32
    public var lastHeardMs: UInt64
    /// Set while the peer is reached through this relay node.
    public var relayVia: UInt32?
    /// Its last heartbeat's fields (nil before the first one).
    public var heartbeat: Heartbeat?
    /// Instances of it in the registry.
    public var serviceCount: Int
}

/// A service instance, for the CLI and tests.
public struct ServiceInstanceInfo: Equatable {
    public var node: UInt32
    public var descriptor: ServiceDescriptor
    public var serviceID: UInt32
    public var isLocal: Bool
    /// Last announce (or matching digest) that confirmed it; its expiry is
    /// this + serviceTTLMs. For local services: the start time.
    public var confirmedMs: UInt64
    public var breaker: BreakerState
    public var consecutiveFailures: Int
}

/// Everything the mesh layer counts. Wrapping adds: counters never trap.
public struct MeshCounters: Equatable {
    public var framesSent: UInt32 = 0
    public var broadcastsSent: UInt32 = 0
    public var framesReceived: UInt32 = 0
    /// Rejected datagrams by `WireError.code` (index 0 unused).
    public var rejected: [UInt32] = Array(repeating: 0, count: WireError.codeCount)
    /// Our own broadcasts coming back.
    public var ownFramesIgnored: UInt32 = 0
    /// Authentic frames from a peer's older epoch (its replay state was forgotten).
    public var staleFrames: UInt32 = 0
    public var unknownTypes: UInt32 = 0
    public var heartbeatsSent: UInt32 = 0
    public var announcesSent: UInt32 = 0
    public var queriesSent: UInt32 = 0
    public var probesSent: UInt32 = 0
    public var probesAnswered: UInt32 = 0
    public var relaysForwarded: UInt32 = 0
    public var relaysDropped: UInt32 = 0
    public var callsStarted: UInt32 = 0
    public var callsSucceeded: UInt32 = 0
    public var callsStale: UInt32 = 0
    public var callsFailed: UInt32 = 0
    public var requestsSent: UInt32 = 0
    public var retransmissions: UInt32 = 0
    public var failovers: UInt32 = 0
    public var lateResponses: UInt32 = 0
    public var requestsServed: UInt32 = 0
    /// Retransmitted requests answered from the dedup cache (or acked while in progress).
    public var duplicateRequests: UInt32 = 0
    public var busyReplies: UInt32 = 0
    public var lateServeAnswers: UInt32 = 0
    public var dedupEvictions: UInt32 = 0
    public var versionErrorsSent: UInt32 = 0
    public var versionErrorsSuppressed: UInt32 = 0
    public var peerTableFull: UInt32 = 0
    public var registryFull: UInt32 = 0
    public var actionsDropped: UInt32 = 0
    public var notRunningDrops: UInt32 = 0
    /// Authentic, fresh frames dropped by the per-sender rate limiter (MeshConfig.rateLimit).
    public var rateLimited: UInt32 = 0

    public init() {}

    public func rejected(_ error: WireError) -> UInt32 { rejected[Int(error.code)] }
    public var rejectedTotal: UInt32 {
        var total: UInt32 = 0
        for n in rejected { total &+= n }
        return total
    }
}
