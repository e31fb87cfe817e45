import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSNode

/// Set by SIGINT/SIGTERM; the loops check it between polls.
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

public func installStopHandlers() {
    signal(SIGINT) { _ in stopRequested = 1 }
    signal(SIGTERM) { _ in stopRequested = 1 }
    signal(SIGPIPE, SIG_IGN)
    // A parent may start us with these blocked (the mask is inherited across
    // exec; a test runner's is): Ctrl-C and `tdos sim down` must still work.
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

public var isStopRequested: Bool { stopRequested != 0 }

/// What `tdos node` takes on its command line.
public struct NodeOptions {
    public var role: NodeRole = .sensor
    public var name = "node"
    /// (service name, kind, priority, calibration offset)
    public var services: [SensorService] = []
    public var seed: UInt64 = 1
    public var keyFile: String?
    public var discovery = DiscoveryMode.defaultLoopback
    public var bindHost: UInt32 = 0x7F00_0001
    public var port: UInt16?
    public var stateDirectory = defaultRunDirectory() + "/state"
    public var timeScale = 60.0
    /// Exit when the parent process goes away (set by `tdos sim up`), so a
    /// killed supervisor never leaves nodes behind.
    public var parentPID: Int32?
    public var heartbeatIntervalMs: UInt32?
    /// Storage role: the names of every config replica (this node's included); empty = this node alone.
    public var configReplicas: [String] = []
    /// Adaptive polling window after traffic, µs (`--poll-us`); nil: `TDOS_POLL_US`
    /// or HostPolling.defaultWindowUs.
    public var pollWindowUs: UInt32?
    public init() {}
}

public func defaultRunDirectory() -> String {
    ProcessInfo.processInfo.environment["TDOS_RUN_DIR"] ?? "/tmp/tdos-sim-\(getuid())"
}

/// Stable node id on Linux: FNV-1a of the node name (the board uses its flash unique id).
public func hostNodeID(name: String) -> UInt32 {
    let id = serviceID(Array(name.utf8))
    return id == 0 ? 1 : id
}

public func makeNodeConfig(_ o: NodeOptions, key: MeshKey, address: NodeAddress) -> NodeConfig {
    var c = NodeConfig(name: Array(o.name.utf8), nodeID: hostNodeID(name: o.name), role: o.role, address: address,
                       keyID: key.id, key: key.bytes, rngSeed: o.seed ^ UInt64(hostNodeID(name: o.name)))
    c.sensors = o.services
    c.configReplicas = o.configReplicas.map(hostNodeID(name:))
    if let hb = o.heartbeatIntervalMs { c.mesh.heartbeatIntervalMs = hb }
    return c
}

/// Runs one node until SIGINT/SIGTERM (or its parent exits); leaves the mesh cleanly.
public func runNodeProcess(_ o: NodeOptions) throws -> Int32 {
    let key = try MeshKey.load(keyFile: o.keyFile)
    makeDirectories(o.stateDirectory)
    let transport = try UDPTransport(mode: o.discovery, bindHost: o.bindHost, port: o.port)
    let platform = PosixPlatform(transport: transport, nodeName: o.name, stateDirectory: o.stateDirectory,
                                 seed: o.seed, timeScale: o.timeScale)
    if key.isDevelopmentKey { platform.logSink("\(o.name): \(MeshKey.developmentWarning)") }
    var nodeConfig = makeNodeConfig(o, key: key, address: transport.local)
    let env = ProcessInfo.processInfo.environment
    do {
        // Defaults merged with $TDOS_CONFIG_FILE and the TDOS_*__* variables (docs/CONFIG.md).
        nodeConfig.settings = try ConfigFile.load(path: env["TDOS_CONFIG_FILE"], environment: env)
    } catch {
        throw HostError("\(o.name): bad config, node not started:\n\(error.description)")
    }
    let pollWindowUs = UInt64(try o.pollWindowUs ?? HostPolling.windowUs(environment: env))
    let runtime = NodeRuntime(platform: platform, config: nodeConfig)
    installStopHandlers()
    runtime.start()
    platform.logSink("\(o.name): listening on \(ipv4String(transport.local.host)):\(transport.local.port), node id \(hexID(runtime.config.nodeID))")
    var parentCheckAtUs: UInt64 = 0
    // Adaptive polling (HostPolling): after the loop has handled datagrams, poll
    // the socket until pollUntilUs before blocking; an idle node never spins.
    var pollUntilUs: UInt64 = 0
    var handledTraffic = false
    while !isStopRequested {
        let nextUs = runtime.runOnce()
        var nowUs = platform.nowUs()
        if handledTraffic {
            pollUntilUs = nowUs + pollWindowUs
            handledTraffic = false
        }
        var received = false
        if nowUs < pollUntilUs {
            // Never past the runtime's next timer: it runs on time as it would after a wait.
            received = transport.pollBatch(untilUs: min(pollUntilUs, nextUs ?? .max))
            if !received { nowUs = platform.nowUs() }
        }
        if !received {
            var waitMs: Int32 = 1000
            if let n = nextUs { waitMs = n <= nowUs ? 0 : Int32(min((n - nowUs + 999) / 1000, 1000)) }
            received = transport.waitAndReceiveBatch(timeoutMs: waitMs)
        }
        if received {
            runtime.datagramsReady()
            handledTraffic = true
        }
        // getppid is a system call: every 100 ms is soon enough to notice an
        // orphaned node, and keeps it off the path of every datagram.
        if let parent = o.parentPID, nowUs >= parentCheckAtUs {
            parentCheckAtUs = nowUs + 100_000
            if getppid() != parent { break }
        }
    }
    runtime.stop()
    platform.logSink("\(o.name): stopped (left the mesh)")
    return 0
}

public func hexID(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}
