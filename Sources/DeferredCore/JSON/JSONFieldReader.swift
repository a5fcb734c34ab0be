import Foundation

/// Reads a few named fields of a JSON document in one pass over its bytes, checking the whole
/// document against RFC 8259 on the way, and builds nothing for the rest of it.
///
/// A GitHub push is ~8 KB of JSON of which deferred reads eight values; Foundation's
/// JSONDecoder maps the whole document and a dictionary of every key of each object it decodes
/// (a repository has ~90), which made parsing the largest cost of a webhook's intake.
///
/// Where Foundation is lenient the reader is strict: trailing commas, numbers such as `01` or
/// `1.`, unknown escapes, raw control characters in strings, bytes that are not UTF-8 and
/// nesting deeper than `maxDepth` make a document invalid anywhere in it. A key given twice
/// keeps its first value, as Foundation's decoder does. A leading UTF-8 byte order mark is
/// skipped. It never recurses, so no document can exhaust the stack.
public struct JSONFieldReader: Sendable {
    /// A field's value: strings and booleans as read, other values by kind only.
    public enum Value: Sendable, Equatable {
        case string(String)
        case bool(Bool)
        case null
        case number
        case object
        case array
    }

    /// Why a document is not JSON, and where (a byte offset).
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let offset: Int
        public let reason: String

        public var description: String { "\(reason) at byte \(offset)" }
    }

    public static let maxDepth = 256

    /// The wanted paths as a tree of keys: node 0 is the document itself.
    private struct Node: Sendable {
        var children: [(key: [UInt8], node: Int)] = []
        /// The index of the path that ends here, if one does.
        var path: Int?
    }

    private var nodes = [Node()]
    private let pathCount: Int

    /// `paths`: each a list of object keys from the top; `[]` is the document itself.
    public init(paths: [[String]]) {
        pathCount = paths.count
        for (index, path) in paths.enumerated() {
            var node = 0
            for key in path {
                let bytes = Array(key.utf8)
                if let child = nodes[node].children.first(where: { $0.key == bytes }) {
                    node = child.node
                } else {
                    nodes.append(Node())
                    nodes[node].children.append((bytes, nodes.count - 1))
                    node = nodes.count - 1
                }
            }
            nodes[node].path = index
        }
    }

    /// The value at each path, in the order given (nil: not in the document).
    public func read(_ data: Data) throws(Invalid) -> [Value?] {
        let result = data.withUnsafeBytes { bytes in Result { () throws(Invalid) in try read(bytes) } }
        return try result.get()
    }

    public func read(_ bytes: UnsafeRawBufferPointer) throws(Invalid) -> [Value?] {
        var scan = Scan(bytes: bytes)
        return try scan.run(nodes, pathCount: pathCount)
    }
}

extension JSONFieldReader {
    /// One pass over one document.
    private struct Scan {
        let bytes: UnsafeRawBufferPointer
        var at = 0

        private struct Frame {
            let isObject: Bool
            /// The wanted node this container is, when some wanted path runs through it.
            let node: Int?
        }

        private enum Step { case value, firstMember, member, firstElement, afterValue }

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func run(_ nodes: [Node], pathCount: Int) throws(Invalid) -> [Value?] {
            var values = [Value?](repeating: nil, count: pathCount)
            var taken = [Bool](repeating: false, count: nodes.count)
            var stack: [Frame] = []
            stack.reserveCapacity(8)
            // The wanted node the next value is, if any.
            var pending: Int? = 0
            taken[0] = true
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { at = 3 }
            var step = Step.value
            while true {
                switch step {
                case .value:
                    skipSpace()
                    guard at < bytes.count else { throw fail("the document ends where a value should be") }
                    let path = pending.flatMap { nodes[$0].path }
                    switch bytes[at] {
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        let isObject = bytes[at] == UInt8(ascii: "{")
                        guard stack.count < JSONFieldReader.maxDepth else { throw fail("nesting deeper than \(JSONFieldReader.maxDepth)") }
                        if let path { values[path] = isObject ? .object : .array }
                        let through = isObject ? pending.flatMap { nodes[$0].children.isEmpty ? nil : $0 } : nil
                        stack.append(Frame(isObject: isObject, node: through))
                        at += 1
                        step = isObject ? .firstMember : .firstElement
                        continue
                    case UInt8(ascii: "\""):
                        let string = try scanString()
                        if let path { values[path] = .string(try decode(string)) }
                    case UInt8(ascii: "t"):
                        try expectWord("true")
                        if let path { values[path] = .bool(true) }
                    case UInt8(ascii: "f"):
                        try expectWord("false")
                        if let path { values[path] = .bool(false) }
                    case UInt8(ascii: "n"):
                        try expectWord("null")
                        if let path { values[path] = .null }
                    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                        try scanNumber()
                        if let path { values[path] = .number }
                    default:
                        throw fail("a value cannot start with \(shown(bytes[at]))")
                    }
                    step = .afterValue
                case .firstMember, .member:
                    skipSpace()
                    if step == .firstMember, at < bytes.count, bytes[at] == UInt8(ascii: "}") {
                        at += 1
                        stack.removeLast()
                        step = .afterValue
                        continue
                    }
                    guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw fail("an object's key should be a string here") }
                    let key = try scanString()
                    pending = nil
                    if let node = stack[stack.count - 1].node,
                       let child = try matchingChild(of: nodes[node], key), !taken[child] {
                        taken[child] = true
                        pending = child
                    }
                    skipSpace()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw fail("a ':' should follow an object's key") }
                    at += 1
                    step = .value
                case .firstElement:
                    skipSpace()
                    if at < bytes.count, bytes[at] == UInt8(ascii: "]") {
                        at += 1
                        stack.removeLast()
                        step = .afterValue
                        continue
                    }
                    pending = nil
                    step = .value
                case .afterValue:
                    skipSpace()
                    guard let top = stack.last else {
                        guard at == bytes.count else { throw fail("more follows the document's end") }
                        return values
                    }
                    guard at < bytes.count else { throw fail("the document ends inside \(top.isObject ? "an object" : "an array")") }
                    switch (bytes[at], top.isObject) {
                    case (UInt8(ascii: ","), true):
                        at += 1
                        step = .member
                    case (UInt8(ascii: "}"), true), (UInt8(ascii: "]"), false):
                        at += 1
                        stack.removeLast()
                    case (UInt8(ascii: ","), false):
                        at += 1
                        pending = nil
                        step = .value
                    default:
                        throw fail("a ',' or the end of \(top.isObject ? "the object" : "the array") should follow a value")
                    }
                }
            }
        }

        private func fail(_ reason: String) -> Invalid { Invalid(offset: at, reason: reason) }

        private func shown(_ byte: UInt8) -> String {
            byte >= 0x21 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : String(format: "byte 0x%02X", byte)
        }

        private mutating func skipSpace() {
            while at < bytes.count {
                switch bytes[at] {
                case 0x20, 0x09, 0x0A, 0x0D: at += 1
                default: return
                }
            }
        }

        private mutating func expectWord(_ word: StaticString) throws(Invalid) {
            let count = word.utf8CodeUnitCount
            guard bytes.count - at >= count,
                  memcmp(bytes.baseAddress! + at, word.utf8Start, count) == 0 else { throw fail("not a JSON value") }
            at += count
        }

        private mutating func digits() -> Int {
            let start = at
            while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9") { at += 1 }
            return at - start
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        private mutating func scanNumber() throws(Invalid) {
            if bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard at < bytes.count else { throw fail("a number has no digits") }
            if bytes[at] == UInt8(ascii: "0") {
                at += 1
            } else if digits() == 0 {
                throw fail("a number has no digits")
            }
            if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
                at += 1
                guard digits() > 0 else { throw fail("a number's fraction has no digits") }
            }
            if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
                at += 1
                if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
                guard digits() > 0 else { throw fail("a number's exponent has no digits") }
            }
        }

        /// A string's bytes between its quotes, checked: escapes well formed, no raw control
        /// characters, UTF-8 only.
        private struct RawString {
            let range: Range<Int>
            let escaped: Bool
        }

        private mutating func scanString() throws(Invalid) -> RawString {
            at += 1
            let start = at
            var escaped = false
            // Most of a document is plain ASCII text: eight bytes of it a step. Eight bytes that
            // are not all plain are read one by one, the next eight looked at only after them.
            var bytewiseUntil = 0
            while at < bytes.count {
                if at >= bytewiseUntil, at + 8 <= bytes.count {
                    if Self.isPlainText(bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) {
                        at += 8
                        continue
                    }
                    bytewiseUntil = at + 8
                }
                let byte = bytes[at]
                if byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
                    at += 1
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""):
                    at += 1
                    return RawString(range: start..<(at - 1), escaped: escaped)
                case UInt8(ascii: "\\"):
                    escaped = true
                    guard at + 1 < bytes.count else { throw fail("the document ends inside a string") }
                    switch bytes[at + 1] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        at += 2
                    case UInt8(ascii: "u"):
                        guard hexValue(at: at + 2) != nil else { throw fail("'\\u' needs four hex digits") }
                        at += 6
                    default:
                        throw fail("an unknown escape: '\\' then \(shown(bytes[at + 1]))")
                    }
                case 0x00..<0x20:
                    throw fail("a raw control character inside a string")
                default:
                    at += try utf8Sequence(at: at)
                }
            }
            throw fail("the document ends inside a string")
        }

        /// Whether eight bytes are all printable ASCII other than `"` and `\`: none below 0x20,
        /// none with the high bit. Each test is exact about whether some byte matches (a borrow
        /// only goes on from a byte that matched), so a word is never taken for plain when it is
        /// not; which byte matched the byte-by-byte loop finds.
        private static func isPlainText(_ word: UInt64) -> Bool {
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            func anyZero(_ value: UInt64) -> Bool { (value &- ones) & ~value & highs != 0 }
            let quote = word ^ (ones &* UInt64(UInt8(ascii: "\""))), backslash = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
            let control = (word &- ones &* 0x20) & ~word & highs
            return word & highs == 0 && control == 0 && !anyZero(quote) && !anyZero(backslash)
        }

        /// The length of the well-formed UTF-8 sequence that starts at `index` with a byte ≥ 0x80
        /// (the table of Unicode's section 3.9: no overlong forms, no surrogates, ≤ U+10FFFF).
        private func utf8Sequence(at index: Int) throws(Invalid) -> Int {
            let lead = bytes[index]
            let length: Int, second: ClosedRange<UInt8>
            switch lead {
            case 0xC2...0xDF: length = 2; second = 0x80...0xBF
            case 0xE0: length = 3; second = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3; second = 0x80...0xBF
            case 0xED: length = 3; second = 0x80...0x9F
            case 0xF0: length = 4; second = 0x90...0xBF
            case 0xF1...0xF3: length = 4; second = 0x80...0xBF
            case 0xF4: length = 4; second = 0x80...0x8F
            default: throw Invalid(offset: index, reason: "not UTF-8")
            }
            guard index + length <= bytes.count, second.contains(bytes[index + 1]) else { throw Invalid(offset: index, reason: "not UTF-8") }
            for next in (index + 2)..<(index + length) where bytes[next] & 0xC0 != 0x80 {
                throw Invalid(offset: index, reason: "not UTF-8")
            }
            return length
        }

        private func hexValue(at index: Int) -> UInt16? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt16 = 0
            for byte in bytes[index..<(index + 4)] {
                guard let digit = Hex.nibble(byte) else { return nil }
                value = value << 4 | UInt16(digit)
            }
            return value
        }

        /// A checked string's UTF-8, its escapes resolved. A `\u` surrogate without its other
        /// half cannot be text, so a value or key that holds one is refused.
        private func unescaped(_ string: RawString) throws(Invalid) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(string.range.count)
            var index = string.range.lowerBound
            while index < string.range.upperBound {
                let byte = bytes[index]
                guard byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    index += 1
                    continue
                }
                let kind = bytes[index + 1]
                index += 2
                switch kind {
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    // scanString checked the four digits.
                    let unit = hexValue(at: index) ?? 0
                    index += 4
                    var scalar = UInt32(unit)
                    if (0xD800...0xDBFF).contains(unit) {
                        guard index + 6 <= string.range.upperBound, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u"),
                              let low = hexValue(at: index + 2), (0xDC00...0xDFFF).contains(low)
                        else { throw Invalid(offset: index - 6, reason: "a '\\u' surrogate without its low half") }
                        index += 6
                        scalar = 0x10000 + (UInt32(unit - 0xD800) << 10) + UInt32(low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(unit) {
                        throw Invalid(offset: index - 6, reason: "a '\\u' low surrogate without its high half")
                    }
                    guard let character = Unicode.Scalar(scalar), let encoded = Unicode.UTF8.encode(character) else {
                        throw Invalid(offset: index - 6, reason: "'\\u' names no character")
                    }
                    out.append(contentsOf: encoded)
                default: out.append(kind)   // \" \\ \/
                }
            }
            return out
        }

        private func decode(_ string: RawString) throws(Invalid) -> String {
            guard string.escaped else {
                return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[string.range]), as: UTF8.self)
            }
            return String(decoding: try unescaped(string), as: UTF8.self)
        }

        private func matchingChild(of node: Node, _ key: RawString) throws(Invalid) -> Int? {
            if key.escaped {
                let resolved = try unescaped(key)
                return node.children.first { $0.key == resolved }?.node
            }
            let raw = UnsafeRawBufferPointer(rebasing: bytes[key.range])
            return node.children.first { $0.key.count == raw.count && $0.key.elementsEqual(raw) }?.node
        }
    }
}
