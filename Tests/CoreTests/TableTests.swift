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
}
