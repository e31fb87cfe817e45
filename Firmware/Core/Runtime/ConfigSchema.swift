// The keys a node knows, their kinds, ranges and built-in defaults (the seeds'
// ConfigManager defaults, with units in the names). Every layer is checked
// against this table: a JSON file, the environment, a flash image and runtime
// updates. A "*" segment matches any key (sensors.<name>.calibration_offset).

/// One known leaf of the config tree, as read from `ConfigSchema.table`.
public struct ConfigField {
    /// Dotted path; a "*" segment matches any key.
    public let path: [UInt8]
    public let kind: ConfigKind
    /// int and number: the allowed range. text: `high` is the longest length in bytes.
    public let low: Double
    public let high: Double
    public let defaultValue: ConfigValue

    public var hasWildcard: Bool { path.contains(0x2A) }
}

/// A decimal of the schema table ("-1000", "1.5"): exact for the table's values.
func configTableNumber(_ word: Slice<UnsafeBufferPointer<UInt8>>) -> Double {
    var v = 0.0
    var scale = 1.0
    var fraction = false
    for b in word {
        switch b {
        case 0x2D: continue  // "-", applied below
        case 0x2E: fraction = true
        default:
            v = v * 10 + Double(b &- 0x30)
            if fraction { scale *= 10 }
        }
    }
    return (word.first == 0x2D ? -v : v) / scale
}

/// Reads `ConfigSchema.table` line by line. The table is one string literal,
/// so it stays constant data in flash: an array of fields (even as an
/// InlineArray) is built by code at start-up, 3.7 KB of it (docs/FIRMWARE.md, "Sizes").
struct ConfigSchemaReader {
    /// The literal's own bytes (constant data in flash): nothing is copied.
    let table = UnsafeBufferPointer(start: ConfigSchema.table.utf8Start, count: ConfigSchema.table.utf8CodeUnitCount)
    var at = 0

    /// Where one line's words are in `table`: no copies, no references (a
    /// list of words was an array allocated per line, and a ConfigField two).
    struct Line {
        var path: Range<Int>
        var low: Range<Int>
        var high: Range<Int>
        /// Empty: no default (empty text).
        var defaultText: Range<Int>
        var kind: ConfigKind
    }

    /// The next field's line (path, kind, low, high, default), nil after the last.
    /// Out of line: one copy for lookup, defaults and sections.
    @inline(never)
    mutating func next() -> Line? {
        while at < table.count && (table[at] == 0x0A || table[at] == 0x20) { at += 1 }  // "\n", " "
        guard at < table.count else { return nil }
        let path = word()
        let kind: ConfigKind
        switch table[word().lowerBound] {
        case 0x62: kind = .bool  // "b"
        case 0x69: kind = .int  // "i"
        case 0x6E: kind = .number  // "n"
        default: kind = .text
        }
        let low = word()
        let high = word()
        return Line(path: path, low: low, high: high, defaultText: word(), kind: kind)
    }

    /// The word at `at` after one separating space; empty at the end of a line.
    private mutating func word() -> Range<Int> {
        if at < table.count && table[at] == 0x20 { at += 1 }
        let start = at
        while at < table.count && table[at] != 0x20 && table[at] != 0x0A { at += 1 }
        return start..<at
    }

    func number(_ word: Range<Int>) -> Double { configTableNumber(table[word]) }

    func defaultValue(_ line: Line) -> ConfigValue {
        switch line.kind {
        case .bool: return .bool(!line.defaultText.isEmpty && table[line.defaultText.lowerBound] == 0x74)  // "true"
        case .int: return .int(Int64(number(line.defaultText)))
        case .number: return .number(number(line.defaultText))
        case .text: return .text(Array(table[line.defaultText]))
        case .map: return .map
        }
    }

    func field(_ line: Line) -> ConfigField {
        ConfigField(path: Array(table[line.path]), kind: line.kind, low: number(line.low), high: number(line.high),
                    defaultValue: defaultValue(line))
    }

    /// How `path` relates to the field whose path is `pattern`: nil = unrelated,
    /// true = the leaf itself, false = a map on the way to it. `path` is valid (configDepth > 0).
    func relation(_ pattern: Range<Int>, _ path: [UInt8]) -> Bool? {
        var at = pattern.lowerBound  // start of the pattern's next segment
        var start = 0  // start of the path's next key
        while start < path.count {
            guard at <= pattern.upperBound else { return nil }  // the path is longer
            let keyEnd = configKeyEnd(path, from: start)
            var end = at
            while end < pattern.upperBound && table[end] != 0x2E { end += 1 }  // "."
            let p = table[at..<end]
            // A pattern segment matches equal bytes, and "*" matches any key.
            if !(p.count == 1 && p.first == 0x2A) && !p.elementsEqual(path[start..<keyEnd]) { return nil }
            at = end + 1
            start = keyEnd + 1
        }
        return at > pattern.upperBound  // every pattern segment matched: the leaf
    }
}

public enum ConfigSchema {
    /// Every known leaf, one per line: path, kind (b bool, i int, n number,
    /// t text), low, high (for text: the longest length in bytes), default
    /// (text without spaces; none = empty). Single spaces: every byte here is
    /// flash. Defaults are the seeds' (tdos_config.json, ConfigManager).
    static let table: StaticString = """
        network.ssid t 0 32 TDOS
        network.password t 0 63
        network.retry_attempts i 0 20 3
        network.connection_timeout_ms i 100 120000 10000
        network.client_timeout_ms i 10 60000 3000
        network.max_retries i 0 10 3
        network.backoff_multiplier n 1 10 1.5
        discovery.port i 1 65535 4000
        discovery.heartbeat_interval_ms i 100 600000 5000
        discovery.service_timeout_ms i 300 3600000 15000
        discovery.cleanup_interval_ms i 100 3600000 30000
        fault_tolerance.max_retries i 0 10 3
        fault_tolerance.breaker_threshold i 1 100 5
        fault_tolerance.breaker_timeout_ms i 100 3600000 30000
        power.enable_sleep b 0 1 false
        power.max_sleep_duration_ms i 0 3600000 5000
        power.enable_adaptive_polling b 0 1 true
        power.min_poll_interval_ms i 10 3600000 1000
        power.max_poll_interval_ms i 10 3600000 10000
        sensors.*.calibration_offset n -1000 1000 0
        display.enabled b 0 1 true
        display.brightness_percent i 0 100 80
        display.refresh_interval_ms i 50 60000 1000
        security.require_auth b 0 1 true
        security.send_key_id i 0 63 0
        logging.level t 0 8 INFO
        logging.max_entries i 1 10000 100
        metrics.sla_target_ms i 1 60000 100
        metrics.report_interval_ms i 100 3600000 10000
        rate_limit.rate_per_s i 1 10000 20
        rate_limit.burst i 1 10000 40
        """

    /// Every known leaf, in table order.
    public static var fields: [ConfigField] {
        var r = ConfigSchemaReader()
        var out: [ConfigField] = []
        while let l = r.next() { out.append(r.field(l)) }
        return out
    }

    /// What the schema says of `path`: the line of the field whose leaf it
    /// is, or (nil, true) for a map on the way to some field ("discovery",
    /// "sensors.temp"), (nil, false) if unknown. One pass over the table for
    /// `field(for:)`, `kind(at:)` and `validate`.
    static func lookup(_ path: [UInt8]) -> (line: ConfigSchemaReader.Line?, isMap: Bool) {
        guard configDepth(path) > 0 else { return (nil, false) }
        var isMap = false
        var r = ConfigSchemaReader()
        while let l = r.next() {
            switch r.relation(l.path, path) {
            case true?: return (l, false)
            case false?: isMap = true
            case nil: break
            }
        }
        return (nil, isMap)
    }

    /// The field of a leaf path, nil if the path is not a leaf of the schema.
    public static func field(for path: [UInt8]) -> ConfigField? {
        guard let l = lookup(path).line else { return nil }
        return ConfigSchemaReader().field(l)
    }

    /// The top-level sections ("network", "discovery", ...), in table order.
    public static var sections: [[UInt8]] {
        var out: [[UInt8]] = []
        var r = ConfigSchemaReader()
        while let l = r.next() {
            let p = r.table[l.path]
            let name = Array(p[..<(p.firstIndex(of: 0x2E) ?? p.endIndex)])
            if !out.contains(name) { out.append(name) }
        }
        return out
    }

    /// The kind the schema gives `path`: a leaf's kind, `.map` for a prefix of
    /// some leaf ("discovery", "sensors.temp"), nil if unknown.
    public static func kind(at path: [UInt8]) -> ConfigKind? {
        let (l, isMap) = lookup(path)
        return l?.kind ?? (isMap ? .map : nil)
    }

    public static func kind(at path: StaticString) -> ConfigKind? { kind(at: configBytes(path)) }

    /// The built-in default of a leaf (also for wildcard paths), nil if unknown.
    public static func defaultValue(for path: [UInt8]) -> ConfigValue? {
        guard let l = lookup(path).line else { return nil }
        return ConfigSchemaReader().defaultValue(l)
    }

    /// Checks `value` for `path` and returns it normalized to the field's kind
    /// (an integral number for an int field becomes `.int`, an int for a number
    /// field `.number`).
    /// Out of line: one copy for all its callers. Nothing with a reference is
    /// alive at its throw sites (the field is a `Line`), so they need no cleanup.
    @inline(never)
    public static func validate(_ path: [UInt8], _ value: ConfigValue) throws(ConfigError) -> ConfigValue {
        guard configPathIsValid(path) else { throw .badPath }
        let (line, isMap) = lookup(path)
        guard let line else {
            guard isMap else { throw .unknownField }
            guard value.isMap else { throw .wrongType }
            return .map
        }
        let r = ConfigSchemaReader()
        let high = r.number(line.high)
        // int and number fields: one range check on the value as a Double.
        let d: Double
        switch (line.kind, value) {
        case (.bool, .bool):
            return value
        case (.text, .text(let t)):
            guard Double(t.count) <= high, t.count <= ConfigLimits.textBytesMax, cborValidUTF8(t[...]) else {
                throw .outOfRange
            }
            return value
        case (.int, .int(let v)), (.number, .int(let v)):
            d = Double(v)
        case (.int, .number(let x)), (.number, .number(let x)):
            d = x
        default:
            throw .wrongType
        }
        // A fraction (or NaN) for an int field is the wrong type, before its range.
        if line.kind == .int && d != d.rounded(.towardZero) { throw .wrongType }
        guard d >= r.number(line.low) && d <= high else { throw .outOfRange }  // false for NaN
        // In range, so an int field's value is exact as a Double and back.
        return line.kind == .int ? .int(Int64(d)) : .number(d)
    }

    /// Validates every node of `tree` (a layer: file, image, update) and returns
    /// it normalized; the first problem throws.
    public static func validate(_ tree: ConfigTree) throws(ConfigError) -> ConfigTree {
        var out = tree
        _ = try normalize(&out, dropping: false)
        return out
    }

    /// Drops the nodes `validate` would refuse (unknown or mistyped, e.g. from
    /// an image written by another firmware version) and returns how many.
    /// Pre-order: a dropped node's descendants are already gone when the loop
    /// reaches their slots (and are not counted).
    public static func sanitize(_ tree: inout ConfigTree) -> Int {
        do { return try normalize(&tree, dropping: true) } catch { return 0 }  // does not throw when dropping
    }

    /// The loop of both: each node's value normalized in place, in pre-order;
    /// a node `validate` refuses is freed and counted (`dropping`) or ends it
    /// with that error. One loop for both (they were two copies of it).
    @inline(never)
    static func normalize(_ tree: inout ConfigTree, dropping: Bool) throws(ConfigError) -> Int {
        var dropped = 0
        for i in tree.preorder() where tree.nodes[i].parent != ConfigTree.Node.unused {
            do throws(ConfigError) {
                tree.nodes[i].value = try validate(tree.path(of: i), tree.nodes[i].value)
            } catch {
                guard dropping else { throw error }
                tree.free(i)
                dropped += 1
            }
        }
        return dropped
    }

    /// The built-in config: every field without a wildcard at its default, and
    /// the maps leading to wildcard fields (an empty "sensors").
    public static func defaults() -> ConfigTree {
        var t = ConfigTree()
        var r = ConfigSchemaReader()
        while let l = r.next() {
            // One set for both kinds of line: a wildcard field sets the map
            // before its "*" ("sensors"), any other its default.
            var p = l.path
            var value = ConfigValue.map
            if let star = r.table[p].firstIndex(of: 0x2A) {
                guard star - p.lowerBound > 1 else { continue }
                p = p.lowerBound..<(star - 1)
            } else {
                value = r.defaultValue(l)
            }
            try! t.set(Array(r.table[p]), value)  // fits: the table is checked in tests and at start
        }
        return t
    }
}
