// Introspection: a snapshot of one task (for the CLI, RPC and health reports),
// and the record of the first critical task to become unhealthy.

public enum TaskWatchdogState: UInt8 {
    case off
    case ok
    /// Expired; the task is being restarted (or its breaker opened).
    case stalled
}

public struct TaskInfo {
    public var id: TaskID
    public var name: StaticString
    public var priority: UInt8
    public var state: TaskState
    public var critical: Bool
    /// nil = healthy.
    public var fault: TaskFault?
    public var watchdog: TaskWatchdogState
    public var breaker: TaskBreakerState
    /// 0 = event-driven.
    public var tickRateHz: UInt32
    /// 0 = none.
    public var deadlineUs: UInt32
    /// `.failed` ticks plus watchdog stalls.
    public var totalFailures: UInt32
    /// Ticks run (calls of the body), failed ones included.
    public var totalTicks: UInt64
    public var deadlineMisses: UInt32
    public var skippedTicks: UInt32
    public var consecutiveFailures: UInt16
    public var lastFailureCode: UInt16
    /// 0 = none.
    public var watchdogTimeoutUs: UInt32
    public var watchdogLastFedUs: UInt64
    public var watchdogStalls: UInt32
    public var restarts: UInt32
    public var timeUsedMaxUs: UInt32
    /// Time spent in the body, by `clockUs`.
    public var timeUsedTotalUs: UInt64
    /// When its timer (sleep, release, wait timeout, back-off) fires; nil if none.
    public var wakeUs: UInt64?
    // Size == stride on armv6m (see TaskRecord): arrays of it stay word-aligned.
    private var padding8: UInt8 = 0
    private var padding16: UInt16 = 0
    private var padding32: UInt32 = 0

    init(id: TaskID, name: StaticString, priority: UInt8, state: TaskState, critical: Bool,
         fault: TaskFault?, watchdog: TaskWatchdogState, breaker: TaskBreakerState, tickRateHz: UInt32,
         deadlineUs: UInt32, totalFailures: UInt32, totalTicks: UInt64, deadlineMisses: UInt32,
         skippedTicks: UInt32, consecutiveFailures: UInt16, lastFailureCode: UInt16,
         watchdogTimeoutUs: UInt32, watchdogLastFedUs: UInt64, watchdogStalls: UInt32,
         restarts: UInt32, timeUsedMaxUs: UInt32, timeUsedTotalUs: UInt64, wakeUs: UInt64?) {
        self.id = id
        self.name = name
        self.priority = priority
        self.state = state
        self.critical = critical
        self.fault = fault
        self.watchdog = watchdog
        self.breaker = breaker
        self.tickRateHz = tickRateHz
        self.deadlineUs = deadlineUs
        self.totalFailures = totalFailures
        self.totalTicks = totalTicks
        self.deadlineMisses = deadlineMisses
        self.skippedTicks = skippedTicks
        self.consecutiveFailures = consecutiveFailures
        self.lastFailureCode = lastFailureCode
        self.watchdogTimeoutUs = watchdogTimeoutUs
        self.watchdogLastFedUs = watchdogLastFedUs
        self.watchdogStalls = watchdogStalls
        self.restarts = restarts
        self.timeUsedMaxUs = timeUsedMaxUs
        self.timeUsedTotalUs = timeUsedTotalUs
        self.wakeUs = wakeUs
    }
}

/// The first critical task to become unhealthy since the critical tasks were last
/// all healthy: what the platform persists as the reboot reason before it stops
/// feeding the hardware watchdog, and prints at the next boot.
public struct CriticalFault: Equatable {
    public var taskID: TaskID
    public var name: StaticString
    public var fault: TaskFault
    public var timeUs: UInt64

    /// Stable reason code (`TaskFault.rawValue`).
    public var code: UInt8 { fault.rawValue }

    public static func == (a: CriticalFault, b: CriticalFault) -> Bool {
        a.taskID == b.taskID && a.fault == b.fault && a.timeUs == b.timeUs
    }
}

/// Whole-scheduler counters.
public struct SchedulerStats: Equatable {
    public var runCalls: UInt64 = 0
    /// Body calls over all tasks.
    public var ticks: UInt64 = 0
    public var spawned: UInt32 = 0
    public var spawnsRejected: UInt32 = 0
    public var completed: UInt32 = 0
    public var killed: UInt32 = 0
    /// `runReady` calls whose time was earlier than the previous one (treated as
    /// the previous one).
    public var clockRegressions: UInt32 = 0
}
