// The board's sensors over tdos_board.h: the RP2040's internal temperature
// sensor (ADC4), an analog light sensor on GPIO26 (ADC0), and the I2C bus the
// humidity sensor (SHT3x.swift) sits on. Values are integers in fixed units
// (centi-degrees, permille) so that no floating point is needed on the board.
import TDOSBoard

/// The RP2040's on-die temperature sensor: it reads the chip, which runs a few
/// degrees above the air; good for trends and for the `temp_sensor` service of a
/// board without an external sensor.
public struct InternalTemperatureSensor {
    public init() {}

    /// Centi-degrees Celsius, or nil if the ADC could not be read.
    /// RP2040 datasheet 4.9.5: T = 27 - (V - 0.706) / 0.001721, V = raw * 3.3 / 4096.
    public func readCentiCelsius() -> Int32? {
        var raw: UInt16 = 0
        guard tdos_adc_read(TDOS_ADC_TEMPERATURE, &raw) == TDOS_OK else { return nil }
        return InternalTemperatureSensor.centiCelsius(raw: raw)
    }

    /// The conversion alone, in integers: microvolts, then centi-degrees.
    public static func centiCelsius(raw: UInt16) -> Int32 {
        // 3.3 V / 4096 = 805.6640625 uV per count = 103125 / 128 exactly; this
        // form stays far inside Int32 (4095 * 103125 < 2^29).
        let microvolts = Int32(raw) * 103_125 / 128
        // (V - 0.706 V) / 1.721 mV per degree, in centi-degrees: uV * 100 / 1721.
        return 2700 - (microvolts - 706_000) * 100 / 1721
    }
}

/// An analog light sensor (LDR or phototransistor divider) on GPIO26: reported as
/// permille of full scale, brighter = higher. Lux needs a per-part calibration
/// curve, which belongs to the config, not here.
public struct LightSensor {
    public init() {}

    public func readPermille() -> UInt16? {
        var raw: UInt16 = 0
        guard tdos_adc_read(TDOS_ADC_LIGHT, &raw) == TDOS_OK else { return nil }
        return UInt16(UInt32(raw) * 1000 / 4095)
    }
}

public enum I2CError: Error, Equatable {
    case invalid, noAcknowledge, timeout, unsupported

    init(code: Int32) {
        switch code {
        case TDOS_E_TIMEOUT: self = .timeout
        case TDOS_E_IO: self = .noAcknowledge
        case TDOS_E_UNSUPPORTED: self = .unsupported
        default: self = .invalid
        }
    }
}

/// One I2C controller on a pair of pins.
public struct I2CBus {
    public let bus: UInt32

    /// Default wiring for TDOS boards: I2C0 on GPIO4 (SDA) and GPIO5 (SCL), free
    /// on a Pico W even with a Pico Display attached.
    public init(bus: UInt32 = 0, sdaPin: UInt32 = 4, sclPin: UInt32 = 5, baudHz: UInt32 = 100_000) throws(I2CError) {
        self.bus = bus
        let rc = tdos_i2c_init(bus, sdaPin, sclPin, baudHz)
        guard rc == TDOS_OK else { throw I2CError(code: rc) }
    }

    public func write(address: UInt8, _ bytes: [UInt8], keepBus: Bool = false) throws(I2CError) {
        let rc = bytes.withUnsafeBufferPointer {
            tdos_i2c_write(bus, address, $0.baseAddress, UInt32($0.count), keepBus)
        }
        guard rc >= 0 else { throw I2CError(code: rc) }
    }

    public func read(address: UInt8, count: Int) throws(I2CError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let rc = out.withUnsafeMutableBufferPointer {
            tdos_i2c_read(bus, address, $0.baseAddress, UInt32($0.count))
        }
        guard rc >= 0 else { throw I2CError(code: rc) }
        return out
    }
}
