// The Linux config sources: a JSON file rejected with the exact line and field
// of every problem, environment overrides, and a node that keeps its last good
// config when a reload fails.

import Foundation
import Testing
@testable import TDOSCore
@testable import TDOSHost

/// The messages loading `json` as "config.json" gives (empty if it loads).
private func problems(_ json: String) -> [String] {
    do {
        _ = try ConfigFile.layer(json: json, name: "config.json")
        return []
    } catch {
        return error.issues.map(\.description)
    }
}

private func tempDir() -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("tdos-config-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
}

@Suite struct ConfigFileTests {
    @Test func goodFileIsMergedOverTheDefaults() throws {
        let json = """
        {
          "network": {"ssid": "lab", "backoff_multiplier": 2},
          "discovery": {"heartbeat_interval_ms": 2000, "service_timeout_ms": 6e3},
          "sensors": {"temp_sensor": {"calibration_offset": -0.5}},
          "power": {"enable_sleep": true}
        }
        """
        let layer = try ConfigFile.layer(json: json, name: "config.json")
        var t = ConfigSchema.defaults()
        try t.merge(layer)
        #expect(t.text("network.ssid", default: []) == Array("lab".utf8))
        #expect(t.value(at: "network.backoff_multiplier") == .number(2), "an int for a number field is a number")
        #expect(t.value(at: "discovery.service_timeout_ms") == .int(6000), "an integral float for an int field is an int")
        #expect(t.int("discovery.heartbeat_interval_ms", default: 0) == 2000)
        #expect(t.int("discovery.port", default: 0) == 4000, "defaults kept beside the file's keys")
        #expect(t.number("sensors.temp_sensor.calibration_offset", default: 0) == -0.5)
        #expect(t.bool("power.enable_sleep", default: false))
        // The printed JSON of the tree is a good file again.
        let again = try ConfigFile.layer(json: t.json(), name: "printed.json")
        #expect(again == t)
    }

    @Test func wrongTypeNamesLineAndField() {
        let json = """
        {
          "network": {
            "ssid": "lab",
            "password": "secret",
            "retry_attempts": 3,
            "connection_timeout_ms": 10000,
            "client_timeout_ms": 3000,
            "max_retries": 3,
            "backoff_multiplier": 1.5
          },
          "discovery": {
            "heartbeat_interval_ms": "fast",
            "service_timeout_ms": 15000
          }
        }
        """
        #expect(problems(json) == [#"config.json:12: field "discovery.heartbeat_interval_ms": expected a number, got "fast""#])
    }

    @Test func everyTypeProblemIsReported() {
        let json = """
        {
          "discovery": {
            "port": 4000.5,
            "heartbeat_interval_ms": 5,
            "service_timeout_ms": true
          },
          "power": {"enable_sleep": "yes"},
          "display": {"brightness_percent": 150},
          "network": {"ssid": "a-very-long-network-name-that-will-not-fit"},
          "sensors": {"temp": {"calibration_offset": "warm"}}
        }
        """
        #expect(problems(json) == [
            #"config.json:3: field "discovery.port": expected an integer, got 4000.5"#,
            #"config.json:4: field "discovery.heartbeat_interval_ms": expected a number in 100...600000, got 5"#,
            #"config.json:5: field "discovery.service_timeout_ms": expected a number, got true"#,
            #"config.json:7: field "power.enable_sleep": expected a boolean, got "yes""#,
            #"config.json:8: field "display.brightness_percent": expected a number in 0...100, got 150"#,
            #"config.json:9: field "network.ssid": expected a string of at most 32 bytes, got 42 bytes"#,
            #"config.json:10: field "sensors.temp.calibration_offset": expected a number, got "warm""#,
        ])
    }

    @Test func trailingComma() {
        let json = """
        {
          "network": {
            "ssid": "lab",
            "max_retries": 4,
          }
        }
        """
        #expect(problems(json) == [#"config.json:4: field "network": trailing comma before "}""#])
        #expect(problems("{\"power\": {\"enable_sleep\": true},\n}") == [#"config.json:1: trailing comma before "}""#])
    }

    @Test func unknownFieldsAreReportedWithSuggestions() {
        let json = """
        {
          "discovery": {
            "heartbeat_intervl_ms": 2000,
            "port": 4001
          },
          "colour": "blue",
          "sensors": {"temp": {"offset": 1}}
        }
        """
        #expect(problems(json) == [
            #"config.json:3: field "discovery.heartbeat_intervl_ms": unknown field (did you mean "heartbeat_interval_ms"?)"#,
            #"config.json:6: field "colour": unknown field"#,
            #"config.json:7: field "sensors.temp.offset": unknown field"#,
        ])
    }

    @Test func badNesting() {
        // A scalar where a group belongs, and a group where a scalar belongs.
        #expect(problems("{\n  \"discovery\": 5\n}") == [#"config.json:2: field "discovery": expected an object, got 5"#])
        #expect(problems("{\n  \"discovery\": {\n    \"port\": {\"value\": 4000}\n  }\n}")
                == [#"config.json:3: field "discovery.port": expected a number, got an object"#])
        #expect(problems("{\"discovery\": {\"port\": [4000]}}")
                == [#"config.json:1: field "discovery.port": expected a number, got an array"#])
        // Brackets that do not match.
        let mismatched = """
        {
          "power": {
            "enable_sleep": true
          ]
        }
        """
        #expect(problems(mismatched) == [#"config.json:4: field "power": expected "," or "}" after field "enable_sleep", got "]""#])
        // An object never closed.
        let unclosed = """
        {
          "power": {
            "enable_sleep": true
        }
        """
        #expect(problems(unclosed) == [#"config.json:4: unexpected end of file: "{" opened on line 1 is not closed"#])
        #expect(problems("[1, 2]") == [#"config.json:1: expected an object at the top level, got an array"#])
    }

    @Test func syntaxErrors() {
        #expect(problems("") == ["config.json:1: the file is empty: expected a JSON object"])
        #expect(problems("{\n\"discovery\": {\n\"port\" 4000}}") == [#"config.json:3: field "discovery.port": expected ":" after the field name, got "4""#])
        #expect(problems("{\"discovery\": {\"port\": 04000}}") == [#"config.json:1: field "discovery.port": invalid number "04000""#])
        #expect(problems("{\"discovery\": {\"port\": 12ms}}") == [#"config.json:1: field "discovery.port": invalid number "12ms""#])
        #expect(problems("{\"power\": {\"enable_sleep\": tru}}") == [#"config.json:1: field "power.enable_sleep": invalid literal "tru" (expected true, false or null)"#])
        #expect(problems("{\"network\": {\"ssid\": \"lab}}") == [#"config.json:1: field "network.ssid": unterminated string (opened on line 1)"#])
        #expect(problems("{\n  \"network\": {\"ssid\": \"a\\qb\"}}") == [#"config.json:2: field "network.ssid": invalid escape "\q" in a string"#])
        #expect(problems("{\"power\": {}} x") == [#"config.json:1: unexpected "x" after the end of the document"#])
        #expect(problems("{\n  power: {}\n}") == [#"config.json:2: expected a field name in double quotes, got "p""#])
        #expect(problems("{\"network\": {\"ssid\": \"a\"}, \"network\": {}}") == [#"config.json:1: field "network": duplicate field"#])
        #expect(problems(String(repeating: "[", count: 40)).first?.contains("nested deeper than 32") == true)
        // Strings: escapes and surrogate pairs decode.
        let t = try? ConfigFile.layer(json: #"{"network": {"ssid": "caf\u00e9 \ud83d\ude00 \"q\""}}"#, name: "x")
        #expect(t?.text("network.ssid", default: []) == Array("café 😀 \"q\"".utf8))
    }

    /// docs/CONFIG.md lists every key of the schema with its default.
    @Test func configDocListsEveryField() throws {
        let doc = try String(contentsOf: repoRoot.appendingPathComponent("docs/CONFIG.md"), encoding: .utf8)
        for f in ConfigSchema.fields {
            let path = String(decoding: f.path, as: UTF8.self).replacingOccurrences(of: "*", with: "<name>")
            let def: String
            switch f.defaultValue {
            case .bool(let b): def = b ? "true" : "false"
            case .int(let i): def = String(i)
            case .number(let d): def = d == d.rounded() ? String(Int(d)) : String(d)
            case .text(let t): def = t.isEmpty ? "(empty)" : "`\(String(decoding: t, as: UTF8.self))`"
            case .map: def = ""
            }
            #expect(doc.contains("| `\(path)` | \(f.kind == .bool ? "bool" : f.kind == .int ? "int" : f.kind == .number ? "number" : "text") | \(def) |"),
                    "docs/CONFIG.md lacks \(path)")
        }
        #expect(doc.contains("the defaults use \(ConfigSchema.defaults().count)"))
    }

    @Test func environmentMapping() {
        #expect(ConfigFile.environmentPath(forVariable: "TDOS_DISCOVERY__HEARTBEAT_INTERVAL_MS") == "discovery.heartbeat_interval_ms")
        #expect(ConfigFile.environmentPath(forVariable: "TDOS_SENSORS__TEMP_SENSOR__CALIBRATION_OFFSET") == "sensors.temp_sensor.calibration_offset")
        #expect(ConfigFile.environmentPath(forVariable: "TDOS_SEED") == nil, "no __: not config")
        #expect(ConfigFile.environmentPath(forVariable: "HOME") == nil)
        for f in ConfigSchema.fields where !f.hasWildcard {
            let path = String(decoding: f.path, as: UTF8.self)
            #expect(ConfigFile.environmentPath(forVariable: ConfigFile.environmentVariable(forPath: path)) == path)
        }
    }

    @Test func environmentOverridesTheFile() throws {
        let dir = tempDir()
        let file = dir.appendingPathComponent("config.json")
        try #"{"discovery": {"heartbeat_interval_ms": 2000, "port": 4001}}"#.write(to: file, atomically: true, encoding: .utf8)
        let env = [
            "TDOS_DISCOVERY__HEARTBEAT_INTERVAL_MS": "7000",
            "TDOS_SENSORS__TEMP_SENSOR__CALIBRATION_OFFSET": "-0.5",
            "TDOS_POWER__ENABLE_SLEEP": "yes",
            "TDOS_NETWORK__SSID": "my lab",
            "TDOS_SEED": "5",
            "PATH": "/usr/bin",
        ]
        let t = try ConfigFile.load(path: file.path, environment: env)
        #expect(t.int("discovery.heartbeat_interval_ms", default: 0) == 7000, "env beats file")
        #expect(t.int("discovery.port", default: 0) == 4001, "file beats defaults")
        #expect(t.number("sensors.temp_sensor.calibration_offset", default: 0) == -0.5)
        #expect(t.bool("power.enable_sleep", default: false))
        #expect(t.text("network.ssid", default: []) == Array("my lab".utf8))
        #expect(t.int("discovery.service_timeout_ms", default: 0) == 15000)
    }

    @Test func badEnvironmentIsReported() {
        let env = [
            "TDOS_DISCOVERY__HEARTBEAT_INTERVAL_MS": "fast",
            "TDOS_DISCOVERY__NOPE": "1",
            "TDOS_POWER__ENABLE_SLEEP": "maybe",
            "TDOS_DISPLAY__BRIGHTNESS_PERCENT": "101",
            "TDOS_DISCOVERY__PORT": "40.5",
        ]
        do {
            _ = try ConfigFile.environmentLayer(env)
            Issue.record("expected errors")
        } catch {
            #expect(error.issues.map(\.description) == [
                #"env TDOS_DISCOVERY__HEARTBEAT_INTERVAL_MS: field "discovery.heartbeat_interval_ms": expected a number, got "fast""#,
                #"env TDOS_DISCOVERY__NOPE: field "discovery.nope": unknown field"#,
                #"env TDOS_DISCOVERY__PORT: field "discovery.port": expected an integer, got "40.5""#,
                #"env TDOS_DISPLAY__BRIGHTNESS_PERCENT: field "display.brightness_percent": expected a number in 0...100, got "101""#,
                #"env TDOS_POWER__ENABLE_SLEEP: field "power.enable_sleep": expected a boolean (true/false/1/0/yes/no/on/off), got "maybe""#,
            ])
        }
    }

    @Test func missingFileIsAnError() {
        #expect(throws: ConfigLoadError.self) { try ConfigFile.load(path: "/nonexistent/tdos.json", environment: [:]) }
        #expect((try? ConfigFile.load(path: nil, environment: [:])) == ConfigSchema.defaults())
    }

    /// A reload that fails keeps the last good config; runtime updates stay on
    /// top of the file and persist to the state file across restarts.
    @Test func lastGoodConfigIsKept() throws {
        let dir = tempDir()
        let file = dir.appendingPathComponent("config.json")
        let state = dir.appendingPathComponent("config.state").path
        try #"{"discovery": {"heartbeat_interval_ms": 2000}}"#.write(to: file, atomically: true, encoding: .utf8)
        let node = try HostConfigStore(filePath: file.path, statePath: state, environment: [:])
        #expect(node.config.int("discovery.heartbeat_interval_ms", default: 0) == 2000)

        // Break the file: reload fails, nothing changes.
        try "{\n  \"discovery\": {\"heartbeat_interval_ms\": \"fast\"}\n}".write(to: file, atomically: true, encoding: .utf8)
        let good = node.config
        #expect(throws: ConfigLoadError.self) { try node.reload(environment: [:]) }
        #expect(node.config == good)
        #expect(node.lastReloadError?.description == #"\#(file.path):2: field "discovery.heartbeat_interval_ms": expected a number, got "fast""#)
        // A bad environment also keeps it.
        try #"{"discovery": {"heartbeat_interval_ms": 3000}}"#.write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigLoadError.self) { try node.reload(environment: ["TDOS_DISCOVERY__PORT": "x"]) }
        #expect(node.config == good)
        // Fixed: the reload applies.
        try node.reload(environment: [:])
        #expect(node.lastReloadError == nil)
        #expect(node.config.int("discovery.heartbeat_interval_ms", default: 0) == 3000)

        // A runtime update wins over the file, is persisted, and survives a restart.
        let u = ConfigUpdate(version: 4, entries: [configEntry("discovery.heartbeat_interval_ms", int: 1500)])
        #expect(try node.apply(u) == .applied(version: 4, entries: 1))
        #expect(FileManager.default.fileExists(atPath: state))
        let restarted = try HostConfigStore(filePath: file.path, statePath: state, environment: [:])
        #expect(restarted.restoreOutcome == .restored(version: 4, dropped: 0))
        #expect(restarted.config.int("discovery.heartbeat_interval_ms", default: 0) == 1500)
        #expect(try restarted.apply(ConfigUpdate(version: 3, entries: [configEntry("discovery.heartbeat_interval_ms", int: 9000)]))
                == .stale(current: 4))
        // Reloading the file does not drop the update.
        try restarted.reload(environment: [:])
        #expect(restarted.config.int("discovery.heartbeat_interval_ms", default: 0) == 1500)
        // A corrupt state file is ignored and said so.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: state)))
        bytes[bytes.count - 1] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: state))
        let fresh = try HostConfigStore(filePath: file.path, statePath: state, environment: [:])
        #expect(fresh.restoreOutcome == .corrupt(.badChecksum))
        #expect(fresh.config.int("discovery.heartbeat_interval_ms", default: 0) == 3000)
    }
}
