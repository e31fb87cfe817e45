// Argument parsing and output helpers shared by every tdos command.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSNode
import TDOSHost

struct UsageError: Error { let message: String }

/// Minimal flag parser: flags take one value unless listed as switches.
struct Args {
    var positional: [String] = []
    var values: [String: [String]] = [:]
    var switches: Set<String> = []

    init(_ raw: ArraySlice<String>, switches known: Set<String>) throws {
        var it = raw.makeIterator()
        while let a = it.next() {
            if a.hasPrefix("--") {
                let name = String(a.dropFirst(2))
                if known.contains(name) { switches.insert(name); continue }
                guard let v = it.next() else { throw UsageError(message: "option \(a) needs a value") }
                values[name, default: []].append(v)
            } else {
                positional.append(a)
            }
        }
    }

    func value(_ name: String) -> String? { values[name]?.last }
    func int<T: FixedWidthInteger>(_ name: String, default d: T) throws -> T {
        guard let s = value(name) else { return d }
        guard let v = T(s) else { throw UsageError(message: "--\(name) expects a whole number, got \"\(s)\"") }
        return v
    }
    func check(allowed: Set<String>) throws {
        for k in values.keys where !allowed.contains(k) { throw UsageError(message: "unknown option --\(k)") }
        for k in switches where !allowed.contains(k) { throw UsageError(message: "unknown option --\(k)") }
    }
}

let common: Set<String> = ["key-file", "port-base", "help", "json", "broadcast", "bind", "port"]

func discoveryMode(_ args: Args) throws -> DiscoveryMode {
    if let b = args.value("broadcast") {
        guard let addr = parseIPv4(b) else { throw UsageError(message: "--broadcast expects an IPv4 address") }
        return .subnetBroadcast(broadcast: addr, port: try args.int("port", default: UInt16(4210)))
    }
    return .loopbackRange(base: try args.int("port-base", default: UInt16(42100)), count: 32)
}

func client(_ args: Args) throws -> MeshClient {
    let key = try MeshKey.load(keyFile: args.value("key-file"))
    if key.isDevelopmentKey { FileHandle.standardError.write((MeshKey.developmentWarning + "\n").data(using: .utf8)!) }
    var bind: UInt32 = 0x7F00_0001
    if let b = args.value("bind") {
        guard let a = parseIPv4(b) else { throw UsageError(message: "--bind expects an IPv4 address") }
        bind = a
    }
    return try MeshClient(key: key, discovery: try discoveryMode(args), bindHost: bind)
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(("tdos: " + message + "\n").data(using: .utf8)!)
    exit(code)
}

func noMesh(_ args: Args, waitedMs: UInt64) -> Never {
    let base = (try? args.int("port-base", default: UInt16(42100))) ?? 42100
    fail("""
    no TDOS node answered within \(waitedMs) ms on 127.0.0.1:\(base)-\(Int(base) + 31).
      Start the simulator mesh with `make sim` (or `tdos sim up`) in another terminal,
      check that this command uses the mesh's key (--key-file / TDOS_KEY_FILE),
      or wait longer with --wait MS.
    """, code: 3)
}

func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }
func addr(_ a: NodeAddress?) -> String { a.map { "\(ipv4String($0.host)):\($0.port)" } ?? "(relayed)" }
func semver(_ v: SemVer) -> String { "\(v.major).\(v.minor).\(v.patch)" }
/// Pretty JSON for listings; `line: true` gives one compact line (streams: JSON Lines).
func json(_ object: Any, line: Bool = false) -> String {
    let data = try! JSONSerialization.data(withJSONObject: object, options: line ? [.sortedKeys] : [.prettyPrinted, .sortedKeys])
    return String(decoding: data, as: UTF8.self)
}
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

func meshPeers(_ c: MeshClient) -> [PeerInfo] {
    c.mesh.peers.filter { !text($0.name).hasPrefix("tdos-cli") }.sorted { text($0.name) < text($1.name) }
}

