// The state machines' tables of plain values (peers, instances, calls, serve
// entries, buckets, scheduler events...): a copy-on-write array. Why not
// `[Element]`: Embedded Swift specialises Array's growth, copy and shift code
// for every element type (the kernel image lost 2.5 KB when ~15 table types
// moved here, docs/FIRMWARE.md "Sizes"). Here the element type
// is BitwiseCopyable, so growing, copying and shifting are byte moves done once,
// in the non-generic `TableBuffer`; per type only the small typed accessors
// remain. Semantics are Array's: a value type, copied on write, grows on demand
// (the tables reserve their configured capacity up front, so steady state never
// allocates).
//
// Elements holding references (closures, arrays, class instances) are allowed
// too: every Swift value is bitwise movable (a move is a memcpy, no retain), so
// growing, inserting and removing stay byte moves here. Only destroying elements
// and copying a shared buffer (copy on write) need the element type: the buffer
// keeps one small per-type function for both (`Table.manage`), nil for plain
// values. That replaced Array's growth/shift/copy specialisations (~0.2-0.5 KB
// per element type) for the scheduler's, metrics' and pub/sub's tables.

public struct Table<Element>: RandomAccessCollection, MutableCollection {
    @usableFromInline var buffer: TableBuffer

    @inlinable
    public init() { self.init(capacity: 0) }

    /// Room for `capacity` elements without allocating again.
    @inlinable
    public init(capacity: Int) {
        // TableBuffer allocates 8-aligned (a constant check, folded away).
        precondition(MemoryLayout<Element>.alignment <= 8, "Table elements must be at most 8-aligned")
        buffer = _isPOD(Element.self)
            ? TableBuffer.make(capacity, MemoryLayout<Element>.stride)
            : TableBuffer.make(capacity, MemoryLayout<Element>.stride, Table.manage)
    }

    /// Copies `n` elements from `from` into the uninitialised `to`, or (`from`
    /// nil) destroys `n` elements at `to`: all a buffer of non-plain elements
    /// needs to know about their type.
    @usableFromInline
    static func manage(_ to: UnsafeMutableRawPointer, _ from: UnsafeRawPointer?, _ n: Int) {
        let p = to.assumingMemoryBound(to: Element.self)
        if let from {
            p.initialize(from: from.assumingMemoryBound(to: Element.self), count: n)
        } else {
            p.deinitialize(count: n)
        }
    }

    /// `count` copies of `value`.
    @inlinable
    public init(repeating value: Element, count: Int) {
        self.init(capacity: count)
        if _isPOD(Element.self) {
            var value = value
            withUnsafeMutablePointer(to: &value) { TableBuffer.fill(buffer, UnsafeRawPointer($0), count) }
        } else {
            TableBuffer.fill(buffer, nil, count)
            slot(0, unchecked: ()).initialize(repeating: value, count: count)
        }
    }

    public typealias Index = Int
    public typealias Indices = Range<Int>
    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { buffer.count }
    @inlinable public var count: Int { buffer.count }
    @inlinable public var isEmpty: Bool { buffer.count == 0 }
    @inlinable public var capacity: Int { buffer.capacity }
    @inlinable public var indices: Range<Int> { 0..<buffer.count }
    @inlinable public func index(after i: Int) -> Int { i + 1 }
    @inlinable public func index(before i: Int) -> Int { i - 1 }

    @inlinable
    func slot(_ i: Int) -> UnsafeMutablePointer<Element> {
        buffer.address(i).assumingMemoryBound(to: Element.self)
    }

    @inlinable
    func slot(_ i: Int, unchecked: ()) -> UnsafeMutablePointer<Element> {
        (buffer.base + i * MemoryLayout<Element>.stride).assumingMemoryBound(to: Element.self)
    }

    @inlinable
    public subscript(i: Int) -> Element {
        get { slot(i).pointee }
        _modify { yield &TableBuffer.unique(&buffer, i).assumingMemoryBound(to: Element.self).pointee }
    }

    @inlinable
    public mutating func append(_ e: Element) {
        TableBuffer.append(&buffer).assumingMemoryBound(to: Element.self).initialize(to: e)
    }

    @inlinable
    public mutating func insert(_ e: Element, at i: Int) {
        TableBuffer.insert(&buffer, i).assumingMemoryBound(to: Element.self).initialize(to: e)
    }

    // Always inlined: where the element is discarded (most callers), its
    // copy goes and only the bounds check and the byte move remain; out of
    // line, each element type had its own copy (~50 B each).
    @inlinable
    @inline(__always)
    @discardableResult
    public mutating func remove(at i: Int) -> Element {
        let e = self[i]
        TableBuffer.remove(&buffer, i, 1)
        return e
    }

    @inlinable
    @inline(__always)
    @discardableResult
    public mutating func removeFirst() -> Element { remove(at: 0) }

    @inlinable
    public mutating func removeFirst(_ n: Int) { TableBuffer.remove(&buffer, 0, n) }

    /// Empties the table and keeps its storage (as Array's `keepingCapacity: true`).
    @inlinable
    public mutating func removeAll() { TableBuffer.remove(&buffer, 0, buffer.count) }

    @inlinable
    public mutating func removeAll(where drop: (Element) -> Bool) {
        var kept = 0
        for i in 0..<buffer.count where !drop(slot(i).pointee) {
            if kept != i { self[kept] = slot(i).pointee }
            kept += 1
        }
        if kept < buffer.count { TableBuffer.remove(&buffer, kept, buffer.count - kept) }
    }

    @inlinable
    public mutating func reserveCapacity(_ n: Int) { TableBuffer.reserve(&buffer, n) }
}

/// The bytes behind a `Table`: `count` elements of `stride` bytes each.
/// Everything here is independent of the element type, so it exists once.
public final class TableBuffer {
    @usableFromInline var base: UnsafeMutableRawPointer
    @usableFromInline var count: Int = 0
    @usableFromInline var capacity: Int
    @usableFromInline let stride: Int
    /// nil for plain values; else `Table<Element>.manage` (copy or destroy).
    @usableFromInline let manage: Manage?

    public typealias Manage = (UnsafeMutableRawPointer, UnsafeRawPointer?, Int) -> Void

    @usableFromInline
    init(capacity: Int, stride: Int, manage: Manage?) {
        self.capacity = capacity
        self.stride = stride
        self.manage = manage
        base = UnsafeMutableRawPointer.allocate(byteCount: max(capacity * stride, 1), alignment: 8)
    }

    deinit {
        manage?(base, nil, count)
        base.deallocate()
    }

    /// A new buffer. Out of line: inlined, the allocation and the
    /// initialiser's call were a 44-byte `Table.init` per element type.
    @usableFromInline
    @inline(never)
    static func make(_ capacity: Int, _ stride: Int) -> TableBuffer {
        TableBuffer(capacity: capacity, stride: stride, manage: nil)
    }

    @usableFromInline
    @inline(never)
    static func make(_ capacity: Int, _ stride: Int, _ manage: @escaping Manage) -> TableBuffer {
        TableBuffer(capacity: capacity, stride: stride, manage: manage)
    }

    /// Fills a new, empty buffer with `count` copies of the `stride` bytes at
    /// `value` (`Table(repeating:count:)`, once for every element type); with
    /// `value` nil only sets the count (the caller initialises the elements).
    @usableFromInline
    @inline(never)
    static func fill(_ b: TableBuffer, _ value: UnsafeRawPointer?, _ count: Int) {
        precondition(count >= 0 && count <= b.capacity, "Table count out of range")
        if let value {
            for k in 0..<count { (b.base + k * b.stride).copyMemory(from: value, byteCount: b.stride) }
        }
        b.count = count
    }

    /// Element `i`'s bytes; traps outside `0..<count` (the bounds check of Array).
    @usableFromInline
    @inline(never)
    func address(_ i: Int) -> UnsafeMutableRawPointer {
        precondition(i >= 0 && i < count, "Table index out of range")
        return base + i * stride
    }

    // The mutators are static and take the reference inout, so that the
    // uniqueness check (copy on write) is done here, once, not at every call.

    @usableFromInline
    @inline(never)
    static func makeUnique(_ b: inout TableBuffer) {
        if isKnownUniquelyReferenced(&b) { return }
        let copy = TableBuffer(capacity: b.capacity, stride: b.stride, manage: b.manage)
        if let manage = b.manage {
            manage(copy.base, b.base, b.count)
        } else {
            copy.base.copyMemory(from: b.base, byteCount: b.count * b.stride)
        }
        copy.count = b.count
        b = copy
    }

    /// Element `i`'s bytes, for writing.
    @usableFromInline
    @inline(never)
    static func unique(_ b: inout TableBuffer, _ i: Int) -> UnsafeMutableRawPointer {
        makeUnique(&b)
        return b.address(i)
    }

    @usableFromInline
    @inline(never)
    static func reserve(_ b: inout TableBuffer, _ n: Int) {
        makeUnique(&b)
        b.reserve(n)
    }

    func reserve(_ n: Int) {
        guard n > capacity else { return }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: n * stride, alignment: 8)
        grown.copyMemory(from: base, byteCount: count * stride)
        base.deallocate()
        base = grown
        capacity = n
    }

    /// One more element at the end; returns its (uninitialised) bytes.
    @usableFromInline
    @inline(never)
    static func append(_ b: inout TableBuffer) -> UnsafeMutableRawPointer {
        makeUnique(&b)
        if b.count == b.capacity { b.reserve(max(4, b.capacity * 2)) }
        b.count += 1
        return b.base + (b.count - 1) * b.stride
    }

    /// A gap for one element at `i` (0...count); returns its bytes.
    @usableFromInline
    @inline(never)
    static func insert(_ b: inout TableBuffer, _ i: Int) -> UnsafeMutableRawPointer {
        precondition(i >= 0 && i <= b.count, "Table insert index out of range")
        _ = append(&b)
        let at = b.base + i * b.stride
        (at + b.stride).copyMemory(from: at, byteCount: (b.count - 1 - i) * b.stride)
        return at
    }

    /// Removes `n` elements from `i` on (destroying them if they are not plain
    /// values), sliding the rest down.
    @usableFromInline
    @inline(never)
    static func remove(_ b: inout TableBuffer, _ i: Int, _ n: Int) {
        precondition(i >= 0 && n >= 0 && i + n <= b.count, "Table remove range out of range")
        makeUnique(&b)
        let at = b.base + i * b.stride
        b.manage?(at, nil, n)
        at.copyMemory(from: at + n * b.stride, byteCount: (b.count - i - n) * b.stride)
        b.count -= n
    }
}
