// The node's config in two layers, deep-merged into `effective`:
//
//   local   built-in defaults, merged on Linux with the JSON file and the
//           environment (HostTools/Host/ConfigFile.swift); on the board just
//           the defaults.
//   remote  the overlay of versioned updates: what the config flash region
//           (or the Linux state file) holds, in the provisioning record
//           (ConfigImage). Every applied `config_update` merges into it, bumps
//           `version` and `sequence`, and asks the platform to persist `image()`.
//
// An update older than `version` never overwrites a newer one, and the version
// is persisted with the overlay, so this holds across reboots too.

/// What `ConfigManager.apply` did with a `config_update`.
public enum ConfigUpdateOutcome: Equatable {
    /// Every entry applied: persist `image()`, then acknowledge.
    case applied(version: UInt32, entries: Int)
    /// The version in force already (a retransmission): nothing changes; acknowledge again.
    case duplicate(version: UInt32)
    /// Older than the version in force: ignored; acknowledged so the sender stops retrying.
    case stale(current: UInt32)
    /// Entry `entry` (or, for a size limit, the last one) was refused and nothing
    /// was applied: answer with an `error`, status bad arguments.
    case rejected(entry: Int, reason: ConfigError)

    /// Answer with an `ack` (true) or an `error` (false).
    public var acknowledge: Bool {
        if case .rejected = self { return false }
        return true
    }

    /// The overlay changed: write `image()` to the config region before acknowledging.
    public var persist: Bool {
        if case .applied = self { return true }
        return false
    }

    /// The status for the reply: ok, or bad arguments for a rejected update.
    public var replyStatus: Status { acknowledge ? .ok : .badArguments }
}

/// What `ConfigManager.restore` found in the config region.
public enum ConfigRestoreOutcome: Equatable {
    /// The overlay is in force; `dropped` entries this firmware does not know were left out.
    case restored(version: UInt32, dropped: Int)
    /// Blank region (or another format): the local config alone is in force.
    case noImage
    /// The region is corrupt (`.badChecksum`, `.malformed`, `.full`): ignored, and
    /// the config in force before is kept.
    case corrupt(ConfigError)
}

public struct ConfigManager {
    /// nil = the built-in defaults, regenerated when needed: on the board the
    /// local layer is just the defaults, and not keeping a copy saves a tree.
    var localTree: ConfigTree?
    public var local: ConfigTree { localTree ?? ConfigSchema.defaults() }
    public private(set) var remote: ConfigTree
    /// Version of the last applied update (0 = none).
    public private(set) var version: UInt32
    /// local deep-merged with remote: what the node runs with.
    public private(set) var effective: ConfigTree

    /// Sequence of the record last read or due to be written (A/B copies: the
    /// higher wins); each applied update bumps it.
    public private(set) var sequence: UInt32 = 0
    /// The record's other fields (provisioning), written back unchanged.
    public private(set) var provisioning: [ConfigImage.Entry] = []

    /// Counters for metrics and `tdos config`.
    public private(set) var updatesApplied: UInt32 = 0
    public private(set) var updatesIgnored: UInt32 = 0
    public private(set) var updatesRejected: UInt32 = 0

    /// The board's: the defaults alone as the local layer.
    public init() {
        localTree = nil
        remote = ConfigTree()
        version = 0
        effective = ConfigSchema.defaults()
    }

    /// Linux: defaults merged with the file and environment (ConfigFile.load).
    public init(local: ConfigTree) {
        localTree = local
        remote = ConfigTree()
        version = 0
        effective = local
    }

    /// Replaces the local layer (a reloaded file). On any error the config in
    /// force is kept: the last good one.
    public mutating func replaceLocal(_ tree: ConfigTree) throws(ConfigError) {
        let checked = try ConfigSchema.validate(tree)
        var merged = checked
        try merged.merge(remote)
        localTree = checked
        effective = merged
    }

    /// Loads the overlay from the config region (at boot), or from the newer
    /// of its two copies.
    public mutating func restore(image region: [UInt8]) -> ConfigRestoreOutcome {
        do {
            return restore(try ConfigImage.decode(region))
        } catch {
            return error == .noImage ? .noImage : .corrupt(error)
        }
    }

    public mutating func restore(regionA: [UInt8], regionB: [UInt8]) -> ConfigRestoreOutcome {
        do {
            return restore(try ConfigImage.newest(a: regionA, b: regionB))
        } catch {
            return error == .noImage ? .noImage : .corrupt(error)
        }
    }

    /// Consumes the decoded image: a borrowed one was copied (a tree and a retain) to sanitize it.
    mutating func restore(_ image: consuming ConfigImage) -> ConfigRestoreOutcome {
        let dropped = ConfigSchema.sanitize(&image.tree)
        // The record's sequence and provisioning fields are kept even when its
        // overlay cannot be used: the next write must outrank this record and
        // carry the board's provisioning forward.
        sequence = image.sequence
        provisioning = image.others
        var merged = local
        do {
            try merged.merge(image.tree)
        } catch {
            return .corrupt(error)
        }
        remote = image.tree
        version = image.version
        effective = merged
        return .restored(version: image.version, dropped: dropped)
    }

    /// The record to write to the config region (to the copy not holding the
    /// current one): `sequence`, the provisioning fields, `version`, the overlay.
    public func image() -> [UInt8] {
        // apply() and restore() only accept overlays whose record fits.
        do {
            return try ConfigImage(sequence: sequence, version: version, tree: remote, others: provisioning).encode()
        } catch {
            preconditionFailure("config overlay outgrew its record")
        }
    }

    /// Raises the sequence of the record `image()` writes to at least `minimum`:
    /// the platform passes one above the highest sequence found in flash, so
    /// a new record always outranks both copies (even after a write that
    /// landed but reported a failure and was undone here).
    public mutating func raiseSequence(to minimum: UInt32) { sequence = max(sequence, minimum) }

    /// Applies a runtime update, all or nothing. Entry values: a scalar sets the
    /// leaf, a map deep-merges under the path, null resets the path to its
    /// local value (removes it from the overlay).
    @inline(never)  // inlined into two consensus callers once entries became a Table (+0.7 KB storage)
    public mutating func apply(_ update: ConfigUpdate) -> ConfigUpdateOutcome {
        if update.version < version {
            updatesIgnored &+= 1
            return .stale(current: version)
        }
        if update.version == version {
            updatesIgnored &+= 1
            return .duplicate(version: version)
        }
        // One catch for every failure (a cleanup path each was most of this
        // function): `blamed` is the entry a failure is charged to.
        var blamed = 0
        do {
            var candidate = remote
            for entry in update.entries {
                try ConfigManager.applyEntry(entry, to: &candidate)
                blamed += 1
            }
            // A size limit: the last entry.
            blamed = max(0, update.entries.count - 1)
            var merged = local
            try merged.merge(candidate)
            _ = try ConfigImage(sequence: sequence &+ 1, version: update.version, tree: candidate, others: provisioning).encode()
            remote = candidate
            effective = merged
        } catch {
            updatesRejected &+= 1
            return .rejected(entry: blamed, reason: error)
        }
        version = update.version
        sequence &+= 1
        updatesApplied &+= 1
        return .applied(version: update.version, entries: update.entries.count)
    }

    static func applyEntry(_ entry: ConfigUpdate.Entry, to tree: inout ConfigTree) throws(ConfigError) {
        let depth = configDepth(entry.path)
        guard depth > 0, cborValidUTF8(entry.path[...]) else { throw .badPath }  // configPathIsValid
        var r = CBORReader(entry.value, depthMax: ConfigLimits.depthMax + 1)
        let isNull: Bool
        do { isNull = try r.isNull() } catch { throw .malformed }
        if isNull {
            guard ConfigSchema.kind(at: entry.path) != nil else { throw .unknownField }
            tree.remove(entry.path)
        } else if try ConfigTree.peekIsMap(&r) {
            var sub = ConfigTree()
            try sub.set(entry.path, .map)
            guard let at = sub.find(entry.path) else { throw .badPath }
            try sub.decodeMap(&r, into: at, depth: depth)
            _ = try ConfigSchema.normalize(&sub, dropping: false)  // validate(sub), in place: no copy of the tree
            try tree.merge(sub)
        } else {
            let value = try ConfigSchema.validate(entry.path, try ConfigTree.decodeScalar(&r))
            try tree.set(entry.path, value)
        }
        guard r.isAtEnd else { throw .malformed }
    }

    // Getters on the config in force, as ConfigTree's.
    public func bool(_ path: StaticString, default d: Bool) -> Bool { effective.bool(path, default: d) }
    public func int(_ path: StaticString, default d: Int64) -> Int64 { effective.int(path, default: d) }
    public func number(_ path: StaticString, default d: Double) -> Double { effective.number(path, default: d) }
    public func text(_ path: StaticString, default d: [UInt8]) -> [UInt8] { effective.text(path, default: d) }
}

extension ConfigManager {
    /// The overlay in force as an update of this version that leaves any
    /// receiver with exactly this overlay, whatever it held before: for each
    /// top-level section of the schema a null (clears it), then the section's
    /// committed contents if it has any. What the consensus leader sends every
    /// node, so a node that missed versions lands on the committed state, never
    /// on a mix of an old one and the new one; plain merge semantics, so a node
    /// of an older minor reads it right too.
    public func overlayUpdate() -> ConfigUpdate {
        var entries = Table<ConfigUpdate.Entry>()
        for section in ConfigSchema.sections {
            entries.append(ConfigUpdate.Entry(path: section, value: [0xF6]))
            if remote.value(at: section)?.isMap == true {
                entries.append(ConfigUpdate.Entry(path: section, value: remote.subtree(at: section).encodeCBOR()))
            }
        }
        return ConfigUpdate(version: version, entries: entries)
    }
}
