// The embedded test runner: TDOS's Core/Node code compiled for armv6m (Cortex-M0,
// the RP2040's instruction set) as Embedded Swift and run in qemu by
// scripts/embedded-check.sh (`make embedded-check`, part of `make test`).
//
// HOW TO ADD TESTS
//   1. Write a group as a plain function in Tests/Embedded/<Thing>Tests.swift:
//          func thingTests() {
//              expect(1 + 1 == 2, "addition")
//              expectEqual(SHA256.hash(ascii("abc")), hex("ba78..."), "sha256 abc")
//          }
//   2. Register it in `embeddedTests` in Runner.swift (in the part with room): ("thing", thingTests).
//   3. Run scripts/embedded-check.sh.
//
// Checks:  expect(cond, "what")                   any condition
//          expectEqual(got, want, "what")         prints both on failure for
//                                                 [UInt8] (hex) and integers
//          expectThrows(error, "what") { ... }    body must throw exactly `error`
//          expectNoThrow("what") { ... }          returns the value, nil if it threw
// Data:    ascii("text") -> [UInt8], hex("00ff") -> [UInt8] (whitespace allowed).
//
// Rules: this is Embedded Swift on an emulated 64 KB-RAM Cortex-M0. No Foundation, no XCTest,
// no `any Error`, no String interpolation (a single one costs ~20 KB of flash):
// messages are StaticStrings. Memory is an 8 KB stack and a ~54 KB heap; the
// runner prints both high-water marks and fails if the stack overflowed.
// Tests/Vectors/*.swift (the golden wire vectors shared with the host tests) are
// compiled into this module too, so they must be Embedded-clean as well.
//
// Output: "group <name>" before each group, "FAIL <what> <file>:<line>" for each
// failed check, then "embedded: N checks, M failures" (the script shows all of it
// only when something failed). The runner's return value
// (the failure count, capped at 100) is main()'s return value, which picolibc's
// semihosting exit turns into qemu's exit status. A Swift trap (precondition,
// overflow, out-of-bounds) is a HardFault: picolibc dumps the registers and exits
// 1 with no summary line; the last "group" line and the script's addr2line of the
// fault's PC say where it happened.

import TDOSCore

@_extern(c, "putchar")
func putchar(_ c: Int32) -> Int32

/// Counters for the whole run; the runner is single-threaded.
enum Harness {
    nonisolated(unsafe) static var checks = 0
    nonisolated(unsafe) static var failures = 0
}

// MARK: - Checks

func expect(_ condition: Bool, _ what: StaticString, file: StaticString = #file, line: UInt = #line) {
    Harness.checks += 1
    if !condition {
        Harness.failures += 1
        printFailure(what, file, line)
    }
}

/// Byte arrays: on failure, also prints both values in hex.
func expectEqual(_ got: [UInt8], _ want: [UInt8], _ what: StaticString,
                 file: StaticString = #file, line: UInt = #line) {
    expect(got == want, what, file: file, line: line)
    if got != want {
        print("  got  ", terminator: "")
        printBytes(hexString(got))
        print("")
        print("  want ", terminator: "")
        printBytes(hexString(want))
        print("")
    }
}

/// Integers: on failure, also prints both values in decimal.
func expectEqual<T: FixedWidthInteger>(_ got: T, _ want: T, _ what: StaticString,
                                       file: StaticString = #file, line: UInt = #line) {
    expect(got == want, what, file: file, line: line)
    if got != want {
        print("  got  ", terminator: "")
        printInteger(got)
        print("")
        print("  want ", terminator: "")
        printInteger(want)
        print("")
    }
}

/// Anything else Equatable (optionals, enums, ...): no values printed.
func expectEqual<T: Equatable>(_ got: T, _ want: T, _ what: StaticString,
                               file: StaticString = #file, line: UInt = #line) {
    expect(got == want, what, file: file, line: line)
}

/// The body must throw exactly `expected`; returning normally is a failure.
func expectThrows<E: Error & Equatable, R>(_ expected: E, _ what: StaticString,
                                           file: StaticString = #file, line: UInt = #line,
                                           _ body: () throws(E) -> R) {
    do {
        _ = try body()
        expect(false, what, file: file, line: line)
        print("  returned instead of throwing")
    } catch {
        expect(error == expected, what, file: file, line: line)
        if error != expected { print("  threw a different error") }
    }
}

/// The body must not throw; its value, or nil (and a failure) if it threw.
@discardableResult
func expectNoThrow<E: Error, R>(_ what: StaticString,
                                file: StaticString = #file, line: UInt = #line,
                                _ body: () throws(E) -> R) -> R? {
    do {
        let value = try body()
        expect(true, what, file: file, line: line)
        return value
    } catch {
        expect(false, what, file: file, line: line)
        print("  threw")
        return nil
    }
}

// MARK: - Test data

/// The UTF-8 bytes of a literal.
func ascii(_ text: StaticString) -> [UInt8] {
    Array(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
}

/// Bytes from a hex literal (whitespace ignored). A malformed literal is a failed
/// check (and an empty array), not a trap, so the rest of the run still reports.
func hex(_ text: StaticString, file: StaticString = #file, line: UInt = #line) -> [UInt8] {
    let parsed = bytesFromHex(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    if parsed == nil {
        expect(false, "malformed hex literal", file: file, line: line)
    }
    return parsed ?? []
}

// MARK: - Output (putchar only: no String, no interpolation)

func printFailure(_ what: StaticString, _ file: StaticString, _ line: UInt) {
    print("FAIL ", terminator: "")
    print(what, terminator: "")
    print(" ", terminator: "")
    print(file, terminator: "")
    print(":", terminator: "")
    printInteger(line)
    print("")
}

func printBytes(_ bytes: [UInt8]) {
    for b in bytes { _ = putchar(Int32(b)) }
}

/// Decimal, without the stdlib's String conversions.
func printInteger<T: FixedWidthInteger>(_ value: T) {
    var magnitude = value.magnitude
    if value < 0 { _ = putchar(0x2D) }  // "-"
    var digits: [UInt8] = []
    repeat {
        digits.append(0x30 + UInt8(truncatingIfNeeded: magnitude % 10))
        magnitude /= 10
    } while magnitude != 0
    for d in digits.reversed() { _ = putchar(Int32(d)) }
}
