#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
#endif

/// One sensor service a sensor node offers.
public struct SensorService {
    public var name: [UInt8]
    public var kind: SensorKind
    public var version: SemVer
    /// 0 = primary, n = n-th backup.
    public var priority: UInt8
    /// Added to every raw sample (config `sensors.<name>.calibration_offset`).
    public var calibrationOffset: Double

    public init(name: [UInt8], kind: SensorKind, version: SemVer = SemVer(1, 0, 0), priority: UInt8 = 0,
                calibrationOffset: Double = 0) {
        self.name = name
        self.kind = kind
        self.version = version
        self.priority = priority
        self.calibrationOffset = calibrationOffset
    }

    public static func standardName(_ kind: SensorKind) -> StaticString {
        switch kind {
        case .temperature: return "temp_sensor"
        case .humidity: return "humidity_sensor"
        case .light: return "light_sensor"
        }
    }
}

/// Everything a node needs to start; the platform fills it from its config
/// (the config flash region on the board, a JSON file and flags on Linux).
public struct NodeConfig {
    public var name: [UInt8]
    public var nodeID: UInt32
    public var role: NodeRole
    public var address: NodeAddress
    public var keyID: UInt8
    public var key: [UInt8]
    public var sensors: [SensorService] = []
    public var mesh = MeshConfig()
    /// Subscriptions this node holds for others (sensor role) and its own.
    public var pubsub = PubSubConfig()
    public var scheduler = SchedulerConfig.standard
    /// The local config layer (defaults merged with the file and environment on
    /// Linux); nil = the built-in defaults (the board). Read with `config get`;
    /// `rate_limit.*` sets the mesh's per-sender limiter unless `mesh.rateLimit` is set.
    public var settings: ConfigTree? = nil
    public var rngSeed: UInt64
    /// Storage role: the node ids of every config replica (Raft's members),
    /// this node included; empty = this node alone (a single-replica group).
    /// Every replica must be given the same list.
    public var configReplicas: [UInt32] = []
    /// Storage role: consensus timing and bounds (1 s heartbeats, 3-6 s election timeouts).
    public var raft = RaftConfig()
    /// Sensor nodes sample this often.
    public var sampleIntervalMs: UInt32 = 1000
    /// The kernel's weather station refreshes this often (the seeds: 5 s).
    public var weatherIntervalMs: UInt32 = 5000
    /// Deadline of each weather-station read.
    public var readDeadlineMs: UInt32 = 3000
    /// Services the weather station reads, with the versions it accepts (caret).
    public var weatherServices: [(name: StaticString, version: SemVer)] = [
        ("temp_sensor", SemVer(1, 0, 0)), ("humidity_sensor", SemVer(1, 0, 0)), ("light_sensor", SemVer(1, 0, 0)),
    ]

    // The public init is in an extension below (it delegates to the memberwise one).

    /// The services this node announces.
    public var services: [ServiceDescriptor] {
        var out: [ServiceDescriptor] = []
        switch role {
        case .sensor:
            for s in sensors { add(&out, s.name, s.version, [.read, .subscribe], priority: s.priority) }
        case .kernel:
            add(&out, bytes("kernel"), SemVer(1, 0, 0), [.read])
        case .storage:
            add(&out, bytes("logger"), SemVer(1, 0, 0), [.log])
            add(&out, bytes("config"), SemVer(1, 0, 0), [.config])
        case .client:
            break
        }
        return out
    }

    /// One of this node's services (its role, its port): one call per service
    /// instead of a descriptor built inline four times.
    @inline(never)
    func add(_ out: inout [ServiceDescriptor], _ name: [UInt8], _ version: SemVer, _ caps: Capabilities,
             priority: UInt8 = 0) {
        out.append(ServiceDescriptor(name: name, version: version, role: role, capabilities: caps,
                                     priority: priority, port: address.port))
    }
}

extension NodeConfig {
    /// In an extension, so that it can delegate to the memberwise initialiser:
    /// built field by field in `self`, the config was copied out whole at the
    /// end (a retain and a release of every reference it holds).
    /// (`configReplicas` is passed only to pick the memberwise initialiser.)
    public init(name: [UInt8], nodeID: UInt32, role: NodeRole, address: NodeAddress, keyID: UInt8, key: [UInt8],
                sensors: [SensorService] = [], rngSeed: UInt64) {
        self.init(name: name, nodeID: nodeID, role: role, address: address, keyID: keyID, key: key,
                  sensors: sensors, rngSeed: rngSeed, configReplicas: [])
    }
}

@inline(__always)
public func bytes(_ s: StaticString) -> [UInt8] {
    Array(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
}
