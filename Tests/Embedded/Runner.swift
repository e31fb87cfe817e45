// The list of test groups and the entry point of the embedded test runner.
// Conventions: see the top of Harness.swift.

/// Every group, run in this order. Add yours here. The emulated board has
/// 256 KB of flash, so the groups are split into parts, each its own image
/// (scripts/embedded-check.sh builds one per EMBEDDED_PART_n); put a new group
/// in the part with room (the script prints each image's size).
#if EMBEDDED_PART_1
let embeddedTests: [(name: StaticString, run: () -> Void)] = [
    ("bytes", bytesTests),
    ("crypto", cryptoTests),
    ("cbor", cborTests),
    ("deflate", deflateTests),
    ("frame", frameTests),
    ("scheduler", schedulerTests),
    ("storage", storageTests),
    ("raft", raftTests),
]
#else
let embeddedTests: [(name: StaticString, run: () -> Void)] = [
    ("config+metrics", configMetricsTests),
    ("table", tableTests),
    ("mesh", meshTests),
]
#endif

// Memory high-water marks, from runtime.c.
@_extern(c, "tdos_test_stack_size") func testStackSize() -> UInt32
@_extern(c, "tdos_test_stack_high_water") func testStackHighWater() -> UInt32
@_extern(c, "tdos_test_heap_size") func testHeapSize() -> UInt32
@_extern(c, "tdos_test_heap_high_water") func testHeapHighWater() -> UInt32

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

    // A stack used to its last word has almost certainly overflowed into the heap.
    let stackUsed = testStackHighWater()
    expect(stackUsed < testStackSize(), "stack overflow: the tests need more than the board's default stack")
    print("embedded: stack high-water ", terminator: "")
    printInteger(stackUsed)
    print(" B of ", terminator: "")
    printInteger(testStackSize())
    print(" B, heap high-water ", terminator: "")
    printInteger(testHeapHighWater())
    print(" B of ", terminator: "")
    printInteger(testHeapSize())
    print(" B")

    print("embedded: ", terminator: "")
    printInteger(Harness.checks)
    print(" checks, ", terminator: "")
    printInteger(Harness.failures)
    print(" failures")
    return Int32(min(Harness.failures, 100))
}
