// A small strict JSON parser (RFC 8259) that remembers the line of every value
// and key, so a config file can be rejected with "config.json:12: field ...".
// Strict: no comments, no trailing commas, no leading zeros, no NaN; nesting is
// limited. Duplicate keys are kept (the config loader reports them).

/// A parsed JSON value and the 1-based line it starts on.
public struct JSONValue: Equatable {
    public struct Member: Equatable {
        public var key: String
        public var keyLine: Int
        public var value: JSONValue
    }

    public indirect enum Kind: Equatable {
        case object([Member])
        case array([JSONValue])
        case string(String)
        /// The number as written (JSON grammar), so messages can quote it.
        case number(String)
        case bool(Bool)
        case null
    }

    public var kind: Kind
    public var line: Int

    /// How an error message shows this value: a string quoted as JSON, a
    /// number as written, "an object", "an array".
    public var shown: String {
        switch kind {
        case .object: return "an object"
        case .array: return "an array"
        case .string(let s): return jsonQuoted(s)
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }
}

/// A syntax error: the line, the field being read ("" at the top level) and what is wrong.
public struct JSONSyntaxError: Error, Equatable {
    public var line: Int
    public var field: String
    public var message: String
}

/// `s` as a JSON string literal.
public func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

public struct JSONParser {
    public static let depthMax = 32

    let bytes: [UInt8]
    var i = 0
    var line = 1
    /// Keys of the members being read: the "field" of an error.
    var path: [String] = []
    /// Line of each open "{" or "[", for "not closed" messages.
    var openLines: [(bracket: UInt8, line: Int)] = []

    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONValue {
        var p = JSONParser(bytes: bytes)
        if p.bytes.starts(with: [0xEF, 0xBB, 0xBF]) { p.i = 3 }  // a UTF-8 BOM is tolerated
        p.skipSpace()
        guard p.i < p.bytes.count else { throw p.error("the file is empty: expected a JSON object") }
        let v = try p.value()
        p.skipSpace()
        if p.i < p.bytes.count {
            throw p.error("unexpected \(p.shownHere) after the end of the document")
        }
        return v
    }

    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    func error(_ message: String, line: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(line: line ?? self.line, field: path.joined(separator: "."), message: message)
    }

    /// The character at `i` as messages show it.
    var shownHere: String {
        guard i < bytes.count else { return "end of file" }
        let b = bytes[i]
        if b >= 0x20 && b < 0x7F { return "\"\(Character(Unicode.Scalar(b)))\"" }
        return "byte 0x\(String(b, radix: 16))"
    }

    mutating func skipSpace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x0A: line += 1; i += 1
            case 0x20, 0x09, 0x0D: i += 1
            default: return
            }
        }
    }

    func unclosed() -> JSONSyntaxError {
        if let open = openLines.last {
            let b = open.bracket == 0x7B ? "{" : "["
            return error("unexpected end of file: \"\(b)\" opened on line \(open.line) is not closed")
        }
        return error("unexpected end of file")
    }

    mutating func value() throws(JSONSyntaxError) -> JSONValue {
        skipSpace()
        guard i < bytes.count else { throw unclosed() }
        let start = line
        switch bytes[i] {
        case 0x7B: return JSONValue(kind: try object(), line: start)
        case 0x5B: return JSONValue(kind: try array(), line: start)
        case 0x22: return JSONValue(kind: .string(try string()), line: start)
        case 0x2D, 0x30...0x39: return JSONValue(kind: .number(try number()), line: start)
        case 0x74, 0x66, 0x6E:
            var j = i
            while j < bytes.count, (0x61...0x7A).contains(bytes[j]) { j += 1 }
            let word = String(decoding: bytes[i..<j], as: UTF8.self)
            let kind: JSONValue.Kind
            switch word {
            case "true": kind = .bool(true)
            case "false": kind = .bool(false)
            case "null": kind = .null
            default: throw error("invalid literal \"\(word)\" (expected true, false or null)")
            }
            i = j
            return JSONValue(kind: kind, line: start)
        case 0x7D, 0x5D:
            throw error("expected a value, got \(shownHere)")
        default:
            throw error("expected a value, got \(shownHere)")
        }
    }

    mutating func enter(_ bracket: UInt8) throws(JSONSyntaxError) {
        guard openLines.count < JSONParser.depthMax else { throw error("nested deeper than \(JSONParser.depthMax) levels") }
        openLines.append((bracket, line))
        i += 1
    }

    mutating func object() throws(JSONSyntaxError) -> JSONValue.Kind {
        try enter(0x7B)
        var members: [JSONValue.Member] = []
        skipSpace()
        if i < bytes.count && bytes[i] == 0x7D {
            i += 1
            openLines.removeLast()
            return .object(members)
        }
        while true {
            skipSpace()
            guard i < bytes.count else { throw unclosed() }
            guard bytes[i] == 0x22 else {
                throw error("expected a field name in double quotes, got \(shownHere)")
            }
            let keyLine = line
            let key = try string()
            skipSpace()
            guard i < bytes.count else { throw unclosed() }
            guard bytes[i] == 0x3A else {
                path.append(key)
                throw error("expected \":\" after the field name, got \(shownHere)")
            }
            i += 1
            path.append(key)
            let v = try value()
            path.removeLast()
            members.append(JSONValue.Member(key: key, keyLine: keyLine, value: v))
            skipSpace()
            guard i < bytes.count else { throw unclosed() }
            if bytes[i] == 0x2C {
                let commaLine = line
                i += 1
                skipSpace()
                if i < bytes.count && bytes[i] == 0x7D {
                    throw error("trailing comma before \"}\"", line: commaLine)
                }
                continue
            }
            if bytes[i] == 0x7D {
                i += 1
                openLines.removeLast()
                return .object(members)
            }
            throw error("expected \",\" or \"}\" after field \"\(key)\", got \(shownHere)")
        }
    }

    mutating func array() throws(JSONSyntaxError) -> JSONValue.Kind {
        try enter(0x5B)
        var items: [JSONValue] = []
        skipSpace()
        if i < bytes.count && bytes[i] == 0x5D {
            i += 1
            openLines.removeLast()
            return .array(items)
        }
        while true {
            items.append(try value())
            skipSpace()
            guard i < bytes.count else { throw unclosed() }
            if bytes[i] == 0x2C {
                let commaLine = line
                i += 1
                skipSpace()
                if i < bytes.count && bytes[i] == 0x5D {
                    throw error("trailing comma before \"]\"", line: commaLine)
                }
                continue
            }
            if bytes[i] == 0x5D {
                i += 1
                openLines.removeLast()
                return .array(items)
            }
            throw error("expected \",\" or \"]\" in an array, got \(shownHere)")
        }
    }

    mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw error("unterminated string") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            default: throw error("invalid \\u escape in a string")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    mutating func string() throws(JSONSyntaxError) -> String {
        let startLine = line
        i += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw error("unterminated string (opened on line \(startLine))") }
            let b = bytes[i]
            if b == 0x22 { i += 1; break }
            if b < 0x20 {
                if b == 0x0A { throw error("unterminated string: a line break inside a string must be written \\n") }
                throw error("control character 0x\(String(b, radix: 16)) in a string")
            }
            if b != 0x5C { out.append(b); i += 1; continue }
            i += 1
            guard i < bytes.count else { throw error("unterminated string") }
            let e = bytes[i]
            i += 1
            switch e {
            case 0x22: out.append(0x22)
            case 0x5C: out.append(0x5C)
            case 0x2F: out.append(0x2F)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 1 < bytes.count, bytes[i] == 0x5C, bytes[i + 1] == 0x75 else {
                        throw error("unpaired surrogate in a \\u escape")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate in a \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw error("unpaired surrogate in a \\u escape")
                }
                guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape in a string") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw error("invalid escape \"\\\(Character(Unicode.Scalar(e)))\" in a string")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw error("a string is not valid UTF-8") }
        return s
    }

    mutating func number() throws(JSONSyntaxError) -> String {
        let start = i
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.i
            while p.i < p.bytes.count, (0x30...0x39).contains(p.bytes[p.i]) { p.i += 1 }
            return p.i - s
        }
        if bytes[i] == 0x2D { i += 1 }
        let intStart = i
        let n = digits(&self)
        var ok = n > 0 && !(n > 1 && bytes[intStart] == 0x30)
        if ok, i < bytes.count, bytes[i] == 0x2E {
            i += 1
            ok = digits(&self) > 0
        }
        if ok, i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 {
            i += 1
            if i < bytes.count, bytes[i] == 0x2B || bytes[i] == 0x2D { i += 1 }
            ok = digits(&self) > 0
        }
        // A number runs into letters or more digits: "12ms", "0x10".
        var end = i
        while end < bytes.count, ![0x2C, 0x7D, 0x5D, 0x20, 0x09, 0x0A, 0x0D].contains(bytes[end]) { end += 1 }
        let text = String(decoding: bytes[start..<end], as: UTF8.self)
        guard ok, end == i else { throw error("invalid number \"\(text)\"") }
        return text
    }
}
