/// Reads a TOML 1.0 document into a `TOMLTable`, refusing what TOML refuses (checked against
/// the toml-test compliance suite). Works on the file's bytes; errors carry the line so
/// `check-config` can point at it.
public struct TOMLParser {
    public struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Arrays, inline tables and key parts deeper than this are refused: each level is a frame
    /// of the reader's stack (a test thread has 512 KiB), and no config nests past a handful.
    public static let maxDepth = 48

    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0
    private let root = TOMLTree(.root)
    /// The table that `key = value` lines write into: the last header's.
    private var current: TOMLTree
    /// Lines counted up to `counted.position`: the parser only moves forward, so each byte is
    /// counted once however many keys ask for their line.
    private var counted = (position: 0, line: 1)

    public static func parse(_ text: String) throws(SyntaxError) -> TOMLTable {
        try parse(bytes: Array(text.utf8))
    }

    public static func parse(bytes: [UInt8]) throws(SyntaxError) -> TOMLTable {
        var parser = TOMLParser(bytes: bytes)
        try parser.checkEncoding()
        return try parser.document()
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
        current = root
    }

    // MARK: Document structure

    private mutating func document() throws(SyntaxError) -> TOMLTable {
        if lookahead([0xEF, 0xBB, 0xBF]) { index = 3 } // a UTF-8 byte order mark
        while true {
            skipSpaces()
            guard let b = peek() else { return root.table }
            switch b {
            case UInt8(ascii: "#"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                try endOfLine()
            case UInt8(ascii: "["):
                try header()
            default:
                try keyValue(into: current)
                try endOfLine()
            }
        }
    }

    private mutating func header() throws(SyntaxError) {
        let line = lineHere()
        index += 1 // [
        let isArray = peek() == UInt8(ascii: "[")
        if isArray { index += 1 }
        skipSpaces()
        let path = try dottedKey()
        skipSpaces()
        try expect("]")
        if isArray { try expect("]") }
        try endOfLine()

        var table = root
        for key in path.dropLast() {
            switch table[key] {
            case nil:
                let child = TOMLTree(.implicit, line: line)
                table[key] = .table(child)
                table.lines[key] = line
                table = child
            case .table(let child): table = child
            case .tables(let children): table = children[children.count - 1]
            case .value: throw fail("'\(key)' is already a value, not a table")
            }
        }
        let name = path.joined(separator: ".")
        let last = path[path.count - 1]
        let defined = TOMLTree(.header, line: line)
        if table[last] == nil { table.lines[last] = line }
        if isArray {
            switch table[last] {
            case nil: table[last] = .tables([defined])
            case .tables(let children): table[last] = .tables(children + [defined])
            default: throw fail("'\(name)' is not an array of tables")
            }
            current = defined
            return
        }
        switch table[last] {
        case nil:
            table[last] = .table(defined)
            current = defined
        case .table(let existing) where existing.origin == .implicit:
            existing.origin = .header
            existing.line = line
            current = existing
        case .table(let existing) where existing.origin == .dotted:
            throw fail("table [\(name)] is defined twice (by dotted keys before)")
        case .table:
            throw fail("table [\(name)] is defined twice")
        default:
            throw fail("'\(name)' is already a value, not a table")
        }
    }

    /// `key = value`, into `table` (the current section's, or an inline table being read).
    private mutating func keyValue(into table: TOMLTree) throws(SyntaxError) {
        let line = lineHere()
        let path = try dottedKey()
        skipSpaces()
        try expect("=")
        skipSpaces()
        try enter(path.count)
        let value = try self.value()
        depth -= path.count
        var target = table
        for key in path.dropLast() {
            switch target[key] {
            case nil:
                let child = TOMLTree(.dotted, line: line)
                target[key] = .table(child)
                target.lines[key] = line
                target = child
            case .table(let child) where child.origin == .dotted || child.origin == .implicit:
                // Dotted keys define what they pass through: no [header] may define it later.
                child.origin = .dotted
                target = child
            case .table, .tables:
                throw fail("'\(key)' was defined elsewhere; dotted keys cannot add to it")
            case .value:
                throw fail("'\(key)' is already a value, not a table")
            }
        }
        let last = path[path.count - 1]
        guard target[last] == nil else { throw fail("key '\(path.joined(separator: "."))' is set twice") }
        target[last] = .value(value)
        target.lines[last] = line
    }

    // MARK: Keys

    private mutating func dottedKey() throws(SyntaxError) -> [String] {
        var parts = [try simpleKey()]
        while true {
            skipSpaces()
            guard peek() == UInt8(ascii: ".") else { return parts }
            index += 1
            skipSpaces()
            parts.append(try simpleKey())
            guard parts.count <= Self.maxDepth else { throw fail("a key has more than \(Self.maxDepth) parts") }
        }
    }

    private mutating func simpleKey() throws(SyntaxError) -> String {
        switch peek() {
        case UInt8(ascii: "\""): return try basicString()
        case UInt8(ascii: "'"): return try literalString()
        default:
            let start = index
            while let b = peek(), Self.isBareKey(b) { index += 1 }
            guard index > start else { throw fail("expected a key but found \(found())") }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
    }

    private static func isBareKey(_ b: UInt8) -> Bool {
        isDigit(b) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }

    // MARK: Values

    private mutating func value() throws(SyntaxError) -> TOMLValue {
        guard let b = peek() else { throw fail("expected a value at the end of the file") }
        switch b {
        case UInt8(ascii: "\""):
            return .string(lookahead(Array(#"""""#.utf8)) ? try multilineString(literal: false) : try basicString())
        case UInt8(ascii: "'"):
            return .string(lookahead(Array("'''".utf8)) ? try multilineString(literal: true) : try literalString())
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "{"): return try inlineTable()
        case UInt8(ascii: "t") where lookahead(Array("true".utf8)): index += 4; return .bool(true)
        case UInt8(ascii: "f") where lookahead(Array("false".utf8)): index += 5; return .bool(false)
        default:
            if looksLikeDate() || looksLikeTime() { return .dateTime(try dateTime()) }
            return try number()
        }
    }

    private mutating func array() throws(SyntaxError) -> TOMLValue {
        index += 1 // [
        try enter(1)
        defer { depth -= 1 }
        var items: [TOMLValue] = []
        while true {
            try skipBlankLinesAndComments()
            if peek() == UInt8(ascii: "]") { index += 1; return .array(items) }
            items.append(try value())
            try skipBlankLinesAndComments()
            if peek() == UInt8(ascii: ",") { index += 1; continue }
            try expect("]")
            return .array(items)
        }
    }

    /// `{ a = 1, b.c = 2 }`: on one line, no trailing comma, closed to later additions.
    private mutating func inlineTable() throws(SyntaxError) -> TOMLValue {
        index += 1 // {
        try enter(1)
        defer { depth -= 1 }
        let table = TOMLTree(.inline, line: lineHere())
        skipSpaces()
        if peek() == UInt8(ascii: "}") { index += 1; return .table(table.table) }
        while true {
            skipSpaces()
            try keyValue(into: table)
            skipSpaces()
            if peek() == UInt8(ascii: ",") { index += 1; continue }
            try expect("}")
            return .table(table.table)
        }
    }

    private mutating func enter(_ levels: Int) throws(SyntaxError) {
        depth += levels
        guard depth <= Self.maxDepth else { throw fail("values are nested more than \(Self.maxDepth) deep") }
    }

    private mutating func number() throws(SyntaxError) -> TOMLValue {
        let start = index
        while let b = peek(), Self.isBareKey(b) || b == UInt8(ascii: "+") || b == UInt8(ascii: ".") { index += 1 }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        guard !text.isEmpty else { throw fail("expected a value but found \(found()) (strings need quotes)") }
        guard let value = TOMLNumber.parse(text) else {
            let looksNumeric = text.first.map { $0.isNumber || $0 == "+" || $0 == "-" } ?? false
            throw fail(looksNumeric ? "'\(text)' is not a number TOML knows" : "'\(text)' is not a value TOML knows (strings need quotes)")
        }
        return value
    }

    // MARK: Dates and times

    private func looksLikeDate() -> Bool {
        digits(at: index, count: 4) && byte(at: index + 4) == UInt8(ascii: "-")
    }

    private func looksLikeTime() -> Bool {
        digits(at: index, count: 2) && byte(at: index + 2) == UInt8(ascii: ":")
    }

    private mutating func dateTime() throws(SyntaxError) -> TOMLDateTime {
        var value = TOMLDateTime()
        if looksLikeDate() {
            let year = try fixedDigits(4)
            try expect("-")
            let month = try fixedDigits(2)
            try expect("-")
            let day = try fixedDigits(2)
            guard (1...12).contains(month), (1...TOMLDateTime.daysIn(month: month, year: year)).contains(day) else {
                throw fail("\(year)-\(month)-\(day) is not a date")
            }
            value.date = .init(year: year, month: month, day: day)
            // The time follows a T, or a space when a time comes right after it.
            let separator = peek()
            let timeFollows = separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t")
                || (separator == UInt8(ascii: " ") && digits(at: index + 1, count: 2) && byte(at: index + 3) == UInt8(ascii: ":"))
            guard timeFollows else { return value }
            index += 1
        }
        let hour = try fixedDigits(2)
        try expect(":")
        let minute = try fixedDigits(2)
        try expect(":")
        let second = try fixedDigits(2)
        var nanosecond = 0
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let first = peek(), Self.isDigit(first) else { throw fail("a fraction of a second needs digits") }
            var place = 100_000_000
            while let b = peek(), Self.isDigit(b) {
                nanosecond += Int(b - 0x30) * place
                place /= 10
                index += 1
            }
        }
        guard hour < 24, minute < 60, second <= 60 else { throw fail("\(hour):\(minute):\(second) is not a time of day") }
        value.time = .init(hour: hour, minute: minute, second: second, nanosecond: nanosecond)
        guard value.date != nil else { return value }
        switch peek() {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
            value.offsetMinutes = 0
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = peek() == UInt8(ascii: "-") ? -1 : 1
            index += 1
            let hours = try fixedDigits(2)
            try expect(":")
            let minutes = try fixedDigits(2)
            guard hours < 24, minutes < 60 else { throw fail("the offset \(hours):\(minutes) is not one") }
            value.offsetMinutes = sign * (hours * 60 + minutes)
        default: break
        }
        return value
    }

    private mutating func fixedDigits(_ count: Int) throws(SyntaxError) -> Int {
        guard digits(at: index, count: count) else { throw fail("expected \(count) digits of a date or time but found \(found())") }
        var value = 0
        for b in bytes[index..<index + count] { value = value * 10 + Int(b - 0x30) }
        index += count
        return value
    }

    private func digits(at position: Int, count: Int) -> Bool {
        (position..<position + count).allSatisfy { byte(at: $0).map(Self.isDigit) ?? false }
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    // MARK: Strings

    private mutating func basicString() throws(SyntaxError) -> String {
        index += 1 // "
        var text: [UInt8] = []
        while true {
            guard let b = peek(), b != UInt8(ascii: "\n"), b != UInt8(ascii: "\r") else {
                throw fail("a string is not closed on its line")
            }
            if b == UInt8(ascii: "\"") { index += 1; return String(decoding: text, as: UTF8.self) }
            if b == UInt8(ascii: "\\") { try escape(into: &text); continue }
            try checkNotControl(b, in: "a string")
            text.append(b)
            index += 1
        }
    }

    private mutating func literalString() throws(SyntaxError) -> String {
        index += 1 // '
        let start = index
        while true {
            guard let b = peek(), b != UInt8(ascii: "\n"), b != UInt8(ascii: "\r") else {
                throw fail("a string is not closed on its line")
            }
            if b == UInt8(ascii: "'") {
                index += 1
                return String(decoding: bytes[start..<index - 1], as: UTF8.self)
            }
            try checkNotControl(b, in: "a string")
            index += 1
        }
    }

    /// `"""…"""` or `'''…'''`: a newline right after the opening is dropped, and up to two
    /// quotes may stand right before the closing ones.
    private mutating func multilineString(literal: Bool) throws(SyntaxError) -> String {
        let quote = literal ? UInt8(ascii: "'") : UInt8(ascii: "\"")
        index += 3
        if peek() == UInt8(ascii: "\n") { index += 1 } else if lookahead([0x0D, 0x0A]) { index += 2 }
        var text: [UInt8] = []
        while true {
            guard let b = peek() else { throw fail("a \(literal ? "'''" : "\"\"\"") string is not closed") }
            if b == quote, lookahead([quote, quote, quote]) {
                var run = 0
                while peek() == quote { run += 1; index += 1 }
                guard run <= 5 else { throw fail("three quotes in a row end a string; escape one of them") }
                text += Array(repeating: quote, count: run - 3)
                return String(decoding: text, as: UTF8.self)
            }
            if b == UInt8(ascii: "\\"), !literal {
                if try skipLineEndingBackslash() { continue }
                try escape(into: &text)
                continue
            }
            if b == UInt8(ascii: "\r") {
                guard byte(at: index + 1) == UInt8(ascii: "\n") else { throw fail("a carriage return must be followed by a newline") }
                index += 1
                continue
            }
            if b != UInt8(ascii: "\n") { try checkNotControl(b, in: "a string") }
            text.append(b)
            index += 1
        }
    }

    /// A backslash that ends a line in a `"""` string drops the newline and the white space
    /// after it. Returns false when the backslash starts an ordinary escape.
    private mutating func skipLineEndingBackslash() throws(SyntaxError) -> Bool {
        var i = index + 1
        while let b = byte(at: i), b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") { i += 1 }
        guard byte(at: i) == UInt8(ascii: "\n") || (byte(at: i) == UInt8(ascii: "\r") && byte(at: i + 1) == UInt8(ascii: "\n")) else {
            return false
        }
        index = i
        while let b = peek(), b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") {
            if b == UInt8(ascii: "\r"), byte(at: index + 1) != UInt8(ascii: "\n") { throw fail("a carriage return must be followed by a newline") }
            index += 1
        }
        return true
    }

    private mutating func escape(into text: inout [UInt8]) throws(SyntaxError) {
        index += 1 // backslash
        guard let b = peek() else { throw fail("a string ends inside an escape") }
        index += 1
        let simple: [UInt8: UInt8] = [
            UInt8(ascii: "n"): 0x0A, UInt8(ascii: "t"): 0x09, UInt8(ascii: "r"): 0x0D, UInt8(ascii: "b"): 0x08,
            UInt8(ascii: "f"): 0x0C, UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C,
        ]
        if let replacement = simple[b] { text.append(replacement); return }
        guard b == UInt8(ascii: "u") || b == UInt8(ascii: "U") else {
            throw fail("unknown escape \\\(Self.describe(b))")
        }
        let count = b == UInt8(ascii: "u") ? 4 : 8
        var code: UInt32 = 0
        for _ in 0..<count {
            guard let h = peek(), let digit = Self.hexValue(h) else { throw fail("\\\(Self.describe(b)) needs \(count) hex digits") }
            code = code << 4 | UInt32(digit)
            index += 1
        }
        guard let scalar = Unicode.Scalar(code) else { throw fail("\\\(Self.describe(b)) escapes U+\(String(code, radix: 16, uppercase: true)), which is not a Unicode scalar") }
        text += Array(String(Character(scalar)).utf8)
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }

    /// TOML allows no control character but tab in strings and comments.
    private func checkNotControl(_ b: UInt8, in place: String) throws(SyntaxError) {
        if (b < 0x20 && b != UInt8(ascii: "\t")) || b == 0x7F {
            throw fail("the control character \(Self.describe(b)) is not allowed in \(place)")
        }
    }

    // MARK: Blank space, comments, line ends

    private mutating func skipSpaces() {
        while let b = peek(), b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") { index += 1 }
    }

    private mutating func skipComment() throws(SyntaxError) {
        guard peek() == UInt8(ascii: "#") else { return }
        index += 1
        while let b = peek(), b != UInt8(ascii: "\n") {
            if b == UInt8(ascii: "\r"), byte(at: index + 1) == UInt8(ascii: "\n") { return }
            try checkNotControl(b, in: "a comment")
            index += 1
        }
    }

    /// Consumes one line end; false at the end of the file.
    private mutating func lineEnd() throws(SyntaxError) -> Bool {
        switch peek() {
        case UInt8(ascii: "\n"): index += 1; return true
        case UInt8(ascii: "\r"):
            guard byte(at: index + 1) == UInt8(ascii: "\n") else { throw fail("a carriage return must be followed by a newline") }
            index += 2
            return true
        default: return false
        }
    }

    /// Blank, comments and line ends, as arrays allow between their values.
    private mutating func skipBlankLinesAndComments() throws(SyntaxError) {
        repeat {
            skipSpaces()
            try skipComment()
        } while try lineEnd()
    }

    /// What may follow a value or a header: blank, a comment, then the end of the line.
    private mutating func endOfLine() throws(SyntaxError) {
        skipSpaces()
        try skipComment()
        guard peek() != nil else { return }
        guard try lineEnd() else { throw fail("unexpected \(found()) after a value: one key = value a line") }
    }

    // MARK: Bytes

    /// TOML documents are UTF-8: refuse any other bytes before reading.
    private func checkEncoding() throws(SyntaxError) {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return
            case .error:
                throw SyntaxError(line: line(at: offset), message: "the file is not valid UTF-8 (byte \(offset + 1))")
            }
        }
    }

    private func peek() -> UInt8? { byte(at: index) }
    private func byte(at position: Int) -> UInt8? { position < bytes.count ? bytes[position] : nil }

    private func lookahead(_ word: [UInt8]) -> Bool {
        index + word.count <= bytes.count && bytes[index..<index + word.count].elementsEqual(word)
    }

    private mutating func expect(_ c: Unicode.Scalar) throws(SyntaxError) {
        guard peek() == UInt8(ascii: c) else { throw fail("expected '\(c)' but found \(found())") }
        index += 1
    }

    private func found() -> String {
        guard let b = peek() else { return "the end of the file" }
        return Self.describe(b)
    }

    private static func describe(_ b: UInt8) -> String {
        if b == UInt8(ascii: "\n") { return "the end of the line" }
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    /// The line `index` is on, counted on from the last time.
    private mutating func lineHere() -> Int {
        let end = min(index, bytes.count)
        if end > counted.position {
            counted.line += bytes[counted.position..<end].reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            counted.position = end
        }
        return counted.line
    }

    private func line(at position: Int) -> Int {
        1 + bytes[..<min(position, bytes.count)].reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    }

    private func fail(_ message: String) -> SyntaxError {
        SyntaxError(line: line(at: index), message: message)
    }
}
