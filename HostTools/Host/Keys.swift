import Foundation
import TDOSCore

/// Where the mesh key comes from, in order: `--key-file F`, `$TDOS_KEY_FILE`,
/// `$TDOS_KEY` (hex), else the simulator's development key with a warning.
public struct MeshKey {
    public var id: UInt8
    public var bytes: [UInt8]
    public var isDevelopmentKey: Bool

    /// The simulator's well-known key: anyone can forge frames with it.
    public static let development = MeshKey(id: 1, bytes: SHA256.hash(Array("TDOS development key: not a secret".utf8)),
                                            isDevelopmentKey: true)

    public static let developmentWarning =
        "warning: using the built-in development key; anyone can forge frames. For a real mesh pass --key-file FILE or set TDOS_KEY_FILE (32 random bytes, raw or hex: head -c32 /dev/urandom | xxd -p -c64 > mesh.key)"

    /// A key file holds 64 hex digits (whitespace allowed) or 32 raw bytes,
    /// optionally preceded by "id=N " to choose the key id (default 1).
    public static func load(keyFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> MeshKey {
        if let path = keyFile ?? environment["TDOS_KEY_FILE"] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw HostError("cannot read key file \(path): check the path and its permissions")
            }
            return try parse(Array(data), source: path)
        }
        if let hex = environment["TDOS_KEY"] {
            return try parse(Array(hex.utf8), source: "$TDOS_KEY")
        }
        return .development
    }

    static func parse(_ raw: [UInt8], source: String) throws -> MeshKey {
        var id: UInt8 = 1
        var body = raw
        if let text = String(bytes: raw, encoding: .utf8), text.hasPrefix("id=") {
            let parts = text.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\n" })
            guard let v = UInt8(parts[0].dropFirst(3)), v <= WireLimits.keyIDMax else {
                throw HostError("\(source): key id must be 0...63 (\"id=N\" before the key)")
            }
            id = v
            body = parts.count > 1 ? Array(parts[1].utf8) : []
        }
        if body.count == 32 && bytesFromHex(body) == nil { return MeshKey(id: id, bytes: body, isDevelopmentKey: false) }
        guard let bytes = bytesFromHex(body), bytes.count >= 16 else {
            throw HostError("\(source): expected 32 raw bytes or at least 32 hex digits (16 bytes); got \(body.count) bytes")
        }
        return MeshKey(id: id, bytes: bytes, isDevelopmentKey: false)
    }
}
