// What a task sees during its tick, and what it may ask of the scheduler. The
// scheduler owns one context and hands it to each body in turn (inout): requests
// (signals, spawns, kills) are recorded here and carried out as soon as the body
// returns, before the next task runs. Nothing here allocates per tick.

public struct TaskContext {
    /// The time of this `runReady` call (the same for every task it runs).
    public internal(set) var nowUs: UInt64 = 0
    public internal(set) var taskID = TaskID(rawValue: 0)
    public internal(set) var wakeReason = WakeReason.started
    /// How the joined task ended, when `wakeReason == .joined`.
    public internal(set) var joinedExit = TaskExit.notFound
    /// Periodic tasks: the release this tick belongs to (on the task's grid).
    public internal(set) var releaseUs: UInt64 = 0
    /// Times this task was re-created by its factory.
    public internal(set) var restartCount: UInt32 = 0

    var raisedSignals: UInt64 = 0
    var fedWatchdog = false
    var pendingKills: Table<TaskID>
    var pendingSpawns: Table<PendingSpawn>
    var slots: SlotTable
    /// Ready priority levels (bit n = level n) when this tick started, the task
    /// itself excluded: lets tests check that nothing more urgent was waiting.
    var readyLevelsMask: UInt32 = 0

    init(capacity: Int) {
        pendingKills = Table(capacity: capacity)
        pendingSpawns = Table(capacity: capacity)
        slots = SlotTable(capacity: capacity)
    }

    /// Wakes every task waiting on `signal` once this tick ends (not this task:
    /// it raised the signal before it waits).
    public mutating func signal(_ signal: SignalID) {
        raisedSignals |= signal.bit
    }

    /// Counts as progress for the watchdog, whatever this tick returns.
    public mutating func feedWatchdog() {
        fedWatchdog = true
    }

    /// Spawns a task that starts when this tick ends. The id is valid at once
    /// (to join or kill it).
    @discardableResult
    public mutating func spawn(_ name: StaticString, options: TaskOptions = TaskOptions(),
                               make factory: @escaping TaskFactory) throws(SchedulerError) -> TaskID {
        guard let id = slots.allocate() else { throw .taskTableFull }
        // Cannot outgrow its reserve: every entry holds one of `capacity` slots.
        pendingSpawns.append(PendingSpawn(id: id, name: name, options: options, factory: factory))
        return id
    }

    /// A task whose restart re-runs the same body (its captured state included).
    @discardableResult
    public mutating func spawn(_ name: StaticString, options: TaskOptions = TaskOptions(),
                               body: @escaping TaskBody) throws(SchedulerError) -> TaskID {
        try spawn(name, options: options, make: { body })
    }

    /// Ends a task (this one too) when this tick ends; its joiners wake with
    /// `.killed`. An id that names no task is ignored.
    public mutating func kill(_ id: TaskID) {
        guard slots.exists(id), !pendingKills.contains(id) else { return }
        // Bounded by the number of existing tasks, which is the reserve.
        pendingKills.append(id)
    }

    /// True while `id` names a task that has not ended (done, killed, given up).
    public func isAlive(_ id: TaskID) -> Bool { slots.isAlive(id) }

    /// Join-all: `.waitJoin` on the first listed task still alive, or nil once
    /// every one has ended. Return it until it is nil:
    ///
    ///     if let wait = context.waitForAll(children) { return wait }
    public func waitForAll<C: Collection>(_ ids: C) -> TaskStep? where C.Element == TaskID {
        for id in ids where slots.isAlive(id) { return .waitJoin(id) }
        return nil
    }
}

struct PendingSpawn {
    var id: TaskID
    var name: StaticString
    var options: TaskOptions
    var factory: TaskFactory
}

/// Which slots hold a task, and their generations. Lives in the context so a task
/// can spawn (allocate an id) during its tick.
struct SlotTable {
    enum Use: UInt8 { case free, alive, gaveUp }

    private(set) var generations: [UInt16]
    private(set) var uses: Table<Use>
    /// Free slots, a stack: the lowest slot is handed out first, deterministically.
    private(set) var free: [UInt16]

    init(capacity: Int) {
        generations = Array(repeating: 0, count: capacity)
        uses = Table(repeating: .free, count: capacity)
        free = []
        free.reserveCapacity(capacity)
        var slot = capacity
        while slot > 0 {
            slot -= 1
            free.append(UInt16(slot))
        }
    }

    mutating func allocate() -> TaskID? {
        guard let s = free.popLast() else { return nil }
        let slot = Int(s)
        var g = generations[slot] &+ 1
        if g == 0 { g = 1 }  // raw id 0 never names a task
        generations[slot] = g
        uses[slot] = .alive
        return TaskID(slot: slot, generation: g)
    }

    mutating func release(_ slot: Int) {
        precondition(uses[slot] != .free)
        uses[slot] = .free
        free.append(UInt16(slot))
    }

    mutating func markGaveUp(_ slot: Int) { uses[slot] = .gaveUp }

    private func current(_ id: TaskID) -> Use {
        let slot = id.slot
        guard slot < generations.count, generations[slot] == id.generation else { return .free }
        return uses[slot]
    }

    func isAlive(_ id: TaskID) -> Bool { current(id) == .alive }
    func exists(_ id: TaskID) -> Bool { current(id) != .free }

    /// How a task that is not alive ended, as far as the table knows.
    func exit(of id: TaskID) -> TaskExit { current(id) == .gaveUp ? .gaveUp : .notFound }
}
