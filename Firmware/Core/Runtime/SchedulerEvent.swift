// What the scheduler reports: events in a fixed ring that the owner drains (into
// metrics, the log, an RPC), never log lines.

public enum SchedulerEventKind: UInt8, BitwiseCopyable {
    /// detail: the failure code the task returned.
    case failed = 1
    /// detail: microseconds past the deadline (the larger of overrun and late start).
    case deadlineMiss = 2
    /// detail: releases of a periodic task that were skipped (it fell a period behind).
    case skippedTicks = 3
    /// detail: microseconds since the task's last progress.
    case watchdogStall = 4
    /// detail: the task's restart count, this one included.
    case restarted = 5
    /// detail: the back-off before the restart, in microseconds.
    case breakerOpen = 6
    /// detail: restarts in the current streak, this one included.
    case breakerHalfOpen = 7
    case breakerClosed = 8
    /// detail: the task's restart count.
    case gaveUp = 9
    case killed = 10
    /// A critical task returned `.done`.
    case criticalExited = 11

    public var name: StaticString {
        switch self {
        case .failed: return "failed"
        case .deadlineMiss: return "deadline_miss"
        case .skippedTicks: return "skipped_ticks"
        case .watchdogStall: return "watchdog_stall"
        case .restarted: return "restarted"
        case .breakerOpen: return "breaker_open"
        case .breakerHalfOpen: return "breaker_half_open"
        case .breakerClosed: return "breaker_closed"
        case .gaveUp: return "gave_up"
        case .killed: return "killed"
        case .criticalExited: return "critical_exited"
        }
    }
}

public struct SchedulerEvent: BitwiseCopyable {
    public var timeUs: UInt64
    public var taskID: TaskID
    public var detail: UInt32
    public var kind: SchedulerEventKind
    // Size == stride, 24 B (see TaskRecord).
    private var padding8: UInt8 = 0
    private var padding16: UInt16 = 0
    private var padding32: UInt32 = 0

    public init(timeUs: UInt64, taskID: TaskID, kind: SchedulerEventKind, detail: UInt32 = 0) {
        self.timeUs = timeUs
        self.taskID = taskID
        self.kind = kind
        self.detail = detail
    }
}

extension SchedulerEvent: Equatable {
    public static func == (a: SchedulerEvent, b: SchedulerEvent) -> Bool {
        a.timeUs == b.timeUs && a.taskID == b.taskID && a.detail == b.detail && a.kind == b.kind
    }
}

/// Fixed ring, allocated at init. When full, new events are dropped and counted:
/// the oldest ones, which show how a cascade started, are kept.
struct SchedulerEventRing {
    private(set) var slots: Table<SchedulerEvent>
    private var head = 0
    private(set) var count = 0
    private(set) var dropped: UInt32 = 0

    init(capacity: Int) {
        precondition(capacity >= 1)
        slots = Table(repeating: SchedulerEvent(timeUs: 0, taskID: TaskID(rawValue: 0), kind: .failed),
                      count: capacity)
    }

    mutating func push(_ event: SchedulerEvent) {
        guard count < slots.count else {
            dropped &+= 1
            return
        }
        var i = head + count
        if i >= slots.count { i -= slots.count }
        slots[i] = event
        count += 1
    }

    mutating func pop() -> SchedulerEvent? {
        guard count > 0 else { return nil }
        let event = slots[head]
        head += 1
        if head == slots.count { head = 0 }
        count -= 1
        return event
    }
}
