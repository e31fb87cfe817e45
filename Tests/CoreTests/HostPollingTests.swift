// Adaptive polling on the host (HostPolling, UDPTransport.pollBatch): the
// window's knob, and a poll that takes what comes and gives up when the
// window closes.

import Foundation
import Testing
@testable import TDOSCore
@testable import TDOSHost

@Suite struct HostPollingTests {
    @Test func windowFromTheEnvironment() throws {
        #expect(try HostPolling.windowUs(environment: [:]) == HostPolling.defaultWindowUs)
        #expect(try HostPolling.windowUs(environment: ["TDOS_POLL_US": "0"]) == 0)
        #expect(try HostPolling.windowUs(environment: ["TDOS_POLL_US": " 250 "]) == 250)
        #expect(try HostPolling.windowUs(environment: ["TDOS_POLL_US": "\(HostPolling.windowUsMax)"]) == HostPolling.windowUsMax)
        for bad in ["-1", "abc", "1.5", "", "\(HostPolling.windowUsMax + 1)"] {
            #expect(throws: HostError.self) { try HostPolling.windowUs(environment: ["TDOS_POLL_US": bad]) }
        }
        // Not a TDOS_*__* config override: the config loader leaves it alone.
        #expect(ConfigFile.environmentPath(forVariable: HostPolling.environmentVariable) == nil)
    }

    @Test func pollBatchTakesADatagramAndStopsAtTheWindow() throws {
        let mode = DiscoveryMode.loopbackRange(base: UInt16(46_000 + Int(getpid() % 400) * 2), count: 2)
        let a = try UDPTransport(mode: mode), b = try UDPTransport(mode: mode)
        // Nothing queued: returns false once the window has passed, not before, not much after.
        let start = monotonicNs()
        #expect(!a.pollBatch(untilUs: start / 1000 + 2000))
        let spentNs = monotonicNs() - start
        #expect(spentNs >= 2_000_000 && spentNs < 500_000_000)
        // A closed window still takes what is already queued.
        b.send([1, 2, 3], to: a.local)
        var got = false
        for _ in 0..<1000 where !got {
            got = a.pollBatch(untilUs: 0)
            if !got { usleep(1000) }
        }
        #expect(got)
        let d = a.receiveBatched()
        #expect(d?.bytes == [1, 2, 3] && d?.from == b.local)
        // Sent while it polls: taken within the window.
        let sender = Thread { usleep(20_000); b.send([4], to: a.local) }
        sender.start()
        #expect(a.pollBatch(untilUs: monotonicNs() / 1000 + 2_000_000))
        #expect(a.receiveBatched()?.bytes == [4])
    }
}
