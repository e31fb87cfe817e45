#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSHostC

/// How a host node reaches "every node" without configuration.
public enum DiscoveryMode: Equatable {
    /// One machine, no root: every node binds a port in `base..<base+count` on
    /// 127.0.0.1 and a broadcast is a unicast copy to each port of the range.
    /// (Loopback has no broadcast and, by default, no multicast route; this is
    /// the equivalent that always works.)
    case loopbackRange(base: UInt16, count: UInt16)
    /// Real interfaces (network namespaces, a LAN): SO_BROADCAST to the subnet
    /// broadcast address on one well-known port, as the boards do.
    case subnetBroadcast(broadcast: UInt32, port: UInt16)

    public static let defaultLoopback = DiscoveryMode.loopbackRange(base: 42100, count: 32)
}

public struct HostError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A non-blocking UDP socket with the TDOS discovery scheme.
public final class UDPTransport {
    public let fd: Int32
    public let mode: DiscoveryMode
    public private(set) var local: NodeAddress
    public private(set) var sendErrors: UInt64 = 0
    private var buffer = [UInt8](repeating: 0, count: 2048)

    /// Binds `bindHost:port`; with `port == nil` in loopback mode, the first free
    /// port of the range (nodes and CLI alike), else an ephemeral one.
    public init(mode: DiscoveryMode = .defaultLoopback, bindHost: UInt32 = 0x7F00_0001, port: UInt16? = nil) throws {
        self.mode = mode
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw HostError("socket() failed: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, socklen_t(MemoryLayout<Int32>.size))
        var size: Int32 = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        local = NodeAddress(host: bindHost, port: 0)
        var candidates: [UInt16] = []
        if let port { candidates = [port] } else {
            switch mode {
            case .loopbackRange(let base, let count): candidates = (0..<count).map { base + $0 }
            case .subnetBroadcast(_, let p): candidates = [p]
            }
        }
        // Subnet mode binds the wildcard address: Linux delivers a broadcast only
        // to sockets bound to INADDR_ANY, and several listeners (a node and the
        // CLI on one host) may share the port to all hear the broadcasts.
        var socketHost = bindHost
        if case .subnetBroadcast = mode {
            socketHost = 0
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var bound = false
        for p in candidates where Self.bind(fd: fd, host: socketHost, port: p) {
            local.port = p
            bound = true
            break
        }
        guard bound else {
            close(fd)
            switch mode {
            case .loopbackRange(let base, let count):
                throw HostError("no free UDP port in 127.0.0.1:\(base)-\(base + count - 1): stop other TDOS nodes (tdos sim down) or pick another range with --port-base")
            case .subnetBroadcast(_, let p):
                throw HostError("cannot bind UDP port \(port ?? p): \(String(cString: strerror(errno))); is another node running on this address?")
            }
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    deinit { close(fd) }

    private static func bind(fd: Int32, host: UInt32, port: UInt16) -> Bool {
        var addr = sockaddrIn(host: host, port: port)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    static func sockaddrIn(host: UInt32, port: UInt16) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = host.bigEndian
        return addr
    }

    @discardableResult
    public func send(_ bytes: [UInt8], to: NodeAddress) -> Bool {
        var addr = Self.sockaddrIn(host: to.host, port: to.port)
        let n = bytes.withUnsafeBytes { raw in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    // MSG_DONTWAIT: a full socket buffer drops the datagram (counted) even when
                    // the socket is in blocking mode for receiving (waitAndReceiveBatch).
                    sendto(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if n != bytes.count { sendErrors += 1; return false }
        return true
    }

    public func broadcast(_ bytes: [UInt8]) {
        switch mode {
        case .loopbackRange(let base, let count):
            for i in 0..<count where base + i != local.port {
                send(bytes, to: NodeAddress(host: 0x7F00_0001, port: base + i))
            }
        case .subnetBroadcast(let b, let p):
            send(bytes, to: NodeAddress(host: b, port: p))
        }
    }

    /// The bytes `receive` hands out, refilled in place once the caller has let
    /// go of the previous datagram (a client loop does): no allocation per answer.
    private var receiveScratch: [UInt8] = []

    /// One datagram if one is queued, without blocking (the socket is
    /// non-blocking unless its owner made it blocking; `dontWait` never blocks).
    public func receive(dontWait: Bool = false) -> (bytes: [UInt8], from: NodeAddress)? {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = buffer.withUnsafeMutableBytes { raw in
            withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, raw.baseAddress, raw.count, dontWait ? Int32(MSG_DONTWAIT) : 0, $0, &len)
                }
            }
        }
        guard n >= 0 else { return nil }
        receiveScratch.removeAll(keepingCapacity: true)
        receiveScratch.append(contentsOf: buffer[0..<n])
        return (receiveScratch, NodeAddress(host: UInt32(bigEndian: addr.sin_addr.s_addr), port: UInt16(bigEndian: addr.sin_port)))
    }

    // The batch of `receiveBatched`: `batchCount` datagrams of one recvmmsg, `stride` bytes apart.
    public static let batchMax = 32
    private static let batchStride = 2048
    private var batchBytes = [UInt8](repeating: 0, count: UDPTransport.batchMax * UDPTransport.batchStride)
    private var batchLengths = [UInt32](repeating: 0, count: UDPTransport.batchMax)
    private var batchHosts = [UInt32](repeating: 0, count: UDPTransport.batchMax)
    private var batchPorts = [UInt16](repeating: 0, count: UDPTransport.batchMax)
    private var scratch: [UInt8] = []
    private var batchCount = 0
    private var batchNext = 0
    /// False once a batch came back short: the socket was empty then, so
    /// another recvmmsg would only say EAGAIN until `noteReadable()`.
    private var batchMayHaveMore = true

    /// SO_RCVTIMEO now set on the socket (ms); 0 while it is still non-blocking.
    private var receiveTimeoutMs: Int32 = 0

    /// The node's wait: blocks up to `timeoutMs` for a datagram and takes it,
    /// with whatever else is queued, into the batch in one recvmmsg. So a node
    /// costs two system calls per request (this and the answer's sendto), not
    /// poll + recvfrom + sendto + a recvfrom that finds nothing. True if the
    /// batch holds datagrams for `receiveBatched`. The first call makes the
    /// socket blocking (sends stay non-blocking, see `send`).
    public func waitAndReceiveBatch(timeoutMs: Int32) -> Bool {
        if batchNext < batchCount { return true }
        guard timeoutMs > 0 else {
            batchMayHaveMore = true
            return refillBatch(wait: false)
        }
        if receiveTimeoutMs == 0 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) }
        // A power of two no longer than asked: never past the runtime's next
        // timer, and set again only every few waits (it is a system call too).
        let timeout = Int32(1) << (31 - UInt32(timeoutMs).leadingZeroBitCount)
        if timeout != receiveTimeoutMs {
            var tv = timeval(tv_sec: Int(timeout / 1000), tv_usec: Int(timeout % 1000) * 1000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            receiveTimeoutMs = timeout
        }
        return refillBatch(wait: true)
    }

    /// Adaptive polling, the node's side (`TDOS_POLL_US`): non-blocking
    /// recvmmsg again and again until a datagram is there or the monotonic
    /// clock reaches `untilUs`. Right after traffic the next request of a
    /// back-to-back caller usually comes within tens of µs; taking it here
    /// saves the sleep and the wake-up of a blocking receive (on this kind of
    /// VM the dearest part of a loopback round trip). Bounded by the caller's
    /// window, so an idle node never spins. True if the batch holds datagrams.
    /// Each poll is one non-blocking recvfrom into the batch's first slot, not
    /// a recvmmsg: most polls find nothing, and on this VM a recvfrom that
    /// finds nothing costs ~0.5 µs where a 32-message recvmmsg costs ~1-1.4 µs,
    /// so a request that arrives is seen sooner and taken with the cheaper call.
    /// Whatever else is queued comes in one recvmmsg (`receiveBatched`), after
    /// the answer to this one has gone out.
    public func pollBatch(untilUs: UInt64) -> Bool {
        if batchNext < batchCount { return true }
        repeat {
            if receiveOneIntoBatch() { return true }
            HostPolling.pause()
        } while monotonicNs() / 1000 < untilUs
        return false
    }

    /// One datagram, if one is queued, into slot 0 of the batch (a batch of one
    /// that may have more behind it).
    private func receiveOneIntoBatch() -> Bool {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = batchBytes.withUnsafeMutableBytes { raw in
            withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, raw.baseAddress, Self.batchStride, Int32(MSG_DONTWAIT), $0, &len)
                }
            }
        }
        guard n >= 0 else { return false }
        batchLengths[0] = UInt32(n)
        batchHosts[0] = UInt32(bigEndian: addr.sin_addr.s_addr)
        batchPorts[0] = UInt16(bigEndian: addr.sin_port)
        batchCount = 1
        batchNext = 0
        batchMayHaveMore = true
        return true
    }

    private func refillBatch(wait: Bool) -> Bool {
        let n = batchBytes.withUnsafeMutableBufferPointer { bytes in
            batchLengths.withUnsafeMutableBufferPointer { lengths in
                batchHosts.withUnsafeMutableBufferPointer { hosts in
                    batchPorts.withUnsafeMutableBufferPointer { ports in
                        tdos_recv_batch(fd, bytes.baseAddress, Self.batchStride, Int32(Self.batchMax),
                                        lengths.baseAddress, hosts.baseAddress, ports.baseAddress, wait ? 1 : 0)
                    }
                }
            }
        }
        batchCount = max(0, Int(n))
        batchNext = 0
        batchMayHaveMore = batchCount == Self.batchMax
        return batchCount > 0
    }

    /// One datagram without blocking, from the batch `waitAndReceiveBatch`
    /// filled, or from a fresh one in one recvmmsg. After a short batch it
    /// returns nil without a system call (the socket was empty then; the next
    /// wait takes what comes).
    public func receiveBatched() -> (bytes: [UInt8], from: NodeAddress)? {
        if batchNext == batchCount {
            guard batchMayHaveMore, refillBatch(wait: false) else { return nil }
        }
        let i = batchNext
        batchNext += 1
        let start = i * Self.batchStride
        // Refilled in place when the caller has let go of the previous datagram
        // (the node does, before it asks for the next): no allocation per datagram.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: batchBytes[start..<(start + min(Int(batchLengths[i]), Self.batchStride))])
        return (scratch, NodeAddress(host: batchHosts[i], port: batchPorts[i]))
    }

    /// Blocks until a datagram is readable or `timeoutMs` passes (-1 = forever).
    public func waitReadable(timeoutMs: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, timeoutMs) > 0
    }
}

public func ipv4String(_ host: UInt32) -> String {
    "\(host >> 24).\((host >> 16) & 0xFF).\((host >> 8) & 0xFF).\(host & 0xFF)"
}

public func parseIPv4(_ s: String) -> UInt32? {
    let parts = s.split(separator: ".")
    guard parts.count == 4 else { return nil }
    var v: UInt32 = 0
    for p in parts {
        guard let b = UInt8(p) else { return nil }
        v = v << 8 | UInt32(b)
    }
    return v
}
