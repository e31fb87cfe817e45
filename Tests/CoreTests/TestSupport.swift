import Foundation
@testable import TDOSCore

/// SplitMix64: the tests' seeded generator, so every random test is repeatable.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    init(state: UInt64) { self.state = state }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
func unhex(_ s: String) -> [UInt8] { bytesFromHex(Array(s.utf8))! }
func unhex(_ s: StaticString) -> [UInt8] {
    bytesFromHex(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))!
}

/// Repository root, found from this file's path (tests run from anywhere).
let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs a program, returns stdout; throws with stderr when it fails.
struct ProcessFailure: Error, CustomStringConvertible { let description: String }
@discardableResult
func run(_ program: String, _ args: [String], stdin: Data? = nil) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [program] + args
    p.currentDirectoryURL = repoRoot
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    if stdin != nil { p.standardInput = inp }
    try p.run()
    if let stdin { inp.fileHandleForWriting.write(stdin); try inp.fileHandleForWriting.close() }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw ProcessFailure(description: "\(program) \(args.prefix(2)) failed: \(String(decoding: errData, as: UTF8.self))")
    }
    return String(decoding: data, as: UTF8.self)
}

func pythonRef(_ args: [String]) throws -> String {
    try run("python3", ["Tests/tools/tdos_ref.py"] + args)
}
