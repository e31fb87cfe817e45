// Delivering one `config_update` to a set of nodes, reliably: each node gets
// it, and it is sent again every `retryMs` to the nodes that have not
// answered, until every node answered (`ack`: applied, or already at that
// version or newer; `error`: refused) or `attemptsMax` sends went unanswered.
// Used by `tdos config push`; the receiving side is NodeRuntime.applyConfigUpdate.
// A state machine like MeshNode: no I/O, frames go out through the mesh node.

public struct ConfigPush {
    public enum Answer: Equatable {
        case pending
        /// Applied, or the node already runs this version or a newer one.
        case acked
        /// The node refused the update (status, e.g. bad_arguments: unknown field, wrong type).
        case refused(UInt8)
        /// No answer to `attemptsMax` sends (or no route to it).
        case unreachable
    }

    public let payload: [UInt8]
    public let targets: [UInt32]
    public private(set) var answers: Table<Answer>
    public let retryMs: UInt32
    public let attemptsMax: Int
    /// Ids of the copies sent to each target (an answer may come for any of them).
    var sentIDs: Table<Table<MessageID>>
    var attempts = 0
    var nextAtMs: UInt64 = 0

    public init(update: ConfigUpdate, targets: [UInt32], retryMs: UInt32 = 500, attemptsMax: Int = 6) {
        precondition(retryMs > 0 && attemptsMax > 0)
        payload = update.encode()
        self.targets = targets
        answers = Table(repeating: .pending, count: targets.count)
        sentIDs = Table(repeating: Table(), count: targets.count)
        self.retryMs = retryMs
        self.attemptsMax = attemptsMax
    }

    public var isDone: Bool { !answers.contains(.pending) }
    public var nextTimeoutMs: UInt64? { isDone ? nil : nextAtMs }

    /// First sends; then call `handleTimeout` at `nextTimeoutMs`.
    public mutating func start(nowMs: UInt64, mesh: inout MeshNode) { sendRound(nowMs: nowMs, mesh: &mesh) }

    public mutating func handleTimeout(nowMs: UInt64, mesh: inout MeshNode) {
        guard !isDone, nowMs >= nextAtMs else { return }
        sendRound(nowMs: nowMs, mesh: &mesh)
    }

    mutating func sendRound(nowMs: UInt64, mesh: inout MeshNode) {
        if attempts >= attemptsMax {
            for i in answers.indices where answers[i] == .pending { answers[i] = .unreachable }
            return
        }
        attempts += 1
        for i in targets.indices where answers[i] == .pending {
            if let id = mesh.sendTracked(.configUpdate, payload: payload, to: targets[i], nowMs: nowMs) {
                sentIDs[i].append(id)
            }
        }
        nextAtMs = nowMs + UInt64(retryMs)
    }

    /// Takes an `ack` or `error` delivered by the mesh; false if it answers none of our copies.
    @discardableResult
    public mutating func handle(_ frame: Frame) -> Bool {
        guard frame.type == .ack || frame.type == .error, let ref = frame.ref,
              let i = targets.firstIndex(of: frame.sender), sentIDs[i].contains(ref) else { return false }
        guard answers[i] == .pending else { return true }
        if frame.type == .ack {
            answers[i] = .acked
        } else {
            let code = (try? ErrorReply.decode(frame.payload))?.code ?? Status.internalError.rawValue
            answers[i] = .refused(code)
        }
        return true
    }
}
