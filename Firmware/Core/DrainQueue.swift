// The outbox of the state machines (MeshNode's actions, RaftNode's actions,
// PubSub's events): a FIFO filled by the machine and drained by its caller.
// A ring of optional slots: appending and popping are O(1), a popped element
// is moved out of its slot (no copy, no shifting), and the storage is never
// grown in steady state (fixed memory on the board). Why not one array and a
// read index: emptying or sliding an array costs a `replaceSubrange`
// specialised for every element type (~0.2 KB each on the board).

public struct DrainQueue<Element> {
    var slots: [Element?]
    /// The oldest element's slot.
    var head = 0
    /// Elements not yet popped.
    public private(set) var count = 0

    public init(capacity: Int) { slots = Array(repeating: nil, count: max(capacity, 1)) }

    public var capacity: Int { slots.count }

    public mutating func append(_ e: Element) {
        if count == slots.count { grow() }
        slots[slot(count)] = e
        count += 1
    }

    /// The oldest element; nil when drained.
    public mutating func pop() -> Element? {
        guard count > 0 else { return nil }
        let e = slots[head].take()
        head = slot(1)
        count -= 1
        return e
    }

    /// The slot `k` places after the head.
    func slot(_ k: Int) -> Int {
        let i = head + k
        return i < slots.count ? i : i - slots.count
    }

    /// Full: twice the slots, oldest first. Only past the capacity the owner
    /// sized the queue for, so never in steady state.
    @inline(never)
    mutating func grow() {
        var bigger: [Element?] = Array(repeating: nil, count: 2 * slots.count)
        for k in 0..<count { bigger[k] = slots[slot(k)].take() }
        slots = bigger
        head = 0
    }
}
