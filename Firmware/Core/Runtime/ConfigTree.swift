// Local configuration, as the seeds' ConfigManager: a tree of typed values
// (bool, int, number, text, nested maps) addressed by dotted paths
// ("discovery.heartbeat_interval_ms"), deep-merged in layers: built-in defaults
// (ConfigSchema), then the JSON file and environment on Linux or the config
// flash region on the board, then versioned runtime updates (ConfigManager).
//
// Embedded-clean: paths and text are UTF-8 bytes, errors are typed, and a tree
// has a fixed number of node slots reserved once (ConfigLimits.nodesMax).

/// Every bound of the config layer, with their relations checked by `check()`.
public enum ConfigLimits {
    /// Node slots of one tree: maps and leaves together. The defaults use 40.
    public static let nodesMax = 96
    /// Longest key (one path segment), in bytes.
    public static let keyBytesMax = 24
    /// Longest dotted path, in bytes: what a `config_update` entry may carry.
    public static let pathBytesMax = ConfigUpdate.pathBytesMax
    /// Most segments in a path ("sensors.temp.calibration_offset" has 3).
    public static let depthMax = 4
    /// Longest text value, in bytes.
    public static let textBytesMax = 64
    /// Largest flash image: one 4 KB erase sector of the config region.
    public static let imageBytesMax = 4096

    public static func check() {
        precondition(keyBytesMax <= pathBytesMax)
        precondition(pathBytesMax <= ConfigUpdate.pathBytesMax, "an update must be able to name every path")
        precondition(depthMax + 1 <= WireLimits.cborDepthMax, "a map value in an update nests at most depthMax maps")
        precondition(nodesMax <= Int(Int16.max), "parents are Int16 slot indices")
        precondition(ConfigImage.headerBytes + ConfigImage.checksumBytes < imageBytesMax)
        // A tree of long texts may not fit an image: ConfigImage.encode refuses
        // (.full) and ConfigManager rejects the update that would cause it.
    }
}

/// Why a config operation was refused. None is fatal; the tree is unchanged.
public enum ConfigError: Error, Equatable {
    /// Empty, too long, too deep, an empty segment, or a key too long.
    case badPath
    /// The path is not in ConfigSchema.
    case unknownField
    /// The value's kind is not the one the schema gives the path.
    case wrongType
    /// A number outside the field's range, or text longer than allowed.
    case outOfRange
    /// The tree has no free node slot left.
    case full
    /// Bytes (a flash image, an update value) that are not well-formed.
    case malformed
    /// A flash image whose CRC-32 does not match: the sector is corrupt.
    case badChecksum
    /// No image at all (erased flash reads 0xFF), or a format this build does not know.
    case noImage

    public var name: StaticString {
        switch self {
        case .badPath: return "bad_path"
        case .unknownField: return "unknown_field"
        case .wrongType: return "wrong_type"
        case .outOfRange: return "out_of_range"
        case .full: return "full"
        case .malformed: return "malformed"
        case .badChecksum: return "bad_checksum"
        case .noImage: return "no_image"
        }
    }
}

public enum ConfigKind: UInt8 {
    case bool = 1, int = 2, number = 3, text = 4, map = 5

    /// As the JSON loader's messages say it: "expected a number".
    public var article: StaticString {
        switch self {
        case .bool: return "a boolean"
        case .int: return "a number"
        case .number: return "a number"
        case .text: return "a string"
        case .map: return "an object"
        }
    }
}

public enum ConfigValue: Equatable {
    case bool(Bool)
    case int(Int64)
    case number(Double)
    /// UTF-8 bytes.
    case text([UInt8])
    /// An interior node; its children are reached by longer paths.
    case map

    public var kind: ConfigKind {
        switch self {
        case .bool: return .bool
        case .int: return .int
        case .number: return .number
        case .text: return .text
        case .map: return .map
        }
    }

    /// `== .map` without the full comparison (`==` with a literal case is
    /// inlined with the text payload's compare at every use).
    var isMap: Bool {
        if case .map = self { return true }
        return false
    }
}

/// The bytes of a literal path or text.
@inline(__always)
public func configBytes(_ s: StaticString) -> [UInt8] {
    Array(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
}

/// The number of keys in a dotted path, 0 if the path is not valid (empty,
/// too long, too deep, an empty or too long key). No list of key ranges (an
/// array per call): callers walk the keys with configKeyEnd.
func configDepth(_ path: [UInt8]) -> Int {
    guard !path.isEmpty, path.count <= ConfigLimits.pathBytesMax else { return 0 }
    var depth = 0
    var start = 0
    while start <= path.count {
        let end = configKeyEnd(path, from: start)
        let n = end - start
        guard n > 0, n <= ConfigLimits.keyBytesMax, depth < ConfigLimits.depthMax else { return 0 }
        depth += 1
        start = end + 1
    }
    return depth
}

/// Where the key starting at `start` ends: at the next "." or the path's end.
func configKeyEnd(_ path: [UInt8], from start: Int) -> Int {
    var i = start
    while i < path.count && path[i] != 0x2E { i += 1 }  // "."
    return i
}

/// A path `set` and `validate` accept: as configDepth wants it, every key
/// valid UTF-8. The whole path is valid UTF-8 exactly when every key is
/// ("." is ASCII, never part of a longer character), so one check does.
@inline(never)
func configPathIsValid(_ path: [UInt8]) -> Bool {
    configDepth(path) > 0 && cborValidUTF8(path[...])
}

/// A valid key: 1...keyBytesMax bytes, no ".", valid UTF-8.
func configValidKey<C: Collection>(_ key: C) -> Bool where C.Element == UInt8 {
    guard !key.isEmpty, key.count <= ConfigLimits.keyBytesMax else { return false }
    for b in key where b == 0x2E { return false }
    return cborValidUTF8(ArraySlice(key))
}

/// A tree of config values in a fixed table of node slots. Each node knows its
/// parent slot (-1 = a child of the root); lookups scan the table, which is
/// small (<= nodesMax) and keeps the tree one flat allocation.
public struct ConfigTree {
    struct Node {
        // In this order the entry has no tail padding (value 0-8, parent 10,
        // key 12-15: size == stride == 16): armv6m then reads a table entry's
        // fields with word loads, not byte by byte (docs/FIRMWARE.md, "Sizes").
        var value: ConfigValue
        var parent: Int16
        var key: [UInt8]
        static let unused: Int16 = -2
        init(key: [UInt8], parent: Int16, value: ConfigValue) {
            self.value = value
            self.parent = parent
            self.key = key
        }
    }
    static let root = -1

    /// A Table, not [Node]: drops Array's per-type code for Node.
    var nodes: Table<Node>
    /// Slots in use.
    public private(set) var count: Int
    public var capacity: Int { nodes.count }

    /// An empty tree (no keys at all; ConfigSchema.defaults() gives the built-in one).
    public init(capacity: Int = ConfigLimits.nodesMax) {
        precondition(capacity > 0 && capacity <= Int(Int16.max))
        nodes = Table(repeating: Node(key: [], parent: Node.unused, value: .map), count: capacity)
        count = 0
    }

    public var isEmpty: Bool { count == 0 }

    // MARK: Lookup

    func child(of parent: Int, key: ArraySlice<UInt8>) -> Int? {
        let p = Int16(parent)
        for i in 0..<nodes.count where nodes[i].parent == p {
            if nodes[i].key.count == key.count && nodes[i].key.elementsEqual(key) { return i }
        }
        return nil
    }

    @inline(never)
    func find(_ path: [UInt8]) -> Int? {
        guard configDepth(path) > 0 else { return nil }
        var at = ConfigTree.root
        var start = 0
        while start < path.count {
            if at != ConfigTree.root, !nodes[at].value.isMap { return nil }
            let end = configKeyEnd(path, from: start)
            guard let c = child(of: at, key: path[start..<end]) else { return nil }
            at = c
            start = end + 1
        }
        return at
    }

    /// The value at a dotted path (`.map` for an interior node), nil if absent.
    public func value(at path: [UInt8]) -> ConfigValue? {
        guard let i = find(path) else { return nil }
        return nodes[i].value
    }

    public func value(at path: StaticString) -> ConfigValue? { value(at: configBytes(path)) }

    public func contains(_ path: [UInt8]) -> Bool { find(path) != nil }

    /// Keys directly under `path` (the root's with an empty path), in slot order.
    public func keys(under path: [UInt8]) -> [[UInt8]] {
        let at: Int
        if path.isEmpty {
            at = ConfigTree.root
        } else {
            guard let i = find(path), nodes[i].value.isMap else { return [] }
            at = i
        }
        var out: [[UInt8]] = []
        for n in nodes where n.parent == Int16(at) { out.append(n.key) }
        return out
    }

    // MARK: Typed getters: the value if present and of that kind, else `default`.

    public func bool(_ path: [UInt8], default d: Bool) -> Bool {
        if case .bool(let v)? = value(at: path) { return v }
        return d
    }

    /// An int, or a number with an integral value in Int64 range.
    public func int(_ path: [UInt8], default d: Int64) -> Int64 {
        switch value(at: path) {
        case .int(let v)?: return v
        case .number(let v)?:
            if v == v.rounded(.towardZero) && v >= -9.2e18 && v <= 9.2e18 { return Int64(v) }
            return d
        default: return d
        }
    }

    /// A number, or an int widened to Double.
    public func number(_ path: [UInt8], default d: Double) -> Double {
        switch value(at: path) {
        case .number(let v)?: return v
        case .int(let v)?: return Double(v)
        default: return d
        }
    }

    public func text(_ path: [UInt8], default d: [UInt8]) -> [UInt8] {
        if case .text(let v)? = value(at: path) { return v }
        return d
    }

    public func bool(_ path: StaticString, default d: Bool) -> Bool { bool(configBytes(path), default: d) }
    public func int(_ path: StaticString, default d: Int64) -> Int64 { int(configBytes(path), default: d) }
    public func number(_ path: StaticString, default d: Double) -> Double { number(configBytes(path), default: d) }
    public func text(_ path: StaticString, default d: [UInt8]) -> [UInt8] { text(configBytes(path), default: d) }

    // MARK: Changes

    mutating func allocate(key: ArraySlice<UInt8>, parent: Int, value: ConfigValue) -> Int {
        for i in 0..<nodes.count where nodes[i].parent == Node.unused {
            nodes[i] = Node(key: Array(key), parent: Int16(parent), value: value)
            count += 1
            return i
        }
        preconditionFailure("allocate without a free slot: callers check first")
    }

    /// Frees every descendant of slot `i` (not `i` itself). Depth <= depthMax.
    mutating func removeChildren(of i: Int) {
        let p = Int16(i)
        for j in 0..<nodes.count where nodes[j].parent == p {
            removeChildren(of: j)
            nodes[j] = Node(key: [], parent: Node.unused, value: .map)
            count -= 1
        }
    }

    /// Sets the value at `path`, creating the maps on the way. Deep-merge
    /// semantics: a scalar on the way becomes a map, a map replaced by a scalar
    /// loses its children, setting `.map` on a map keeps its children.
    /// Out of line: one copy for all its callers.
    @inline(never)
    public mutating func set(_ path: [UInt8], _ value: ConfigValue) throws(ConfigError) {
        guard configPathIsValid(path) else { throw .badPath }
        if case .text(let t) = value, t.count > ConfigLimits.textBytesMax || !cborValidUTF8(t[...]) {
            throw .outOfRange
        }
        // Count the slots needed before touching anything, so a full tree is unchanged.
        var at = ConfigTree.root
        var missing = 0
        var start = 0
        while start < path.count {
            let end = configKeyEnd(path, from: start)
            if missing > 0 {
                missing += 1
            } else if let c = child(of: at, key: path[start..<end]) {
                at = c
            } else {
                missing = 1
            }
            start = end + 1
        }
        if count + missing > capacity { throw .full }

        at = ConfigTree.root
        start = 0
        while start < path.count {
            let end = configKeyEnd(path, from: start)
            at = try setChild(of: at, key: path[start..<end], end == path.count ? value : .map)
            start = end + 1
        }
    }

    /// Sets the child `key` of `parent` (deep-merge semantics, as `set`) and
    /// returns its slot: the one step `set`, `merge` and the CBOR decoder share
    /// (out of line, else each of them gets its own copy).
    @inline(never)
    mutating func setChild(of parent: Int, key: ArraySlice<UInt8>, _ value: ConfigValue) throws(ConfigError) -> Int {
        if let c = child(of: parent, key: key) {
            if !(value.isMap && nodes[c].value.isMap) {
                removeChildren(of: c)
                nodes[c].value = value
            }
            return c
        }
        guard count < capacity else { throw .full }
        return allocate(key: key, parent: parent, value: value)
    }

    public mutating func set(_ path: StaticString, _ value: ConfigValue) throws(ConfigError) {
        try set(configBytes(path), value)
    }

    /// Removes the node at `path` and everything under it; false if absent.
    @discardableResult
    public mutating func remove(_ path: [UInt8]) -> Bool {
        guard let i = find(path) else { return false }
        free(i)
        return true
    }

    /// Frees slot `i` and everything under it.
    mutating func free(_ i: Int) {
        removeChildren(of: i)
        nodes[i] = Node(key: [], parent: Node.unused, value: .map)
        count -= 1
    }

    /// Deep merge, as the seeds' `deep_merge(base, override)`: where both sides
    /// hold a map the maps merge key by key, anywhere else `other` wins.
    /// All or nothing: on `.full` the tree is unchanged.
    public mutating func merge(_ other: ConfigTree) throws(ConfigError) {
        var copy = self
        try copy.mergeChildren(of: other, from: ConfigTree.root, into: ConfigTree.root)
        self = copy
    }

    mutating func mergeChildren(of other: ConfigTree, from src: Int, into dst: Int) throws(ConfigError) {
        let p = Int16(src)
        for j in 0..<other.nodes.count where other.nodes[j].parent == p {
            let value = other.nodes[j].value
            let target = try setChild(of: dst, key: other.nodes[j].key[...], value)
            if value.isMap { try mergeChildren(of: other, from: j, into: target) }
        }
    }

    // MARK: Walking

    /// The dotted path of slot `i`. Measured first, then written from its
    /// end (no list of the slots on the way: an array per call).
    func path(of i: Int) -> [UInt8] {
        var n = -1
        var at = i
        while at != ConfigTree.root {
            n += nodes[at].key.count + 1
            at = Int(nodes[at].parent)
        }
        var out = [UInt8](repeating: 0x2E, count: max(n, 0))  // "." between keys
        var end = n
        at = i
        while at != ConfigTree.root {
            let key = nodes[at].key
            end -= key.count
            for j in 0..<key.count { out[end + j] = key[j] }
            end -= 1
            at = Int(nodes[at].parent)
        }
        return out
    }

    /// Calls `body` with the path and value of every leaf (every non-map node),
    /// in canonical order (keys sorted bytewise at each level).
    public func forEachLeaf(_ body: (_ path: [UInt8], _ value: ConfigValue) -> Void) {
        for i in preorder() where !nodes[i].value.isMap { body(path(of: i), nodes[i].value) }
    }

    /// Slots of the children of `parent`, keys sorted bytewise (canonical order).
    func sortedChildren(of parent: Int) -> [Int] {
        var out: [Int] = []
        let p = Int16(parent)
        for i in 0..<nodes.count where nodes[i].parent == p {
            var at = out.count
            while at > 0 && configKeyLess(nodes[i].key, nodes[out[at - 1]].key) { at -= 1 }
            out.insert(i, at: at)
        }
        return out
    }

    /// Slots of every node in pre-order, canonical order. A list rather than a
    /// walk taking a closure: that was specialised for each caller (6 copies,
    /// ~0.4 KB each, on the board).
    func preorder() -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(count)
        appendPreorder(of: ConfigTree.root, to: &out)
        return out
    }

    private func appendPreorder(of parent: Int, to out: inout [Int]) {
        for c in sortedChildren(of: parent) {
            out.append(c)
            if nodes[c].value.isMap { appendPreorder(of: c, to: &out) }
        }
    }

    /// The leaves under `prefix`, with paths relative to it: copied node by
    /// node from the prefix's slot (no path per leaf, no `set` per leaf).
    /// Out of line: inlined into `ConfigManager.overlayUpdate`, it cost the storage image 116 B.
    @inline(never)
    public func subtree(at prefix: [UInt8]) -> ConfigTree {
        var sub = ConfigTree()
        if let p = find(prefix) { _ = sub.copyLeaves(of: self, from: p, into: ConfigTree.root) }
        return sub
    }

    /// Copies the leaves under slot `src` of `other` under slot `dst`, in
    /// canonical order (as `preorder`, so the slots are taken in the same
    /// order as setting each leaf's path would take them). A map is kept only
    /// if a leaf was copied under it. Stops when the tree is full. Returns
    /// whether a leaf was copied.
    mutating func copyLeaves(of other: ConfigTree, from src: Int, into dst: Int) -> Bool {
        var copied = false
        for j in other.sortedChildren(of: src) {
            guard count < capacity else { break }
            let node = other.nodes[j]
            let t = allocate(key: node.key[...], parent: dst, value: node.value)
            if !node.value.isMap || copyLeaves(of: other, from: j, into: t) {
                copied = true
            } else {
                free(t)
            }
        }
        return copied
    }

    /// Number of leaves (non-map nodes).
    public var leafCount: Int {
        var n = 0
        for i in 0..<nodes.count where nodes[i].parent != Node.unused && !nodes[i].value.isMap { n += 1 }
        return n
    }
}

func configKeyLess(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    let n = min(a.count, b.count)
    for i in 0..<n where a[i] != b[i] { return a[i] < b[i] }
    return a.count < b.count
}

extension ConfigTree: Equatable {
    /// Same paths with the same values (slot order does not matter).
    public static func == (a: ConfigTree, b: ConfigTree) -> Bool {
        guard a.count == b.count else { return false }
        for i in a.preorder() {
            guard let j = b.find(a.path(of: i)), b.nodes[j].value == a.nodes[i].value else { return false }
        }
        return true
    }
}
