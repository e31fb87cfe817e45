/// Every knob and bound of the mesh layer, in one place, with their relations
/// checked by `check()` (called by `MeshNode.init`). Times are milliseconds.
/// Defaults: 1 s heartbeats, a crashed node declared dead 3 s after it was last
/// heard (2-3 s after the crash, 2.5 s median), CoAP's RPC retransmission
/// (RFC 7252 section 4.8: ACK_TIMEOUT 2 s, ACK_RANDOM_FACTOR 1.5,
/// MAX_RETRANSMIT 4, doubling), breakers opening after 3 failures for 30 s.
public struct MeshConfig: Equatable {
    // MARK: Failure detection (heartbeats + SWIM-style probes)

    /// Period of the broadcast heartbeat.
    public var heartbeatIntervalMs: UInt32 = 1000
    /// Each heartbeat and announce period is drawn in interval * (100 +/- this) / 100,
    /// so nodes booted together do not stay in lock-step.
    public var heartbeatJitterPercent: UInt32 = 10
    /// A peer silent for this long (since it was last heard, directly or through
    /// a relay) becomes `suspect` and is probed: directly and via `indirectProbeCount` peers.
    public var suspectAfterMs: UInt32 = 2500
    /// A peer silent for this long is declared dead: its services are removed
    /// and calls on them fail over. A probe answer in between refutes the suspicion.
    public var deadAfterMs: UInt32 = 3000
    /// Peers asked to relay a probe to a suspect (SWIM's k).
    public var indirectProbeCount: Int = 3
    /// When a peer is only reachable through a relay, it is probed through that
    /// relay at this period (standing in for the heartbeats that do not arrive).
    public var relayProbeIntervalMs: UInt32 = 1000

    // MARK: Discovery

    /// Period of the broadcast `announce` (also sent at start, on a `query`,
    /// and whenever the local services change).
    public var announceIntervalMs: UInt32 = 10_000
    /// A service instance not confirmed for this long (by an announce, or by a
    /// heartbeat or status whose services digest matches) is removed.
    public var serviceTTLMs: UInt32 = 30_000
    /// At most one `query` per peer (and per sought service name) in this time.
    /// Below the shortest heartbeat gap, so every heartbeat with a stale digest may ask.
    public var queryIntervalMinMs: UInt32 = 500

    // MARK: RPC

    /// First retransmission timeout, before jitter (CoAP ACK_TIMEOUT).
    public var rpcInitialTimeoutMs: UInt32 = 2000
    /// Each retransmission timeout is the previous one times this.
    public var rpcBackoffFactor: UInt32 = 2
    /// Retransmissions of a request to one instance before it counts as failed
    /// (CoAP MAX_RETRANSMIT).
    public var rpcRetransmitMax: Int = 4
    /// The first timeout is drawn in rpcInitialTimeoutMs * [100, this] / 100
    /// (CoAP ACK_RANDOM_FACTOR 1.5 = 150). 100 = no jitter.
    public var rpcRandomFactorPercent: UInt32 = 150
    /// Longest deadline a call may ask for; longer ones are clamped.
    public var callDeadlineMaxMs: UInt32 = 600_000

    // MARK: Circuit breaker (per service instance)

    /// Consecutive failures that open the breaker.
    public var breakerFailureThreshold: Int = 3
    /// Time an open breaker refuses calls before letting trial calls through.
    public var breakerOpenMs: UInt32 = 30_000
    /// Successful trial calls (one at a time) that close a half-open breaker.
    public var breakerHalfOpenSuccesses: Int = 2

    // MARK: Degradation

    /// Oldest last-known value a call may fall back on when no instance answers.
    public var staleValueMaxAgeMs: UInt32 = 300_000

    // MARK: Limits (tables are preallocated to these at init)

    public var peersMax: Int = 16
    /// Service instances in the registry (all nodes together).
    public var instancesMax: Int = 32
    /// Client calls in flight at once.
    public var callsInFlightMax: Int = 8
    /// Server-side table of requests being served and answers kept to answer
    /// retransmissions without executing twice.
    public var dedupCacheMax: Int = 16
    /// How long an answer is kept for retransmissions; covers the longest
    /// retransmission span (CoAP EXCHANGE_LIFETIME in spirit).
    public var dedupLifetimeMs: UInt32 = 93_000
    /// Last-known values (one per service) for the stale tier.
    public var staleCacheMax: Int = 8
    /// Probes awaiting an answer.
    public var probesMax: Int = 16
    /// Actions waiting for `pollAction()`; sends and events beyond it are
    /// dropped and counted (call completions and serve requests never are:
    /// they are bounded by callsInFlightMax and dedupCacheMax).
    public var actionQueueMax: Int = 64
    /// Sources remembered for rate-limiting the unsupported-version reply.
    public var versionReplySourcesMax: Int = 8
    /// At most one version error reply per source in this time.
    public var versionReplyIntervalMs: UInt32 = 1000
    /// Whether this node forwards `relay` envelopes for others.
    public var relayEnabled: Bool = true
    /// Per-sender token bucket on authentic, fresh frames (after the tag and the
    /// replay window: a forger or a replayer cannot spend an honest sender's
    /// tokens); what it drops is counted in `counters.rateLimited`. nil = off.
    public var rateLimit: RateLimiterConfig? = nil

    public init() {}

    /// Bytes a relay envelope adds around a frame (header <= 32, map and
    /// destination <= 7, byte string head 3, tag 16), rounded up.
    public static let relayOverheadBytes = 64
    /// Largest request arguments / response payload: always fits a frame, and
    /// still fits when the frame has to travel inside a relay envelope.
    public static var rpcPayloadBytesMax: Int { Frame.payloadBytesMaxUncompressed - relayOverheadBytes - 16 }

    /// Time from the first transmission of a request to giving up on that
    /// instance, at the largest jitter: T * (f^(n+1) - 1) / (f - 1).
    public var retransmitSpanMaxMs: UInt64 {
        var timeout = UInt64(rpcInitialTimeoutMs) * UInt64(rpcRandomFactorPercent) / 100
        var total: UInt64 = 0
        for _ in 0...rpcRetransmitMax {
            total += timeout
            timeout *= UInt64(rpcBackoffFactor)
        }
        return total
    }

    public func check() {
        precondition(heartbeatIntervalMs > 0 && heartbeatJitterPercent < 50)
        let heartbeatLateMs = UInt64(heartbeatIntervalMs) * UInt64(100 + heartbeatJitterPercent) / 100
        precondition(UInt64(suspectAfterMs) > heartbeatLateMs,
                     "suspectAfterMs must exceed the longest heartbeat gap")
        precondition(deadAfterMs > suspectAfterMs, "probes need the time between suspect and dead")
        precondition(indirectProbeCount >= 0 && indirectProbeCount < peersMax)
        precondition(relayProbeIntervalMs > 0 && relayProbeIntervalMs < suspectAfterMs,
                     "a relayed peer must be probed before it would turn suspect")
        precondition(announceIntervalMs > 0 && queryIntervalMinMs > 0)
        precondition(serviceTTLMs >= deadAfterMs, "instances must outlive their node's death timer")
        precondition(serviceTTLMs > announceIntervalMs, "a periodic announce must refresh instances in time")
        precondition(rpcInitialTimeoutMs > 0 && rpcBackoffFactor >= 1)
        precondition(rpcRetransmitMax >= 0 && rpcRetransmitMax <= 8)
        precondition(rpcRandomFactorPercent >= 100 && rpcRandomFactorPercent <= 400)
        precondition(callDeadlineMaxMs > 0)
        precondition(breakerFailureThreshold >= 1 && breakerHalfOpenSuccesses >= 1 && breakerOpenMs > 0)
        precondition(peersMax >= 1 && peersMax <= WireLimits.replayPeersMax,
                     "every peer needs a replay window slot")
        precondition(instancesMax >= servicesPerNodeMax, "one full announce must fit")
        precondition(callsInFlightMax >= 1 && callsInFlightMax <= 255)
        precondition(dedupCacheMax >= callsInFlightMax,
                     "one peer's full load of calls must fit the server's dedup table")
        precondition(UInt64(dedupLifetimeMs) >= retransmitSpanMaxMs,
                     "answers must be kept while a client may still retransmit")
        precondition(staleCacheMax >= 0 && probesMax >= indirectProbeCount + 1)
        precondition(actionQueueMax >= 8 && versionReplySourcesMax >= 1 && versionReplyIntervalMs > 0)
        precondition(MeshConfig.rpcPayloadBytesMax > 256)
    }
}
