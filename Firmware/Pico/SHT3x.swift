// Sensirion SHT30/31/35 humidity and temperature sensor on I2C (datasheet
// "SHT3x-DIS", v7). Single-shot measurements, high repeatability, no clock
// stretching: the driver starts one, returns, and reads it >= 15.5 ms later, so
// the main loop never blocks on the sensor (poll style, like the rest of TDOS).
public struct SHT3x {
    /// ADDR pin low: 0x44 (most breakouts); high: 0x45.
    public static let defaultAddress: UInt8 = 0x44
    /// Datasheet table 4: high repeatability takes at most 15.5 ms.
    public static let measurementDurationMs: UInt64 = 16

    public let bus: I2CBus
    public let address: UInt8

    public init(bus: I2CBus, address: UInt8 = SHT3x.defaultAddress) {
        self.bus = bus
        self.address = address
    }

    public struct Reading: Equatable {
        public var centiCelsius: Int32
        /// Relative humidity in hundredths of a percent (0...10000).
        public var centiPercentRH: UInt32
    }

    public enum Failure: Error, Equatable {
        case bus(I2CError)
        /// A CRC mismatch: a noisy bus or a wrong device at the address.
        case badChecksum
    }

    /// Single shot, high repeatability, clock stretching disabled (0x2400).
    public func startMeasurement() throws(Failure) {
        do { try bus.write(address: address, [0x24, 0x00]) } catch { throw .bus(error) }
    }

    /// Reads the result of `startMeasurement`; call it measurementDurationMs later
    /// (too early, the sensor does not acknowledge: `.bus(.noAcknowledge)`).
    public func readMeasurement() throws(Failure) -> Reading {
        let b: [UInt8]
        do { b = try bus.read(address: address, count: 6) } catch { throw .bus(error) }
        return try SHT3x.decode(b)
    }

    /// Soft reset (0x30A2): the sensor is ready again after 1.5 ms.
    public func reset() throws(Failure) {
        do { try bus.write(address: address, [0x30, 0xA2]) } catch { throw .bus(error) }
    }

    /// temperature MSB, LSB, CRC, humidity MSB, LSB, CRC.
    public static func decode(_ b: [UInt8]) throws(Failure) -> Reading {
        guard b.count == 6, crc8(b[0], b[1]) == b[2], crc8(b[3], b[4]) == b[5] else { throw .badChecksum }
        let rawT = Int32(b[0]) << 8 | Int32(b[1])
        let rawH = UInt32(b[3]) << 8 | UInt32(b[4])
        // Datasheet 4.13: T = -45 + 175 * raw / 65535; RH = 100 * raw / 65535.
        return Reading(centiCelsius: -4500 + rawT * 17500 / 65535,
                       centiPercentRH: rawH * 10000 / 65535)
    }

    /// CRC-8, polynomial 0x31, init 0xFF, no reflection (datasheet 4.12):
    /// crc8(0xBE, 0xEF) = 0x92.
    public static func crc8(_ a: UInt8, _ b: UInt8) -> UInt8 {
        func step(_ crc: UInt8, _ byte: UInt8) -> UInt8 {
            var c = crc ^ byte
            for _ in 0..<8 {
                c = c & 0x80 != 0 ? (c << 1) ^ 0x31 : c << 1
            }
            return c
        }
        return step(step(0xFF, a), b)
    }
}
