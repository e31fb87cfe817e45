// The list of test groups and the entry point of the embedded test runner.
// Conventions: see the top of Harness.swift.

/// Every group, run in this order. Add yours here.
let embeddedTests: [(name: StaticString, run: () -> Void)] = [
    ("bytes", bytesTests),
    ("crypto", cryptoTests),
    ("cbor", cborTests),
    ("deflate", deflateTests),
]

/// Called by main() in runtime.c; its return value is main()'s, which the
/// semihosting exit turns into qemu's exit status: 0 = every check passed,
/// otherwise the number of failures (capped at 100, so it never wraps to 0
/// and stays clear of timeout's 124 and the shell's 126/127).
@_cdecl("tdos_embedded_tests_main")
public func embeddedTestsMain() -> Int32 {
    for group in embeddedTests {
        print("group ", terminator: "")
        print(group.name)
        group.run()
    }
    print("embedded: ", terminator: "")
    printInteger(Harness.checks)
    print(" checks, ", terminator: "")
    printInteger(Harness.failures)
    print(" failures")
    return Int32(min(Harness.failures, 100))
}
