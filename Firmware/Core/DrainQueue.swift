// The outbox of the state machines (MeshNode's actions, RaftNode's actions,
// PubSub's events): a FIFO filled by the machine and drained by its caller.
// A ring: appending and popping are O(1), a popped element is moved out of
// its slot (no copy, no shifting), and the storage is never grown in steady
// state (fixed memory on the board). Why not one array and a read index:
// emptying or sliding an array costs a `replaceSubrange` specialised for every
// element type (~0.2 KB each on the board).
//
// The ring's bytes live in the non-generic `DrainBuffer` (like `TableBuffer`):
// slot arithmetic, growth and the uniqueness check exist once. Growth moves
// the elements' bytes: they are moved, never copied, and Swift values are
// bitwise-movable (bitwise-takable) unless they hold weak references, which
// the queued enums do not (Embedded Swift has no weak references). Per type
// remain only the typed store and load and two small closures: copying one
// element (a shared ring) and destroying one (what is left at deinit).
// Before (`[Element?]`): about 1.3 KB of specialised Array code on the sensor.

public struct DrainQueue<Element> {
    var storage: DrainBuffer

    public init(capacity: Int) {
        // The ring's bytes are 8-aligned (DrainBuffer.init); a constant test per type.
        precondition(MemoryLayout<Element>.alignment <= 8, "DrainQueue: element alignment over 8")
        storage = DrainBuffer(
            capacity: max(capacity, 1), stride: MemoryLayout<Element>.stride,
            copy: { $0.initializeMemory(as: Element.self, to: $1.assumingMemoryBound(to: Element.self).pointee) },
            destroy: { $0.assumingMemoryBound(to: Element.self).deinitialize(count: 1) })
    }

    public var capacity: Int { storage.capacity }
    /// Elements not yet popped.
    public var count: Int { storage.count }

    public mutating func append(_ e: Element) {
        DrainBuffer.appendSlot(&storage).initializeMemory(as: Element.self, to: e)
    }

    /// The oldest element; nil when drained.
    public mutating func pop() -> Element? {
        guard let p = DrainBuffer.popSlot(&storage) else { return nil }
        return p.assumingMemoryBound(to: Element.self).move()
    }
}

/// A ring of `capacity` slots of `stride` bytes; `count` of them, from
/// `head` on (wrapping), hold elements. Independent of the element type but
/// for the two functions that copy and destroy one element (the only typed
/// code per element type besides the store and the load).
final class DrainBuffer {
    var base: UnsafeMutableRawPointer
    /// The oldest element's slot.
    var head = 0
    var count = 0
    var capacity: Int
    let stride: Int
    let copy: (UnsafeMutableRawPointer, UnsafeRawPointer) -> Void
    let destroy: (UnsafeMutableRawPointer) -> Void

    @inline(never)
    init(capacity: Int, stride: Int, copy: @escaping (UnsafeMutableRawPointer, UnsafeRawPointer) -> Void,
         destroy: @escaping (UnsafeMutableRawPointer) -> Void) {
        self.capacity = capacity
        self.stride = stride
        self.copy = copy
        self.destroy = destroy
        // 8: at least any element's alignment on the board and the hosts.
        base = UnsafeMutableRawPointer.allocate(byteCount: max(capacity * stride, 1), alignment: 8)
    }

    deinit {
        for k in 0..<count { destroy(address(k)) }
        base.deallocate()
    }

    /// The bytes of the slot `k` places after the head.
    func address(_ k: Int) -> UnsafeMutableRawPointer {
        let i = head + k
        return base + (i < capacity ? i : i - capacity) * stride
    }

    /// A shared ring (a copied queue) is copied before it is changed.
    static func makeUnique(_ b: inout DrainBuffer) {
        if isKnownUniquelyReferenced(&b) { return }
        let c = DrainBuffer(capacity: b.capacity, stride: b.stride, copy: b.copy, destroy: b.destroy)
        for k in 0..<b.count { c.copy(c.address(k), b.address(k)) }
        c.count = b.count
        b = c
    }

    /// One more element at the tail; returns its (uninitialised) bytes.
    @inline(never)
    static func appendSlot(_ b: inout DrainBuffer) -> UnsafeMutableRawPointer {
        makeUnique(&b)
        if b.count == b.capacity { b.grow() }
        b.count += 1
        return b.address(b.count - 1)
    }

    /// The oldest element's bytes, now the caller's to move out; nil if empty.
    @inline(never)
    static func popSlot(_ b: inout DrainBuffer) -> UnsafeMutableRawPointer? {
        guard b.count > 0 else { return nil }
        makeUnique(&b)
        let p = b.address(0)
        b.head = b.head + 1 < b.capacity ? b.head + 1 : 0
        b.count -= 1
        return p
    }

    /// Full: twice the slots, oldest first. Only past the capacity the owner
    /// sized the queue for, so never in steady state. A byte move (see above).
    func grow() {
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: 2 * capacity * stride, alignment: 8)
        for k in 0..<count { (bigger + k * stride).copyMemory(from: address(k), byteCount: stride) }
        base.deallocate()
        base = bigger
        capacity *= 2
        head = 0
    }
}
