// Log lines for what the mesh and the scheduler report: what happened, to
// whom, and (for failures) what the operator can do.
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
#endif

func describe(_ e: MeshEvent) -> TextLine {
    var l = TextLine()
    func node(_ s: StaticString, _ id: UInt32) { l.append(s); l.appendHex32(id) }
    switch e {
    case .peerJoined(let n): node("peer joined: ", n)
    case .peerSuspected(let n): node("peer suspected (no heartbeat, probing through others): ", n)
    case .peerRecovered(let n): node("peer recovered: ", n)
    case .peerDead(let n): node("peer dead (no heartbeat, no indirect probe answered); its services are dropped: ", n)
    case .peerLeft(let n): node("peer left cleanly: ", n)
    case .peerRestarted(let n): node("peer restarted (new boot epoch): ", n)
    case .serviceAdded(let n, let s): node("service added on ", n); l.append(" id "); l.appendHex32(s)
    case .serviceRemoved(let n, let s, _): node("service removed on ", n); l.append(" id "); l.appendHex32(s)
    case .breakerOpened(let n, let s): node("circuit breaker opened (calls avoid this instance) for ", n); l.append(" service "); l.appendHex32(s)
    case .breakerHalfOpen(let n, let s): node("circuit breaker half-open (trial call) for ", n); l.append(" service "); l.appendHex32(s)
    case .breakerClosed(let n, let s): node("circuit breaker closed for ", n); l.append(" service "); l.appendHex32(s)
    case .failover(_, let from, let to): node("failover from ", from); node(" to ", to)
    case .frameRejected(let err, let from):
        l.append("frame rejected (")
        l.append(err.name)
        l.append(") from ")
        l.appendIPv4(from.host)
        l.append(":"); l.append(UInt64(from.port))
        if err == .badTag { l.append(": check that every node uses the same key file") }
    case .relayUsed(let t, let via): node("direct path lost; relaying to ", t); node(" via ", via)
    case .directPathRestored(let n): node("direct path restored to ", n)
    case .refuted(let inc): l.append("refuted a suspicion of this node; incarnation now "); l.append(UInt64(inc))
    case .versionMismatch(_, let lo, let hi):
        l.append("a node speaks protocol major ")
        l.append(UInt64(lo)); l.append(".."); l.append(UInt64(hi))
        l.append(", this build speaks 1: update its firmware or this one")
    }
    return l
}

func describe(_ e: SchedulerEvent) -> TextLine {
    var l = TextLine("task ")
    l.append(UInt64(e.taskID.slot))
    l.append(": ")
    l.append(e.kind.name)
    l.append(" (")
    l.append(UInt64(e.detail))
    l.append(")")
    return l
}
