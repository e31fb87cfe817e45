// The node scheduler on the board's instruction set: strict priorities and turns,
// periodic tasks on a virtual clock, deadline misses, the circuit breaker from
// first failure to giving up, a watchdog stall and its restart, and what a task
// costs in RAM here (32-bit).

import TDOSCore

func schedulerTests() {
    schedulerPriorities()
    schedulerPeriodic()
    schedulerDeadlines()
    schedulerBreaker()
    schedulerWatchdog()
    schedulerMemory()
}

/// What the bodies saw, shared with the test through their captures.
private final class SchedulerLog {
    var entries: [UInt32] = []
    var count = 0
}

private final class SchedulerClock {
    var us: UInt64 = 0
}

/// The platform's loop: call at the time runReady asks for, until `endUs`.
private func runSchedulerUntil(_ s: inout Scheduler, from startUs: UInt64, to endUs: UInt64, clock: SchedulerClock? = nil) {
    var now = startUs
    var calls = 0
    while calls < 1_000_000 {
        clock?.us = now
        guard let next = s.runReady(nowUs: now), next <= endUs else { return }
        now = next
        calls += 1
    }
    expect(false, "scheduler loop did not settle")
}

private func schedulerPriorities() {
    var s = Scheduler()
    let log = SchedulerLog()
    let priorities: [UInt8] = [2, 0, 3, 1]
    for p in priorities {
        _ = expectNoThrow("spawn by priority") { () throws(SchedulerError) -> TaskID in
            try s.spawn("prio", options: TaskOptions(priority: p), body: { _ in
                log.entries.append(UInt32(p))
                return .done
            })
        }
    }
    // Three of equal priority take turns.
    for k: UInt32 in 10..<13 {
        var left = 2
        _ = expectNoThrow("spawn equal") { () throws(SchedulerError) -> TaskID in
            try s.spawn("turns", options: TaskOptions(priority: 3), body: { _ in
                log.entries.append(k)
                left -= 1
                return left == 0 ? .done : .yield
            })
        }
    }
    expect(s.runReady(nowUs: 0) == nil, "nothing left scheduled")
    expect(log.entries == [0, 1, 2, 3, 10, 11, 12, 10, 11, 12], "priority order, then round robin")
    expect(s.taskCount == 0, "finished tasks free their slots")
}

private func schedulerPeriodic() {
    var s = Scheduler()
    let fast = SchedulerLog()
    let slow = SchedulerLog()
    var offGrid = 0
    let rates: [UInt32] = [100, 7]
    for (hz, log) in [(rates[0], fast), (rates[1], slow)] {
        _ = expectNoThrow("spawn periodic") { () throws(SchedulerError) -> TaskID in
            try s.spawn("periodic", options: TaskOptions(rate: .periodic(hz: hz)), body: { ctx in
                // Release n is at exactly n / hz seconds: no drift, no rounding build-up.
                if ctx.releaseUs != UInt64(log.count) * 1_000_000 / UInt64(hz) || ctx.nowUs != ctx.releaseUs {
                    offGrid += 1
                }
                log.count += 1
                return .yield
            })
        }
    }
    runSchedulerUntil(&s, from: 0, to: 9_999_999)
    expectEqual(fast.count, 1000, "100 Hz for 10 s")
    expectEqual(slow.count, 70, "7 Hz for 10 s")
    expectEqual(offGrid, 0, "every tick on its grid")
    s.forEachTask { info in
        expectEqual(info.skippedTicks, UInt32(0), "no skipped ticks")
    }
}

private func schedulerDeadlines() {
    let clock = SchedulerClock()
    var s = Scheduler(clockUs: { clock.us })
    var n = 0
    let id = expectNoThrow("spawn deadline") { () throws(SchedulerError) -> TaskID in
        try s.spawn("work", options: TaskOptions(deadlineUs: 1000), body: { ctx in
            n += 1
            clock.us += n % 4 == 0 ? 1001 : 1000  // exactly the budget is on time
            return n == 40 ? .waitSignal(SignalID(0)) : .sleep(untilUs: ctx.nowUs + 5000)
        })
    }
    runSchedulerUntil(&s, from: 0, to: 1_000_000, clock: clock)
    guard let id, let info = s.taskInfo(id) else { expect(false, "deadline task exists"); return }
    expectEqual(info.totalTicks, UInt64(40), "ticks")
    expectEqual(info.deadlineMisses, UInt32(10), "misses counted exactly")
    expectEqual(info.timeUsedMaxUs, UInt32(1001), "max tick time")
    expectEqual(info.timeUsedTotalUs, UInt64(40_010), "total tick time")
    var misses = 0
    while let e = s.popEvent() {
        if e.kind == .deadlineMiss && e.detail == 1 { misses += 1 }
    }
    expectEqual(misses, 10, "one event per miss")
}

private func schedulerBreaker() {
    var config = SchedulerConfig.standard
    config.restartBackoffBaseUs = 100_000
    config.restartBackoffMaxUs = 250_000
    config.restartsMax = 3
    var s = Scheduler(config: config)
    var made = 0
    let crasher = expectNoThrow("spawn crasher") { () throws(SchedulerError) -> TaskID in
        try s.spawn("crasher", options: TaskOptions(critical: true), make: {
            made += 1
            return { _ in .failed(code: 7) }
        })
    }
    guard let crasher else { return }
    expect(s.criticalTasksHealthy, "healthy before the first tick")
    expect(s.runReady(nowUs: 0) == 100_000, "breaker open: back-off 100 ms")
    expect(!s.criticalTasksHealthy, "breaker open: unhealthy")
    runSchedulerUntil(&s, from: 100_000, to: 10_000_000)

    let want: [(SchedulerEventKind, UInt64, UInt32)] = [
        (.failed, 0, 7), (.failed, 0, 7), (.failed, 0, 7), (.failed, 0, 7), (.failed, 0, 7),
        (.breakerOpen, 0, 100_000),
        (.breakerHalfOpen, 100_000, 1), (.restarted, 100_000, 1), (.failed, 100_000, 7),
        (.breakerOpen, 100_000, 200_000),
        (.breakerHalfOpen, 300_000, 2), (.restarted, 300_000, 2), (.failed, 300_000, 7),
        (.breakerOpen, 300_000, 250_000),
        (.breakerHalfOpen, 550_000, 3), (.restarted, 550_000, 3), (.failed, 550_000, 7),
        (.gaveUp, 550_000, 3),
    ]
    var i = 0
    while let e = s.popEvent() {
        if i < want.count {
            expect(e.kind == want[i].0 && e.timeUs == want[i].1 && e.detail == want[i].2
                   && e.taskID == crasher, "breaker event sequence")
        }
        i += 1
    }
    expectEqual(i, want.count, "breaker event count")
    expectEqual(made, 4, "factory calls: spawn + 3 restarts")
    let info = s.taskInfo(crasher)
    expect(info?.state == .gaveUp && info?.breaker == .gaveUp, "gave up")
    expect(info?.restarts == 3 && info?.totalFailures == 8, "restart and failure counts")
    expect(!s.criticalTasksHealthy, "a critical task that gave up keeps the node unhealthy")
    expectEqual(s.criticalFault?.code ?? 0, UInt8(2), "first fault: breaker open")
    expect(s.nextWakeUs == nil, "nothing scheduled after giving up")
}

private func schedulerWatchdog() {
    var s = Scheduler()
    var made = 0
    let net = expectNoThrow("spawn watched") { () throws(SchedulerError) -> TaskID in
        try s.spawn("net", options: TaskOptions(watchdogTimeoutUs: 50_000, critical: true), make: {
            made += 1
            return { _ in .waitSignal(SignalID(3)) }  // never raised
        })
    }
    guard let net else { return }
    expect(s.runReady(nowUs: 1000) == 51_000, "next call at the watchdog expiry")
    expect(s.runReady(nowUs: 51_000) == 51_000, "stall found at the expiry; restart at once")
    expect(!s.criticalTasksHealthy, "stalled: unhealthy")
    expect(s.criticalFault?.fault == .stalled && s.criticalFault?.taskID == net, "stall recorded")
    _ = s.runReady(nowUs: 51_000)
    expectEqual(made, 2, "re-created from its factory")
    expect(s.criticalTasksHealthy && s.criticalFault == nil, "healthy after the restart's first tick")
    expect(s.popEvent()?.kind == .watchdogStall, "stall event")
    expect(s.popEvent()?.kind == .restarted, "restart event")
}

private func schedulerMemory() {
    let perTask = Scheduler.bytesPerTask(priorityLevels: 4)
    let s = Scheduler()
    print("  scheduler: ", terminator: "")
    printInteger(perTask)
    print(" B per task, ", terminator: "")
    printInteger(s.storageBytes)
    print(" B of tables for 16 tasks (armv6m)")
    expect(perTask <= 256, "a task costs at most 256 B of RAM")
}
