import Foundation

/// Reads a TOML document into a `TOMLTable`. Errors carry the line so `check-config` can
/// point at it.
public struct TOMLParser {
    public struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    private let chars: [Character]
    private var index = 0
    private var line = 1
    private var root = TOMLTable()
    /// Path of the table that `key = value` lines currently write into.
    private var current: [PathStep] = []
    /// Tables opened by a `[header]` or implied by one, to refuse a second `[header]`.
    private var definedTables: Set<String> = []

    private enum PathStep: Equatable {
        case key(String)
        /// The last element of the array of tables under this key.
        case lastOf(String)
    }

    public static func parse(_ text: String) throws(SyntaxError) -> TOMLTable {
        var parser = TOMLParser(chars: Array(text))
        return try parser.document()
    }

    private init(chars: [Character]) { self.chars = chars }

    // MARK: Document structure

    private mutating func document() throws(SyntaxError) -> TOMLTable {
        while true {
            skipBlankAndComments()
            guard let c = peek() else { return root }
            if c == "[" {
                try header()
            } else {
                try keyValueLine()
            }
        }
    }

    private mutating func header() throws(SyntaxError) {
        advance() // [
        let isArray = peek() == "["
        if isArray { advance() }
        skipSpaces()
        let path = try dottedKey()
        skipSpaces()
        try expect("]")
        if isArray { try expect("]") }
        try endOfLine()

        var steps = path.dropLast().map { PathStep.key($0) }
        let last = path[path.count - 1]
        if isArray {
            try appendTable(toArrayAt: steps, key: last)
            steps.append(.lastOf(last))
        } else {
            steps.append(.key(last))
            let name = describe(steps)
            guard !definedTables.contains(name) else {
                throw fail("table [\(path.joined(separator: "."))] is defined twice")
            }
            definedTables.insert(name)
            try ensureTable(at: steps)
        }
        current = steps
    }

    private mutating func keyValueLine() throws(SyntaxError) {
        let path = try dottedKey()
        skipSpaces()
        try expect("=")
        skipSpaces()
        let value = try self.value()
        try endOfLine()
        let tablePath = current + path.dropLast().map { PathStep.key($0) }
        try set(value, at: tablePath, key: path[path.count - 1])
    }

    // MARK: Tree edits

    private func describe(_ steps: [PathStep]) -> String {
        steps.map { step in
            switch step {
            case .key(let k): k
            case .lastOf(let k): k + "[]"
            }
        }.joined(separator: ".")
    }

    private mutating func ensureTable(at steps: [PathStep]) throws(SyntaxError) {
        try modifyTable(at: steps[...], in: &root) { _ throws(SyntaxError) in }
    }

    private mutating func set(_ value: TOMLValue, at steps: [PathStep], key: String) throws(SyntaxError) {
        let line = self.line
        try modifyTable(at: steps[...], in: &root) { table throws(SyntaxError) in
            guard table[key] == nil else {
                throw SyntaxError(line: line, message: "key '\(key)' is set twice")
            }
            table[key] = value
        }
    }

    private mutating func appendTable(toArrayAt steps: [PathStep], key: String) throws(SyntaxError) {
        let line = self.line
        try modifyTable(at: steps[...], in: &root) { table throws(SyntaxError) in
            switch table[key] {
            case nil:
                table[key] = .array([.table(TOMLTable())])
            case .array(var items) where items.allSatisfy({ if case .table = $0 { true } else { false } }):
                items.append(.table(TOMLTable()))
                table[key] = .array(items)
            default:
                throw SyntaxError(line: line, message: "'\(key)' is not an array of tables")
            }
        }
    }

    private func modifyTable(
        at steps: ArraySlice<PathStep>,
        in table: inout TOMLTable,
        _ body: (inout TOMLTable) throws(SyntaxError) -> Void
    ) throws(SyntaxError) {
        guard let step = steps.first else {
            try body(&table)
            return
        }
        let rest = steps.dropFirst()
        switch step {
        case .key(let key):
            var child: TOMLTable
            switch table[key] {
            case nil: child = TOMLTable()
            case .table(let t): child = t
            default: throw fail("'\(key)' is already a value, not a table")
            }
            try modifyTable(at: rest, in: &child, body)
            table[key] = .table(child)
        case .lastOf(let key):
            guard case .array(var items) = table[key], case .table(var child) = items.last else {
                throw fail("'\(key)' is not an array of tables")
            }
            try modifyTable(at: rest, in: &child, body)
            items[items.count - 1] = .table(child)
            table[key] = .array(items)
        }
    }

    // MARK: Keys

    private mutating func dottedKey() throws(SyntaxError) -> [String] {
        var parts = [try simpleKey()]
        while true {
            skipSpaces()
            guard peek() == "." else { return parts }
            advance()
            skipSpaces()
            parts.append(try simpleKey())
        }
    }

    private mutating func simpleKey() throws(SyntaxError) -> String {
        switch peek() {
        case "\"": return try basicString()
        case "'": return try literalString()
        default:
            var key = ""
            while let c = peek(), c.isASCII, c.isLetter || c.isNumber || c == "_" || c == "-" {
                key.append(c)
                advance()
            }
            guard !key.isEmpty else { throw fail("expected a key") }
            return key
        }
    }

    // MARK: Values

    private mutating func value() throws(SyntaxError) -> TOMLValue {
        guard let c = peek() else { throw fail("expected a value at the end of the file") }
        switch c {
        case "\"":
            if lookahead("\"\"\"") { return .string(try multilineBasicString()) }
            return .string(try basicString())
        case "'":
            if lookahead("'''") { return .string(try multilineLiteralString()) }
            return .string(try literalString())
        case "[": return try array()
        case "{": return try inlineTable()
        case "t", "f": return try boolean()
        default: return try number()
        }
    }

    private mutating func boolean() throws(SyntaxError) -> TOMLValue {
        if lookahead("true") { index += 4; return .bool(true) }
        if lookahead("false") { index += 5; return .bool(false) }
        throw fail("expected a value (strings need quotes)")
    }

    private mutating func number() throws(SyntaxError) -> TOMLValue {
        var text = ""
        while let c = peek(), c.isLetter || c.isNumber || "+-_.".contains(c) {
            text.append(c)
            advance()
        }
        guard !text.isEmpty else { throw fail("expected a value") }
        let cleaned = text.replacingOccurrences(of: "_", with: "")
        switch cleaned {
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where cleaned.hasPrefix(prefix) {
            if let v = Int(cleaned.dropFirst(2), radix: radix) { return .integer(v) }
            throw fail("'\(text)' is not a number")
        }
        if let v = Int(cleaned) { return .integer(v) }
        if cleaned.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let v = Double(cleaned) {
            return .float(v)
        }
        throw fail("'\(text)' is not a value TOML knows (strings need quotes)")
    }

    private mutating func array() throws(SyntaxError) -> TOMLValue {
        advance() // [
        var items: [TOMLValue] = []
        while true {
            skipBlankAndComments()
            if peek() == "]" { advance(); return .array(items) }
            items.append(try value())
            skipBlankAndComments()
            if peek() == "," { advance(); continue }
            try expect("]")
            return .array(items)
        }
    }

    private mutating func inlineTable() throws(SyntaxError) -> TOMLValue {
        advance() // {
        var table = TOMLTable()
        skipSpaces()
        if peek() == "}" { advance(); return .table(table) }
        while true {
            skipSpaces()
            let path = try dottedKey()
            skipSpaces()
            try expect("=")
            skipSpaces()
            let v = try value()
            let line = self.line
            try modifyTable(at: path.dropLast().map { PathStep.key($0) }[...], in: &table) { t throws(SyntaxError) in
                guard t[path[path.count - 1]] == nil else {
                    throw SyntaxError(line: line, message: "key '\(path.joined(separator: "."))' is set twice")
                }
                t[path[path.count - 1]] = v
            }
            skipSpaces()
            if peek() == "," { advance(); continue }
            try expect("}")
            return .table(table)
        }
    }

    // MARK: Strings

    private mutating func basicString() throws(SyntaxError) -> String {
        advance() // "
        var s = ""
        while true {
            guard let c = peek(), c != "\n" else { throw fail("a string is not closed on its line") }
            advance()
            if c == "\"" { return s }
            if c == "\\" { s.append(try escape()) } else { s.append(c) }
        }
    }

    private mutating func multilineBasicString() throws(SyntaxError) -> String {
        index += 3
        if peek() == "\n" { advance(); line += 1 }
        var s = ""
        while true {
            guard let c = peek() else { throw fail("a \"\"\" string is not closed") }
            if lookahead("\"\"\"") {
                index += 3
                // Up to two quotes may stand right before the closing delimiter.
                while peek() == "\"" { s.append("\""); advance() }
                return s
            }
            advance()
            if c == "\n" { line += 1 }
            if c == "\\" {
                if let n = peek(), n == "\n" || n == " " || n == "\t" {
                    // A line-ending backslash trims the newline and the white space after it.
                    while let w = peek(), w == "\n" || w == " " || w == "\t" {
                        if w == "\n" { line += 1 }
                        advance()
                    }
                } else {
                    s.append(try escape())
                }
            } else {
                s.append(c)
            }
        }
    }

    private mutating func literalString() throws(SyntaxError) -> String {
        advance() // '
        var s = ""
        while true {
            guard let c = peek(), c != "\n" else { throw fail("a string is not closed on its line") }
            advance()
            if c == "'" { return s }
            s.append(c)
        }
    }

    private mutating func multilineLiteralString() throws(SyntaxError) -> String {
        index += 3
        if peek() == "\n" { advance(); line += 1 }
        var s = ""
        while true {
            guard let c = peek() else { throw fail("a ''' string is not closed") }
            if lookahead("'''") {
                index += 3
                while peek() == "'" { s.append("'"); advance() }
                return s
            }
            advance()
            if c == "\n" { line += 1 }
            s.append(c)
        }
    }

    private mutating func escape() throws(SyntaxError) -> Character {
        guard let c = peek() else { throw fail("a string ends inside an escape") }
        advance()
        switch c {
        case "n": return "\n"
        case "t": return "\t"
        case "r": return "\r"
        case "b": return "\u{08}"
        case "f": return "\u{0C}"
        case "\"": return "\""
        case "\\": return "\\"
        case "u", "U":
            let count = c == "u" ? 4 : 8
            var hex = ""
            for _ in 0..<count {
                guard let h = peek(), h.isHexDigit else { throw fail("\\\(c) needs \(count) hex digits") }
                hex.append(h)
                advance()
            }
            guard let code = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(code) else {
                throw fail("\\\(c)\(hex) is not a Unicode scalar")
            }
            return Character(scalar)
        default:
            throw fail("unknown escape \\\(c)")
        }
    }

    // MARK: Reading

    private func peek() -> Character? { index < chars.count ? chars[index] : nil }
    private mutating func advance() { index += 1 }

    private func lookahead(_ word: String) -> Bool {
        var i = index
        for c in word {
            guard i < chars.count, chars[i] == c else { return false }
            i += 1
        }
        return true
    }

    private mutating func expect(_ c: Character) throws(SyntaxError) {
        guard peek() == c else {
            let found = peek().map { "'\($0)'" } ?? "the end of the file"
            throw fail("expected '\(c)' but found \(found)")
        }
        advance()
    }

    private mutating func skipSpaces() {
        while let c = peek(), c == " " || c == "\t" { advance() }
    }

    private mutating func skipComment() {
        if peek() == "#" {
            while let c = peek(), c != "\n" { advance() }
        }
    }

    private mutating func skipBlankAndComments() {
        while true {
            skipSpaces()
            skipComment()
            guard let c = peek(), c == "\n" || c == "\r\n" || c == "\r" else { return }
            line += 1
            advance()
        }
    }

    private mutating func endOfLine() throws(SyntaxError) {
        skipSpaces()
        skipComment()
        guard let c = peek() else { return }
        guard c == "\n" || c == "\r\n" else { throw fail("unexpected '\(c)' after a value: one key = value a line") }
    }

    private func fail(_ message: String) -> SyntaxError {
        SyntaxError(line: line, message: message)
    }
}
