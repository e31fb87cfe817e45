#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSNode

/// The Linux platform: a node as a process speaking UDP. Sensors are simulated
/// weather (seeded); the display is stdout; the log is stderr; the boot epoch
/// lives in a state file written with fsync before the first frame is sent.
public final class PosixPlatform: Platform {
    public let transport: UDPTransport
    public let nodeName: String
    public let stateDirectory: String
    var weather: SimulatedWeather
    /// Simulated hours per real hour: 60 shows a whole day in 24 minutes.
    public var timeScale: Double
    public var startHour: Double
    /// Feeds of the (absent) hardware watchdog: a count, not a clock read per loop.
    public private(set) var watchdogFeeds: UInt64 = 0
    /// Where display lines go (stdout by default).
    public var displaySink: (String) -> Void = { print($0) }
    public var logSink: (String) -> Void = { line in
        FileHandleStderr.write(line + "\n")
    }

    public init(transport: UDPTransport, nodeName: String, stateDirectory: String, seed: UInt64,
                timeScale: Double = 60, startHour: Double = 9) {
        self.transport = transport
        self.nodeName = nodeName
        self.stateDirectory = stateDirectory
        self.weather = SimulatedWeather(seed: seed)
        self.timeScale = timeScale
        self.startHour = startHour
    }

    public func nowUs() -> UInt64 { monotonicNs() / 1000 }

    public func send(_ bytes: [UInt8], to: NodeAddress) { transport.send(bytes, to: to) }
    public func broadcast(_ bytes: [UInt8]) { transport.broadcast(bytes) }
    /// From the batch the node's loop received while it waited
    /// (UDPTransport.waitAndReceiveBatch), then from fresh batches.
    public func receive() -> Datagram? {
        guard let d = transport.receiveBatched() else { return nil }
        return Datagram(bytes: d.bytes, from: d.from)
    }

    public func sample(_ kind: SensorKind, nowMs: UInt64) -> Double? {
        let hour = SimulatedWeather.hourOfDay(nowMs: wallMs(), startHour: startHour, timeScale: timeScale)
        switch kind {
        case .temperature: return weather.temperatureC(hour: hour)
        case .humidity: return weather.humidityPercent(hour: hour)
        case .light: return weather.lightLux(hour: hour)
        }
    }

    /// Milliseconds since the Unix epoch: the simulated weather follows wall
    /// time so every sensor process of a mesh sees the same time of day.
    func wallMs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }

    public func show(_ lines: [TextLine]) {
        let text = lines.map { String(decoding: $0.bytes, as: UTF8.self) }.joined(separator: " | ")
        displaySink("[\(nodeName)] \(text)")
    }

    public func log(_ line: TextLine) {
        logSink("\(timestamp()) \(nodeName): \(String(decoding: line.bytes, as: UTF8.self))")
    }

    public func freeMemoryBytes() -> UInt32 {
        let pages = sysconf(Int32(_SC_AVPHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return 0 }
        return UInt32(min(UInt64(pages) * UInt64(size), UInt64(UInt32.max)))
    }

    /// On Linux: the process's resident memory (/proc/self/statm), the nearest
    /// thing to the board's heap in use (glibc's mallinfo2 is not in the Glibc module).
    public func heapInUseBytes() -> UInt32 {
        guard let text = try? readTextFile("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return UInt32(clamping: pages * UInt64(max(0, sysconf(Int32(_SC_PAGESIZE)))))
    }

    public func feedHardwareWatchdog() { watchdogFeeds &+= 1 }

    /// `<state>/<node>.log`: the board's 256 KB log region as a file (fsync per write).
    public func openLogFlash() -> FileLogFlash? {
        do {
            return try FileLogFlash(path: "\(stateDirectory)/\(nodeName).log")
        } catch {
            log(TextLine("cannot open the log file in the state directory (--state-dir): log requests answer unavailable"))
            return nil
        }
    }

    /// Copies A and B of the config record: `<state>/<node>.config-a|-b`.
    func configPath(_ copy: String) -> String { "\(stateDirectory)/\(nodeName).config-\(copy)" }

    public func loadConfigRecord() -> (a: [UInt8], b: [UInt8]) {
        ((try? readFileBytes(configPath("a"))) ?? [], (try? readFileBytes(configPath("b"))) ?? [])
    }

    public func storeConfigRecord(_ record: [UInt8]) -> Bool {
        let copies = loadConfigRecord()
        let path = configPath(ConfigImage.writeToB(a: copies.a, b: copies.b) ? "b" : "a")
        do {
            try writeFileDurably(path, record)
            return true
        } catch {
            log(TextLine("cannot write the config record (check --state-dir permissions)"))
            return false
        }
    }

    /// `<state>/<node>.raft`, replaced whole (temporary file, fsync, rename, fsync of the directory).
    func consensusPath() -> String { "\(stateDirectory)/\(nodeName).raft" }

    /// A missing file is a replica that never voted; one that exists but cannot
    /// be read is not (treating it as fresh could forget a vote): returned as
    /// bytes that fail the CRC, so consensus stops on this replica and says why.
    public func loadConsensusState() -> [UInt8] {
        guard access(consensusPath(), F_OK) == 0 else { return [] }
        return (try? readFileBytes(consensusPath())) ?? [0xFF]
    }

    public func storeConsensusState(_ record: [UInt8]) -> Bool {
        do {
            try writeFileDurably(consensusPath(), record)
            return true
        } catch {
            log(TextLine("cannot write the consensus state (check --state-dir permissions and free space)"))
            return false
        }
    }

    public func nextBootEpoch() -> UInt32 {
        let path = "\(stateDirectory)/\(nodeName).epoch"
        var epoch: UInt32 = 0
        if let text = try? readTextFile(path), let v = UInt32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            epoch = v
        }
        let next = epoch &+ 1
        do {
            try writeFileDurably(path, Array("\(next)\n".utf8))
        } catch {
            // Without a durable epoch, ids could repeat after a restart and peers
            // would drop this node's frames as replays: refuse to start.
            fatalError("cannot persist the boot epoch at \(path): \(error). Fix the state directory (--state-dir) permissions.")
        }
        return next
    }
}

func timestamp() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    var t = time_t(ts.tv_sec)
    var tmv = tm()
    localtime_r(&t, &tmv)
    let ms = Int(ts.tv_nsec / 1_000_000)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let msText = ms < 10 ? "00\(ms)" : (ms < 100 ? "0\(ms)" : "\(ms)")
    return "\(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec)).\(msText)"
}

enum FileHandleStderr {
    static func write(_ s: String) {
        var bytes = Array(s.utf8)
        _ = Glibc.write(2, &bytes, bytes.count)
    }
}

public func readTextFile(_ path: String) throws -> String {
    String(decoding: try readFileBytes(path), as: UTF8.self)
}

public func readFileBytes(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw HostError("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buf, buf.count)
        if n < 0 { throw HostError("cannot read \(path): \(String(cString: strerror(errno)))") }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out
}

/// Write to a temporary file, fsync it, rename over the target, fsync the directory.
public func writeFileDurably(_ path: String, _ bytes: [UInt8]) throws {
    let tmp = path + ".tmp"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw HostError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
    var written = 0
    while written < bytes.count {
        let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n <= 0 { close(fd); throw HostError("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        written += n
    }
    guard fsync(fd) == 0 else { close(fd); throw HostError("fsync \(tmp) failed: \(String(cString: strerror(errno)))") }
    close(fd)
    guard rename(tmp, path) == 0 else { throw HostError("cannot rename \(tmp): \(String(cString: strerror(errno)))") }
    let dir = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
    let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
    if dfd >= 0 { fsync(dfd); close(dfd) }
}

public func makeDirectories(_ path: String) {
    var current = ""
    for part in path.split(separator: "/", omittingEmptySubsequences: false) {
        current += (current.isEmpty && path.hasPrefix("/") ? "" : (current.isEmpty ? "" : "/")) + part
        if current.isEmpty { current = "/"; continue }
        mkdir(current, 0o755)
    }
}
