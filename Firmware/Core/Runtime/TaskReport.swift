// The `tasks` answer (service 0, operation 6): scheduler introspection per
// task, as a CBOR array of maps with small unsigned keys (docs/PROTOCOL.md,
// "Task report"). The node encodes it from `Scheduler.forEachTask`; the CLI
// decodes it with the same code. Unknown keys are skipped, so fields can be
// added without a version change.

public struct TaskReport: Equatable {
    public struct Entry: Equatable {
        /// Key 1: the task id (slot | generation << 16).
        public var id: UInt32 = 0
        /// Key 2 (UTF-8).
        public var name: [UInt8] = []
        /// Key 3: 0 runs first.
        public var priority: UInt8 = 0
        /// Key 4: TaskState raw value.
        public var state: UInt8 = 0
        /// Key 5.
        public var critical: Bool = false
        /// Key 6: body calls.
        public var totalTicks: UInt64 = 0
        /// Key 7: failed ticks plus watchdog stalls.
        public var totalFailures: UInt32 = 0
        /// Key 8.
        public var consecutiveFailures: UInt32 = 0
        /// Key 9.
        public var deadlineMisses: UInt32 = 0
        /// Key 10: TaskWatchdogState raw value (0 off, 1 ok, 2 stalled).
        public var watchdog: UInt8 = 0
        /// Key 11: 0 = event-driven.
        public var tickRateHz: UInt32 = 0
        /// Key 12.
        public var restarts: UInt32 = 0
        /// Key 13: time spent in the body, µs.
        public var timeUsedTotalUs: UInt64 = 0
        /// Key 14: longest tick, µs.
        public var timeUsedMaxUs: UInt32 = 0
        /// Key 15: TaskBreakerState raw value.
        public var breaker: UInt8 = 0
        /// Key 16: 0 = none.
        public var watchdogTimeoutUs: UInt32 = 0
        /// Key 17: 0 = none.
        public var deadlineUs: UInt32 = 0
        /// Key 18: TaskFault raw value, 0 = healthy (absent on the wire).
        public var fault: UInt8 = 0
        /// Key 19: periodic releases skipped because the task was late.
        public var skippedTicks: UInt32 = 0
        /// Key 20.
        public var watchdogStalls: UInt32 = 0

        public init() {}

        public init(_ t: TaskInfo) {
            id = t.id.rawValue
            name = Array(UnsafeBufferPointer(start: t.name.utf8Start, count: t.name.utf8CodeUnitCount))
            priority = t.priority
            state = t.state.rawValue
            critical = t.critical
            totalTicks = t.totalTicks
            totalFailures = t.totalFailures
            consecutiveFailures = UInt32(t.consecutiveFailures)
            deadlineMisses = t.deadlineMisses
            watchdog = t.watchdog.rawValue
            tickRateHz = t.tickRateHz
            restarts = t.restarts
            timeUsedTotalUs = t.timeUsedTotalUs
            timeUsedMaxUs = t.timeUsedMaxUs
            breaker = t.breaker.rawValue
            watchdogTimeoutUs = t.watchdogTimeoutUs
            deadlineUs = t.deadlineUs
            fault = t.fault?.rawValue ?? 0
            skippedTicks = t.skippedTicks
            watchdogStalls = t.watchdogStalls
        }

        public var stateName: StaticString { TaskState(rawValue: state)?.name ?? "unknown" }
        public var breakerName: StaticString { TaskBreakerState(rawValue: breaker)?.name ?? "unknown" }
        public var watchdogName: StaticString {
            switch TaskWatchdogState(rawValue: watchdog) {
            case .off?: return "off"
            case .ok?: return "ok"
            case .stalled?: return "stalled"
            case nil: return "unknown"
            }
        }
        public var faultName: StaticString? {
            guard fault != 0 else { return nil }
            return TaskFault(rawValue: fault)?.name ?? "unknown"
        }

        func encode(_ w: inout CBORWriter) {
            w.mapHeader(count: fault == 0 ? 19 : 20)
            w.unsigned(1); w.unsigned(UInt64(id))
            w.unsigned(2); w.text(name)
            w.unsigned(3); w.unsigned(UInt64(priority))
            w.unsigned(4); w.unsigned(UInt64(state))
            w.unsigned(5); w.bool(critical)
            w.unsigned(6); w.unsigned(totalTicks)
            w.unsigned(7); w.unsigned(UInt64(totalFailures))
            w.unsigned(8); w.unsigned(UInt64(consecutiveFailures))
            w.unsigned(9); w.unsigned(UInt64(deadlineMisses))
            w.unsigned(10); w.unsigned(UInt64(watchdog))
            w.unsigned(11); w.unsigned(UInt64(tickRateHz))
            w.unsigned(12); w.unsigned(UInt64(restarts))
            w.unsigned(13); w.unsigned(timeUsedTotalUs)
            w.unsigned(14); w.unsigned(UInt64(timeUsedMaxUs))
            w.unsigned(15); w.unsigned(UInt64(breaker))
            w.unsigned(16); w.unsigned(UInt64(watchdogTimeoutUs))
            w.unsigned(17); w.unsigned(UInt64(deadlineUs))
            if fault != 0 { w.unsigned(18); w.unsigned(UInt64(fault)) }
            w.unsigned(19); w.unsigned(UInt64(skippedTicks))
            w.unsigned(20); w.unsigned(UInt64(watchdogStalls))
        }

        static func decode(_ r: inout CBORReader) throws(WireError) -> Entry {
            var e = Entry()
            let n = try r.mapHeader()
            for _ in 0..<n {
                if try r.peekMajor() != .unsigned {
                    try r.skip()  // a key that is not an unsigned integer, and its value
                    try r.skip()
                    continue
                }
                let key = try r.unsigned()
                switch key {
                case 1: e.id = try u32(&r)
                case 2:
                    let t = try r.text()
                    guard t.count <= 32 else { throw .malformedCBOR }
                    e.name = Array(t)
                case 3: e.priority = try u8(&r)
                case 4: e.state = try u8(&r)
                case 5: e.critical = try r.bool()
                case 6: e.totalTicks = try r.unsigned()
                case 7: e.totalFailures = try u32(&r)
                case 8: e.consecutiveFailures = try u32(&r)
                case 9: e.deadlineMisses = try u32(&r)
                case 10: e.watchdog = try u8(&r)
                case 11: e.tickRateHz = try u32(&r)
                case 12: e.restarts = try u32(&r)
                case 13: e.timeUsedTotalUs = try r.unsigned()
                case 14: e.timeUsedMaxUs = try u32(&r)
                case 15: e.breaker = try u8(&r)
                case 16: e.watchdogTimeoutUs = try u32(&r)
                case 17: e.deadlineUs = try u32(&r)
                case 18: e.fault = try u8(&r)
                case 19: e.skippedTicks = try u32(&r)
                case 20: e.watchdogStalls = try u32(&r)
                default: try r.skip()
                }
            }
            return e
        }

        static func u32(_ r: inout CBORReader) throws(WireError) -> UInt32 {
            let v = try r.unsigned()
            guard v <= UInt64(UInt32.max) else { throw .malformedCBOR }
            return UInt32(v)
        }

        static func u8(_ r: inout CBORReader) throws(WireError) -> UInt8 {
            let v = try r.unsigned()
            guard v <= 255 else { throw .malformedCBOR }
            return UInt8(v)
        }
    }

    /// More than any scheduler's task table (SchedulerConfig caps capacity lower).
    public static let entriesMax = 64

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    public init(scheduler: Scheduler) {
        var out: [Entry] = []
        out.reserveCapacity(scheduler.taskCount)
        scheduler.forEachTask { out.append(Entry($0)) }
        entries = out
    }

    public func encode() -> [UInt8] {
        var w = CBORWriter(capacity: 8 + entries.count * 64)
        w.arrayHeader(count: entries.count)
        for e in entries { e.encode(&w) }
        return w.bytes
    }

    /// `TaskReport(scheduler:).encode()`, written straight from the scheduler's
    /// task table: no `TaskInfo` or `Entry` per task, `CBORWriter.field` and
    /// `field64` for the key-value pairs (1.0 KB less code on the board than the entries).
    public static func encode(scheduler s: Scheduler) -> [UInt8] {
        var count = 0
        for slot in 0..<s.slotsInUseEnd where s.records.slot(slot).pointee.flags.contains(.used) { count += 1 }
        var w = CBORWriter(capacity: 8 + count * 64)
        w.arrayHeader(count: count)
        for slot in 0..<s.slotsInUseEnd {
            let r = s.records.slot(slot)
            if r.pointee.flags.contains(.used) { encodeRecord(r, &w) }
        }
        return w.bytes
    }

    /// One task's map, as `Entry.encode` writes it.
    private static func encodeRecord(_ r: UnsafeMutablePointer<TaskRecord>, _ w: inout CBORWriter) {
        let fault = r.pointee.fault?.rawValue ?? 0
        w.mapHeader(count: fault == 0 ? 19 : 20)
        w.field(1, UInt32(r.pointee.id.rawValue))
        let name = r.pointee.name
        w.unsigned(2)
        w.head(3, UInt64(name.utf8CodeUnitCount))
        w.bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        w.field(3, UInt32(r.pointee.priority))
        w.field(4, UInt32(r.pointee.state.rawValue))
        w.unsigned(5); w.bool(r.pointee.flags.contains(.critical))
        w.field64(6, r.pointee.totalTicks)
        w.field(7, UInt32(r.pointee.totalFailures))
        w.field(8, UInt32(r.pointee.consecutiveFailures))
        w.field(9, UInt32(r.pointee.deadlineMisses))
        w.field(10, UInt32(r.pointee.watchdog.rawValue))
        w.field(11, UInt32(r.pointee.tickRateHz))
        w.field(12, UInt32(r.pointee.restarts))
        w.field64(13, r.pointee.timeUsedTotalUs)
        w.field(14, UInt32(r.pointee.timeUsedMaxUs))
        w.field(15, UInt32(r.pointee.breaker.rawValue))
        w.field(16, UInt32(r.pointee.watchdogTimeoutUs))
        w.field(17, UInt32(r.pointee.deadlineUs))
        if fault != 0 { w.field(18, UInt32(fault)) }
        w.field(19, UInt32(r.pointee.skippedTicks))
        w.field(20, UInt32(r.pointee.watchdogStalls))
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> TaskReport {
        var r = CBORReader(bytes, depthMax: WireLimits.cborDepthMax)
        let n = try r.arrayHeader()
        guard n <= entriesMax else { throw .malformedCBOR }
        var entries: [Entry] = []
        entries.reserveCapacity(n)
        for _ in 0..<n { entries.append(try Entry.decode(&r)) }
        guard r.isAtEnd else { throw .malformedCBOR }
        return TaskReport(entries: entries)
    }
}
