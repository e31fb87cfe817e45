// The Simulation implementation of the platform contract (DESIGN.md rule 7):
// the clock is the simulation's virtual clock, datagrams go through the
// simulated network, sensors are seeded simulated weather, the display and the
// log are captured (the log in a bounded ring), and the boot epoch lives on the
// simulation's "disk", so a restarted node boots with the stored epoch + 1.
import TDOSCore
import TDOSNode

public final class SimPlatform: Platform {
    unowned let world: SimWorld
    public let index: Int
    var weather: SimulatedWeather
    /// Received datagrams not yet drained by the node (lwIP's fixed ring on the board).
    var inbox: [(bytes: [UInt8], from: NodeAddress, tainted: Bool)] = []
    var inboxHead = 0
    public static let inboxMax = 64
    public private(set) var inboxDrops: UInt64 = 0
    /// Corrupted or forged datagrams handed to the node: each must be rejected.
    public private(set) var taintedHandedOut: UInt32 = 0
    public private(set) var lastDisplay: [TextLine] = []
    public private(set) var displayUpdates: UInt64 = 0
    var logRing: [[UInt8]] = []
    var logHead = 0
    public static let logRingMax = 32
    public private(set) var watchdogFeeds: UInt64 = 0

    init(world: SimWorld, index: Int, seed: UInt64) {
        self.world = world
        self.index = index
        weather = SimulatedWeather(seed: seed)
        inbox.reserveCapacity(Self.inboxMax)
        logRing.reserveCapacity(Self.logRingMax)
    }

    public func nowUs() -> UInt64 { world.nowUs }

    public func send(_ bytes: [UInt8], to: NodeAddress) { world.transmit(from: index, to: to, bytes) }
    public func broadcast(_ bytes: [UInt8]) { world.transmitBroadcast(from: index, bytes) }

    public func receive() -> Datagram? {
        guard inboxHead < inbox.count else { return nil }
        let d = inbox[inboxHead]
        inboxHead += 1
        if inboxHead == inbox.count { inbox.removeAll(keepingCapacity: true); inboxHead = 0 }
        if d.tainted { taintedHandedOut &+= 1 }
        return Datagram(bytes: d.bytes, from: d.from)
    }

    /// False when the ring is full (the datagram is dropped, as lwIP would).
    func enqueue(_ bytes: [UInt8], from: NodeAddress, tainted: Bool) -> Bool {
        guard inbox.count - inboxHead < Self.inboxMax else { inboxDrops &+= 1; return false }
        inbox.append((bytes, from, tainted))
        return true
    }

    public func sample(_ kind: SensorKind, nowMs: UInt64) -> Double? {
        let hour = SimulatedWeather.hourOfDay(nowMs: nowMs, startHour: 9, timeScale: 60)
        switch kind {
        case .temperature: return weather.temperatureC(hour: hour)
        case .humidity: return weather.humidityPercent(hour: hour)
        case .light: return weather.lightLux(hour: hour)
        }
    }

    public func show(_ lines: [TextLine]) {
        lastDisplay = lines
        displayUpdates &+= 1
    }

    public func log(_ line: TextLine) {
        if logRing.count < Self.logRingMax {
            logRing.append(line.bytes)
        } else {
            logRing[logHead] = line.bytes
            logHead = (logHead + 1) % Self.logRingMax
        }
        if world.traceEnabled {
            world.traceLine("n\(index) log: \(String(decoding: line.bytes, as: UTF8.self))")
        }
    }

    /// The captured log, oldest first.
    public var logLines: [String] {
        let ordered = Array(logRing[logHead...]) + Array(logRing[..<logHead])
        return ordered.map { String(decoding: $0, as: UTF8.self) }
    }

    public func freeMemoryBytes() -> UInt32 { 150_000 }

    public func feedHardwareWatchdog() { watchdogFeeds &+= 1 }

    public func nextBootEpoch() -> UInt32 {
        world.disk[index] &+= 1
        return world.disk[index]
    }

    public func loadConfigRecord() -> (a: [UInt8], b: [UInt8]) { world.configDisk[index] }

    public func openLogFlash() -> SimLogFlash? { world.logFlash(index) }

    /// Replaced whole, like the rename on Linux and the A/B copies on flash.
    public func loadConsensusState() -> [UInt8] { world.consensusDisk[index] }

    public func storeConsensusState(_ record: [UInt8]) -> Bool {
        world.consensusDisk[index] = record
        return true
    }

    public func storeConfigRecord(_ record: [UInt8]) -> Bool {
        let copies = world.configDisk[index]
        if ConfigImage.writeToB(a: copies.a, b: copies.b) {
            world.configDisk[index].b = record
        } else {
            world.configDisk[index].a = record
        }
        return true
    }
}

/// The simulated log flash: RAM with NOR semantics and the power-cut model,
/// shared by reference so it outlives a node's crash like real flash.
public final class SimLogFlash: LogFlash {
    public var ram: RAMLogFlash
    public init(_ ram: RAMLogFlash) { self.ram = ram }
    public var sectorCount: Int { ram.sectorCount }
    public var sectorSize: Int { ram.sectorSize }
    public var pageSize: Int { ram.pageSize }
    public func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws(LogFlashError) {
        try ram.read(offset: offset, count: count, into: &buffer)
    }
    public func erase(sector: Int) throws(LogFlashError) { try ram.erase(sector: sector) }
    public func program(offset: Int, bytes: [UInt8]) throws(LogFlashError) { try ram.program(offset: offset, bytes: bytes) }
}
