import Testing
@testable import TDOSCore

// MARK: - Helpers

/// A clock the test moves by hand; bodies advance it to "take time".
private final class SchedulerTestClock {
    var us: UInt64 = 0
}

/// Shared by the bodies of one test: what ran, in order.
private final class SchedulerTestTrace {
    var names: [String] = []
    var times: [UInt64] = []
    var reasons: [WakeReason] = []
    func note(_ name: String, _ ctx: TaskContext) {
        names.append(name)
        times.append(ctx.nowUs)
        reasons.append(ctx.wakeReason)
    }
}

private func drainSchedulerEvents(_ s: inout Scheduler) -> [SchedulerEvent] {
    var out: [SchedulerEvent] = []
    s.drainEvents(into: &out)
    return out
}

/// The platform's loop on a virtual clock: call at the time runReady asks for
/// (the same time again while tasks are ready), stop past `endUs`. Returns the
/// number of calls. With a clock, the clock is set to `now` before each call.
@discardableResult
private func runSchedulerLoop(_ s: inout Scheduler, from startUs: UInt64 = 0, until endUs: UInt64,
                     clock: SchedulerTestClock? = nil, callsMax: Int = 10_000_000,
                     afterEach: (inout Scheduler, UInt64) -> Void = { _, _ in }) -> Int {
    var now = startUs
    var calls = 0
    while calls < callsMax {
        clock?.us = now
        let next = s.runReady(nowUs: now)
        calls += 1
        afterEach(&s, now)
        guard let n = next, n <= endUs else { break }
        now = n
    }
    return calls
}

private func taskBody(_ f: @escaping (inout TaskContext) -> TaskStep) -> TaskBody { f }

// MARK: - Tests

@Suite struct SchedulerTests {
    @Test func limitsAndPresetsAreConsistent() {
        SchedulerLimits.check()
        for c in [SchedulerConfig.standard, .highPerformance, .lowLatency, .powerSaving] { c.check() }
        #expect(SchedulerConfig.standard.tickRateHz == 100)
        #expect(SchedulerConfig.highPerformance.tickRateHz == 200)
        #expect(SchedulerConfig.lowLatency.tickRateHz == 500)
        #expect(SchedulerConfig.powerSaving.tickRateHz == 10)
        #expect(SchedulerConfig.powerSaving.timerSlackUs > 0)
        #expect(SchedulerConfig.standard.taskCapacity == 16)
        #expect(SchedulerConfig.standard.priorityLevels == 4)
        #expect(SchedulerConfig.standard.failuresToOpen == 5)
    }

    @Test func memoryPerTaskIsSmallAndReported() {
        let perTask = Scheduler.bytesPerTask(priorityLevels: 4)
        let s = Scheduler()
        print("scheduler memory: TaskRecord size \(MemoryLayout<TaskRecord>.size) B, stride \(MemoryLayout<TaskRecord>.stride) B;"
              + " per task with queues and slot table \(perTask) B;"
              + " SchedulerEvent \(MemoryLayout<SchedulerEvent>.stride) B; TaskContext \(MemoryLayout<TaskContext>.size) B;"
              + " Scheduler value \(MemoryLayout<Scheduler>.size) B; tables of a standard scheduler \(s.storageBytes) B (64-bit host)")
        #expect(MemoryLayout<TaskRecord>.stride <= 192)
        #expect(s.storageBytes < 6000)
    }

    // MARK: Priorities

    @Test func higherPriorityRunsFirst() throws {
        var s = Scheduler()
        let trace = SchedulerTestTrace()
        let tasks: [(StaticString, UInt8)] = [("bg", 2), ("urgent", 0), ("idle", 3), ("normal", 1)]
        for (name, prio) in tasks {
            try s.spawn(name, options: TaskOptions(priority: prio), body: taskBody { ctx in
                trace.note(name.description, ctx)
                return .done
            })
        }
        _ = s.runReady(nowUs: 0)
        #expect(trace.names == ["urgent", "normal", "bg", "idle"])
    }

    @Test func equalPrioritiesTakeTurns() throws {
        var s = Scheduler()
        let trace = SchedulerTestTrace()
        for name: StaticString in ["a", "b", "c"] {
            var left = 3
            try s.spawn(name, body: taskBody { ctx in
                trace.note(name.description, ctx)
                left -= 1
                return left == 0 ? .done : .yield
            })
        }
        #expect(s.runReady(nowUs: 0) == nil)
        #expect(trace.names == ["a", "b", "c", "a", "b", "c", "a", "b", "c"])
    }

    @Test func taskWokenBySignalPreemptsLowerReadyTasks() throws {
        var s = Scheduler()
        let trace = SchedulerTestTrace()
        let go = SignalID(1)
        try s.spawn("high", options: TaskOptions(priority: 0), body: taskBody { ctx in
            trace.note("high", ctx)
            return ctx.wakeReason == .started ? .waitSignal(go) : .done
        })
        try s.spawn("raiser", options: TaskOptions(priority: 2), body: taskBody { ctx in
            trace.note("raiser", ctx)
            ctx.signal(go)
            return .done
        })
        try s.spawn("mid", options: TaskOptions(priority: 1), body: taskBody { ctx in
            trace.note("mid", ctx)
            return .done
        })
        try s.spawn("mid2", options: TaskOptions(priority: 1), body: taskBody { ctx in
            trace.note("mid2", ctx)
            return ctx.wakeReason == .started ? .yield : .done
        })
        _ = s.runReady(nowUs: 0)
        #expect(trace.names == ["high", "mid", "mid2", "mid2", "raiser", "high"])
    }

    @Test func stepsPerRunBoundsTheWorkOfOneCall() throws {
        var config = SchedulerConfig()
        config.stepsPerRunMax = 7
        var s = Scheduler(config: config)
        var ticks = 0
        try s.spawn("spinner", body: taskBody { _ in ticks += 1; return .yield })
        #expect(s.runReady(nowUs: 5) == 5)
        #expect(ticks == 7)
        #expect(s.runReady(nowUs: 9) == 9)
        #expect(ticks == 14)
    }

    // MARK: Time

    @Test func sleepingTasksWakeAtExactlyTheirTime() throws {
        var s = Scheduler()
        var woke: [UInt64] = []
        let wants: [UInt64] = [1, 999, 1000, 123_457, 5_000_000, 5_000_001]
        var i = 0
        try s.spawn("sleeper", body: taskBody { ctx in
            if ctx.wakeReason == .timer { woke.append(ctx.nowUs) }
            guard i < wants.count else { return .done }
            i += 1
            return .sleep(untilUs: wants[i - 1])
        })
        // Unrelated calls in between (datagrams arriving) must not wake it early.
        runSchedulerLoop(&s, until: 10_000_000) { s, now in
            if now % 7 == 0 { s.markReadable(SourceID(3)) }
        }
        #expect(woke == wants)
    }

    @Test func sleepInThePastIsReadyAtOnce() throws {
        var s = Scheduler()
        var reasons: [WakeReason] = []
        try s.spawn("t", body: taskBody { ctx in
            reasons.append(ctx.wakeReason)
            return reasons.count < 3 ? .sleep(untilUs: ctx.nowUs) : .done
        })
        #expect(s.runReady(nowUs: 100) == nil)
        #expect(reasons == [.started, .timer, .timer])
    }

    @Test func periodicTasksTickOnTheirGridWithoutDrift() throws {
        var s = Scheduler()
        let rates: [UInt32] = [100, 3, 7, 1000, 1]
        var ticks = Array(repeating: [UInt64](), count: rates.count)
        var releases = Array(repeating: [UInt64](), count: rates.count)
        for (k, hz) in rates.enumerated() {
            try s.spawn("periodic", options: TaskOptions(rate: .periodic(hz: hz)), body: taskBody { ctx in
                ticks[k].append(ctx.nowUs)
                releases[k].append(ctx.releaseUs)
                return .yield
            })
        }
        let seconds: UInt64 = 120
        runSchedulerLoop(&s, until: seconds * 1_000_000 - 1)
        for (k, hz) in rates.enumerated() {
            let want = (0..<(seconds * UInt64(hz))).map { $0 * 1_000_000 / UInt64(hz) }
            #expect(ticks[k] == want, "\(hz) Hz")
            #expect(releases[k] == want, "\(hz) Hz")
        }
        for info in s.taskInfos() { #expect(info.skippedTicks == 0) }
    }

    @Test func periodicGridSurvivesLateWakeUps() throws {
        // The platform wakes up to half a period late, at random: ticks are late,
        // the grid (releases) is not, and the count over a long run is exact.
        var s = Scheduler()
        var releases: [UInt64] = []
        try s.spawn("p", options: TaskOptions(rate: .configTickRate), body: taskBody { ctx in
            releases.append(ctx.releaseUs)
            return .yield
        })
        var rng = TestRNG(seed: 7)
        var now: UInt64 = 0
        while now < 60_000_000 {
            guard let next = s.runReady(nowUs: now) else { break }
            now = next + UInt64.random(in: 0..<5_000, using: &rng)
        }
        let want = (0..<UInt64(releases.count)).map { $0 * 10_000 }
        #expect(releases == want)
        #expect(releases.count >= 6000)
        #expect(s.taskInfos()[0].skippedTicks == 0)
    }

    @Test func periodicTaskFallingBehindSkipsAndReanchors() throws {
        var s = Scheduler()
        var ticks: [UInt64] = []
        let id = try s.spawn("p", options: TaskOptions(rate: .periodic(hz: 100)), body: taskBody { ctx in
            ticks.append(ctx.nowUs)
            return .yield
        })
        #expect(s.runReady(nowUs: 0) == 10_000)
        #expect(s.runReady(nowUs: 10_000) == 20_000)
        // The platform was away for 3.5 periods past the next release.
        #expect(s.runReady(nowUs: 55_000) == 65_000)
        #expect(s.runReady(nowUs: 65_000) == 75_000)
        #expect(ticks == [0, 10_000, 55_000, 65_000])
        #expect(s.taskInfo(id)?.skippedTicks == 3)
        let events = drainSchedulerEvents(&s)
        #expect(events == [SchedulerEvent(timeUs: 55_000, taskID: id, kind: .skippedTicks, detail: 3)])
        // Exactly one period late is one skipped release, and no burst.
        #expect(s.runReady(nowUs: 85_000) == 95_000)
        #expect(s.taskInfo(id)?.skippedTicks == 4)
    }

    @Test func timerSlackMergesNearbyWakeUps() throws {
        var config = SchedulerConfig.powerSaving
        config.timerSlackUs = 20_000
        var s = Scheduler(config: config)
        var woke: [UInt64] = []
        for at: UInt64 in [100_000, 110_000, 125_000] {
            try s.spawn("s", body: taskBody { ctx in
                if ctx.wakeReason == .timer { woke.append(ctx.nowUs); return .done }
                return .sleep(untilUs: at)
            })
        }
        #expect(s.runReady(nowUs: 0) == 110_000)
        #expect(s.runReady(nowUs: 110_000) == 125_000)
        #expect(s.runReady(nowUs: 125_000) == nil)
        #expect(woke == [110_000, 110_000, 125_000])
    }

    @Test func earlierTimeIsCountedNotObeyed() throws {
        var s = Scheduler()
        var seen: [UInt64] = []
        try s.spawn("t", body: taskBody { ctx in seen.append(ctx.nowUs); return .sleep(untilUs: ctx.nowUs + 10) })
        _ = s.runReady(nowUs: 1000)
        _ = s.runReady(nowUs: 500)
        #expect(s.stats.clockRegressions == 1)
        #expect(s.nowUs == 1000)
        #expect(seen == [1000])
    }

    @Test func nextWakeUsFollowsInputBetweenCalls() throws {
        var s = Scheduler()
        #expect(s.nextWakeUs == nil)
        let waiter = try s.spawn("w", body: taskBody { ctx in
            ctx.wakeReason == .started ? .waitSignal(SignalID(1), untilUs: 900) : .waitReadable(SourceID(2))
        })
        #expect(s.nextWakeUs == 0)  // spawned: call at once
        #expect(s.runReady(nowUs: 100) == 900)
        #expect(s.nextWakeUs == 900)
        s.raise(SignalID(9))  // nobody waits on it
        #expect(s.nextWakeUs == 900)
        s.raise(SignalID(1))
        #expect(s.nextWakeUs == 100)
        #expect(s.runReady(nowUs: 150) == nil)
        s.markReadable(SourceID(2))
        #expect(s.nextWakeUs == 150)
        _ = s.runReady(nowUs: 160)
        let joiner = try s.spawn("j", body: taskBody { ctx in ctx.wakeReason == .joined ? .done : .waitJoin(waiter) })
        #expect(s.runReady(nowUs: 170) == nil)
        let killed = s.kill(waiter)
        #expect(killed && s.nextWakeUs == 170)
        #expect(s.runReady(nowUs: 180) == nil)
        #expect(!s.isAlive(joiner))
    }

    // MARK: Signals, readiness, joins, kill

    @Test func signalWakesEveryWaiterAndOnlyThem() throws {
        var s = Scheduler()
        var woken: [Int] = []
        for k in 0..<6 {
            let signal = SignalID(k < 4 ? 5 : 6)
            try s.spawn("waiter", body: taskBody { ctx in
                if ctx.wakeReason == .signal { woken.append(k); return .done }
                return .waitSignal(signal)
            })
        }
        #expect(s.runReady(nowUs: 0) == nil)
        try s.spawn("raiser", body: taskBody { ctx in ctx.signal(SignalID(5)); return .done })
        #expect(s.runReady(nowUs: 10) == nil)
        #expect(woken == [0, 1, 2, 3])
        s.raise(SignalID(6))
        _ = s.runReady(nowUs: 20)
        #expect(woken == [0, 1, 2, 3, 4, 5])
        // A signal with no waiter is lost (edge-triggered).
        var reasons: [WakeReason] = []
        s.raise(SignalID(7))
        try s.spawn("late", body: taskBody { ctx in
            reasons.append(ctx.wakeReason)
            return reasons.count == 1 ? .waitSignal(SignalID(7), untilUs: 1000) : .done
        })
        runSchedulerLoop(&s, from: 30, until: 10_000)
        #expect(reasons == [.started, .timer])
    }

    @Test func waitTimeoutsWakeExactly() throws {
        var s = Scheduler()
        var log: [(UInt64, WakeReason)] = []
        let child = try s.spawn("child", body: taskBody { ctx in
            ctx.wakeReason == .started ? .sleep(untilUs: 1_000_000) : .done
        })
        try s.spawn("w", body: taskBody { ctx in
            log.append((ctx.nowUs, ctx.wakeReason))
            switch log.count {
            case 1: return .waitSignal(SignalID(1), untilUs: 300)
            case 2: return .waitReadable(SourceID(2), untilUs: 700)
            case 3: return .waitJoin(child, untilUs: 900)
            default: return .done
            }
        })
        runSchedulerLoop(&s, until: 2_000_000)
        #expect(log.map(\.0) == [0, 300, 700, 900])
        #expect(log.map(\.1) == [.started, .timer, .timer, .timer])
    }

    @Test func readinessWakesWaitersAndLatchesOtherwise() throws {
        var s = Scheduler()
        let queue = SourceID(9)
        var reasons: [WakeReason] = []
        try s.spawn("reader", body: taskBody { ctx in
            reasons.append(ctx.wakeReason)
            switch reasons.count {
            case 1: return .waitReadable(queue)
            case 2: return .sleep(untilUs: ctx.nowUs + 100)  // busy elsewhere
            case 3, 4: return .waitReadable(queue)
            default: return .done
            }
        })
        let other = try s.spawn("other", body: taskBody { _ in .waitReadable(SourceID(10)) })
        #expect(s.runReady(nowUs: 0) == nil)
        s.markReadable(queue)
        #expect(s.runReady(nowUs: 5) == 105)
        #expect(reasons == [.started, .readable])
        // Marked while the reader sleeps: latched, so its next wait returns at once.
        s.markReadable(queue)
        #expect(s.runReady(nowUs: 105) == nil)
        #expect(reasons == [.started, .readable, .timer, .readable])
        // The latch was consumed: the reader waits again until the next mark.
        #expect(s.runReady(nowUs: 200) == nil)
        #expect(reasons.count == 4)
        s.markReadable(queue)
        _ = s.runReady(nowUs: 300)
        #expect(reasons == [.started, .readable, .timer, .readable, .readable])
        #expect(s.taskInfo(other)?.state == .waitingReadable)
    }

    @Test func joinWakesWithHowTheTaskEnded() throws {
        var s = Scheduler()
        let child = try s.spawn("child", body: taskBody { ctx in
            ctx.wakeReason == .started ? .sleep(untilUs: 5000) : .done
        })
        let victim = try s.spawn("victim", body: taskBody { _ in .waitSignal(SignalID(0)) })
        var exits: [(UInt64, TaskExit)] = []
        try s.spawn("parent", body: taskBody { ctx in
            if ctx.wakeReason == .joined { exits.append((ctx.nowUs, ctx.joinedExit)) }
            switch exits.count {
            case 0: return .waitJoin(child)
            case 1: return .waitJoin(victim)
            case 2: return .waitJoin(child)  // already gone
            default: return .done
            }
        })
        runSchedulerLoop(&s, until: 10_000)
        #expect(exits.map(\.1) == [.done])
        #expect(exits.first?.0 == 5000)
        let killed = s.kill(victim)
        let killedTwice = s.kill(victim)
        #expect(killed && !killedTwice)
        runSchedulerLoop(&s, from: 6000, until: 10_000)
        #expect(exits.map(\.1) == [.done, .killed, .notFound])
        #expect(s.taskCount == 0)
    }

    @Test func joinAllWaitsForEveryChild() throws {
        var s = Scheduler()
        var doneAt: UInt64? = nil
        var children: [TaskID] = []
        try s.spawn("parent", body: taskBody { ctx in
            if children.isEmpty {
                for d: UInt64 in [3000, 1000, 7000, 2000] {
                    let id = try! ctx.spawn("child", options: TaskOptions(priority: 0), body: taskBody { c in
                        c.wakeReason == .started ? .sleep(untilUs: c.nowUs + d) : .done
                    })
                    #expect(ctx.isAlive(id))
                    children.append(id)
                }
            }
            if let wait = ctx.waitForAll(children) { return wait }
            doneAt = ctx.nowUs
            return .done
        })
        runSchedulerLoop(&s, from: 100, until: 100_000)
        #expect(doneAt == 7100)
        #expect(s.taskCount == 0)
        #expect(s.stats.spawned == 5 && s.stats.completed == 5)
    }

    @Test func killFromATaskAndSlotReuse() throws {
        var s = Scheduler()
        let sleeper = try s.spawn("sleeper", body: taskBody { _ in .sleep(untilUs: 1_000_000) })
        var selfKilledRan = 0
        try s.spawn("assassin", body: taskBody { ctx in
            ctx.kill(sleeper)
            ctx.kill(ctx.taskID)
            selfKilledRan += 1
            return .yield  // ignored: it killed itself
        })
        #expect(s.runReady(nowUs: 0) == nil)
        #expect(selfKilledRan == 1)
        #expect(!s.isAlive(sleeper))
        #expect(s.taskCount == 0)
        let events = drainSchedulerEvents(&s)
        #expect(events.map(\.kind) == [.killed, .killed])
        // The slot is reused under a new generation; the old id names nothing.
        let again = [try s.spawn("again", body: taskBody { _ in .sleep(untilUs: 9) }),
                     try s.spawn("again", body: taskBody { _ in .sleep(untilUs: 9) })]
        let reused = try #require(again.first { $0.slot == sleeper.slot })
        #expect(reused != sleeper && reused.generation != sleeper.generation)
        #expect(s.taskInfo(sleeper) == nil)
        let killedStale = s.kill(sleeper)
        #expect(!killedStale)
        #expect(s.isAlive(reused))
    }

    @Test func fullTableThrows() throws {
        var config = SchedulerConfig()
        config.taskCapacity = 3
        var s = Scheduler(config: config)
        for _ in 0..<3 { try s.spawn("t", body: taskBody { _ in .waitSignal(SignalID(0)) }) }
        #expect(throws: SchedulerError.taskTableFull) {
            try s.spawn("extra", body: taskBody { _ in .done })
        }
        #expect(s.stats.spawnsRejected == 1)
        var inner: SchedulerError? = nil
        s.raise(SignalID(0))
        var s2 = Scheduler(config: config)
        try s2.spawn("spawner", body: taskBody { ctx in
            do throws(SchedulerError) { for _ in 0..<3 { try ctx.spawn("c", body: taskBody { _ in .done }) } } catch { inner = error }
            return .done
        })
        _ = s2.runReady(nowUs: 0)
        #expect(inner == .taskTableFull)
    }

    // MARK: Watchdog and health

    @Test func stalledTaskIsDetectedWithinItsTimeoutAndRestarted() throws {
        var s = Scheduler()
        var made = 0
        var starts: [(UInt64, WakeReason, UInt32)] = []
        let id = try s.spawn("net", options: TaskOptions(watchdogTimeoutUs: 50_000, critical: true), make: {
            made += 1
            return { ctx in
                starts.append((ctx.nowUs, ctx.wakeReason, ctx.restartCount))
                return .waitSignal(SignalID(3))  // never raised
            }
        })
        #expect(made == 1)
        #expect(s.runReady(nowUs: 1000) == 51_000)
        #expect(s.criticalTasksHealthy)
        // Between calls nothing is checked; at the expiry it is.
        #expect(s.runReady(nowUs: 50_999) == 51_000)
        #expect(s.criticalTasksHealthy)
        #expect(s.runReady(nowUs: 51_000) == 51_000)
        #expect(!s.criticalTasksHealthy)
        #expect(s.criticalFault == CriticalFault(taskID: id, name: "net", fault: .stalled, timeUs: 51_000))
        #expect(s.criticalFault?.code == 1)
        #expect(s.taskInfo(id)?.state == .restartPending)
        #expect(s.taskInfo(id)?.watchdog == .stalled)
        // The next call re-creates it from its factory; its first tick makes it healthy.
        #expect(s.runReady(nowUs: 51_000) == 101_000)
        #expect(made == 2)
        #expect(s.criticalTasksHealthy)
        #expect(s.criticalFault == nil)
        #expect(starts.map(\.1) == [.started, .restarted])
        #expect(starts.map(\.2) == [0, 1])
        let info = try #require(s.taskInfo(id))
        #expect(info.watchdogStalls == 1 && info.restarts == 1 && info.watchdog == .ok)
        #expect(info.totalFailures == 1 && info.consecutiveFailures == 0)  // its first tick succeeded
        #expect(drainSchedulerEvents(&s) == [
            SchedulerEvent(timeUs: 51_000, taskID: id, kind: .watchdogStall, detail: 50_000),
            SchedulerEvent(timeUs: 51_000, taskID: id, kind: .restarted, detail: 1),
        ])
    }

    @Test func yieldingWithoutProgressStallsInExplicitMode() throws {
        var s = Scheduler()
        var spins = 0
        let opts = TaskOptions(watchdogTimeoutUs: 10_000, watchdogFeed: .explicitOnly)
        let spinner = try s.spawn("spinner", options: opts, body: taskBody { _ in spins += 1; return .yield })
        let worker = try s.spawn("worker", options: opts, body: taskBody { ctx in
            ctx.feedWatchdog()
            return .yield
        })
        var now: UInt64 = 0
        var stallAt: UInt64? = nil
        while now <= 30_000 {
            _ = s.runReady(nowUs: now)
            while let e = s.popEvent() {
                if e.kind == .watchdogStall && stallAt == nil { stallAt = e.timeUs; #expect(e.taskID == spinner) }
                #expect(e.taskID != worker)
            }
            now += 1000
        }
        #expect(stallAt == 10_000)
        #expect(spins > 0)
        #expect(s.taskInfo(worker)?.watchdogStalls == 0)
        // Stalls at 10 ms; re-created at the next call (11 ms), stalls again at 21 ms.
        #expect(s.taskInfo(spinner)?.watchdogStalls == 2)
        #expect(s.taskInfo(spinner)?.restarts == 2)
    }

    @Test func watchdogMasterSwitchTurnsItOff() throws {
        var config = SchedulerConfig()
        config.watchdogEnabled = false
        var s = Scheduler(config: config)
        let id = try s.spawn("t", options: TaskOptions(watchdogTimeoutUs: 10), body: taskBody { _ in .waitSignal(SignalID(0)) })
        #expect(s.runReady(nowUs: 0) == nil)
        _ = s.runReady(nowUs: 1_000_000)
        #expect(s.taskInfo(id)?.watchdog == .off)
        #expect(s.pendingEventCount == 0)
    }

    @Test func criticalTaskThatExitsKeepsTheNodeUnhealthy() throws {
        var s = Scheduler()
        let id = try s.spawn("pump", options: TaskOptions(critical: true), body: taskBody { _ in .done })
        try s.spawn("other", body: taskBody { _ in .done })
        _ = s.runReady(nowUs: 42)
        #expect(!s.criticalTasksHealthy)
        #expect(s.criticalFault?.fault == .exited)
        #expect(s.criticalFault?.taskID == id)
        #expect(drainSchedulerEvents(&s).map(\.kind) == [.criticalExited])
    }

    @Test func killingACriticalTaskRetiresIt() throws {
        var s = Scheduler()
        let id = try s.spawn("pump", options: TaskOptions(watchdogTimeoutUs: 100, critical: true),
                             body: taskBody { _ in .waitSignal(SignalID(0)) })
        _ = s.runReady(nowUs: 0)
        _ = s.runReady(nowUs: 100)
        #expect(!s.criticalTasksHealthy)
        s.kill(id)
        #expect(s.criticalTasksHealthy)
        #expect(s.criticalFault == nil)
    }

    // MARK: Circuit breaker

    @Test func crashingTaskTripsBreakerBacksOffAndGivesUp() throws {
        var config = SchedulerConfig()
        config.restartBackoffBaseUs = 100_000
        config.restartBackoffMaxUs = 250_000
        config.restartsMax = 3
        var s = Scheduler(config: config)
        var made = 0
        let id = try s.spawn("crasher", options: TaskOptions(critical: true), make: {
            made += 1
            return { _ in .failed(code: 7) }
        })
        var joined: TaskExit? = nil
        try s.spawn("watcher", body: taskBody { ctx in
            if ctx.wakeReason == .joined { joined = ctx.joinedExit; return .done }
            return .waitJoin(id)
        })
        #expect(s.runReady(nowUs: 0) == 100_000)
        #expect(s.taskInfo(id)?.consecutiveFailures == 5)
        #expect(s.taskInfo(id)?.breaker == .open)
        #expect(!s.criticalTasksHealthy)
        #expect(s.criticalFault?.fault == .breakerOpen)
        runSchedulerLoop(&s, from: 100_000, until: 10_000_000)

        let f = { (t: UInt64) in SchedulerEvent(timeUs: t, taskID: id, kind: .failed, detail: 7) }
        let want: [SchedulerEvent] = [f(0), f(0), f(0), f(0), f(0),
            SchedulerEvent(timeUs: 0, taskID: id, kind: .breakerOpen, detail: 100_000),
            SchedulerEvent(timeUs: 100_000, taskID: id, kind: .breakerHalfOpen, detail: 1),
            SchedulerEvent(timeUs: 100_000, taskID: id, kind: .restarted, detail: 1),
            f(100_000),
            SchedulerEvent(timeUs: 100_000, taskID: id, kind: .breakerOpen, detail: 200_000),
            SchedulerEvent(timeUs: 300_000, taskID: id, kind: .breakerHalfOpen, detail: 2),
            SchedulerEvent(timeUs: 300_000, taskID: id, kind: .restarted, detail: 2),
            f(300_000),
            SchedulerEvent(timeUs: 300_000, taskID: id, kind: .breakerOpen, detail: 250_000),  // capped
            SchedulerEvent(timeUs: 550_000, taskID: id, kind: .breakerHalfOpen, detail: 3),
            SchedulerEvent(timeUs: 550_000, taskID: id, kind: .restarted, detail: 3),
            f(550_000),
            SchedulerEvent(timeUs: 550_000, taskID: id, kind: .gaveUp, detail: 3),
        ]
        #expect(drainSchedulerEvents(&s) == want)
        #expect(made == 4)
        let info = try #require(s.taskInfo(id))
        #expect(info.state == .gaveUp && info.breaker == .gaveUp && info.fault == .gaveUp)
        #expect(info.restarts == 3 && info.totalFailures == 8 && info.consecutiveFailures == 8)
        #expect(info.lastFailureCode == 7 && info.totalTicks == 8)
        #expect(!s.isAlive(id))
        #expect(joined == .gaveUp)
        #expect(!s.criticalTasksHealthy)
        #expect(s.criticalFault?.fault == .breakerOpen)  // the first fault is kept
        #expect(s.nextWakeUs == nil)
        let killed = s.kill(id)
        #expect(killed && s.taskCount == 0)
    }

    @Test func breakerClosesWhenTheRestartedTaskSucceeds() throws {
        var s = Scheduler()
        var instance = 0
        let id = try s.spawn("flaky", options: TaskOptions(rate: .periodic(hz: 10), critical: true), make: {
            instance += 1
            let mine = instance
            return { _ in mine == 1 ? .failed(code: 2) : .yield }
        })
        runSchedulerLoop(&s, until: 1_000_000)
        // Failures at 0, .1, .2, .3, .4 s; open at .4 for 100 ms; restarted at .5.
        let kinds = drainSchedulerEvents(&s).map(\.kind)
        #expect(kinds == [.failed, .failed, .failed, .failed, .failed, .breakerOpen,
                          .breakerHalfOpen, .restarted, .breakerClosed])
        let info = try #require(s.taskInfo(id))
        #expect(info.breaker == .closed && info.consecutiveFailures == 0 && info.fault == nil)
        #expect(info.totalFailures == 5 && info.restarts == 1)
        #expect(s.criticalTasksHealthy && s.criticalFault == nil)
        // Restarted at 0.5 s and re-anchored there: 0.5 ... 1.0 s.
        #expect(info.totalTicks == 5 + 6)
    }

    @Test func failuresBelowThresholdRetryAndSuccessResets() throws {
        var s = Scheduler()
        var n = 0
        let id = try s.spawn("t", body: taskBody { ctx in
            n += 1
            if n % 4 == 0 { return n > 40 ? .done : .sleep(untilUs: ctx.nowUs + 10) }
            return .failed(code: UInt16(n))
        })
        var events: [SchedulerEvent] = []
        runSchedulerLoop(&s, until: 1_000_000) { s, _ in s.drainEvents(into: &events) }
        #expect(!s.isAlive(id))
        #expect(events.count == 33)  // n = 1...43 except multiples of 4
        #expect(events.allSatisfy { $0.kind == .failed })
        #expect(events.first?.detail == 1)
    }

    @Test func longHealthyStretchForgivesPastTrips() throws {
        var config = SchedulerConfig()
        config.failuresToOpen = 1
        config.restartsMax = 1
        config.breakerResetUs = 1_000_000
        var s = Scheduler(config: config)
        let failAt: Set<UInt64> = [0, 3_000_000]
        let id = try s.spawn("t", options: TaskOptions(rate: .periodic(hz: 10)), body: taskBody { ctx in
            failAt.contains(ctx.nowUs) ? .failed(code: 1) : .yield
        })
        runSchedulerLoop(&s, until: 5_000_000)
        // Without the reset, the second trip would give up (restartsMax 1).
        let info = try #require(s.taskInfo(id))
        #expect(info.breaker == .closed)
        #expect(info.restarts == 2)
        #expect(drainSchedulerEvents(&s).filter { $0.kind == .gaveUp }.isEmpty)
    }

    @Test func breakerDisabledOnlyCounts() throws {
        var config = SchedulerConfig()
        config.circuitBreaker = false
        var s = Scheduler(config: config)
        var n = 0
        let id = try s.spawn("t", body: taskBody { _ in n += 1; return n < 50 ? .failed(code: 1) : .done })
        _ = runSchedulerLoop(&s, until: 10)
        #expect(n == 50)
        #expect(!s.isAlive(id))
    }

    // MARK: Deadlines

    @Test func executionOverrunsAreCountedExactly() throws {
        let clock = SchedulerTestClock()
        var s = Scheduler(clockUs: { clock.us })
        var k = 0
        let id = try s.spawn("work", options: TaskOptions(deadlineUs: 1000), body: taskBody { ctx in
            k += 1
            clock.us += (k % 3 == 0) ? 1500 : (k % 3 == 1 ? 1000 : 999)  // 1000 is not a miss
            return k == 100 ? .done : .sleep(untilUs: ctx.nowUs + 10_000)
        })
        var misses: [SchedulerEvent] = []
        runSchedulerLoop(&s, until: 10_000_000, clock: clock) { s, _ in
            if let info = s.taskInfo(id) {
                #expect(info.timeUsedMaxUs <= 1500)
            }
            while let e = s.popEvent() { misses.append(e) }
        }
        #expect(misses.count == 33)
        #expect(misses.allSatisfy { $0.kind == .deadlineMiss && $0.detail == 500 && $0.taskID == id })
    }

    @Test func lateStartsOfPeriodicTasksAreCountedExactly() throws {
        // A more urgent hog runs 3 ms at every 20 ms mark; the 100 Hz task released
        // at the same instants starts 3 ms late (> its 2 ms deadline) every other tick.
        let clock = SchedulerTestClock()
        var s = Scheduler(clockUs: { clock.us })
        try s.spawn("hog", options: TaskOptions(priority: 0, rate: .periodic(hz: 50)), body: taskBody { _ in
            clock.us += 3000
            return .yield
        })
        let id = try s.spawn("ctl", options: TaskOptions(priority: 1, rate: .periodic(hz: 100), deadlineUs: 2000),
                             body: taskBody { _ in
            clock.us += 100
            return .yield
        })
        var events: [SchedulerEvent] = []
        runSchedulerLoop(&s, until: 999_999, clock: clock) { s, _ in s.drainEvents(into: &events) }
        let info = try #require(s.taskInfo(id))
        #expect(info.totalTicks == 100)
        #expect(info.deadlineMisses == 50)
        #expect(info.timeUsedMaxUs == 100 && info.timeUsedTotalUs == 10_000)
        #expect(events.count == 50)
        #expect(events.allSatisfy { $0.kind == .deadlineMiss && $0.detail == 1000 && $0.timeUs % 20_000 == 0 })
    }

    @Test func deadlineMonitoringCanBeOff() throws {
        let clock = SchedulerTestClock()
        var config = SchedulerConfig()
        config.deadlineMonitoring = false
        var s = Scheduler(config: config, clockUs: { clock.us })
        let id = try s.spawn("t", options: TaskOptions(deadlineUs: 1), body: taskBody { _ in clock.us += 50; return .done })
        _ = s.runReady(nowUs: 0)
        #expect(s.pendingEventCount == 0)
        #expect(s.taskInfo(id) == nil)
    }

    // MARK: Events

    @Test func eventRingOverflowIsCounted() throws {
        var config = SchedulerConfig()
        config.eventCapacity = 4
        config.circuitBreaker = false
        var s = Scheduler(config: config)
        var n = 0
        let id = try s.spawn("t", body: taskBody { _ in n += 1; return n <= 10 ? .failed(code: UInt16(n)) : .waitSignal(SignalID(0)) })
        _ = s.runReady(nowUs: 0)
        #expect(s.pendingEventCount == 4)
        #expect(s.eventsDropped == 6)
        #expect(drainSchedulerEvents(&s).map(\.detail) == [1, 2, 3, 4])
        #expect(s.popEvent() == nil)
        // Room again: new events are kept, the drop count stays.
        s.kill(id)
        #expect(s.popEvent()?.kind == .killed)
        #expect(s.eventsDropped == 6)
    }

    // MARK: Introspection

    @Test func taskInfoIsComplete() throws {
        let clock = SchedulerTestClock()
        var s = Scheduler(clockUs: { clock.us })
        let id = try s.spawn("sensor", options: TaskOptions(priority: 2, rate: .periodic(hz: 50), deadlineUs: 400,
                                                            watchdogTimeoutUs: 100_000, critical: true),
                             body: taskBody { ctx in
            clock.us += ctx.nowUs % 40_000 == 0 ? 500 : 300
            return ctx.nowUs == 60_000 ? .failed(code: 9) : .yield
        })
        runSchedulerLoop(&s, until: 99_999, clock: clock)
        let info = try #require(s.taskInfo(id))
        #expect(info.id == id && info.name.description == "sensor")
        #expect(info.priority == 2 && info.critical && info.fault == nil)
        #expect(info.tickRateHz == 50 && info.deadlineUs == 400)
        #expect(info.state == .waitingRelease && info.wakeUs == 100_000)
        #expect(info.totalTicks == 5)  // 0, 20, 40, 60, 80 ms
        #expect(info.totalFailures == 1 && info.consecutiveFailures == 0 && info.lastFailureCode == 9)
        #expect(info.deadlineMisses == 3)  // 0, 40, 80 ms took 500 µs
        #expect(info.watchdog == .ok && info.watchdogTimeoutUs == 100_000 && info.watchdogLastFedUs == 80_000)
        #expect(info.breaker == .closed && info.restarts == 0)
        #expect(info.timeUsedMaxUs == 500 && info.timeUsedTotalUs == 3 * 500 + 2 * 300)
        #expect(s.taskInfos().count == 1)
        // Priorities past the configured levels mean the last level.
        let low = try s.spawn("low", options: TaskOptions(priority: 200), body: taskBody { _ in .done })
        #expect(s.taskInfo(low)?.priority == 3)
    }

    /// The node's `tasks` answer is written straight from the table: the same
    /// bytes as the entries built from `TaskInfo`, in every state a task can be in.
    @Test func taskReportFromTheTableMatchesTheEntries() throws {
        var config = SchedulerConfig()
        config.restartBackoffBaseUs = 10_000
        config.restartsMax = 1
        let clock = SchedulerTestClock()
        var s = Scheduler(config: config, clockUs: { clock.us += 2; return clock.us })  // every tick 2 µs
        #expect(TaskReport.encode(scheduler: s) == TaskReport(scheduler: s).encode())
        try s.spawn("périodique", options: TaskOptions(priority: 1, rate: .periodic(hz: 100), deadlineUs: 1,
                                                        watchdogTimeoutUs: 30_000, critical: true),
                    body: taskBody { ctx in ctx.nowUs % 50_000 == 0 ? .failed(code: 3) : .yield })
        let gone = try s.spawn("gone", body: taskBody { _ in .sleep(untilUs: .max) })
        try s.spawn("crasher", options: TaskOptions(critical: true), body: taskBody { _ in .failed(code: 7) })
        try s.spawn("staller", options: TaskOptions(watchdogTimeoutUs: 20_000),
                    body: taskBody { _ in .waitSignal(SignalID(1)) })
        try s.spawn("sleeper", options: TaskOptions(priority: 3, deadlineUs: 5),
                    body: taskBody { ctx in .sleep(untilUs: ctx.nowUs + 7_000) })
        var faults = Set<UInt8>()
        var watchdogs = Set<UInt8>()
        var checks = 0
        runSchedulerLoop(&s, until: 200_000, clock: clock) { s, now in
            if now == 60_000 { s.kill(gone) }  // a hole in the table
            let direct = TaskReport.encode(scheduler: s)
            #expect(direct == TaskReport(scheduler: s).encode())
            if let report = try? TaskReport.decode(direct) {
                for e in report.entries { faults.insert(e.fault); watchdogs.insert(e.watchdog) }
            }
            var misses: UInt32 = 0
            var restarts: UInt32 = 0
            s.forEachTask { misses &+= $0.deadlineMisses; restarts &+= $0.restarts }
            let totals = s.taskTotals()
            #expect(totals.deadlineMisses == misses && totals.restarts == restarts)
            checks += 1
        }
        #expect(checks > 10)
        #expect(s.taskCount == 4)
        #expect(faults.isSuperset(of: [0, TaskFault.stalled.rawValue, TaskFault.gaveUp.rawValue]))
        #expect(watchdogs == [0, 1, 2])
        #expect(s.taskTotals().deadlineMisses > 0 && s.taskTotals().restarts > 0)
    }

    // MARK: No growth

    @Test func millionTicksAllocateNothingNew() throws {
        var s = Scheduler()
        var counter = 0
        try s.spawn("fast", options: TaskOptions(priority: 0, rate: .periodic(hz: 1000)), body: taskBody { ctx in
            counter &+= 1
            if counter % 97 == 0 { ctx.signal(SignalID(2)) }
            return .yield
        })
        try s.spawn("waiter", options: TaskOptions(priority: 1, watchdogTimeoutUs: 1_000_000),
                    body: taskBody { _ in .waitSignal(SignalID(2)) })
        try s.spawn("spawner", options: TaskOptions(priority: 2), body: taskBody { ctx in
            if ctx.wakeReason != .joined {
                let child = try! ctx.spawn("child", body: taskBody { _ in .done })
                return .waitJoin(child)
            }
            return .sleep(untilUs: ctx.nowUs + 3000)
        })
        try s.spawn("flaky", options: TaskOptions(priority: 3, rate: .periodic(hz: 200)), body: taskBody { ctx in
            ctx.nowUs % 7 == 0 ? .failed(code: 1) : .yield
        })
        func shape(_ s: Scheduler) -> [Int] {
            [s.records.count, s.records.capacity, s.readyRing.count, s.readyRing.capacity,
             s.readyHead.count, s.readyCount.count, s.events.slots.count, s.events.slots.capacity,
             s.context.pendingSpawns.capacity, s.context.pendingKills.capacity,
             s.context.slots.free.capacity, s.context.slots.generations.count, s.taskCount]
        }
        _ = s.runReady(nowUs: 0)
        let before = shape(s)
        var now: UInt64 = 0
        while s.stats.ticks < 1_000_000 {
            guard let next = s.runReady(nowUs: now) else { break }
            now = next
            while s.popEvent() != nil {}
        }
        #expect(s.stats.ticks >= 1_000_000)
        #expect(shape(s) == before)
        #expect(s.taskCount == 4)
    }

    // MARK: Many seeds

    /// Random tasks doing random things, checked against the scheduler's promises
    /// at every tick. Same seed, same trace.
    @Test(arguments: 0..<48) func randomScenarios(seed: Int) throws {
        let first = try randomSchedulerRun(seed: UInt64(seed))
        if seed % 4 == 0 {
            let second = try randomSchedulerRun(seed: UInt64(seed))
            #expect(first == second, "nondeterministic: --seed \(seed)")
        }
    }
}

/// Shared model for the random scenarios.
private final class SchedulerTestModel {
    var rng: TestRNG
    var trace: [UInt64] = []
    var violations: [String] = []
    /// Per task (by raw id): the sleep/timeout it asked for, the signal it waits on.
    var wantWake: [UInt32: UInt64] = [:]
    var waitingOn: [UInt32: UInt8] = [:]
    /// Tasks that must next run woken by a signal.
    var mustWakeBySignal: Set<UInt32> = []
    var lastNow: UInt64 = 0
    init(seed: UInt64) { rng = TestRNG(seed: seed) }

    /// Coverage of the checks: priority, timer, signal.
    var checked = (priority: 0, timer: 0, signal: 0)
    func check(_ ok: Bool, _ what: @autoclosure () -> String) { if !ok { violations.append(what()) } }

    /// Every task waiting on `signal` whose timeout has not fired must wake by it.
    func expectSignalWake(_ signal: UInt8, at nowUs: UInt64, raiser: UInt32?) {
        for (task, s) in waitingOn where s == signal && task != raiser {
            if let until = wantWake[task], until <= nowUs { continue }
            mustWakeBySignal.insert(task)
        }
    }
}

private func randomSchedulerBody(_ m: SchedulerTestModel, priority: UInt8, periodic: Bool, depth: Int) -> TaskBody {
    var children: [TaskID] = []
    return { ctx in
        let me = ctx.taskID.rawValue
        m.trace.append(ctx.nowUs << 20 ^ UInt64(me) << 4 ^ UInt64(ctx.wakeReason.rawValue))
        // Nothing more urgent was ready.
        m.check(ctx.readyLevelsMask & ((1 << UInt32(priority)) - 1) == 0, "priority inversion")
        if ctx.readyLevelsMask != 0 { m.checked.priority += 1 }
        m.check(ctx.nowUs >= m.lastNow, "time went back")
        m.lastNow = ctx.nowUs
        if m.mustWakeBySignal.remove(me) != nil {
            m.check(ctx.wakeReason == .signal, "signal waiter woke by \(ctx.wakeReason)")
            m.checked.signal += 1
        }
        if let want = m.wantWake.removeValue(forKey: me), ctx.wakeReason == .timer {
            m.check(ctx.nowUs == want, "timer woke at \(ctx.nowUs), wanted \(want)")
            m.checked.timer += 1
        }
        m.waitingOn[me] = nil
        let roll = Int.random(in: 0..<100, using: &m.rng)
        switch roll {
        case 0..<30:
            return .yield
        case 30..<50:
            let until = ctx.nowUs + UInt64.random(in: 0...5000, using: &m.rng)
            if !periodic { m.wantWake[me] = until }
            return .sleep(untilUs: until)
        case 50..<62:
            let sig = UInt8.random(in: 0..<4, using: &m.rng)
            m.waitingOn[me] = sig
            if Bool.random(using: &m.rng) {
                let until = ctx.nowUs + UInt64.random(in: 1...20_000, using: &m.rng)
                m.wantWake[me] = until
                return .waitSignal(SignalID(sig), untilUs: until)
            }
            return .waitSignal(SignalID(sig))
        case 62..<75:
            let sig = UInt8.random(in: 0..<4, using: &m.rng)
            ctx.signal(SignalID(sig))
            m.expectSignalWake(sig, at: ctx.nowUs, raiser: me)
            return .yield
        case 75..<82 where depth < 2:
            let p = UInt8.random(in: 0..<4, using: &m.rng)
            if let child = try? ctx.spawn("child", options: TaskOptions(priority: p),
                                          body: randomSchedulerBody(m, priority: p, periodic: false, depth: depth + 1)) {
                children.append(child)
            }
            return .yield
        case 82..<88:
            children.removeAll { !ctx.isAlive($0) }
            if let wait = ctx.waitForAll(children) { return wait }
            return .yield
        case 88..<92:
            return .failed(code: 1)
        case 92..<95 where depth > 0:
            return .done
        default:
            return .sleep(untilUs: ctx.nowUs + 1)
        }
    }
}

private func randomSchedulerRun(seed: UInt64) throws -> [UInt64] {
    let m = SchedulerTestModel(seed: seed)
    var config = SchedulerConfig()
    config.stepsPerRunMax = Int.random(in: 1...32, using: &m.rng)
    config.restartBackoffBaseUs = 1000
    config.restartBackoffMaxUs = 8000
    var s = Scheduler(config: config)
    let taskCount = Int.random(in: 2...8, using: &m.rng)
    for _ in 0..<taskCount {
        let p = UInt8.random(in: 0..<4, using: &m.rng)
        let periodic = Int.random(in: 0..<4, using: &m.rng) == 0
        let opts = TaskOptions(priority: p, rate: periodic ? .periodic(hz: UInt32.random(in: 50...2000, using: &m.rng)) : .eventDriven)
        try s.spawn("root", options: opts, body: randomSchedulerBody(m, priority: p, periodic: periodic, depth: 0))
    }
    var now: UInt64 = 0
    var platform = TestRNG(seed: seed ^ 0xABCD)
    for _ in 0..<8_000 {
        if UInt64.random(in: 0..<10, using: &platform) == 0 {
            let sig = UInt8.random(in: 0..<4, using: &platform)
            s.raise(SignalID(sig))
            m.expectSignalWake(sig, at: now, raiser: nil)
        }
        guard let next = s.runReady(nowUs: now) else { break }
        // Sometimes a datagram arrives before the next timer (never after it).
        if next > now && UInt64.random(in: 0..<4, using: &platform) == 0 {
            now += UInt64.random(in: 0..<(next - now), using: &platform)
        } else {
            now = next
        }
    }
    #expect(m.violations.isEmpty, "--seed \(seed): \(m.violations.prefix(3))")
    #expect(m.checked.timer > 0 && m.checked.priority > 0, "--seed \(seed): checks never ran")
    if seed == 0 { print("random scenario seed 0: \(m.trace.count) ticks, checked \(m.checked), \(s.stats)") }
    #expect(s.taskCount <= config.taskCapacity)
    return m.trace
}
