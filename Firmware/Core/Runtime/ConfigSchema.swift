// The keys a node knows, their kinds, ranges and built-in defaults (the seeds'
// ConfigManager defaults, with units in the names). Every layer is checked
// against this table: a JSON file, the environment, a flash image and runtime
// updates. A "*" segment matches any key (sensors.<name>.calibration_offset).

/// One known leaf of the config tree.
public struct ConfigField {
    /// Dotted path; a "*" segment matches any key.
    public let path: StaticString
    public let kind: ConfigKind
    /// int and number: the allowed range. text: `high` is the longest length in bytes.
    public let low: Double
    public let high: Double
    let defaultBool: Bool
    let defaultNumber: Double
    let defaultText: StaticString

    public static func bool(_ path: StaticString, _ value: Bool) -> ConfigField {
        ConfigField(path: path, kind: .bool, low: 0, high: 1, defaultBool: value, defaultNumber: 0, defaultText: "")
    }
    public static func int(_ path: StaticString, _ value: Int64, _ low: Int64, _ high: Int64) -> ConfigField {
        ConfigField(path: path, kind: .int, low: Double(low), high: Double(high),
                    defaultBool: false, defaultNumber: Double(value), defaultText: "")
    }
    public static func number(_ path: StaticString, _ value: Double, _ low: Double, _ high: Double) -> ConfigField {
        ConfigField(path: path, kind: .number, low: low, high: high, defaultBool: false, defaultNumber: value, defaultText: "")
    }
    public static func text(_ path: StaticString, _ value: StaticString, bytesMax: Int) -> ConfigField {
        ConfigField(path: path, kind: .text, low: 0, high: Double(bytesMax),
                    defaultBool: false, defaultNumber: 0, defaultText: value)
    }

    public var defaultValue: ConfigValue {
        switch kind {
        case .bool: return .bool(defaultBool)
        case .int: return .int(Int64(defaultNumber))
        case .number: return .number(defaultNumber)
        case .text: return .text(configBytes(defaultText))
        case .map: return .map
        }
    }

    public var hasWildcard: Bool {
        let p = configBytes(path)
        if p.count == 1 && p[0] == 0x2A { return true }
        for i in 0..<p.count where p[i] == 0x2A { return true }
        return false
    }
}

public enum ConfigSchema {
    /// Every known leaf. Defaults are the seeds' (tdos_config.json, ConfigManager).
    public static let fields: [ConfigField] = [
        .text("network.ssid", "TDOS", bytesMax: 32),
        .text("network.password", "", bytesMax: 63),
        .int("network.retry_attempts", 3, 0, 20),
        .int("network.connection_timeout_ms", 10_000, 100, 120_000),
        .int("network.client_timeout_ms", 3_000, 10, 60_000),
        .int("network.max_retries", 3, 0, 10),
        .number("network.backoff_multiplier", 1.5, 1, 10),
        .int("discovery.port", 4000, 1, 65_535),
        .int("discovery.heartbeat_interval_ms", 5_000, 100, 600_000),
        .int("discovery.service_timeout_ms", 15_000, 300, 3_600_000),
        .int("discovery.cleanup_interval_ms", 30_000, 100, 3_600_000),
        .int("fault_tolerance.max_retries", 3, 0, 10),
        .int("fault_tolerance.breaker_threshold", 5, 1, 100),
        .int("fault_tolerance.breaker_timeout_ms", 30_000, 100, 3_600_000),
        .bool("power.enable_sleep", false),
        .int("power.max_sleep_duration_ms", 5_000, 0, 3_600_000),
        .bool("power.enable_adaptive_polling", true),
        .int("power.min_poll_interval_ms", 1_000, 10, 3_600_000),
        .int("power.max_poll_interval_ms", 10_000, 10, 3_600_000),
        .number("sensors.*.calibration_offset", 0, -1000, 1000),
        .bool("display.enabled", true),
        .int("display.brightness_percent", 80, 0, 100),
        .int("display.refresh_interval_ms", 1_000, 50, 60_000),
        .bool("security.require_auth", true),
        .int("security.send_key_id", 0, 0, 63),
        .text("logging.level", "INFO", bytesMax: 8),
        .int("logging.max_entries", 100, 1, 10_000),
        .int("metrics.sla_target_ms", 100, 1, 60_000),
        .int("metrics.report_interval_ms", 10_000, 100, 3_600_000),
        .int("rate_limit.rate_per_s", 20, 1, 10_000),
        .int("rate_limit.burst", 40, 1, 10_000),
    ]

    /// Pattern segment vs path segment: equal bytes, or the pattern is "*".
    static func segmentMatches(_ pattern: ArraySlice<UInt8>, _ key: ArraySlice<UInt8>) -> Bool {
        if pattern.count == 1 && pattern.first == 0x2A { return true }
        return pattern.elementsEqual(key)
    }

    /// How `path` relates to `field`: nil = unrelated, true = the leaf itself,
    /// false = a map on the way to it.
    static func relation(_ field: ConfigField, _ path: [UInt8], _ segments: [Range<Int>]) -> Bool? {
        let pattern = configBytes(field.path)
        guard let ps = configSegments(pattern), segments.count <= ps.count else { return nil }
        for (i, s) in segments.enumerated() where !segmentMatches(pattern[ps[i]], path[s]) { return nil }
        return segments.count == ps.count
    }

    /// The field of a leaf path, nil if the path is not a leaf of the schema.
    public static func field(for path: [UInt8]) -> ConfigField? {
        guard let segments = configSegments(path) else { return nil }
        for f in fields where relation(f, path, segments) == true { return f }
        return nil
    }

    /// The top-level sections ("network", "discovery", ...), in table order.
    public static var sections: [[UInt8]] {
        var out: [[UInt8]] = []
        for f in fields {
            let p = configBytes(f.path)
            let name = Array(p[..<(p.firstIndex(of: 0x2E) ?? p.count)])
            if !out.contains(name) { out.append(name) }
        }
        return out
    }

    /// The kind the schema gives `path`: a leaf's kind, `.map` for a prefix of
    /// some leaf ("discovery", "sensors.temp"), nil if unknown.
    public static func kind(at path: [UInt8]) -> ConfigKind? {
        guard let segments = configSegments(path) else { return nil }
        var isMap = false
        for f in fields {
            switch relation(f, path, segments) {
            case true?: return f.kind
            case false?: isMap = true
            case nil: break
            }
        }
        return isMap ? .map : nil
    }

    public static func kind(at path: StaticString) -> ConfigKind? { kind(at: configBytes(path)) }

    /// The built-in default of a leaf (also for wildcard paths), nil if unknown.
    public static func defaultValue(for path: [UInt8]) -> ConfigValue? { field(for: path)?.defaultValue }

    /// Checks `value` for `path` and returns it normalized to the field's kind
    /// (an integral number for an int field becomes `.int`, an int for a number
    /// field `.number`).
    public static func validate(_ path: [UInt8], _ value: ConfigValue) throws(ConfigError) -> ConfigValue {
        guard let segments = configSegments(path) else { throw .badPath }
        for s in segments where !configValidKey(path[s]) { throw .badPath }
        guard let f = field(for: path) else {
            guard kind(at: path) == .map else { throw .unknownField }
            guard value == .map else { throw .wrongType }
            return .map
        }
        switch (f.kind, value) {
        case (.bool, .bool):
            return value
        case (.int, .int(let v)):
            guard Double(v) >= f.low && Double(v) <= f.high else { throw .outOfRange }
            return value
        case (.int, .number(let d)):
            guard d == d.rounded(.towardZero) else { throw .wrongType }
            guard d >= f.low && d <= f.high else { throw .outOfRange }
            return .int(Int64(d))
        case (.number, .int(let v)):
            let d = Double(v)
            guard d >= f.low && d <= f.high else { throw .outOfRange }
            return .number(d)
        case (.number, .number(let d)):
            guard d >= f.low && d <= f.high else { throw .outOfRange }  // false for NaN
            return value
        case (.text, .text(let t)):
            guard Double(t.count) <= f.high, t.count <= ConfigLimits.textBytesMax, cborValidUTF8(t[...]) else {
                throw .outOfRange
            }
            return value
        default:
            throw .wrongType
        }
    }

    /// Validates every node of `tree` (a layer: file, image, update) and returns
    /// it normalized; the first problem throws.
    public static func validate(_ tree: ConfigTree) throws(ConfigError) -> ConfigTree {
        var out = tree
        var failure: ConfigError? = nil
        tree.walk(ConfigTree.root) { i in
            guard failure == nil else { return }
            let p = tree.path(of: i)
            do throws(ConfigError) {
                out.nodes[i].value = try validate(p, tree.nodes[i].value)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Drops the nodes `validate` would refuse (unknown or mistyped, e.g. from
    /// an image written by another firmware version) and returns how many.
    public static func sanitize(_ tree: inout ConfigTree) -> Int {
        var dropped = 0
        var bad: [[UInt8]] = []
        let snapshot = tree
        snapshot.walk(ConfigTree.root) { i in
            let p = snapshot.path(of: i)
            do throws(ConfigError) {
                tree.nodes[i].value = try validate(p, snapshot.nodes[i].value)
            } catch {
                bad.append(p)
            }
        }
        for p in bad where tree.remove(p) { dropped += 1 }
        return dropped
    }

    /// The built-in config: every field without a wildcard at its default, and
    /// the maps leading to wildcard fields (an empty "sensors").
    public static func defaults() -> ConfigTree {
        var t = ConfigTree()
        for f in fields {
            var p = configBytes(f.path)
            if f.hasWildcard {
                guard let star = p.firstIndex(of: 0x2A), star > 1 else { continue }
                p = Array(p[0..<(star - 1)])
                try! t.set(p, .map)  // fits: the table is checked in tests and at start
            } else {
                try! t.set(p, f.defaultValue)
            }
        }
        return t
    }
}
