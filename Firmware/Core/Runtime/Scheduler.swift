// The cooperative scheduler every TDOS node runs on: on the board, in a Linux
// simulator process, and in the deterministic simulation (many nodes, one virtual
// clock). Pure: no I/O, no threads, no system clock. Time comes in as `nowUs`;
// execution time is read from the `clockUs` closure given at init (the simulation
// makes it return virtual time). All storage is allocated at init; a tick
// allocates nothing.
//
// Tasks are poll-style state machines: a body called once per tick returns what
// it waits for next (`TaskStep`). Priorities are strict (level 0 first), equal
// priorities take turns in FIFO order. Periodic tasks are released on a fixed
// grid. Each task may have a deadline (misses are counted and reported), a
// watchdog (a stalled task is re-created from its factory) and a circuit breaker
// (consecutive failures stop it; it is restarted after an exponential back-off and
// given up on after a limit). What happens is reported as `SchedulerEvent`s in a
// fixed ring.
//
// What "stalled" means: a task with a watchdog that has made no progress for its
// timeout, whatever it was doing (ready but starved, waiting for a signal that
// never comes, yielding without feeding in `.explicitOnly` mode). Progress is a
// tick that does not fail (unless `.explicitOnly`) or `TaskContext.feedWatchdog()`.
// A stall counts as a failure for the breaker; below its threshold the task is
// re-created at the next `runReady` call.
//
// What a cooperative scheduler cannot catch: a body that never returns. That is
// the hardware watchdog's job: the platform feeds it only while
// `criticalTasksHealthy` is true, so a hung loop or a critical task that cannot be
// recovered both end in a reboot, with `criticalFault` persisted as the reason.

public struct Scheduler {
    public let config: SchedulerConfig
    private let clockUs: (() -> UInt64)?

    /// The task table: plain values (a `Table`), the closures beside it in `closures`.
    var records: Table<TaskRecord>
    var closures: Table<TaskClosures>
    /// One FIFO ring of slots per priority level, `taskCapacity` entries each.
    var readyRing: Table<UInt16>
    var readyHead: Table<UInt16>
    var readyCount: Table<UInt16>
    /// Bit n set = level n has a ready task.
    private var readyMask: UInt32 = 0
    var context: TaskContext
    var events: SchedulerEventRing
    /// Sources marked readable while nobody waited on them.
    private var readableLatch: UInt64 = 0
    /// Critical tasks that returned `.done`: the node stays unhealthy.
    private var criticalExits: UInt32 = 0
    /// One past the highest slot ever used: the table scans stop here (the lowest
    /// free slot is handed out first, so a node's tasks stay at the front).
    private(set) var slotsInUseEnd = 0

    /// The latest time given to `runReady`.
    public private(set) var nowUs: UInt64 = 0
    /// When to call `runReady` next (see there); nil if nothing is scheduled. Kept
    /// up to date by every call that changes it; after a `kill` it may be earlier
    /// than needed (an early call is harmless), never later.
    public private(set) var nextWakeUs: UInt64? = nil
    /// True while every task marked critical is running: not stalled, breaker not
    /// open, not given up, and none has exited. The platform feeds the board's
    /// hardware watchdog only while this holds.
    public private(set) var criticalTasksHealthy = true
    /// The first critical task to become unhealthy, while any is; nil while all are healthy.
    public private(set) var criticalFault: CriticalFault? = nil
    public private(set) var stats = SchedulerStats()

    /// `clockUs` reads the current time (same clock and unit as `nowUs`) to measure
    /// each tick; without it, ticks take no time and only late starts are seen.
    public init(config: SchedulerConfig = .standard, clockUs: (() -> UInt64)? = nil) {
        config.check()
        precondition(MemoryLayout<TaskRecord>.size == MemoryLayout<TaskRecord>.stride
                     && MemoryLayout<SchedulerEvent>.size == MemoryLayout<SchedulerEvent>.stride,
                     "table element with tail padding: see TaskRecord")
        self.config = config
        self.clockUs = clockUs
        let capacity = config.taskCapacity
        records = Table(repeating: TaskRecord(), count: capacity)
        closures = Table(repeating: TaskClosures(), count: capacity)
        readyRing = Table(repeating: 0, count: capacity * config.priorityLevels)
        readyHead = Table(repeating: 0, count: config.priorityLevels)
        readyCount = Table(repeating: 0, count: config.priorityLevels)
        context = TaskContext(capacity: capacity)
        events = SchedulerEventRing(capacity: config.eventCapacity)
    }

    // MARK: - Tasks

    /// Adds a task, ready to run at the next `runReady`. `factory` makes its body now
    /// and again at every restart.
    @discardableResult
    public mutating func spawn(_ name: StaticString, options: TaskOptions = TaskOptions(),
                               make factory: @escaping TaskFactory) throws(SchedulerError) -> TaskID {
        guard let id = context.slots.allocate() else {
            stats.spawnsRejected &+= 1
            throw .taskTableFull
        }
        install(id, name, options, factory, nowUs: nowUs, fresh: true)
        nextWakeUs = nowUs
        return id
    }

    /// A task whose restart re-runs the same body (its captured state included).
    /// Not optimised: the optimiser would otherwise specialise `install` for the
    /// `{ body }` closure, a second 0.5 KB copy of it on the board.
    @discardableResult
    @_optimize(none)
    public mutating func spawn(_ name: StaticString, options: TaskOptions = TaskOptions(),
                               body: @escaping TaskBody) throws(SchedulerError) -> TaskID {
        try spawn(name, options: options, make: { body })
    }

    /// Ends a task now, in any state; its joiners wake with `.killed`. Killing a
    /// critical task retires it (it no longer gates health). False if `id` names
    /// no task. Not for use inside a tick: there, use `TaskContext.kill`.
    @discardableResult
    public mutating func kill(_ id: TaskID) -> Bool {
        guard context.slots.exists(id) else { return false }
        let slot = id.slot
        emit(.killed, slot, nowUs)
        finish(slot, .killed, nowUs)
        if readyMask != 0 { nextWakeUs = nowUs }  // joiners woke
        return true
    }

    /// True while `id` names a task that has not ended (done, killed, given up).
    public func isAlive(_ id: TaskID) -> Bool { context.slots.isAlive(id) }

    /// Tasks in the table, given-up ones included.
    public var taskCount: Int { config.taskCapacity - context.slots.free.count }

    // MARK: - Inputs from the platform

    /// Wakes every task waiting on `signal` (they run at the next `runReady`).
    public mutating func raise(_ signal: SignalID) {
        wakeSignalWaiters(signal.bit)
        if readyMask != 0 { nextWakeUs = nowUs }
    }

    /// Data arrived on `source`: wakes its waiting tasks, or latches until one waits.
    public mutating func markReadable(_ source: SourceID) {
        if wakeReadableWaiters(source) == 0 { readableLatch |= source.bit }
        if readyMask != 0 { nextWakeUs = nowUs }
    }

    // MARK: - Run loop

    /// Runs the tasks that are ready at `nowUs`, then returns when to call again.
    ///
    /// Contract with the platform (board, simulator process, deterministic simulation):
    /// - Call it with the current time, never earlier than the last call (an earlier
    ///   time is counted in `stats.clockRegressions` and treated as the last one).
    /// - One call: fires every timer due at `nowUs` (sleeps, periodic releases, wait
    ///   timeouts, restarts), then runs ready tasks, the most urgent level first and
    ///   equal levels in turn, until none is ready or `config.stepsPerRunMax` ticks
    ///   have run, then checks the watchdogs. Every task in one call sees the same
    ///   `nowUs`. Work per call is bounded by `stepsPerRunMax` ticks plus a few
    ///   passes over the task table.
    /// - Returns the time of the next call: `nowUs` itself if tasks are still ready
    ///   (call again at once, after polling the datagrams), the earliest timer or
    ///   watchdog expiry otherwise (later by at most `config.timerSlackUs`), or nil
    ///   when nothing is scheduled (also kept in `nextWakeUs`). Until then the
    ///   platform may sleep. Input it delivers between calls (`markReadable`,
    ///   `raise`, `spawn`, `kill`) that makes a task ready sets `nextWakeUs` to the
    ///   last call's time: call again at once.
    /// - Between calls, read `criticalTasksHealthy` to decide whether to feed the
    ///   hardware watchdog, and drain the events.
    public mutating func runReady(nowUs requestedUs: UInt64) -> UInt64? {
        let now: UInt64
        if requestedUs < nowUs {
            stats.clockRegressions &+= 1
            now = nowUs
        } else {
            now = requestedUs
        }
        nowUs = now
        stats.runCalls &+= 1

        fireTimers(now)
        var steps = 0
        while readyMask != 0 && steps < config.stepsPerRunMax {
            let slot = dequeue(level: readyMask.trailingZeroBitCount)
            runTick(slot, now)
            steps += 1
        }
        nextWakeUs = checkWatchdogsAndNextWake(now)
        return nextWakeUs
    }

    // MARK: - Events

    public mutating func popEvent() -> SchedulerEvent? { events.pop() }

    /// Moves every pending event to the end of `out`, oldest first.
    public mutating func drainEvents(into out: inout [SchedulerEvent]) {
        while let event = events.pop() { out.append(event) }
    }

    public var pendingEventCount: Int { events.count }
    /// Events lost because the ring was full.
    public var eventsDropped: UInt32 { events.dropped }

    // MARK: - Introspection

    public func taskInfo(_ id: TaskID) -> TaskInfo? {
        guard context.slots.exists(id) else { return nil }
        return info(id.slot)
    }

    /// Every task, in slot order.
    public func forEachTask(_ body: (TaskInfo) -> Void) {
        for slot in 0..<slotsInUseEnd where records[slot].flags.contains(.used) {
            body(info(slot))
        }
    }

    /// Deadline misses and restarts summed over the tasks (the metrics' totals),
    /// read from the table without a `TaskInfo` per task.
    public func taskTotals() -> (deadlineMisses: UInt32, restarts: UInt32) {
        var misses: UInt32 = 0
        var restarts: UInt32 = 0
        for slot in 0..<slotsInUseEnd {
            let r = records.slot(slot)
            if r.pointee.flags.contains(.used) {
                misses &+= r.pointee.deadlineMisses
                restarts &+= r.pointee.restarts
            }
        }
        return (misses, restarts)
    }

    /// Every task, in slot order (allocates the array: for the CLI and RPC, not the loop).
    public func taskInfos() -> [TaskInfo] {
        var out: [TaskInfo] = []
        out.reserveCapacity(taskCount)
        forEachTask { out.append($0) }
        return out
    }

    /// Bytes one task costs: its record, its place in every level's ready ring, and
    /// its slot bookkeeping.
    public static func bytesPerTask(priorityLevels: Int) -> Int {
        MemoryLayout<TaskRecord>.stride + priorityLevels * MemoryLayout<UInt16>.stride
            + MemoryLayout<UInt16>.stride * 2 + MemoryLayout<SlotTable.Use>.stride
            + MemoryLayout<TaskID>.stride + MemoryLayout<PendingSpawn>.stride
    }

    /// Bytes of the tables allocated at init (closures' captured state not included).
    public var storageBytes: Int {
        config.taskCapacity * Scheduler.bytesPerTask(priorityLevels: config.priorityLevels)
            + config.eventCapacity * MemoryLayout<SchedulerEvent>.stride
            + config.priorityLevels * 2 * MemoryLayout<UInt16>.stride
    }

    // MARK: - Ticks

    private mutating func runTick(_ slot: Int, _ now: UInt64) {
        // Few accesses to the record: each one checks bounds and uniqueness.
        let (id, reason, exit, releaseUs, restarts) = withRecord(slot) { r in
            r.state = .running
            return (r.id, r.wakeReason, r.joinedExit, r.releaseUs, r.restarts)
        }
        guard let body = closures[slot].body else { preconditionFailure("ready task without a body") }
        context.nowUs = now
        context.taskID = id
        context.wakeReason = reason
        context.joinedExit = exit
        context.releaseUs = releaseUs
        context.restartCount = restarts
        context.raisedSignals = 0
        context.fedWatchdog = false
        context.readyLevelsMask = readyMask

        let startUs = clockUs?() ?? now
        let step = body(&context)
        let endUs = clockUs?() ?? now
        stats.ticks &+= 1

        let elapsedUs = endUs > startUs ? endUs - startUs : 0
        let fed = context.fedWatchdog
        let monitor = config.deadlineMonitoring
        let overUs = withRecord(slot) { r -> UInt64 in
            r.totalTicks &+= 1
            r.timeUsedTotalUs &+= elapsedUs
            let elapsed32 = UInt32(clamping: elapsedUs)
            if elapsed32 > r.timeUsedMaxUs { r.timeUsedMaxUs = elapsed32 }
            if fed { r.lastProgressUs = now }
            guard monitor else { return 0 }
            let overUs = Scheduler.deadlineOverrun(deadlineUs: r.deadlineUs, periodic: r.tickRateHz > 0,
                                                   releaseUs: r.releaseUs, startUs: startUs, elapsedUs: elapsedUs)
            if overUs > 0 { r.deadlineMisses &+= 1 }
            return overUs
        }
        if overUs > 0 { emit(.deadlineMiss, slot, now, detail: UInt32(clamping: overUs)) }

        let killedItself = applyRequests(id, now)
        if !killedItself { apply(step, slot, now) }
    }

    /// By how much a tick missed the task's deadline (0 = met, or none set): it ran
    /// longer than the deadline, or (periodic) started later than that after its release.
    private static func deadlineOverrun(deadlineUs: UInt32, periodic: Bool, releaseUs: UInt64,
                                        startUs: UInt64, elapsedUs: UInt64) -> UInt64 {
        let deadline = UInt64(deadlineUs)
        guard deadline > 0 else { return 0 }
        var overUs: UInt64 = elapsedUs > deadline ? elapsedUs - deadline : 0
        if periodic {
            let lateUs = startUs > releaseUs ? startUs - releaseUs : 0
            if lateUs > deadline { overUs = max(overUs, lateUs - deadline) }
        }
        return overUs
    }

    /// One bounds-and-uniqueness check for several field updates.
    @inline(__always)
    private mutating func withRecord<R>(_ slot: Int, _ update: (inout TaskRecord) -> R) -> R {
        update(&records[slot])
    }

    /// Spawns, signals, kills the tick asked for, in that order. True if the task
    /// killed itself.
    private mutating func applyRequests(_ running: TaskID, _ now: UInt64) -> Bool {
        if !context.pendingSpawns.isEmpty {
            for i in 0..<context.pendingSpawns.count {
                let p = context.pendingSpawns[i]
                install(p.id, p.name, p.options, p.factory, nowUs: now, fresh: false)
            }
            context.pendingSpawns.removeAll()
        }
        if context.raisedSignals != 0 {
            wakeSignalWaiters(context.raisedSignals)
            context.raisedSignals = 0
        }
        var killedItself = false
        if !context.pendingKills.isEmpty {
            for i in 0..<context.pendingKills.count {
                let target = context.pendingKills[i]
                if target == running { killedItself = true }
                _ = kill(target)
            }
            context.pendingKills.removeAll()
        }
        return killedItself
    }

    private mutating func apply(_ step: TaskStep, _ slot: Int, _ now: UInt64) {
        if case .failed(let code) = step {
            failed(slot, code: code, now)
            return
        }
        succeeded(slot, now)
        switch step {
        case .yield:
            if records[slot].tickRateHz > 0 {
                scheduleNextRelease(slot, now)
            } else {
                makeReady(slot, .yielded)
            }
        case .sleep(let untilUs):
            wait(slot, .sleeping, target: 0, untilUs: untilUs, now)
        case .waitSignal(let signal, let untilUs):
            wait(slot, .waitingSignal, target: UInt32(signal.rawValue), untilUs: untilUs, now)
        case .waitReadable(let source, let untilUs):
            if readableLatch & source.bit != 0 {
                readableLatch &= ~source.bit
                makeReady(slot, .readable)
            } else {
                wait(slot, .waitingReadable, target: UInt32(source.rawValue), untilUs: untilUs, now)
            }
        case .waitJoin(let target, let untilUs):
            precondition(target != records[slot].id, "a task cannot join itself")
            if context.slots.isAlive(target) {
                wait(slot, .waitingJoin, target: target.rawValue, untilUs: untilUs, now)
            } else {
                records[slot].joinedExit = context.slots.exit(of: target)
                makeReady(slot, .joined)
            }
        case .done:
            if records[slot].flags.contains(.critical) {
                criticalExits &+= 1
                noteCriticalFault(slot, .exited, now)
                emit(.criticalExited, slot, now)
            }
            finish(slot, .done, now)
        case .failed:
            preconditionFailure("handled above")
        }
    }

    private mutating func wait(_ slot: Int, _ state: TaskState, target: UInt32, untilUs: UInt64, _ now: UInt64) {
        if untilUs <= now {
            makeReady(slot, .timer)
            return
        }
        records[slot].state = state
        records[slot].waitTarget = target
        records[slot].wakeUs = untilUs
    }

    private mutating func succeeded(_ slot: Int, _ now: UInt64) {
        let resetUs = UInt64(config.breakerResetUs)
        let (closed, hadFault) = withRecord(slot) { r -> (Bool, Bool) in
            r.consecutiveFailures = 0
            if r.flags.contains(.feedOnTick) { r.lastProgressUs = now }
            let closed = r.breaker == .halfOpen
            if closed { r.breaker = .closed }
            if r.tripStreak > 0 && now - r.lastRestartUs >= resetUs { r.tripStreak = 0 }
            let hadFault = r.fault != nil
            r.fault = nil
            return (closed, hadFault)
        }
        if closed { emit(.breakerClosed, slot, now) }
        if hadFault { refreshCriticalFault() }
    }

    private mutating func failed(_ slot: Int, code: UInt16, _ now: UInt64) {
        let periodic = withRecord(slot) { r -> Bool in
            r.lastFailureCode = code
            Scheduler.countFailure(&r)
            return r.tickRateHz > 0
        }
        emit(.failed, slot, now, detail: UInt32(code))
        if breakerShouldOpen(slot) {
            tripBreaker(slot, now)
        } else if periodic {
            scheduleNextRelease(slot, now)
        } else {
            makeReady(slot, .retry)
        }
    }

    private static func countFailure(_ r: inout TaskRecord) {
        r.totalFailures &+= 1
        if r.consecutiveFailures < UInt16.max { r.consecutiveFailures += 1 }
    }

    /// `mutating` only so that `self` is passed by address: calling a non-mutating
    /// method from a mutating one copies the whole scheduler to the stack on armv6m.
    private mutating func breakerShouldOpen(_ slot: Int) -> Bool {
        config.circuitBreaker && records[slot].consecutiveFailures >= config.failuresToOpen
    }

    // MARK: - Breaker, watchdog, restarts

    private mutating func tripBreaker(_ slot: Int, _ now: UInt64) {
        let restartsMax = config.restartsMax
        let baseUs = UInt64(config.restartBackoffBaseUs)
        let maxUs = UInt64(config.restartBackoffMaxUs)
        // The failing instance's state goes now. Back-off: base * 2^(streak - 1), capped.
        closures[slot].body = nil
        let backoffUs = withRecord(slot) { r -> UInt64? in
            guard r.tripStreak < restartsMax else {
                r.state = .gaveUp
                r.breaker = .gaveUp
                r.wakeUs = .max
                return nil
            }
            r.tripStreak += 1
            let backoffUs = min(baseUs << UInt64(min(r.tripStreak - 1, 40)), maxUs)
            r.state = .breakerOpen
            r.breaker = .open
            r.wakeUs = now + backoffUs
            return backoffUs
        }
        if let backoffUs {
            noteCriticalFault(slot, .breakerOpen, now)
            emit(.breakerOpen, slot, now, detail: UInt32(backoffUs))
        } else {
            closures[slot].factory = nil
            context.slots.markGaveUp(slot)
            noteCriticalFault(slot, .gaveUp, now)
            emit(.gaveUp, slot, now, detail: records[slot].restarts)
            wakeJoiners(records[slot].id, .gaveUp)
        }
    }

    /// The end of a `runReady` call, in one pass over the table: stalls, then the
    /// time of the next call.
    private mutating func checkWatchdogsAndNextWake(_ now: UInt64) -> UInt64? {
        var earliest = UInt64.max
        for slot in 0..<slotsInUseEnd where records[slot].flags.contains(.used) {
            let timeoutUs = UInt64(records[slot].watchdogTimeoutUs)
            if timeoutUs > 0 && Scheduler.isWatched(records[slot].state)
                && now - records[slot].lastProgressUs >= timeoutUs {
                stall(slot, now)
            }
            earliest = min(earliest, timer(slot))
        }
        if readyMask != 0 { return now }
        return slackened(earliest, now)
    }

    /// No progress within the timeout: a failure; re-created at the next call,
    /// unless that failure opens the breaker.
    private mutating func stall(_ slot: Int, _ now: UInt64) {
        if records[slot].state == .ready { removeFromReady(slot) }
        closures[slot].body = nil
        let sinceUs = withRecord(slot) { r -> UInt64 in
            r.watchdogStalls &+= 1
            Scheduler.countFailure(&r)
            return now - r.lastProgressUs
        }
        emit(.watchdogStall, slot, now, detail: UInt32(clamping: sinceUs))
        noteCriticalFault(slot, .stalled, now)
        if breakerShouldOpen(slot) {
            tripBreaker(slot, now)
        } else {
            withRecord(slot) { r in
                r.state = .restartPending
                r.wakeUs = now
            }
        }
    }

    /// States in which a task is expected to make progress.
    private static func isWatched(_ state: TaskState) -> Bool {
        switch state {
        case .ready, .running, .sleeping, .waitingRelease, .waitingSignal, .waitingReadable, .waitingJoin:
            return true
        case .restartPending, .breakerOpen, .gaveUp:
            return false
        }
    }

    /// A fresh body from the factory; same id, counters kept, timers re-anchored.
    /// Out of line: inlined into `fireTimers` it cost 236 B on every image.
    @inline(never)
    private mutating func restart(_ slot: Int, _ now: UInt64) {
        guard let factory = closures[slot].factory else { preconditionFailure("restart without a factory") }
        closures[slot].body = factory()
        let restarts = withRecord(slot) { r -> UInt32 in
            r.restarts &+= 1
            r.lastRestartUs = now
            Scheduler.stamp(&r, now)
            return r.restarts
        }
        emit(.restarted, slot, now, detail: restarts)
        makeReady(slot, .restarted)
    }

    /// A fault on a critical task makes the node unhealthy; the first one is kept.
    /// A fault on a critical task makes the node unhealthy; the first one is kept.
    private mutating func noteCriticalFault(_ slot: Int, _ fault: TaskFault, _ now: UInt64) {
        records[slot].fault = fault
        guard records[slot].flags.contains(.critical) else { return }
        criticalTasksHealthy = false
        if criticalFault == nil {
            criticalFault = CriticalFault(taskID: records[slot].id, name: records[slot].name, fault: fault, timeUs: now)
        }
    }

    /// Health after a fault cleared or a critical task left; healthy again forgets
    /// the first fault.
    private mutating func refreshCriticalFault() {
        var healthy = criticalExits == 0
        for slot in 0..<slotsInUseEnd
        where healthy && records[slot].flags.contains([.used, .critical]) && records[slot].fault != nil {
            healthy = false
        }
        criticalTasksHealthy = healthy
        if healthy { criticalFault = nil }
    }

    // MARK: - Timers and periodic releases

    private mutating func fireTimers(_ now: UInt64) {
        for slot in 0..<slotsInUseEnd where records[slot].flags.contains(.used) {
            if records[slot].flags.contains(.fresh) {
                withRecord(slot) { r in
                    r.flags.remove(.fresh)
                    Scheduler.stamp(&r, now)
                }
            }
            let wakeUs = records[slot].wakeUs
            guard wakeUs <= now else { continue }
            switch records[slot].state {
            case .sleeping, .waitingSignal, .waitingReadable, .waitingJoin:
                makeReady(slot, .timer)
            case .waitingRelease:
                release(slot, scheduledUs: wakeUs, now)
            case .restartPending:
                restart(slot, now)
            case .breakerOpen:
                records[slot].breaker = .halfOpen
                emit(.breakerHalfOpen, slot, now, detail: UInt32(records[slot].tripStreak))
                restart(slot, now)
            case .ready, .running, .gaveUp:
                preconditionFailure("timer set in a state without one")
            }
        }
    }

    /// Next release on the task's grid: anchor + index / rate, computed exactly so
    /// that no rounding accumulates (3 Hz is 333333, 333333, 333334 µs).
    private mutating func scheduleNextRelease(_ slot: Int, _ now: UInt64) {
        let nextUs = withRecord(slot) { r -> UInt64 in
            let hz = r.tickRateHz
            var index = r.releaseIndex + 1
            if index == hz {  // a whole second: move the anchor (exactly) and keep the index small
                r.anchorUs += 1_000_000
                index = 0
            }
            r.releaseIndex = index
            let nextUs = r.anchorUs + UInt64(index) * 1_000_000 / UInt64(hz)
            if nextUs > now {
                r.state = .waitingRelease
                r.wakeUs = nextUs
            }
            return nextUs
        }
        if nextUs <= now { release(slot, scheduledUs: nextUs, now) }
    }

    /// Makes a periodic task ready for the release due at `scheduledUs`. More than a
    /// period behind: the missed releases are counted as skipped (not run in a
    /// burst) and the grid is re-anchored at `now`.
    private mutating func release(_ slot: Int, scheduledUs: UInt64, _ now: UInt64) {
        let skipped = withRecord(slot) { r -> UInt64 in
            let periodUs = UInt64(1_000_000 / r.tickRateHz)
            let lateUs = now - scheduledUs
            guard lateUs >= periodUs else {
                r.releaseUs = scheduledUs
                return 0
            }
            let skipped = lateUs / periodUs
            r.skippedTicks &+= UInt32(clamping: skipped)
            r.anchorUs = now
            r.releaseIndex = 0
            r.releaseUs = now
            return skipped
        }
        if skipped > 0 { emit(.skippedTicks, slot, now, detail: UInt32(clamping: skipped)) }
        makeReady(slot, .timer)
    }


    /// `earliest` (nil for none), moved to the last timer within the slack after it.
    /// `earliest` (nil for none), moved to the last timer within the slack after it.
    private mutating func slackened(_ earliest: UInt64, _ now: UInt64) -> UInt64? {
        guard earliest != .max else { return nil }
        var wake = earliest
        if config.timerSlackUs > 0 {
            let limit = earliest &+ UInt64(config.timerSlackUs)
            for slot in 0..<slotsInUseEnd where records[slot].flags.contains(.used) {
                let t = timer(slot)
                if t > wake && t <= limit { wake = t }
            }
        }
        return max(wake, now)
    }

    /// The earliest of a task's timer and its watchdog expiry; .max if none.
    /// The earliest of a task's timer and its watchdog expiry; .max if none.
    private mutating func timer(_ slot: Int) -> UInt64 {
        var t = records[slot].wakeUs
        let timeoutUs = records[slot].watchdogTimeoutUs
        if timeoutUs > 0 && Scheduler.isWatched(records[slot].state) {
            t = min(t, records[slot].lastProgressUs + UInt64(timeoutUs))
        }
        return t
    }

    // MARK: - Table

    private mutating func install(_ id: TaskID, _ name: StaticString, _ options: TaskOptions,
                                  _ factory: @escaping TaskFactory, nowUs: UInt64, fresh: Bool) {
        let slot = id.slot
        slotsInUseEnd = max(slotsInUseEnd, slot + 1)
        let tickRateHz: UInt32
        switch options.rate {
        case .eventDriven: tickRateHz = 0
        case .periodic(let hz): tickRateHz = hz
        case .configTickRate: tickRateHz = config.tickRateHz
        }
        precondition(tickRateHz <= SchedulerLimits.tickRateHzMax, "tick rate too high")
        precondition(options.rate == .eventDriven || tickRateHz > 0, "periodic at 0 Hz")
        var flags: TaskFlags = [.used]
        if options.critical { flags.insert(.critical) }
        if options.watchdogFeed == .everySuccessfulTick { flags.insert(.feedOnTick) }
        if fresh { flags.insert(.fresh) }
        let priority = min(options.priority, UInt8(config.priorityLevels - 1))
        let watchdogTimeoutUs = config.watchdogEnabled ? options.watchdogTimeoutUs : 0
        closures[slot] = TaskClosures(body: factory(), factory: factory)
        // Field by field, in place: a whole TaskRecord built on the stack costs
        // hundreds of bytes of stack on armv6m.
        withRecord(slot) { r in
            r.reset()
            r.name = name
            r.id = id
            r.priority = priority
            r.tickRateHz = tickRateHz
            r.deadlineUs = options.deadlineUs
            r.watchdogTimeoutUs = watchdogTimeoutUs
            r.flags = flags
            Scheduler.stamp(&r, nowUs)
        }
        stats.spawned &+= 1
        makeReady(slot, .started)
    }

    /// Start of a (re)started instance: watchdog fed, periodic grid anchored at `now`.
    private static func stamp(_ r: inout TaskRecord, _ now: UInt64) {
        r.lastProgressUs = now
        r.anchorUs = now
        r.releaseIndex = 0
        r.releaseUs = now
    }

    /// Frees the slot and wakes the joiners. Out of line: `kill` and `apply` inline it otherwise.
    @inline(never)
    private mutating func finish(_ slot: Int, _ exit: TaskExit, _ now: UInt64) {
        let id = records[slot].id
        if records[slot].state == .ready { removeFromReady(slot) }
        let wasCritical = records[slot].flags.contains(.critical)
        records[slot].reset()
        closures[slot] = TaskClosures()
        context.slots.release(slot)
        if exit == .done { stats.completed &+= 1 } else { stats.killed &+= 1 }
        if wasCritical { refreshCriticalFault() }
        wakeJoiners(id, exit)
    }

    private mutating func wakeSignalWaiters(_ signals: UInt64) {
        for slot in 0..<slotsInUseEnd
        where records[slot].state == .waitingSignal && records[slot].flags.contains(.used)
            && signals & (1 << UInt64(records[slot].waitTarget)) != 0 {
            makeReady(slot, .signal)
        }
    }

    private mutating func wakeReadableWaiters(_ source: SourceID) -> Int {
        var woken = 0
        for slot in 0..<slotsInUseEnd
        where records[slot].state == .waitingReadable && records[slot].flags.contains(.used)
            && records[slot].waitTarget == UInt32(source.rawValue) {
            makeReady(slot, .readable)
            woken += 1
        }
        return woken
    }

    private mutating func wakeJoiners(_ id: TaskID, _ exit: TaskExit) {
        for slot in 0..<slotsInUseEnd
        where records[slot].state == .waitingJoin && records[slot].flags.contains(.used)
            && records[slot].waitTarget == id.rawValue {
            records[slot].joinedExit = exit
            makeReady(slot, .joined)
        }
    }

    // MARK: - Ready queues

    private mutating func makeReady(_ slot: Int, _ reason: WakeReason) {
        let level = withRecord(slot) { r -> Int in
            r.state = .ready
            r.wakeUs = .max
            r.wakeReason = reason
            return Int(r.priority)
        }
        let capacity = config.taskCapacity
        let count = Int(readyCount[level])
        precondition(count < capacity, "ready queue overflow")
        var i = Int(readyHead[level]) + count
        if i >= capacity { i -= capacity }
        readyRing[level * capacity + i] = UInt16(truncatingIfNeeded: slot)
        readyCount[level] = UInt16(truncatingIfNeeded: count + 1)
        readyMask |= 1 << UInt32(level)
    }

    private mutating func dequeue(level: Int) -> Int {
        let capacity = config.taskCapacity
        let head = Int(readyHead[level])
        let slot = Int(readyRing[level * capacity + head])
        readyHead[level] = UInt16(truncatingIfNeeded: head + 1 == capacity ? 0 : head + 1)
        let count = readyCount[level] - 1
        readyCount[level] = count
        if count == 0 { readyMask &= ~(1 << UInt32(level)) }
        return slot
    }

    /// Takes a ready task out of its queue, keeping the others' order.
    private mutating func removeFromReady(_ slot: Int) {
        let level = Int(records[slot].priority)
        let capacity = config.taskCapacity
        let base = level * capacity
        let head = Int(readyHead[level])
        let count = Int(readyCount[level])
        // One pass: the entries after `slot` move up one place, in order.
        var kept = 0
        for k in 0..<count {
            var i = head + k
            if i >= capacity { i -= capacity }
            let s = readyRing[base + i]
            if Int(s) == slot { continue }
            var j = head + kept
            if j >= capacity { j -= capacity }
            readyRing[base + j] = s
            kept += 1
        }
        precondition(kept == count - 1, "ready task missing from its queue")
        readyCount[level] = UInt16(count - 1)
        if count == 1 { readyMask &= ~(1 << UInt32(level)) }
        records[slot].state = .running  // out of the queue; the caller sets what comes next
    }

    // MARK: - Events and snapshots

    private mutating func emit(_ kind: SchedulerEventKind, _ slot: Int, _ now: UInt64, detail: UInt32 = 0) {
        events.push(SchedulerEvent(timeUs: now, taskID: records[slot].id, kind: kind, detail: detail))
    }

    private func info(_ slot: Int) -> TaskInfo {
        let r = records[slot]
        return TaskInfo(
            id: r.id, name: r.name, priority: r.priority, state: r.state,
            critical: r.flags.contains(.critical), fault: r.fault, watchdog: r.watchdog, breaker: r.breaker,
            tickRateHz: r.tickRateHz, deadlineUs: r.deadlineUs, totalFailures: r.totalFailures,
            totalTicks: r.totalTicks, deadlineMisses: r.deadlineMisses, skippedTicks: r.skippedTicks,
            consecutiveFailures: r.consecutiveFailures, lastFailureCode: r.lastFailureCode,
            watchdogTimeoutUs: r.watchdogTimeoutUs, watchdogLastFedUs: r.lastProgressUs,
            watchdogStalls: r.watchdogStalls, restarts: r.restarts, timeUsedMaxUs: r.timeUsedMaxUs,
            timeUsedTotalUs: r.timeUsedTotalUs, wakeUs: r.wakeUs == .max ? nil : r.wakeUs)
    }
}

struct TaskFlags: OptionSet {
    let rawValue: UInt8
    static let used = TaskFlags(rawValue: 1 << 0)
    static let critical = TaskFlags(rawValue: 1 << 1)
    static let feedOnTick = TaskFlags(rawValue: 1 << 2)
    /// Spawned from outside a tick: its clocks start at the next `runReady`.
    static let fresh = TaskFlags(rawValue: 1 << 3)
}

/// A task's closures, beside its record (so that the record is plain bytes).
struct TaskClosures {
    var body: TaskBody? = nil
    var factory: TaskFactory? = nil
}

/// One slot of the task table. Fields are ordered widest first, and the record is
/// padded so that its size equals its stride: Swift addresses elements of an array
/// whose type has tail padding with byte alignment, and ARMv6-M, which has no
/// unaligned loads, then splits every field access into byte loads (twice the code).
/// `MemoryLayout<TaskRecord>.stride` is the per-task cost the tests report.
struct TaskRecord {
    var name: StaticString = ""
    // Three bytes that fill the hole after `name`.
    var state = TaskState.ready
    var breaker = TaskBreakerState.closed
    var priority: UInt8 = 0
    var id = TaskID(rawValue: 0)
    /// Sleep end, wait timeout, next release, restart time; .max = none.
    var wakeUs: UInt64 = .max
    var releaseUs: UInt64 = 0
    var anchorUs: UInt64 = 0
    var lastProgressUs: UInt64 = 0
    var lastRestartUs: UInt64 = 0
    var timeUsedTotalUs: UInt64 = 0
    var totalTicks: UInt64 = 0
    var releaseIndex: UInt32 = 0
    var tickRateHz: UInt32 = 0
    var deadlineUs: UInt32 = 0
    var watchdogTimeoutUs: UInt32 = 0
    var timeUsedMaxUs: UInt32 = 0
    var totalFailures: UInt32 = 0
    var deadlineMisses: UInt32 = 0
    var skippedTicks: UInt32 = 0
    var watchdogStalls: UInt32 = 0
    var restarts: UInt32 = 0
    /// Signal, source or TaskID raw value, by state.
    var waitTarget: UInt32 = 0
    var consecutiveFailures: UInt16 = 0
    var lastFailureCode: UInt16 = 0
    var tripStreak: UInt16 = 0
    var wakeReason = WakeReason.started
    var joinedExit = TaskExit.notFound
    var fault: TaskFault? = nil
    var flags: TaskFlags = []
    /// Size == stride (128 B on armv6m, 136 B on 64-bit hosts); checked in `Scheduler.init`.
    private var padding: UInt16 = 0

    var watchdog: TaskWatchdogState {
        if watchdogTimeoutUs == 0 { return .off }
        return state == .restartPending || fault == .stalled ? .stalled : .ok
    }

    /// Back to a free slot, in place (no 128-byte temporary on the stack).
    mutating func reset() {
        name = ""
        state = .ready
        breaker = .closed
        priority = 0
        id = TaskID(rawValue: 0)
        wakeUs = .max
        releaseUs = 0
        anchorUs = 0
        lastProgressUs = 0
        lastRestartUs = 0
        timeUsedTotalUs = 0
        totalTicks = 0
        releaseIndex = 0
        tickRateHz = 0
        deadlineUs = 0
        watchdogTimeoutUs = 0
        timeUsedMaxUs = 0
        totalFailures = 0
        deadlineMisses = 0
        skippedTicks = 0
        watchdogStalls = 0
        restarts = 0
        waitTarget = 0
        consecutiveFailures = 0
        lastFailureCode = 0
        tripStreak = 0
        wakeReason = .started
        joinedExit = .notFound
        fault = nil
        flags = []
    }
}
