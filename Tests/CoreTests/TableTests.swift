import Testing
@testable import TDOSCore

/// Table stands in for Array in the state machines: it must behave like one
/// (value semantics, order, bounds) while moving raw bytes underneath.
@Suite struct TableTests {
    struct Row: Equatable, BitwiseCopyable {
        var id: UInt32
        var at: UInt64
        var flag: Bool
    }

    func rows(_ ids: ClosedRange<UInt32>) -> Table<Row> {
        var t = Table<Row>(capacity: 2)
        for i in ids { t.append(Row(id: i, at: UInt64(i) * 1_000_000_007, flag: i % 2 == 0)) }
        return t
    }

    @Test func appendGrowsPastTheReservedCapacityAndKeepsOrder() {
        let t = rows(1...9)
        #expect(t.count == 9 && t.capacity >= 9)
        #expect(t.map(\.id) == Array(1...9))
        #expect(t[8] == Row(id: 9, at: 9_000_000_063, flag: false))
    }

    @Test func copiesAreIndependent() {
        var a = rows(1...4)
        let b = a
        a[0].id = 100
        a.append(Row(id: 5, at: 0, flag: true))
        a.remove(at: 1)
        #expect(b.map(\.id) == [1, 2, 3, 4], "the copy made before the writes is untouched")
        #expect(a.map(\.id) == [100, 3, 4, 5])
        var c = b
        c.removeAll()
        #expect(c.isEmpty && b.count == 4)
    }

    @Test func removeInsertAndFilterShiftTheRest() {
        var t = rows(1...6)
        #expect(t.remove(at: 2).id == 3)
        #expect(t.removeFirst().id == 1)
        t.insert(Row(id: 42, at: 1, flag: false), at: 1)
        t.insert(Row(id: 43, at: 2, flag: false), at: t.count)
        #expect(t.map(\.id) == [2, 42, 4, 5, 6, 43])
        t.removeAll(where: { $0.id % 2 == 0 })
        #expect(t.map(\.id) == [5, 43])
        t.removeFirst(2)
        #expect(t.isEmpty)
    }

    @Test func repeatingFillsEverySlot() {
        let t = Table(repeating: Row(id: 7, at: 8, flag: true), count: 5)
        #expect(t.count == 5 && t.allSatisfy { $0 == Row(id: 7, at: 8, flag: true) })
        #expect(t.firstIndex(where: { $0.id != 7 }) == nil)
        var e = Table(repeating: Row(id: 7, at: 8, flag: true), count: 0)
        #expect(e.isEmpty)
        e.append(Row(id: 1, at: 2, flag: false))
        #expect(e.map(\.id) == [1])
        var u = Table<UInt16>(repeating: 0xBEEF, count: 3)
        u[1] = 2
        #expect(Array(u) == [0xBEEF, 2, 0xBEEF])
    }

    // Elements holding references: every live element must be released exactly
    // once, whatever grows, shifts, copies or drops the table.

    final class Tracked {
        static nonisolated(unsafe) var live = 0
        let id: Int
        init(_ id: Int) { self.id = id; Tracked.live += 1 }
        deinit { Tracked.live -= 1 }
    }

    struct Holder {
        var tag: UInt8
        var object: Tracked
        var closure: (() -> Int)?
    }

    func holders(_ ids: ClosedRange<Int>) -> Table<Holder> {
        var t = Table<Holder>(capacity: 2)
        for i in ids {
            let o = Tracked(i)
            t.append(Holder(tag: UInt8(i), object: o, closure: { o.id * 10 }))
        }
        return t
    }

    @Test func referencesAreReleasedOnceThroughGrowShiftCopyAndDrop() {
        let before = Tracked.live
        do {
            var t = holders(1...9)  // grows past its capacity of 2, moving the holders
            #expect(Tracked.live == before + 9)
            #expect(t.map(\.object.id) == Array(1...9) && t[8].closure?() == 90)
            let removed = t.remove(at: 3)
            #expect(removed.object.id == 4 && Tracked.live == before + 9, "the removed holder is the caller's")
            t.insert(Holder(tag: 0, object: Tracked(42), closure: nil), at: 1)
            #expect(Tracked.live == before + 10)
            #expect(t.map(\.object.id) == [1, 42, 2, 3, 5, 6, 7, 8, 9])
            t.removeFirst(2)
            #expect(Tracked.live == before + 8, "1 and 42 released (4 still held by `removed`)")
            t.removeAll(where: { $0.object.id % 2 == 1 })
            #expect(t.map(\.object.id) == [2, 6, 8] && Tracked.live == before + 4)
            t[0] = Holder(tag: 1, object: Tracked(7), closure: nil)
            #expect(Tracked.live == before + 4, "an assigned element releases the old one")

            // Copy on write: the copy keeps its own references.
            let snapshot = t
            t[1].object = Tracked(100)
            t.append(Holder(tag: 2, object: Tracked(101), closure: nil))
            #expect(snapshot.map(\.object.id) == [7, 6, 8] && t.map(\.object.id) == [7, 100, 8, 101])
            #expect(Tracked.live == before + 6, "7, 6, 8, 100, 101 and `removed`")
            var other = snapshot
            other.removeAll()
            #expect(other.isEmpty && snapshot.count == 3 && Tracked.live == before + 6)
        }
        #expect(Tracked.live == before, "dropping the tables released everything")

        do {
            let one = Tracked(1)
            var r = Table(repeating: Holder(tag: 1, object: one, closure: nil), count: 4)
            #expect(r.allSatisfy { $0.object === one } && isKnownUniquelyReferenced(&r.buffer))
            r.removeAll()
            #expect(Tracked.live == before + 1)
            var empty = Table(repeating: Holder(tag: 1, object: one, closure: nil), count: 0)
            empty.reserveCapacity(8)
            #expect(empty.isEmpty && empty.capacity == 8)
        }
        #expect(Tracked.live == before)
    }
}

