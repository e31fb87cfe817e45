#if canImport(Glibc)
import Glibc
#endif
import TDOSCore

/// Plausible weather for simulated sensor nodes, seeded and deterministic in
/// the simulated time of day (so two runs with the same seed agree):
/// temperature follows a daily cycle (coolest near 05:00, warmest near 15:00)
/// plus slow drift and noise; relative humidity moves against temperature;
/// light follows the sun (zero at night, a sine by day, dimmed by clouds).
public struct SimulatedWeather {
    public var meanTemperatureC = 18.0
    public var dailySwingC = 6.0
    public var meanHumidityPercent = 55.0
    public var peakLux = 20_000.0
    private var rng: SeededRandom
    private var driftC = 0.0
    private var cloud = 0.3

    public init(seed: UInt64) { rng = SeededRandom(seed: seed) }

    /// Uniform in [-1, 1).
    private mutating func noise() -> Double {
        Double(rng.next() >> 11) / Double(1 << 52) - 1.0
    }

    /// Hour of day (0..<24) for a simulated clock that starts at `startHour`.
    public static func hourOfDay(nowMs: UInt64, startHour: Double, timeScale: Double) -> Double {
        let hours = Double(nowMs) / 3_600_000 * timeScale + startHour
        return hours.truncatingRemainder(dividingBy: 24)
    }

    public mutating func temperatureC(hour: Double) -> Double {
        driftC = max(-2, min(2, driftC + noise() * 0.05))
        // Minimum at 05:00, maximum at 15:00 (shifted cosine of the day).
        let phase = (hour - 15) / 24 * 2 * Double.pi
        return meanTemperatureC + dailySwingC * cos(phase) + driftC + noise() * 0.15
    }

    public mutating func humidityPercent(hour: Double) -> Double {
        let phase = (hour - 15) / 24 * 2 * Double.pi
        // Relative humidity falls as the air warms: opposite phase, ~2.5 %RH per degree.
        let h = meanHumidityPercent - 2.5 * dailySwingC * cos(phase) - 2.5 * driftC + noise() * 0.8
        return max(5, min(100, h))
    }

    public mutating func lightLux(hour: Double) -> Double {
        cloud = max(0, min(0.9, cloud + noise() * 0.02))
        guard hour > 6 && hour < 20 else { return max(0, noise() * 0.5 + 0.5) } // moonlight/streetlight
        let sun = sin((hour - 6) / 14 * Double.pi)
        return max(0, peakLux * sun * (1 - cloud) + noise() * 50)
    }
}
