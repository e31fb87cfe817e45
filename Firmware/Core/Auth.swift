// Keys and replay protection. A frame is authentic when its tag verifies under
// the key its key id names; it is fresh when its message id was not seen before
// from that sender. Only authentic frames move a replay window, so forged
// traffic cannot push a sender's window forward and lock out its real frames.

/// The keys a node accepts, by id, and the one it sends with. Rotation: add the
/// new key everywhere, switch `sendKeyID`, then remove the old one.
public struct Keyring {
    private var ids: [UInt8] = []
    /// A Table, not an array: no Array growth code for the key type (~0.25 KB on the board).
    private var keys = Table<HMACSHA256Key>()
    public private(set) var sendKeyID: UInt8

    public enum KeyringError: Error, Equatable { case full, badID, unknownID }

    public init(id: UInt8, key: [UInt8]) {
        precondition(id <= WireLimits.keyIDMax)
        sendKeyID = id
        ids.append(id)
        keys.append(HMACSHA256Key(key: key))
    }

    public mutating func add(id: UInt8, key: [UInt8]) throws(KeyringError) {
        guard id <= WireLimits.keyIDMax else { throw .badID }
        if let i = ids.firstIndex(of: id) {
            keys[i] = HMACSHA256Key(key: key)
            return
        }
        guard ids.count < WireLimits.keysMax else { throw .full }
        ids.append(id)
        keys.append(HMACSHA256Key(key: key))
    }

    public mutating func remove(id: UInt8) throws(KeyringError) {
        guard id != sendKeyID else { throw .badID }
        guard let i = ids.firstIndex(of: id) else { throw .unknownID }
        ids.remove(at: i)
        keys.remove(at: i)
    }

    public mutating func useForSending(id: UInt8) throws(KeyringError) {
        guard ids.contains(id) else { throw .unknownID }
        sendKeyID = id
    }

    public func key(id: UInt8) -> HMACSHA256Key? {
        guard let i = ids.firstIndex(of: id) else { return nil }
        return keys[i]
    }

    public var sendKey: HMACSHA256Key { key(id: sendKeyID)! }

    /// The tag of `bytes` under key `id`, computed on the key where it is
    /// stored (nil: no such key). `key(id:)` returns a copy of the 224-byte
    /// key, which the receive path paid on every frame.
    func macWords(id: UInt8, _ bytes: UnsafeRawBufferPointer) -> SHA256Words8? {
        guard let i = ids.firstIndex(of: id) else { return nil }
        // In place through the (checked) slot: `keys[i]` copied the 64-byte key.
        return keys.slot(i).pointee.macWords(bytes)
    }
}

/// Per-sender sliding window over (epoch, sequence), as in IPsec/DTLS (RFC 6347
/// section 4.1.2.6): ids above the highest seen are accepted and slide the
/// window; ids within the last 64 are accepted once; older ones and any id of
/// an earlier epoch are replays. A newer epoch (the sender rebooted) resets it.
/// Fixed capacity: when full, the least recently heard sender is forgotten.
public struct ReplayWindow {
    struct Entry {
        var sender: UInt32
        var epoch: UInt32
        var highest: UInt32
        /// Bit i set = sequence (highest - i) was seen.
        var seen: UInt64
        var lastHeardMs: UInt64
    }
    private var entries: Table<Entry>
    public let capacity: Int
    public private(set) var evictions: UInt32 = 0

    public init(capacity: Int = WireLimits.replayPeersMax) {
        precondition(capacity > 0)
        self.capacity = capacity
        entries = Table(capacity: capacity)
    }

    public var count: Int { entries.count }

    /// Accepts `id` from `sender` once; throws `.replayed` for a repeat or an id
    /// too old to judge. Call only for authenticated frames.
    public mutating func accept(sender: UInt32, id: MessageID, nowMs: UInt64) throws(WireError) {
        guard let i = entries.firstIndex(where: { $0.sender == sender }) else {
            if entries.count == capacity {
                var oldest = 0
                for j in 1..<entries.count where entries[j].lastHeardMs < entries[oldest].lastHeardMs {
                    oldest = j
                }
                entries.remove(at: oldest)
                evictions &+= 1
            }
            entries.append(Entry(sender: sender, epoch: id.epoch, highest: id.sequence, seen: 1, lastHeardMs: nowMs))
            return
        }
        var e = entries[i]
        if id.epoch < e.epoch { throw .replayed }
        if id.epoch > e.epoch {
            e = Entry(sender: sender, epoch: id.epoch, highest: id.sequence, seen: 1, lastHeardMs: nowMs)
        } else if id.sequence > e.highest {
            let shift = id.sequence - e.highest
            e.seen = shift >= 64 ? 1 : (e.seen << UInt64(shift)) | 1
            e.highest = id.sequence
        } else {
            let back = e.highest - id.sequence
            guard back < WireLimits.replayWindowBits else { throw .replayed }
            let bit: UInt64 = 1 << UInt64(back)
            if e.seen & bit != 0 { throw .replayed }
            e.seen |= bit
        }
        e.lastHeardMs = nowMs
        entries[i] = e
    }

    /// Forget a sender (it left the mesh cleanly).
    public mutating func forget(sender: UInt32) {
        // One entry per sender (accept); not removeAll(where:), which costs
        // ~0.5 KB per closure on the board.
        if let i = entries.firstIndex(where: { $0.sender == sender }) { entries.remove(at: i) }
    }
}

/// Hands out message ids that never repeat: the epoch is persisted by the
/// platform before the first frame of a boot is sent.
public struct MessageIDGenerator {
    public private(set) var epoch: UInt32
    private var next: UInt32 = 0

    public init(epoch: UInt32) { self.epoch = epoch }

    /// Returns the next id; `needsNewEpoch` is true when the sequence space of
    /// this epoch is exhausted (after 2^32 frames) and the caller must persist
    /// and switch to a new epoch before sending more.
    public mutating func make() -> MessageID {
        precondition(next < UInt32.max, "sequence space exhausted: persist a new epoch")
        let id = MessageID(epoch: epoch, sequence: next)
        next += 1
        return id
    }

    public var needsNewEpoch: Bool { next == UInt32.max }
}
