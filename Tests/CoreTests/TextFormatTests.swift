import Testing
@testable import TDOSNode

/// TextLine's number formatting (display lines and logs on the board, no String).
@Suite struct TextFormatTests {
    func text(_ build: (inout TextLine) -> Void) -> String {
        var l = TextLine()
        build(&l)
        return String(decoding: l.bytes, as: UTF8.self)
    }

    @Test func integersPrintInDecimal() {
        for v: UInt64 in [0, 1, 9, 10, 99, 100, 12345, 1_000_000, UInt64.max / 10, UInt64.max] {
            #expect(text { $0.append(v) } == String(v))
        }
        for v: Int64 in [0, -1, -10, 42, Int64.min, Int64.max] {
            #expect(text { $0.append(v) } == String(v))
        }
    }

    @Test func fixedPointRoundsAndPads() {
        #expect(text { $0.append(21.049, decimals: 1) } == "21.0")
        #expect(text { $0.append(-0.05, decimals: 1) } == "-0.1")
        #expect(text { $0.append(3.007, decimals: 2) } == "3.01")
        #expect(text { $0.append(7.0, decimals: 0) } == "7")
        #expect(text { $0.append(Double.nan, decimals: 1) } == "nan")
        // Signs: a value that rounds to zero, and a negative zero, print none.
        #expect(text { $0.append(-0.04, decimals: 1) } == "0.0")
        #expect(text { $0.append(-0.0, decimals: 1) } == "0.0")
        #expect(text { $0.append(-2.5, decimals: 0) } == "-3")
        #expect(text { $0.append(-Double.infinity, decimals: 1) } == "-inf")
        #expect(text { $0.append(Double.infinity, decimals: 1) } == "inf")
        #expect(text { $0.append(-1e30, decimals: 1) } == "-big")
        #expect(text { $0.append(1e30, decimals: 1) } == "big")
    }
}
