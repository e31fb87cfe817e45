// Scheduler settings: presets after HORUS's (standard, high performance, low
// latency, power saving), every field settable; and the scheduler's hard limits.

/// The scheduler's hard bounds, with their relations checked by `check()`.
public enum SchedulerLimits {
    /// A TaskID's slot field is 16 bits; this keeps tables of a node small anyway.
    public static let taskCapacityMax = 1024
    /// One bit per level in the ready mask (a UInt32).
    public static let priorityLevelsMax = 32
    /// Signals and sources are bits of a UInt64.
    public static let signalsMax = 64
    public static let sourcesMax = 64
    public static let eventCapacityMax = 1024
    /// A periodic task's period is at least 1 µs.
    public static let tickRateHzMax: UInt32 = 1_000_000

    public static func check() {
        precondition(taskCapacityMax <= Int(UInt16.max), "slots are stored as UInt16")
        precondition(priorityLevelsMax <= 32, "the ready mask is a UInt32")
        precondition(signalsMax <= 64 && sourcesMax <= 64, "signal and source sets are UInt64 bitmaps")
        precondition(tickRateHzMax <= 1_000_000, "a period is a whole number of microseconds")
    }
}

public struct SchedulerConfig {
    /// Tasks that can exist at once; the table is allocated at init.
    public var taskCapacity: Int
    /// Priority levels; level 0 runs first.
    public var priorityLevels: Int
    /// Rate of tasks spawned with `TaskRate.configTickRate`.
    public var tickRateHz: UInt32
    /// Most task ticks one `runReady` call runs before it hands control back to
    /// the platform (which then polls its datagrams and calls again).
    public var stepsPerRunMax: Int
    /// Wake-ups due within this much of the first one are merged into one, at the
    /// last of them: fewer wake-ups, later timers. 0 = every timer exactly on time.
    public var timerSlackUs: UInt32
    /// Count and report deadline misses of tasks that have a deadline.
    public var deadlineMonitoring: Bool
    /// Master switch for the per-task watchdogs (off: while debugging with breakpoints).
    public var watchdogEnabled: Bool
    /// Trip a task's breaker after `failuresToOpen` consecutive failures.
    public var circuitBreaker: Bool
    public var failuresToOpen: UInt16
    /// Back-off before the n-th restart of a streak: base * 2^(n-1), at most max.
    public var restartBackoffBaseUs: UInt32
    public var restartBackoffMaxUs: UInt32
    /// Breaker restarts in a row after which the task is given up on.
    public var restartsMax: UInt16
    /// A successful tick this long after the last restart forgives the streak, so
    /// rare failures a week apart never add up to giving up.
    public var breakerResetUs: UInt32
    /// Events kept until the owner drains them; more are counted and dropped.
    public var eventCapacity: Int

    /// `.standard`, field by field.
    public init(taskCapacity: Int = 16, priorityLevels: Int = 4, tickRateHz: UInt32 = 100,
                stepsPerRunMax: Int = 64, timerSlackUs: UInt32 = 0,
                deadlineMonitoring: Bool = true, watchdogEnabled: Bool = true,
                circuitBreaker: Bool = true, failuresToOpen: UInt16 = 5,
                restartBackoffBaseUs: UInt32 = 100_000, restartBackoffMaxUs: UInt32 = 10_000_000,
                restartsMax: UInt16 = 5, breakerResetUs: UInt32 = 60_000_000,
                eventCapacity: Int = 32) {
        self.taskCapacity = taskCapacity
        self.priorityLevels = priorityLevels
        self.tickRateHz = tickRateHz
        self.stepsPerRunMax = stepsPerRunMax
        self.timerSlackUs = timerSlackUs
        self.deadlineMonitoring = deadlineMonitoring
        self.watchdogEnabled = watchdogEnabled
        self.circuitBreaker = circuitBreaker
        self.failuresToOpen = failuresToOpen
        self.restartBackoffBaseUs = restartBackoffBaseUs
        self.restartBackoffMaxUs = restartBackoffMaxUs
        self.restartsMax = restartsMax
        self.breakerResetUs = breakerResetUs
        self.eventCapacity = eventCapacity
    }

    /// 100 Hz, every timer on time, breaker after 5 failures, back-off 0.1 s to 10 s.
    public static var standard: SchedulerConfig { SchedulerConfig() }

    /// 200 Hz and more ticks per call: throughput over responsiveness to datagrams.
    public static var highPerformance: SchedulerConfig {
        var c = SchedulerConfig()
        c.tickRateHz = 200
        c.stepsPerRunMax = 256
        return c
    }

    /// 500 Hz, few ticks per call (the platform polls its datagrams often), quick restarts.
    public static var lowLatency: SchedulerConfig {
        var c = SchedulerConfig()
        c.tickRateHz = 500
        c.stepsPerRunMax = 8
        c.restartBackoffBaseUs = 10_000
        c.restartBackoffMaxUs = 1_000_000
        return c
    }

    /// 10 Hz, wake-ups within 20 ms merged, slow restarts: the board sleeps longer.
    public static var powerSaving: SchedulerConfig {
        var c = SchedulerConfig()
        c.tickRateHz = 10
        c.timerSlackUs = 20_000
        c.restartBackoffBaseUs = 1_000_000
        c.restartBackoffMaxUs = 60_000_000
        c.eventCapacity = 16
        return c
    }

    /// A broken config is a programming error.
    public func check() {
        SchedulerLimits.check()
        precondition(taskCapacity >= 1 && taskCapacity <= SchedulerLimits.taskCapacityMax, "taskCapacity")
        precondition(priorityLevels >= 1 && priorityLevels <= SchedulerLimits.priorityLevelsMax, "priorityLevels")
        precondition(tickRateHz >= 1 && tickRateHz <= SchedulerLimits.tickRateHzMax, "tickRateHz")
        precondition(stepsPerRunMax >= 1, "stepsPerRunMax")
        precondition(failuresToOpen >= 1, "failuresToOpen")
        precondition(restartBackoffBaseUs <= restartBackoffMaxUs, "back-off base above its max")
        precondition(eventCapacity >= 1 && eventCapacity <= SchedulerLimits.eventCapacityMax, "eventCapacity")
    }
}
