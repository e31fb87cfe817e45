// `tdos-bench sim`: the mesh's behaviour figures, measured in the
// deterministic simulation (the real NodeRuntime over SimPlatform). Every
// figure is from fixed seeds, so reruns give the same numbers (except the
// wall-clock rate).
import Foundation
import TDOSCore
import TDOSHost

func simBench() {
    func percentile(_ xs: [UInt64], _ p: Double) -> UInt64 {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))]
    }
    func fmt(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
    var problems: [String] = []

    // Config consensus (issue 8): 3 storage replicas, 1 s heartbeats, 3-6 s election timeouts.
    var elections: [UInt64] = [], failovers: [UInt64] = [], commits: [UInt64] = [], applied: [UInt64] = []
    for seed in 1...100 as ClosedRange<UInt64> {
        let t = SimExperiments.consensusTimings(seed: seed)
        if let e = t.electionMs { elections.append(e) }
        if let f = t.failoverMs { failovers.append(f) }
        commits += t.commitMs
        applied += t.appliedEverywhereMs
        problems += t.failures
    }
    print("sim: config consensus, 3 replicas, 1 s heartbeats (100 seeds): first election p50 \(percentile(elections, 0.5)) ms, p99 \(percentile(elections, 0.99)) ms; leader crash -> new leader p50 \(percentile(failovers, 0.5)) ms, p99 \(percentile(failovers, 0.99)) ms; config set commit p50 \(percentile(commits, 0.5)) ms, p99 \(percentile(commits, 0.99)) ms; committed -> every node runs it p50 \(percentile(applied, 0.5)) ms, p99 \(percentile(applied, 0.99)) ms")

    // Detection: one crash per seed in a quiet 6-node mesh, 5 observers each.
    var detection: [UInt64] = []
    for seed in 1...200 as ClosedRange<UInt64> {
        let d = SimExperiments.detection(seed: seed)
        detection += d.timesMs
        problems += d.failures
    }
    print("sim: detection time (1 s heartbeats, dead after 3 s silent; 200 crashes x 5 observers): median \(percentile(detection, 0.5)) ms, p99 \(percentile(detection, 0.99)) ms, max \(detection.max() ?? 0) ms")

    // False evictions: loss only, 6 nodes.
    for (loss, seeds, minutes) in [(10.0, 1000, 2), (30.0, 200, 10)] as [(Double, Int, UInt64)] {
        var ev = 0, sus = 0, hours = 0.0
        for seed in 1...UInt64(seeds) {
            let e = SimExperiments.falseEvictions(seed: seed, lossPercent: loss, durationMs: minutes * 60_000)
            ev += e.evictions; sus += e.suspicions; hours += e.nodeHours
            problems += e.failures
        }
        print("sim: false evictions at \(Int(loss))% loss: \(ev) in \(fmt(hours, 1)) node-hours (\(seeds) seeds x 6 nodes x \(minutes) min) = \(fmt(Double(ev) / hours, 3)) per node-hour; suspicions \(fmt(Double(sus) / hours, 1)) per node-hour")
    }

    // Failover: primary killed as the read leaves; time to the backup's answer.
    for deadline in [3000, 5000] as [UInt32] {
        var times: [UInt64] = []
        var ok = 0, stale = 0
        let seeds = 200
        for seed in 1...UInt64(seeds) {
            let f = SimExperiments.failover(seed: seed, deadlineMs: deadline)
            problems += f.failures
            if f.onBackup && f.fresh && f.withinDeadline { ok += 1; times.append(f.failoverMs) }
            if case .value(let v)? = f.result, v.isStale { stale += 1 }
        }
        print("sim: failover (primary killed -> first read answered by the backup, deadline \(deadline) ms): \(ok)/\(seeds) on the backup in time, median \(percentile(times, 0.5)) ms, max \(times.max() ?? 0) ms; \(stale) fell back to the stale value")
    }

    // Messages per node per second: quiet 6-node mesh, weather station + 1 read/s.
    let steady = SimExperiments.steadyRun(seed: 1, nodes: 6, durationMs: 600_000, mesh: MeshConfig())
    problems += steady.failures
    print("sim: messages per node per second (6 nodes, 1 s heartbeats, weather station + 1 client read/s): \(fmt(steady.messagesPerNodePerS)) sent (a broadcast counts once), \(fmt(steady.deliveriesPerNodePerS)) received")

    // Discovery convergence from a cold start (all nodes booted within 100 ms).
    for nodes in [5, 50, 62] {
        var times: [UInt64] = []
        let mesh = SimExperiments.largeMesh(nodes: nodes)
        for seed in 1...5 as ClosedRange<UInt64> {
            let d = SimExperiments.discovery(seed: seed, nodes: nodes, mesh: mesh)
            problems += d.failures
            if let ms = d.ms { times.append(ms) }
        }
        print("sim: discovery convergence, \(nodes) nodes (every node sees every instance; peersMax \(mesh.peersMax), instancesMax \(mesh.instancesMax)): median \(percentile(times, 0.5)) ms, max \(times.max() ?? 0) ms over \(times.count)/5 seeds (checked every 50 ms)")
    }
    do {
        let nodes = 500
        let mesh = SimExperiments.largeMesh(nodes: nodes)
        let started = Date()
        let d = SimExperiments.nameDiscovery(seed: 1, nodes: nodes, mesh: mesh, limitMs: 20_000)
        problems += d.failures
        print("sim: discovery convergence, 500 nodes (every node sees an instance of every replicated service; peersMax is capped at \(mesh.peersMax) = WireLimits.replayPeersMax, so a node tracks only the first 64 peers it hears and a one-node service such as the kernel is not seen by all; instancesMax \(mesh.instancesMax)): \(d.ms.map { "\($0) ms" } ?? "not within 20 s") (\(fmt(Date().timeIntervalSince(started), 1)) s wall)")
    }

    // Simulated seconds per wall second at 100 nodes.
    do {
        let mesh = SimExperiments.largeMesh(nodes: 100)
        let started = Date()
        let t = SimExperiments.steadyRun(seed: 2, nodes: 100, durationMs: 30_000, mesh: mesh)
        let wall = Date().timeIntervalSince(started)
        problems += t.failures
        print("sim: simulated seconds per wall second at 100 nodes: \(fmt(t.virtualS / wall)) (\(fmt(t.virtualS, 0)) s simulated in \(fmt(wall)) s, \(t.steps) events; peersMax \(mesh.peersMax))")
    }
    if !problems.isEmpty {
        print("sim: INVARIANT FAILURES during the benchmark:")
        for p in problems.prefix(5) { print(p) }
    }
}
