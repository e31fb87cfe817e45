// The Linux side of local config: a JSON file and environment overrides, both
// checked against ConfigSchema, merged over the built-in defaults into the
// local layer of a ConfigManager (runtime updates go on top of it).
//
// A bad file is rejected with every problem found, each as
//     config.json:12: field "discovery.heartbeat_interval_ms": expected a number, got "fast"
// and the node keeps the config it had (HostConfigStore.reload).
//
// Environment overrides (applied after the file, before runtime updates):
//     TDOS_<SEGMENT>__<SEGMENT>...=value
// the part after "TDOS_" split at each double underscore, each segment lower-cased:
//     TDOS_DISCOVERY__HEARTBEAT_INTERVAL_MS=2000         discovery.heartbeat_interval_ms = 2000
//     TDOS_SENSORS__TEMP_SENSOR__CALIBRATION_OFFSET=-0.5  sensors.temp_sensor.calibration_offset = -0.5
// Variables starting with TDOS_ but without "__" are not config (TDOS_SEED, ...)
// and are ignored; one with "__" that names no field is an error. Values are
// read as the field's kind: booleans true/false/1/0/yes/no/on/off, integers in
// decimal, numbers as decimal floats, text as is.

import Foundation
import TDOSCore

/// One problem in a config source.
public struct ConfigIssue: Equatable, CustomStringConvertible, Sendable {
    /// "config.json:12" or "env TDOS_DISCOVERY__PORT".
    public var source: String
    /// Dotted path; nil when the problem is not in a field (an empty file).
    public var field: String?
    public var message: String

    public init(source: String, field: String?, message: String) {
        self.source = source
        self.field = field
        self.message = message
    }

    public var description: String {
        if let field { return "\(source): field \"\(field)\": \(message)" }
        return "\(source): \(message)"
    }
}

/// Every problem found; nothing was applied.
public struct ConfigLoadError: Error, Equatable, CustomStringConvertible, Sendable {
    public var issues: [ConfigIssue]
    public init(issues: [ConfigIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

public enum ConfigFile {
    // MARK: JSON

    /// The layer a JSON document describes (not merged with the defaults).
    public static func layer(json bytes: [UInt8], name: String) throws(ConfigLoadError) -> ConfigTree {
        let root: JSONValue
        do {
            root = try JSONParser.parse(bytes)
        } catch {
            throw ConfigLoadError(issues: [ConfigIssue(source: "\(name):\(error.line)",
                                                       field: error.field.isEmpty ? nil : error.field,
                                                       message: error.message)])
        }
        guard case .object(let members) = root.kind else {
            throw ConfigLoadError(issues: [ConfigIssue(source: "\(name):\(root.line)", field: nil,
                                                       message: "expected an object at the top level, got \(root.shown)")])
        }
        var tree = ConfigTree()
        var issues: [ConfigIssue] = []
        visit(members, under: [], name: name, tree: &tree, issues: &issues)
        if !issues.isEmpty { throw ConfigLoadError(issues: issues) }
        return tree
    }

    public static func layer(json text: String, name: String) throws(ConfigLoadError) -> ConfigTree {
        try layer(json: Array(text.utf8), name: name)
    }

    static func visit(_ members: [JSONValue.Member], under parent: [String], name: String,
                      tree: inout ConfigTree, issues: inout [ConfigIssue]) {
        var seen = Set<String>()
        for m in members {
            let path = parent + [m.key]
            let field = path.joined(separator: ".")
            func issue(_ line: Int, _ message: String) {
                issues.append(ConfigIssue(source: "\(name):\(line)", field: field, message: message))
            }
            guard seen.insert(m.key).inserted else {
                issue(m.keyLine, "duplicate field")
                continue
            }
            let pathBytes = Array(field.utf8)
            guard !m.key.isEmpty, !m.key.contains("."), m.key.utf8.count <= ConfigLimits.keyBytesMax,
                  pathBytes.count <= ConfigLimits.pathBytesMax, path.count <= ConfigLimits.depthMax else {
                issue(m.keyLine, "invalid field name (1-\(ConfigLimits.keyBytesMax) bytes, no \".\", "
                      + "paths at most \(ConfigLimits.pathBytesMax) bytes and \(ConfigLimits.depthMax) levels)")
                continue
            }
            guard let kind = ConfigSchema.kind(at: pathBytes) else {
                issue(m.keyLine, "unknown field" + suggestion(for: m.key, under: parent))
                continue
            }
            if kind == .map {
                guard case .object(let children) = m.value.kind else {
                    issue(m.value.line, "expected an object, got \(m.value.shown)")
                    continue
                }
                do throws(ConfigError) {
                    try tree.set(pathBytes, .map)
                } catch {
                    issue(m.keyLine, "too many fields (a config holds at most \(ConfigLimits.nodesMax))")
                    continue
                }
                visit(children, under: path, name: name, tree: &tree, issues: &issues)
                continue
            }
            switch value(m.value, for: pathBytes, kind: kind) {
            case .failure(let message):
                issue(m.value.line, message)
            case .success(let v):
                do throws(ConfigError) {
                    try tree.set(pathBytes, v)
                } catch {
                    issue(m.keyLine, "too many fields (a config holds at most \(ConfigLimits.nodesMax))")
                }
            }
        }
    }

    enum Converted { case success(ConfigValue), failure(String) }

    /// A JSON value as the field's kind, checked against the schema.
    static func value(_ v: JSONValue, for path: [UInt8], kind: ConfigKind) -> Converted {
        let raw: ConfigValue
        switch (kind, v.kind) {
        case (.bool, .bool(let b)):
            raw = .bool(b)
        case (.int, .number(let text)):
            if let i = Int64(text) {
                raw = .int(i)
            } else if let d = Double(text), d == d.rounded(.towardZero), abs(d) < 9.0e15 {
                raw = .int(Int64(d))
            } else {
                return .failure("expected an integer, got \(text)")
            }
        case (.number, .number(let text)):
            guard let d = Double(text), d.isFinite else { return .failure("expected a number, got \(text)") }
            raw = .number(d)
        case (.text, .string(let s)):
            raw = .text(Array(s.utf8))
        default:
            return .failure("expected \(kind.article.description), got \(v.shown)")
        }
        return checked(raw, for: path, shown: v.shown)
    }

    static func checked(_ raw: ConfigValue, for path: [UInt8], shown: String) -> Converted {
        do throws(ConfigError) {
            return .success(try ConfigSchema.validate(path, raw))
        } catch {
            guard let f = ConfigSchema.field(for: path) else { return .failure("unknown field") }
            switch (error, f.kind) {
            case (.outOfRange, .text):
                let n: Int
                if case .text(let t) = raw { n = t.count } else { n = 0 }
                return .failure("expected a string of at most \(Int(f.high)) bytes, got \(n) bytes")
            case (.outOfRange, _):
                return .failure("expected a number in \(formatBound(f.low))...\(formatBound(f.high)), got \(shown)")
            case (.wrongType, .int):
                return .failure("expected an integer, got \(shown)")
            default:
                return .failure("expected \(f.kind.article.description), got \(shown)")
            }
        }
    }

    static func formatBound(_ d: Double) -> String {
        d == d.rounded(.towardZero) && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }

    /// " (did you mean "x"?)" for a known sibling at most 2 edits away.
    static func suggestion(for key: String, under parent: [String]) -> String {
        var best: (String, Int)? = nil
        for candidate in knownKeys(under: parent) {
            let d = editDistance(key, candidate)
            if d <= 2, best == nil || d < best!.1 { best = (candidate, d) }
        }
        guard let best else { return "" }
        return " (did you mean \"\(best.0)\"?)"
    }

    /// Keys the schema allows directly under `parent` (wildcards left out).
    public static func knownKeys(under parent: [String]) -> [String] {
        var out: [String] = []
        for f in ConfigSchema.fields {
            let segments = String(decoding: f.path, as: UTF8.self).split(separator: ".").map(String.init)
            guard segments.count > parent.count else { continue }
            var match = true
            for (i, p) in parent.enumerated() where segments[i] != "*" && segments[i] != p { match = false }
            let k = segments[parent.count]
            if match && k != "*" && !out.contains(k) { out.append(k) }
        }
        return out
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8), y = Array(b.utf8)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var prev = Array(0...y.count)
        for i in 1...x.count {
            var cur = [i] + Array(repeating: 0, count: y.count)
            for j in 1...y.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[y.count]
    }

    // MARK: Environment

    public static let environmentPrefix = "TDOS_"

    /// The dotted path a variable overrides, nil if it is not a config override.
    public static func environmentPath(forVariable name: String) -> String? {
        guard name.hasPrefix(environmentPrefix) else { return nil }
        let rest = name.dropFirst(environmentPrefix.count)
        guard rest.contains("__") else { return nil }
        return rest.components(separatedBy: "__").map { $0.lowercased() }.joined(separator: ".")
    }

    /// The variable that overrides a dotted path.
    public static func environmentVariable(forPath path: String) -> String {
        environmentPrefix + path.split(separator: ".", omittingEmptySubsequences: false)
            .map { $0.uppercased() }.joined(separator: "__")
    }

    /// The layer the environment's TDOS_*__* variables describe.
    public static func environmentLayer(_ environment: [String: String]) throws(ConfigLoadError) -> ConfigTree {
        var tree = ConfigTree()
        var issues: [ConfigIssue] = []
        for name in environment.keys.sorted() {
            guard let field = environmentPath(forVariable: name), let text = environment[name] else { continue }
            func issue(_ message: String) {
                issues.append(ConfigIssue(source: "env \(name)", field: field, message: message))
            }
            let path = Array(field.utf8)
            let segments = field.split(separator: ".", omittingEmptySubsequences: false)
            guard !segments.contains(where: \.isEmpty), path.count <= ConfigLimits.pathBytesMax,
                  segments.count <= ConfigLimits.depthMax,
                  segments.allSatisfy({ $0.utf8.count <= ConfigLimits.keyBytesMax }) else {
                issue("invalid field name")
                continue
            }
            guard let kind = ConfigSchema.kind(at: path), kind != .map else {
                issue(ConfigSchema.kind(at: path) == .map ? "expected a field, got a group of fields" : "unknown field")
                continue
            }
            let shown = jsonQuoted(text)
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            let raw: ConfigValue
            switch kind {
            case .bool:
                switch trimmed.lowercased() {
                case "true", "1", "yes", "on": raw = .bool(true)
                case "false", "0", "no", "off": raw = .bool(false)
                default: issue("expected a boolean (true/false/1/0/yes/no/on/off), got \(shown)"); continue
                }
            case .int:
                if let i = Int64(trimmed.hasPrefix("+") ? String(trimmed.dropFirst()) : trimmed) {
                    raw = .int(i)
                } else if Double(trimmed) != nil {
                    issue("expected an integer, got \(shown)"); continue
                } else {
                    issue("expected a number, got \(shown)"); continue
                }
            case .number:
                guard let d = Double(trimmed), d.isFinite else { issue("expected a number, got \(shown)"); continue }
                raw = .number(d)
            case .text:
                raw = .text(Array(text.utf8))
            case .map:
                continue
            }
            switch checked(raw, for: path, shown: shown) {
            case .failure(let m): issue(m)
            case .success(let v):
                do throws(ConfigError) { try tree.set(path, v) } catch { issue("too many overrides") }
            }
        }
        if !issues.isEmpty { throw ConfigLoadError(issues: issues) }
        return tree
    }

    // MARK: Both

    /// Defaults, deep-merged with the file (if any) and then the environment.
    /// Problems in both are reported together.
    public static func load(path: String?, environment: [String: String]) throws(ConfigLoadError) -> ConfigTree {
        var issues: [ConfigIssue] = []
        var fileLayer = ConfigTree()
        if let path {
            if let data = FileManager.default.contents(atPath: path) {
                do { fileLayer = try layer(json: [UInt8](data), name: path) } catch { issues += error.issues }
            } else {
                issues.append(ConfigIssue(source: path, field: nil, message: "cannot read the file"))
            }
        }
        var envLayer = ConfigTree()
        do { envLayer = try environmentLayer(environment) } catch { issues += error.issues }
        if !issues.isEmpty { throw ConfigLoadError(issues: issues) }
        var tree = ConfigSchema.defaults()
        do throws(ConfigError) {
            try tree.merge(fileLayer)
            try tree.merge(envLayer)
        } catch {
            throw ConfigLoadError(issues: [ConfigIssue(source: path ?? "env", field: nil,
                                                       message: "too many fields (a config holds at most \(ConfigLimits.nodesMax))")])
        }
        return tree
    }
}

extension ConfigValue {
    /// As JSON: true, 5000, 1.5, "text"; a map as "{...}".
    public var json: String {
        switch self {
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .number(let d): return d.isFinite ? "\(d)" : "null"
        case .text(let t): return jsonQuoted(String(decoding: t, as: UTF8.self))
        case .map: return "{...}"
        }
    }
}

extension ConfigTree {
    /// The tree as an indented JSON document (what `tdos config` prints).
    public func json() -> String {
        var out = ""
        func emit(_ path: [UInt8], _ indent: String) {
            let keys = keys(under: path).sorted { $0.lexicographicallyPrecedes($1) }
            out += "{"
            for (n, k) in keys.enumerated() {
                let child = path.isEmpty ? k : path + [0x2E] + k
                out += (n == 0 ? "\n" : ",\n") + indent + "  " + jsonQuoted(String(decoding: k, as: UTF8.self)) + ": "
                if let v = value(at: child), v != .map { out += v.json } else { emit(child, indent + "  ") }
            }
            out += keys.isEmpty ? "}" : "\n" + indent + "}"
        }
        emit([], "")
        return out + "\n"
    }
}

/// A node's config on Linux: the file and environment as the local layer, the
/// state file as the persisted overlay of runtime updates. A reload that fails
/// keeps the last good config.
public final class HostConfigStore {
    public private(set) var manager: ConfigManager
    public let filePath: String?
    /// Where the update overlay is persisted (the flash image format), if anywhere.
    public let statePath: String?
    /// What the state file held at start.
    public private(set) var restoreOutcome: ConfigRestoreOutcome = .noImage
    /// The problems of the last reload that failed (nil after a good one).
    public private(set) var lastReloadError: ConfigLoadError?

    public struct PersistError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Loads defaults + file + environment and the state file. A bad file or
    /// environment throws (the node has no good config yet); a bad state file
    /// is ignored and reported in `restoreOutcome`.
    public init(filePath: String?, statePath: String? = nil, environment: [String: String]) throws(ConfigLoadError) {
        self.filePath = filePath
        self.statePath = statePath
        manager = ConfigManager(local: try ConfigFile.load(path: filePath, environment: environment))
        if let statePath, let data = FileManager.default.contents(atPath: statePath) {
            restoreOutcome = manager.restore(image: [UInt8](data))
        }
    }

    /// The config in force.
    public var config: ConfigTree { manager.effective }

    /// Re-reads the file and environment. On failure nothing changes and the
    /// problems are thrown (and kept in `lastReloadError`).
    public func reload(environment: [String: String]) throws(ConfigLoadError) {
        do throws(ConfigLoadError) {
            let local = try ConfigFile.load(path: filePath, environment: environment)
            do throws(ConfigError) {
                try manager.replaceLocal(local)
            } catch {
                throw ConfigLoadError(issues: [ConfigIssue(source: filePath ?? "env", field: nil,
                                                           message: "rejected: \(error.name)")])
            }
            lastReloadError = nil
        } catch {
            lastReloadError = error
            throw error
        }
    }

    /// Applies a runtime update and persists the overlay before returning
    /// `.applied` (so the caller may acknowledge). If the state file cannot be
    /// written the update is undone and the error thrown.
    public func apply(_ update: ConfigUpdate) throws(PersistError) -> ConfigUpdateOutcome {
        let before = manager
        let outcome = manager.apply(update)
        guard outcome.persist, let statePath else { return outcome }
        do {
            try Data(manager.image()).write(to: URL(fileURLWithPath: statePath), options: .atomic)
        } catch {
            manager = before
            throw PersistError(description: "\(statePath): cannot write: \(error.localizedDescription)")
        }
        return outcome
    }
}
