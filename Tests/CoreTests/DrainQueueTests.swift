import Testing
@testable import TDOSCore

/// DrainQueue keeps its elements as raw bytes in a ring: order, growth (a
/// byte move), value semantics and the release of what is left must hold
/// for elements that hold references.
@Suite struct DrainQueueTests {
    /// Counts live tokens (one per test: tests run in parallel).
    final class Live { var count = 0 }

    /// To see that nothing leaks or is freed twice.
    final class Token {
        let id: Int
        let live: Live
        init(_ id: Int, _ live: Live) { self.id = id; self.live = live; live.count += 1 }
        deinit { live.count -= 1 }
    }

    enum Item {
        case bytes([UInt8])
        case token(Token, Int)
        indirect case pair(Item, UInt8)

        var key: Int {
            switch self {
            case .bytes(let b): return Int(b.first ?? 0)
            case .token(let t, let n): return t.id * 1000 + n
            case .pair(let i, let b): return i.key * 10 + Int(b)
            }
        }
    }

    func drain(_ q: inout DrainQueue<Item>) -> [Int] {
        var out: [Int] = []
        while let e = q.pop() { out.append(e.key) }
        return out
    }

    @Test func fifoAcrossTheWrapAndGrowth() {
        var q = DrainQueue<Item>(capacity: 3)
        #expect(q.pop() == nil)
        q.append(.bytes([1])); q.append(.bytes([2]))
        #expect(q.pop()?.key == 1)
        // The head is now at slot 1: fill past the end (wrap), then grow.
        for i in 3...9 { q.append(.pair(.bytes([UInt8(i)]), UInt8(i))) }
        #expect(q.count == 8)
        #expect(q.capacity == 12)
        #expect(drain(&q) == [2] + (3...9).map { $0 * 10 + $0 })
        #expect(q.count == 0)
    }

    @Test func referencesSurviveGrowthAndAreReleased() {
        let live = Live()
        do {
            var q = DrainQueue<Item>(capacity: 1)
            for i in 0..<5 { q.append(.token(Token(i, live), i)) }
            #expect(live.count == 5)
            #expect(q.pop()?.key == 0)
            #expect(live.count == 4)
            // Four left in the queue when it goes.
        }
        #expect(live.count == 0)
    }

    @Test func aCopyIsIndependent() {
        let live = Live()
        do {
            var a = DrainQueue<Item>(capacity: 2)
            a.append(.token(Token(1, live), 1)); a.append(.token(Token(2, live), 2))
            var b = a
            b.append(.token(Token(3, live), 3))
            #expect(drain(&a) == [1001, 2002])
            #expect(b.count == 3)
            #expect(drain(&b) == [1001, 2002, 3003])
            b.append(.bytes([7]))
            #expect(a.count == 0)
            #expect(live.count == 0)
        }
        #expect(live.count == 0)
    }
}
