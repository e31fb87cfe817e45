// Table with elements holding references, as Embedded Swift: every live
// element released exactly once through growth, shifts, copies and drops.

import TDOSCore

private final class TableTracked {
    nonisolated(unsafe) static var live = 0
    let id: Int
    init(_ id: Int) { self.id = id; TableTracked.live += 1 }
    deinit { TableTracked.live -= 1 }
}

private struct TableHolder {
    var object: TableTracked
    var closure: (() -> Int)?
}

func tableTests() {
    let before = TableTracked.live
    do {
        var t = Table<TableHolder>(capacity: 2)
        for i in 1...9 {
            let o = TableTracked(i)
            t.append(TableHolder(object: o, closure: { o.id * 10 }))
        }
        expect(TableTracked.live == before + 9 && t.count == 9 && t[8].closure?() == 90, "table grows past its capacity")
        let removed = t.remove(at: 3)
        expect(removed.object.id == 4 && t[3].object.id == 5 && TableTracked.live == before + 9, "table remove(at:)")
        t.insert(TableHolder(object: TableTracked(42), closure: nil), at: 1)
        t.removeFirst(2)
        expect(TableTracked.live == before + 8 && t[0].object.id == 2, "table removeFirst releases")
        t.removeAll(where: { $0.object.id % 2 == 1 })
        expect(t.count == 3 && TableTracked.live == before + 4, "table removeAll(where:) releases")
        let snapshot = t
        t[1].object = TableTracked(100)
        expect(snapshot[1].object.id == 6 && t[1].object.id == 100 && TableTracked.live == before + 5, "table copy on write")
        var other = snapshot
        other.removeAll()
        expect(other.isEmpty && snapshot.count == 3 && TableTracked.live == before + 5, "table copy emptied")
        var r = Table(repeating: TableHolder(object: TableTracked(7), closure: nil), count: 4)
        expect(r.count == 4 && r[3].object.id == 7 && TableTracked.live == before + 6, "table repeating")
        r.removeAll()
    }
    expect(TableTracked.live == before, "dropped tables release every element")
}
