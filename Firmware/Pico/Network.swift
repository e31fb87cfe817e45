// Wi-Fi and the UDP socket over tdos_board.h. The lwIP receive callback (C) copies
// each datagram into a fixed ring; `UDPSocket.receive` drains it. Nothing here
// allocates per datagram except the caller's choice of buffer.
import TDOSBoard

public enum WiFiState: UInt32 {
    case off = 0, joining = 1, up = 2, backoff = 3
}

public struct WiFi {
    public init() {}

    public enum Auth: UInt32 {
        case open = 0, wpa2 = 1, wpa2wpa3 = 2
    }

    /// Starts joining (non-blocking); retries with backoff and rejoins after a loss
    /// on their own, driven by `tdos_board_poll`.
    public func start(ssid: [UInt8], psk: [UInt8], auth: Auth) -> Bool {
        ssid.withUnsafeBufferPointer { s in
            psk.withUnsafeBufferPointer { p in
                tdos_wifi_start(s.baseAddress, UInt32(s.count), p.baseAddress, UInt32(p.count), auth.rawValue) == TDOS_OK
            }
        }
    }

    public func stop() { tdos_wifi_stop() }

    public var status: tdos_wifi_status_t {
        var s = tdos_wifi_status_t()
        tdos_wifi_status(&s)
        return s
    }

    public var state: WiFiState { WiFiState(rawValue: status.state) ?? .off }

    /// Asks the radio (an ioctl round trip): for reports, not for every loop.
    public var rssiDbm: Int32? {
        var dbm: Int32 = 0
        return tdos_wifi_rssi(&dbm) == TDOS_OK ? dbm : nil
    }

    public enum PowerMode: UInt32 {
        case none = 0, performance = 1, aggressive = 2
    }

    @discardableResult
    public func setPowerMode(_ mode: PowerMode) -> Bool {
        tdos_wifi_set_power_mode(mode.rawValue) == TDOS_OK
    }
}

/// Where a datagram came from.
public struct DatagramSource: Equatable {
    public var ip: UInt32
    public var port: UInt16
}

/// The board's one UDP socket.
public struct UDPSocket {
    /// Every datagram the ring keeps fits (TDOS frameBytesMax).
    public static let datagramBytesMax = Int(TDOS_UDP_DATAGRAM_BYTES_MAX)

    public init() {}

    public func open(port: UInt16) -> Bool { tdos_udp_open(port) == TDOS_OK }
    public func close() { tdos_udp_close() }

    @discardableResult
    public func send(_ bytes: [UInt8], to ip: UInt32, port: UInt16) -> Bool {
        bytes.withUnsafeBufferPointer { tdos_udp_send(ip, port, $0.baseAddress, UInt32($0.count)) >= 0 }
    }

    /// To the subnet broadcast address.
    @discardableResult
    public func broadcast(_ bytes: [UInt8], port: UInt16) -> Bool {
        bytes.withUnsafeBufferPointer { tdos_udp_broadcast(port, $0.baseAddress, UInt32($0.count)) >= 0 }
    }

    /// The oldest queued datagram, copied into `buffer` (whose capacity must be
    /// `datagramBytesMax`): its length and source, or nil when the ring is empty.
    public func receive(into buffer: inout [UInt8]) -> (count: Int, source: DatagramSource)? {
        precondition(buffer.count >= UDPSocket.datagramBytesMax)
        var ip: UInt32 = 0
        var port: UInt16 = 0
        let n = buffer.withUnsafeMutableBufferPointer {
            tdos_udp_recv($0.baseAddress, UInt32($0.count), &ip, &port)
        }
        guard n >= 0 else { return nil }
        return (Int(n), DatagramSource(ip: ip, port: port))
    }

    public var stats: tdos_udp_stats_t {
        var s = tdos_udp_stats_t()
        tdos_udp_stats(&s)
        return s
    }
}
