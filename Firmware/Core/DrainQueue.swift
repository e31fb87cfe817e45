// The outbox of the state machines (MeshNode's actions, RaftNode's actions,
// PubSub's events): a FIFO filled by the machine and drained by its caller.
// One array and a read index: popping is O(1), and the storage is reused, never
// grown in steady state (fixed memory on the board).

public struct DrainQueue<Element> {
    var items: [Element] = []
    var head = 0

    public init(capacity: Int) { items.reserveCapacity(capacity) }

    /// Elements not yet popped.
    public var count: Int { items.count - head }
    public var capacity: Int { items.capacity }

    public mutating func append(_ e: Element) {
        // Full but partly drained: slide the rest to the front instead of growing.
        if items.count == items.capacity && head > 0 {
            items.removeFirst(head)
            head = 0
        }
        items.append(e)
    }

    /// The oldest element; nil when drained (the storage is then reset).
    public mutating func pop() -> Element? {
        guard head < items.count else { return nil }
        if head == items.count - 1 {
            // The last one (the only one, most often) is moved out, not copied
            // and destroyed later; the popped ones before it go with the reset.
            let e = items.removeLast()
            if head > 0 {
                items.removeAll(keepingCapacity: true)
                head = 0
            }
            return e
        }
        let e = items[head]
        head += 1
        return e
    }
}
