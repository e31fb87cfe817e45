// The scheduler's vocabulary: task ids, what a task waits for next, why it woke,
// how it ended, its health, and the options it is spawned with.

/// A task body: called once per tick, returns what the task waits for next. The
/// body's own state lives where its owner chooses: in class instances it captures
/// (re-created by the task's factory on a restart) or in the owner.
public typealias TaskBody = (inout TaskContext) -> TaskStep

/// Makes a fresh body: called at spawn and again at every restart, so a restarted
/// task starts from clean state.
public typealias TaskFactory = () -> TaskBody

/// Names a task while it exists: its slot in the table plus the slot's generation,
/// so an id kept after the task ended never names the slot's next occupant.
/// A restarted task keeps its id (joiners and owners keep their handle).
public struct TaskID: Equatable, BitwiseCopyable {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    init(slot: Int, generation: UInt16) {
        rawValue = UInt32(generation) << 16 | UInt32(truncatingIfNeeded: slot)
    }

    public var slot: Int { Int(rawValue & 0xFFFF) }
    public var generation: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 16) }
}

/// A signal number below `SchedulerLimits.signalsMax`. Raising a signal wakes every
/// task waiting on it at that moment; a signal nobody waits for is lost
/// (edge-triggered, like a condition variable's broadcast).
public struct SignalID: Equatable {
    public let rawValue: UInt8

    public init(_ rawValue: UInt8) {
        precondition(Int(rawValue) < SchedulerLimits.signalsMax, "signal id out of range")
        self.rawValue = rawValue
    }

    var bit: UInt64 { 1 << UInt64(rawValue) }
}

/// A readiness source (a datagram queue, a sensor FIFO) below
/// `SchedulerLimits.sourcesMax`. Level-triggered: `Scheduler.markReadable` wakes
/// the tasks waiting on it, or, when none is, latches so that the next
/// `.waitReadable` returns at once. A woken reader drains its source before waiting again.
public struct SourceID: Equatable {
    public let rawValue: UInt8

    public init(_ rawValue: UInt8) {
        precondition(Int(rawValue) < SchedulerLimits.sourcesMax, "source id out of range")
        self.rawValue = rawValue
    }

    var bit: UInt64 { 1 << UInt64(rawValue) }
}

/// What a task waits for after this tick. Times are absolute, in the scheduler's
/// microseconds. The waits take an optional `untilUs`: the task wakes at that time
/// (reason `.timer`) if what it waits for has not happened by then.
public enum TaskStep: Equatable {
    /// Ready again now: goes to the back of its priority's queue. For a periodic
    /// task: this tick is complete, run again at the next release.
    case yield
    /// Ready at `untilUs` (at once if that has passed).
    case sleep(untilUs: UInt64)
    /// Until the signal is raised.
    case waitSignal(SignalID, untilUs: UInt64 = .max)
    /// Until the platform marks the source readable (at once if it is latched).
    case waitReadable(SourceID, untilUs: UInt64 = .max)
    /// Until the task ends (done, killed, given up); at once if it already has.
    case waitJoin(TaskID, untilUs: UInt64 = .max)
    /// The task is finished: its slot is freed, its joiners wake.
    case done
    /// This tick failed. Counted toward the circuit breaker; below its threshold the
    /// task runs again like after `.yield`.
    case failed(code: UInt16)
}

/// Why the task is running now (`TaskContext.wakeReason`).
public enum WakeReason: UInt8, BitwiseCopyable {
    /// First tick after spawn.
    case started
    /// First tick of a new instance made by the factory after a stall or a breaker back-off.
    case restarted
    /// Its previous tick returned `.yield` (event-driven tasks).
    case yielded
    /// A sleep ended, a periodic release came, or a wait's `untilUs` passed.
    case timer
    case signal
    case readable
    /// The joined task ended; `TaskContext.joinedExit` says how.
    case joined
    /// Its previous tick returned `.failed` and the breaker is still closed.
    case retry
}

/// How a joined task ended.
public enum TaskExit: UInt8, BitwiseCopyable {
    case done
    case killed
    case gaveUp
    /// The id names no task (it ended before the join, or never existed).
    case notFound
}

/// Where a task is, for introspection.
public enum TaskState: UInt8, BitwiseCopyable {
    /// In a ready queue.
    case ready
    /// Its body is executing (seen only from inside the tick).
    case running
    case sleeping
    /// A periodic task between its releases.
    case waitingRelease
    case waitingSignal
    case waitingReadable
    case waitingJoin
    /// Its watchdog expired: re-created from its factory at the next `runReady`.
    case restartPending
    /// Its breaker is open: re-created when the back-off ends.
    case breakerOpen
    /// Too many restarts: stopped for good (it keeps its slot for introspection
    /// until killed).
    case gaveUp

    public var name: StaticString {
        switch self {
        case .ready: return "ready"
        case .running: return "running"
        case .sleeping: return "sleeping"
        case .waitingRelease: return "waiting_release"
        case .waitingSignal: return "waiting_signal"
        case .waitingReadable: return "waiting_readable"
        case .waitingJoin: return "waiting_join"
        case .restartPending: return "restart_pending"
        case .breakerOpen: return "breaker_open"
        case .gaveUp: return "gave_up"
        }
    }
}

/// The circuit breaker of one task.
public enum TaskBreakerState: UInt8, BitwiseCopyable {
    /// Normal operation.
    case closed
    /// Tripped: the task is stopped until its back-off ends.
    case open
    /// Restarted after a back-off; the first successful tick closes it, the next
    /// failure opens it again with a longer back-off.
    case halfOpen
    /// The restart limit was reached.
    case gaveUp

    public var name: StaticString {
        switch self {
        case .closed: return "closed"
        case .open: return "open"
        case .halfOpen: return "half_open"
        case .gaveUp: return "gave_up"
        }
    }
}

/// Why a task counts as unhealthy. The raw value is a stable code: the platform
/// persists it as the reboot reason when a critical task's fault stops the
/// hardware watchdog feed.
public enum TaskFault: UInt8, BitwiseCopyable {
    /// Its watchdog expired (no progress within the timeout); cleared by the first
    /// successful tick of the restarted instance.
    case stalled = 1
    /// Its breaker opened; cleared by the first successful tick after the back-off.
    case breakerOpen = 2
    /// It reached the restart limit; permanent.
    case gaveUp = 3
    /// A critical task returned `.done`; permanent (retire one with `kill`).
    case exited = 4

    public var name: StaticString {
        switch self {
        case .stalled: return "stalled"
        case .breakerOpen: return "breaker_open"
        case .gaveUp: return "gave_up"
        case .exited: return "exited"
        }
    }
}

/// When a task runs on its own.
public enum TaskRate: Equatable {
    /// Only when ready: after `.yield`, a sleep, a wait.
    case eventDriven
    /// Released every 1/hz s on a fixed grid (no drift); `.yield` ends a tick.
    case periodic(hz: UInt32)
    /// Periodic at `SchedulerConfig.tickRateHz`.
    case configTickRate
}

/// What counts as progress for a task's watchdog.
public enum WatchdogFeed: UInt8 {
    /// Every tick that does not return `.failed`, and `TaskContext.feedWatchdog()`.
    case everySuccessfulTick
    /// Only `TaskContext.feedWatchdog()`: catches a task that keeps yielding
    /// without getting anywhere.
    case explicitOnly
}

/// Per-task settings, fixed at spawn.
public struct TaskOptions {
    /// 0 runs first. Levels at or past `SchedulerConfig.priorityLevels` mean the last level.
    public var priority: UInt8
    public var rate: TaskRate
    /// Soft deadline: a tick that runs longer, or (periodic tasks) starts later than
    /// this after its release, is a deadline miss. 0 = none.
    public var deadlineUs: UInt32
    /// Watchdog: the task must make progress (see `watchdogFeed`) at least this
    /// often whatever it waits for, or it is stalled and restarted. Set it above
    /// the task's longest sleep, wait or period. 0 = none.
    public var watchdogTimeoutUs: UInt32
    public var watchdogFeed: WatchdogFeed
    /// Gates `Scheduler.criticalTasksHealthy`, and so the hardware watchdog feed.
    public var critical: Bool

    public init(priority: UInt8 = TaskPriority.normal, rate: TaskRate = .eventDriven,
                deadlineUs: UInt32 = 0, watchdogTimeoutUs: UInt32 = 0,
                watchdogFeed: WatchdogFeed = .everySuccessfulTick, critical: Bool = false) {
        self.priority = priority
        self.rate = rate
        self.deadlineUs = deadlineUs
        self.watchdogTimeoutUs = watchdogTimeoutUs
        self.watchdogFeed = watchdogFeed
        self.critical = critical
    }
}

/// Names for the default four levels (0 runs first).
public enum TaskPriority {
    public static let urgent: UInt8 = 0
    public static let normal: UInt8 = 1
    public static let background: UInt8 = 2
    public static let idle: UInt8 = 3
}

public enum SchedulerError: Error, Equatable {
    /// Every slot holds a task (`SchedulerConfig.taskCapacity`).
    case taskTableFull
}
