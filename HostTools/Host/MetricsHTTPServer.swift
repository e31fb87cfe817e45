// A tiny HTTP/1.1 server for Prometheus scrapes: `GET /metrics` answers with
// the text a closure returns (`prometheusText(mesh:)` of the latest reports);
// anything else gets 404 or 405. One connection at a time, `Connection: close`,
// request heads limited to 8 KB and 2 s: a scrape endpoint, not a web server.
// POSIX sockets on a background thread.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public final class MetricsHTTPServer: @unchecked Sendable {
    public struct SocketError: Error, CustomStringConvertible {
        public var description: String
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    static let requestBytesMax = 8192
    static let requestTimeoutMs: Int32 = 2000

    /// The port bound (the one asked for, or the kernel's choice for 0).
    public let port: UInt16
    let listener: Int32
    let body: () -> String
    let lock = NSLock()
    var stopping = false
    var thread: Thread?
    var servedCount = 0

    /// Requests answered, for tests and logs.
    public var served: Int {
        lock.lock()
        defer { lock.unlock() }
        return servedCount
    }

    /// Binds and listens; `start()` begins serving. `bindAddress` is an IPv4
    /// address ("0.0.0.0" for every interface).
    public init(port: UInt16, bindAddress: String = "127.0.0.1", body: @escaping () -> String) throws(SocketError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, bindAddress, &addr.sin_addr) == 1 else {
            close(fd)
            throw SocketError(description: "not an IPv4 address: \(bindAddress)")
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw SocketError(description: "bind \(bindAddress):\(port): \(e)")
        }
        var actual = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.port = UInt16(bigEndian: actual.sin_port)
        listener = fd
        self.body = body
    }

    deinit {
        stop()
        close(listener)
    }

    /// Serves on a background thread until `stop()`.
    public func start() {
        let t = Thread { [self] in
            while !isStopping { _ = serveOne(timeoutMs: 200) }
        }
        t.name = "tdos-metrics-http"
        thread = t
        t.start()
    }

    var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    /// Stops serving (the thread ends within ~200 ms).
    public func stop() {
        lock.lock()
        stopping = true
        lock.unlock()
    }

    /// Waits up to `timeoutMs` for one connection and answers it; false if none came.
    @discardableResult
    public func serveOne(timeoutMs: Int32) -> Bool {
        var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { return false }
        let conn = accept(listener, nil, nil)
        guard conn >= 0 else { return false }
        defer { close(conn) }
        let response = respond(to: readHead(conn))
        writeAll(conn, response)
        lock.lock()
        servedCount += 1
        lock.unlock()
        return true
    }

    /// The request head (up to the blank line), or nil if it is too long or too slow.
    func readHead(_ conn: Int32) -> [UInt8]? {
        var head: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1024)
        let terminator: [UInt8] = [13, 10, 13, 10]
        // One deadline for the whole head: a client trickling bytes cannot hold the server.
        let deadlineMs = monotonicMs() + UInt64(MetricsHTTPServer.requestTimeoutMs)
        while head.count < MetricsHTTPServer.requestBytesMax {
            let now = monotonicMs()
            guard now < deadlineMs else { return nil }
            var pfd = pollfd(fd: conn, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, Int32(deadlineMs - now)) > 0 else { return nil }
            let n = buf.withUnsafeMutableBytes { recv(conn, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return head.isEmpty ? nil : head }
            head += buf[0..<n]
            if let r = head.firstRange(of: terminator) { return Array(head[..<r.lowerBound]) }
        }
        return nil
    }

    /// The whole response for a request head.
    func respond(to head: [UInt8]?) -> [UInt8] {
        guard let head, let line = String(decoding: head, as: UTF8.self).split(separator: "\r\n").first else {
            return Self.response(400, "Bad Request", "bad request\n")
        }
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return Self.response(400, "Bad Request", "bad request\n")
        }
        let method = parts[0]
        let path = parts[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        guard path == "/metrics" else { return Self.response(404, "Not Found", "try /metrics\n") }
        guard method == "GET" || method == "HEAD" else {
            return Self.response(405, "Method Not Allowed", "GET only\n", extra: "Allow: GET, HEAD\r\n")
        }
        return Self.response(200, "OK", body(), contentType: Self.contentType, headOnly: method == "HEAD")
    }

    static func response(_ status: Int, _ reason: String, _ body: String, contentType: String = "text/plain; charset=utf-8",
                         extra: String = "", headOnly: Bool = false) -> [UInt8] {
        let b = Array(body.utf8)
        let head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\n"
            + "Content-Length: \(b.count)\r\n\(extra)Connection: close\r\n\r\n"
        return Array(head.utf8) + (headOnly ? [] : b)
    }

    func writeAll(_ conn: Int32, _ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return }
            off += n
        }
    }
}
