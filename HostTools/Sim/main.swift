// tdos-sim: the deterministic simulation from the command line.
//   tdos-sim --seed N [--trace]     replay one seed (same seed, same trace hash)
//   tdos-sim --seeds A..B           run a range; failures print their replay command
//   options: --nodes N --window S --loss P --dup P --corrupt P --crashes N --partitions N
import Foundation
import TDOSHost

installHostCrypto()  // same digests, faster: the simulation stays deterministic

func usage() -> Never {
    print("""
    usage: tdos-sim [--seed N | --seeds A..B] [--trace] [--nodes N] [--window SECONDS]
                    [--loss PERCENT] [--dup PERCENT] [--corrupt PERCENT] [--crashes N] [--partitions N]
                    [--breaker-open-ms MS]
           tdos-sim --evictions [--seeds A..B] [--loss P] [--minutes M] [--trace]   false evictions, loss only
           tdos-sim --discovery --nodes N [--seed S]                                cold-start convergence
           tdos-sim --storage [--seeds A..B] [--loss P] [--crashes N]   storage node crashes and torn writes
                    under a record stream: 0 acked records lost (issue 8)
           tdos-sim --replicated-log [--seeds A..B] [--loss P] [--window S]   3 log replicas under
                    primary and backup crashes, torn writes: every acked record on a majority (issue 8)
           tdos-sim --consensus [--seeds A..B] [--loss P] [--window S]   3 config replicas under crashes,
                    leader partitions, loss: 0 divergent configs, convergence after the heal (issue 8)
    Runs the real node code (NodeRuntime: scheduler, mesh, role tasks) over a seeded
    simulated network; checks safety after every step and liveness after the faults stop.
    """)
    exit(2)
}

var options = SimOptions()
/// `--evictions`: instead of the swarm, loss only (--loss, default 10) for --minutes
/// (default 2) per seed; prints every seed where a healthy node was declared dead.
var evictionsMode = false
var minutes: UInt64 = 2
/// `--discovery`: cold start of --nodes nodes; prints when every node sees every instance
/// (or, above the peer table's 64, an instance of every service name).
var discoveryMode = false
var storageMode = false
var consensusMode = false
var replicatedLogMode = false
var first: UInt64 = 1, last: UInt64 = 1
var args = Array(CommandLine.arguments.dropFirst())
func value() -> String {
    guard !args.isEmpty else { usage() }
    return args.removeFirst()
}
while !args.isEmpty {
    let a = args.removeFirst()
    switch a {
    case "--seed":
        guard let s = UInt64(value()) else { usage() }
        first = s; last = s
    case "--seeds":
        let parts = value().components(separatedBy: "..")
        guard parts.count == 2, let a = UInt64(parts[0]), let b = UInt64(parts[1]), a <= b else { usage() }
        first = a; last = b
    case "--trace": options.trace = true
    case "--evictions": evictionsMode = true
    case "--discovery": discoveryMode = true
    case "--storage": storageMode = true
    case "--consensus": consensusMode = true
    case "--replicated-log": replicatedLogMode = true
    case "--minutes": guard let v = UInt64(value()) else { usage() }; minutes = v
    case "--nodes": guard let v = Int(value()), v >= 2 else { usage() }; options.nodeCount = v
    case "--window": guard let v = UInt64(value()) else { usage() }; options.faultWindowMs = v * 1000
    case "--loss": guard let v = Double(value()) else { usage() }; options.lossPercent = v
    case "--dup": guard let v = Double(value()) else { usage() }; options.duplicatePercent = v
    case "--corrupt": guard let v = Double(value()) else { usage() }; options.corruptPercent = v
    case "--crashes": guard let v = Int(value()) else { usage() }; options.crashCount = v
    case "--partitions": guard let v = Int(value()) else { usage() }; options.partitionCount = v
    case "--breaker-open-ms": guard let v = UInt32(value()), v > 0 else { usage() }; options.mesh.breakerOpenMs = v
    case "-h", "--help": usage()
    default: print("unknown option \(a)"); usage()
    }
}
if options.nodeCount > options.mesh.peersMax {
    options.mesh.peersMax = min(64, options.nodeCount + 4)
    options.mesh.instancesMax = max(options.mesh.instancesMax, 2 * options.nodeCount + 8)
}

if discoveryMode {
    let mesh = SimExperiments.largeMesh(nodes: options.nodeCount)
    for seed in first...last {
        let started = Date()
        let d = options.nodeCount + 2 > mesh.peersMax
            ? SimExperiments.nameDiscovery(seed: seed, nodes: options.nodeCount, mesh: mesh, limitMs: minutes * 60_000)
            : SimExperiments.discovery(seed: seed, nodes: options.nodeCount, mesh: mesh, limitMs: minutes * 60_000)
        print("seed \(seed): \(options.nodeCount) nodes converged \(d.ms.map { "after \($0) ms" } ?? "NOT within \(minutes) min") (peersMax \(mesh.peersMax), instancesMax \(mesh.instancesMax); \(String(format: "%.1f", Date().timeIntervalSince(started))) s wall) \(d.failures.joined(separator: "\n"))")
    }
    exit(0)
}
/// Runs `body` on every seed of the range; prints each failing seed with the
/// command that replays it. Returns the failed seeds and the wall time.
func eachSeed(_ flag: String, _ body: (UInt64) -> [String]) -> (failed: [UInt64], seconds: Double) {
    let started = Date()
    var failed: [UInt64] = []
    for seed in first...last {
        let failures = body(seed)
        guard !failures.isEmpty else { continue }
        failed.append(seed)
        print("seed \(seed): \(failures.prefix(2).joined(separator: "\n"))")
        print("  replay: swift run tdos-sim \(flag) --seeds \(seed)..\(seed)")
    }
    return (failed, Date().timeIntervalSince(started))
}

if storageMode {
    var acked: UInt64 = 0
    let (failedSeeds, seconds) = eachSeed("--storage") { seed in
        let r = SimExperiments.storageLog(seed: seed, crashes: options.crashCount ?? 4, lossPercent: options.lossPercent ?? Double(seed % 3) * 5)
        acked += r.acked
        if !r.lost.isEmpty || r.acked == 0 { return r.failures + ["\(r.lost.count) acked records lost, \(r.acked) acked"] }
        return r.failures
    }
    print("tdos-sim --storage: \(last - first + 1) seeds (\(first)..\(last)), \(acked) records acked across storage crashes and torn writes, \(failedSeeds.count) seeds failed, \(String(format: "%.1f", seconds)) s wall")
    exit(failedSeeds.isEmpty ? 0 : 1)
}
if replicatedLogMode {
    var acked: UInt64 = 0, primaries = 0, backups = 0, torn = 0, partitions = 0
    let (failedSeeds, seconds) = eachSeed("--replicated-log") { seed in
        let r = SimExperiments.replicatedLog(seed: seed, faultMs: options.faultWindowMs == 20_000 ? 30_000 : options.faultWindowMs,
                                             lossPercent: options.lossPercent ?? Double(seed % 3) * 5,
                                             trace: options.trace ? { print($0) } : nil)
        acked += r.acked; primaries += r.primaryCrashes; backups += r.backupCrashes; torn += r.tornWrites
        partitions += r.primaryPartitions
        return r.failures
    }
    print("tdos-sim --replicated-log: \(last - first + 1) seeds (\(first)..\(last)), \(acked) records acked, \(primaries) primary and \(backups) backup crashes (\(torn) by a power cut mid-write), \(partitions) primary partitions; every ack checked against the replicas' flash; \(failedSeeds.count) seeds failed, \(String(format: "%.1f", seconds)) s wall")
    exit(failedSeeds.isEmpty ? 0 : 1)
}
if consensusMode {
    var sets = 0, failedSets = 0, versions = 0, crashes = 0, partitions = 0
    var worstLeader: UInt64 = 0, worstConverged: UInt64 = 0
    let (failedSeeds, seconds) = eachSeed("--consensus") { seed in
        let r = SimExperiments.configConsensus(seed: seed, faultMs: options.faultWindowMs == 20_000 ? 40_000 : options.faultWindowMs, lossPercent: options.lossPercent)
        sets += r.committedSets; failedSets += r.failedSets; versions += r.versionsChecked
        crashes += r.storageCrashes; partitions += r.leaderPartitions
        worstLeader = max(worstLeader, r.healToLeaderMs ?? 0)
        worstConverged = max(worstConverged, r.healToConvergedMs ?? 0)
        return r.committedSets == 0 ? r.failures + ["no config set committed"] : r.failures
    }
    print("tdos-sim --consensus: \(last - first + 1) seeds (\(first)..\(last)), \(sets) config sets committed, \(failedSets) failed under faults, \(versions) versions checked for agreement, \(crashes) replica crashes, \(partitions) leader partitions; after the heal: leader <= \(worstLeader) ms, every node converged <= \(worstConverged) ms (bound \(SimExperiments.consensusHealBoundMs) ms); \(failedSeeds.count) seeds failed, \(String(format: "%.1f", seconds)) s wall")
    exit(failedSeeds.isEmpty ? 0 : 1)
}
if evictionsMode {
    let loss = options.lossPercent ?? 10
    var total = 0, hours = 0.0
    for seed in first...last {
        let e = SimExperiments.falseEvictions(seed: seed, nodes: options.nodeCount, lossPercent: loss, durationMs: minutes * 60_000,
                                                trace: options.trace ? { print($0) } : nil)
        total += e.evictions
        hours += e.nodeHours
        if e.evictions > 0 || !e.failures.isEmpty {
            print("seed \(seed): \(e.evictions) healthy nodes evicted at \(loss)% loss \(e.failures.joined(separator: "\n"))")
        }
    }
    print("tdos-sim --evictions: \(total) false evictions in \(hours) node-hours at \(loss)% loss (seeds \(first)..\(last), \(options.nodeCount) nodes, \(minutes) min)")
    exit(total == 0 ? 0 : 1)
}
let single = first == last
var failed: [UInt64] = []
var virtualMs: UInt64 = 0
let started = Date()
for seed in first...last {
    options.seed = seed
    let result = runSimulationSeed(options, traceSink: options.trace ? { print($0) } : nil)
    virtualMs += result.virtualMs
    if single {
        for line in result.summary { print(line) }
    }
    if !result.ok {
        failed.append(seed)
        for f in result.failures { print(f) }
        if !single { print(result.summary.joined(separator: "\n")) }
    } else if !single && (seed - first + 1) % 500 == 0 {
        print("tdos-sim: \(seed - first + 1) seeds done, \(failed.count) failed")
    }
}
let wall = Date().timeIntervalSince(started)
if !single {
    let n = last - first + 1
    print("tdos-sim: \(n) seeds (\(first)..\(last)), \(failed.count) failed, \(virtualMs / 1000) simulated s in \(String(format: "%.1f", wall)) s wall")
    if !failed.isEmpty {
        print("failed seeds: \(failed.prefix(50).map(String.init).joined(separator: " "))")
        print("replay one with: swift run tdos-sim --seed \(failed[0])")
    }
}
exit(failed.isEmpty ? 0 : 1)
