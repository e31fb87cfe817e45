// The kernel's weather-station app (seeds: weather_station.py,
// intelligent_weather_station.py): reads the three sensors through the mesh,
// tracks trends to make a simple forecast, raises alerts, and renders display
// lines. Pure logic: readings in, lines out; the runtime does the calls.

#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
#endif

public enum Trend: UInt8 {
    case insufficientData, rising, falling, stable
}

public enum Forecast: UInt8 {
    case insufficientData, rainLikely, clearingUp, stable, changing
    public var text: StaticString {
        switch self {
        case .insufficientData: return "Insufficient Data"
        case .rainLikely: return "Rain Likely"
        case .clearingUp: return "Clearing Up"
        case .stable: return "Stable Conditions"
        case .changing: return "Changing Conditions"
        }
    }
}

/// A fixed window of recent values with a least-squares slope per sample.
public struct TrendWindow {
    public let capacity: Int
    private var values = Table<Double>()
    private var head = 0

    public init(capacity: Int = 20) {
        precondition(capacity >= 5)
        self.capacity = capacity
        values.reserveCapacity(capacity)
    }

    public mutating func add(_ v: Double) {
        if values.count < capacity { values.append(v) } else {
            values[head] = v
            head = (head + 1) % capacity
        }
    }

    public var count: Int { values.count }

    /// Slope of the least-squares line through the samples in arrival order.
    public var slope: Double? {
        let n = values.count
        guard n >= 5 else { return nil }
        var sx = 0.0, sy = 0.0, sxy = 0.0, sxx = 0.0
        for i in 0..<n {
            let x = Double(i)
            let y = values[(head + i) % n]
            sx += x; sy += y; sxy += x * y; sxx += x * x
        }
        let d = Double(n) * sxx - sx * sx
        return d == 0 ? 0 : (Double(n) * sxy - sx * sy) / d
    }

    /// The seeds' thresholds: above +0.1 per sample rising, below -0.1 falling.
    public var trend: Trend {
        guard let s = slope else { return .insufficientData }
        return s > 0.1 ? .rising : (s < -0.1 ? .falling : .stable)
    }
}

public struct WeatherReadings: Equatable {
    public var temperatureC: Double?
    public var humidityPercent: Double?
    public var lightLux: Double?
    /// Age of a stale (last-known) value, per sensor; nil when fresh.
    public var temperatureAgeMs: UInt32?
    public var humidityAgeMs: UInt32?
    public var lightAgeMs: UInt32?
    public init() {}
}

public struct WeatherStation {
    public var tempHighC = 30.0
    public var tempLowC = 5.0
    public var humidityHighPercent = 80.0
    public private(set) var temperatures = TrendWindow()
    public private(set) var humidities = TrendWindow()
    public private(set) var cycles: UInt32 = 0

    public init() {}

    public mutating func record(_ r: WeatherReadings) {
        cycles &+= 1
        // Only fresh pairs train the forecast: a stale value would flatten the trend.
        if let t = r.temperatureC, let h = r.humidityPercent, r.temperatureAgeMs == nil, r.humidityAgeMs == nil {
            temperatures.add(t)
            humidities.add(h)
        }
    }

    public var forecast: Forecast {
        switch (temperatures.trend, humidities.trend) {
        case (.insufficientData, _), (_, .insufficientData): return .insufficientData
        case (.falling, .rising): return .rainLikely
        case (.rising, .falling): return .clearingUp
        case (.stable, .stable): return .stable
        default: return .changing
        }
    }

    public func alerts(_ r: WeatherReadings) -> [TextLine] {
        var out: [TextLine] = []
        appendAlerts(r, to: &out)
        return out
    }

    /// The alerts, appended to `out` in place: `lines` adds them without a
    /// second array (and without `append(contentsOf:)` for `[TextLine]`).
    func appendAlerts(_ r: WeatherReadings, to out: inout [TextLine]) {
        if let t = r.temperatureC {
            if t > tempHighC { Self.alert(&out, "HIGH TEMP: ", t, "C") }
            if t < tempLowC { Self.alert(&out, "LOW TEMP: ", t, "C") }
        }
        if let h = r.humidityPercent, h > humidityHighPercent {
            Self.alert(&out, "HIGH HUMIDITY: ", h, "%")
        }
    }

    /// Appends "<label><value to 0.1><unit>": one call per alert, not three
    /// inlined lines and appends.
    @inline(never)
    static func alert(_ out: inout [TextLine], _ label: StaticString, _ value: Double, _ unit: StaticString) {
        var l = TextLine(label)
        l.append(value, decimals: 1)
        l.append(unit)
        out.append(l)
    }

    /// Display lines for the current readings; stale values carry their age.
    public func lines(_ r: WeatherReadings) -> [TextLine] {
        var out: [TextLine] = []
        func value(_ label: StaticString, _ v: Double?, _ decimals: Int, _ unit: StaticString, _ age: UInt32?) {
            var l = TextLine(label)
            if let v {
                l.append(v, decimals: decimals)
                l.append(unit)
                if let age {
                    l.append(" (stale ")
                    l.append(UInt64(age / 1000))
                    l.append("s)")
                }
            } else {
                l.append("unavailable")
            }
            out.append(l)
        }
        value("Temp: ", r.temperatureC, 1, "C", r.temperatureAgeMs)
        value("Humidity: ", r.humidityPercent, 1, "%", r.humidityAgeMs)
        value("Light: ", r.lightLux, 0, " lx", r.lightAgeMs)
        let f = forecast
        if f != .insufficientData {
            var l = TextLine("Forecast: ")
            l.append(f.text)
            out.append(l)
        }
        let before = out.count
        appendAlerts(r, to: &out)
        if out.count == before { out.append(TextLine("All systems normal")) }
        return out
    }
}
