import Testing
@testable import TDOSCore
@testable import TDOSNode

/// The kernel's weather-station app (seeds: weather_station.py): trends over a
/// window of fresh readings, the forecast they give, alerts and display lines.
@Suite struct WeatherStationTests {
    func text(_ l: TextLine) -> String { String(decoding: l.bytes, as: UTF8.self) }

    func readings(_ t: Double?, _ h: Double?, _ lux: Double? = 300) -> WeatherReadings {
        var r = WeatherReadings()
        r.temperatureC = t
        r.humidityPercent = h
        r.lightLux = lux
        return r
    }

    @Test func trendNeedsFiveSamplesThenFollowsTheSlope() {
        var w = TrendWindow(capacity: 6)
        for v in [10.0, 10.5, 11.0, 11.5] { w.add(v) }
        #expect(w.trend == .insufficientData && w.slope == nil)
        w.add(12.0)
        #expect(w.trend == .rising && abs(w.slope! - 0.5) < 1e-9)
        // Past the capacity the oldest samples leave the window.
        for v in [12.0, 11.0, 10.0, 9.0, 8.0, 7.0] { w.add(v) }
        #expect(w.count == 6 && w.trend == .falling)
    }

    @Test func forecastFromTemperatureAndHumidityTrends() {
        var s = WeatherStation()
        for i in 0..<6 { s.record(readings(20 - Double(i), 50 + 2 * Double(i))) }
        #expect(s.forecast == .rainLikely)
        var c = WeatherStation()
        for i in 0..<6 { c.record(readings(20 + Double(i), 50 - 2 * Double(i))) }
        #expect(c.forecast == .clearingUp)
        // Stale values do not train the trend.
        var stale = WeatherStation()
        for i in 0..<6 {
            var r = readings(20 - Double(i), 50 + 2 * Double(i))
            r.temperatureAgeMs = 9000
            stale.record(r)
        }
        #expect(stale.forecast == .insufficientData && stale.cycles == 6)
    }

    @Test func alertsAndLines() {
        let s = WeatherStation()
        #expect(s.alerts(readings(31.25, 85)).map(text) == ["HIGH TEMP: 31.3C", "HIGH HUMIDITY: 85.0%"])
        #expect(s.alerts(readings(-2, 40)).map(text) == ["LOW TEMP: -2.0C"])
        var r = readings(21.04, nil, 512.4)
        r.lightAgeMs = 12_500
        #expect(s.lines(r).map(text) == ["Temp: 21.0C", "Humidity: unavailable", "Light: 512 lx (stale 12s)",
                                         "All systems normal"])
        // Alerts follow the readings (and the forecast, once there is one) in place of "All systems normal".
        #expect(s.lines(readings(31.25, 85)).map(text) == ["Temp: 31.3C", "Humidity: 85.0%", "Light: 300 lx",
                                                           "HIGH TEMP: 31.3C", "HIGH HUMIDITY: 85.0%"])
        var trained = WeatherStation()
        for i in 0..<5 { trained.record(readings(-10 + Double(i), 50)) }
        #expect(trained.lines(readings(-2, 50)).map(text) == ["Temp: -2.0C", "Humidity: 50.0%", "Light: 300 lx",
                                                              "Forecast: Changing Conditions", "LOW TEMP: -2.0C"])
    }

    /// TextLine's numbers, as the display and the logs print them.
    @Test func textLineNumbers() {
        func line(_ build: (inout TextLine) -> Void) -> String {
            var l = TextLine()
            build(&l)
            return text(l)
        }
        #expect(line { $0.append(UInt64(0)) } == "0")
        #expect(line { $0.append(UInt64.max) } == "18446744073709551615")
        #expect(line { $0.append(Int64.min) } == "-9223372036854775808")
        #expect(line { $0.append(-42) } == "-42")
        #expect(line { $0.append(3.05, decimals: 2) } == "3.05")
        #expect(line { $0.append(12.004, decimals: 3) } == "12.004")
        #expect(line { $0.append(0.001, decimals: 2) } == "0.00")
        #expect(line { $0.append(-0.004, decimals: 2) } == "0.00")
        #expect(line { $0.append(-1.5, decimals: 0) } == "-2")
        #expect(line { $0.append(-7.25, decimals: 1) } == "-7.3")
        #expect(line { $0.append(Double.nan, decimals: 1) } == "nan")
    }
}
