@testable import DeferredCore
import DeferredTestSupport
import Foundation
import Testing

/// The strict one-pass reader behind `PushEvent.parse`: RFC 8259 documents in, the named
/// fields out, and the same push as Foundation's JSONDecoder reads wherever the reader accepts.
struct JSONFieldReaderTests {
    let reader = JSONFieldReader(paths: [[], ["a"], ["o", "b"], ["o"]])

    func read(_ text: String) throws(JSONFieldReader.Invalid) -> [JSONFieldReader.Value?] {
        try reader.read(Data(text.utf8))
    }

    @Test func readsTheNamedFieldsAndNothingElse() throws {
        let values = try read(#"{"x": {"a": "not me"}, "a": "\u00e9t\u00e9 \ud83d\ude00 \"q\" \/ \n", "o": {"b": true, "c": [1, {"b": 2}]}}"#)
        #expect(values == [.object, .string("été 😀 \"q\" / \n"), .bool(true), .object])
        #expect(try read(#"{"a": null, "o": []}"#) == [.object, .null, nil, .array])
        #expect(try read(#"{"a": -0.5e-3, "o": {"b": 12E+2}}"#) == [.object, .number, .number, .object])
        #expect(try read(#"[{"a": "inside an array is not the top"}]"#) == [.array, nil, nil, nil])
        #expect(try read(" \t\r\n\"text\" ") == [.string("text"), nil, nil, nil])
    }

    @Test func aKeyGivenTwiceKeepsItsFirstValueAsFoundationDoes() throws {
        #expect(try read(#"{"a": "first", "a": "second"}"#)[1] == .string("first"))
        #expect(try read(#"{"a": "first", "\u0061": "escaped second"}"#)[1] == .string("first"))
        // The second object under the same key is not read into the first's fields.
        #expect(try read(#"{"o": {"c": 1}, "o": {"b": "late"}}"#) == [.object, nil, nil, .object])
        struct Twice: Decodable, Equatable { var a: String }
        #expect(try JSONDecoder().decode(Twice.self, from: Data(#"{"a": "first", "a": "second"}"#.utf8)) == Twice(a: "first"))
    }

    @Test(arguments: [
        #"{"a": 1,}"#, #"[1,]"#, #"{"a" 1}"#, #"{"a": 01}"#, #"{"a": 1.}"#, #"{"a": -}"#, #"{"a": 1e}"#, #"{"a": .5}"#,
        #"{"a": +1}"#, #"{"a": NaN}"#, #"{"a": Infinity}"#, #"{"a": tru}"#, #"{"a": "\q"}"#, #"{"a": "\u12"}"#,
        "{\"a\": \"tab\there\"}", #"{"a": "open"#, #"{"a": 1} x"#, #"{"a": 1}}"#, #"{a: 1}"#, #"{'a': 1}"#, "", "  ",
        #"{"a": "\ud800"}"#, #"{"a": "\udc00\ud800"}"#, #"{"\ud800": 1, "a": 2}"#, "{\"a\": 1", "[", "\"",
    ])
    func refusesWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONFieldReader.Invalid.self) { try read(text) }
    }

    @Test func refusesBytesThatAreNotUTF8AnywhereInTheDocument() {
        for bad: [UInt8] in [[0xFF], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC3], [0xE2, 0x82]] {
            let document = Array(#"{"x": ""#.utf8) + bad + Array(#"", "a": 1}"#.utf8)
            #expect(throws: JSONFieldReader.Invalid.self, "\(bad)") { try reader.read(Data(document)) }
        }
        let good = Array(#"{"x": ""#.utf8) + [0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xF4, 0x8F, 0xBF, 0xBF] + Array(#""}"#.utf8)
        #expect((try? reader.read(Data(good))) != nil)
    }

    /// Strings are read eight bytes a step while they are plain ASCII: each byte that is not
    /// (a quote, an escape, a control byte, DEL, UTF-8 good and bad) is placed at every offset
    /// from the document's start and from the words' edges, and the string read as
    /// Foundation reads it, or refused where it refuses.
    @Test func everyByteThatEndsAPlainRunIsSeenWhereverItFalls() throws {
        let specials: [[UInt8]] = [Array(#"\""#.utf8), Array(#"\\"#.utf8), Array(#"\n"#.utf8), Array(#"\u00e9"#.utf8), [0x7F], [0x7E], [0x20],
                                   [0xC3, 0xA9], [0xF0, 0x9F, 0x98, 0x80], [0x1F], [0x00], [0x09], [0xFF], [0xC3], [0x80], Array("\"".utf8)]
        for padding in 0..<9 {
            for length in 0..<20 {
                for at in 0...length {
                    for special in specials {
                        let text = Array(repeating: UInt8(ascii: "p"), count: at) + special + Array(repeating: UInt8(ascii: "q"), count: length - at)
                        let document = Array(#"{"#.utf8) + Array(repeating: 0x20, count: padding) + Array(#""a": ""#.utf8) + text + Array(#""}"#.utf8)
                        let foundation = (try? JSONSerialization.jsonObject(with: Data(document)) as? [String: Any])?["a"] as? String
                        let ours = try? reader.read(Data(document))[1]
                        let shown = String(decoding: document, as: UTF8.self)
                        if let foundation {
                            #expect(ours == .string(foundation), "\(shown)")
                        } else {
                            #expect(ours == nil, "\(shown)")
                        }
                    }
                }
            }
        }
    }

    @Test func aLoneSurrogateIsJSONWhereNothingReadsIt() throws {
        // RFC 8259's grammar allows it; only a value that must become text refuses it.
        #expect(try read(#"{"x": "\ud800", "a": 1}"#)[1] == .number)
    }

    @Test func nestingIsBoundedWithoutRecursion() throws {
        let deepest = String(repeating: "[", count: JSONFieldReader.maxDepth) + String(repeating: "]", count: JSONFieldReader.maxDepth)
        #expect(try read(deepest)[0] == .array)
        let deeper = "[" + deepest + "]"
        #expect(throws: JSONFieldReader.Invalid.self) { try read(deeper) }
        #expect(throws: JSONFieldReader.Invalid.self) { try read(String(repeating: "[", count: 1_000_000)) }
    }

    @Test func skipsALeadingByteOrderMark() throws {
        #expect(try reader.read(Data([0xEF, 0xBB, 0xBF] + Array(#"{"a": true}"#.utf8)))[1] == .bool(true))
    }

    @Test func theFixturePushesReadAsFoundationReadsThem() throws {
        for name in ["push-new-branch", "push-tag-deleted"] {
            let body = try Fixtures.data("github/\(name).json")
            #expect(try PushEvent.parse(body) == JSONDecoder().decode(PushEvent.self, from: body), "\(name)")
        }
        let ping = try Fixtures.data("github/ping.json")
        #expect(throws: PushRejection.malformed("the payload has no 'ref'")) { try PushEvent.parse(ping) }
    }

    /// Pushes wrapped in generated JSON (keys in any order, escapes, unicode, numbers, nesting,
    /// null and missing optional fields): wherever the strict reader accepts, Foundation's
    /// decoder reads the same push; where a field has the wrong type both refuse.
    @Test func generatedPushesReadAsFoundationReadsThem() throws {
        var random = SeededGenerator(seed: 0x5eed)
        var accepted = 0
        for _ in 0..<400 {
            let document = GeneratedPush.make(&random)
            let body = Data(document.utf8)
            let ours = try? PushEvent.parse(body)
            let foundation = try? JSONDecoder().decode(PushEvent.self, from: body)
            #expect(ours == foundation, "\(document)")
            if ours != nil { accepted += 1 }
        }
        // Most are pushes; some have a field of the wrong type on purpose.
        #expect(accepted > 200)
    }

    @Test func aPushWithAFieldOfTheWrongTypeSaysWhich() {
        #expect(throws: PushRejection.malformed("'deleted' has the wrong type")) {
            try PushEvent.parse(Data(#"{"ref": "refs/heads/x", "after": "a", "deleted": 0, "repository": {"full_name": "o/r"}}"#.utf8))
        }
        #expect(throws: PushRejection.malformed("'repository' has the wrong type")) {
            try PushEvent.parse(Data(#"{"ref": "refs/heads/x", "after": "a", "repository": null}"#.utf8))
        }
        #expect(throws: PushRejection.malformed("the payload has no 'repository.full_name'")) {
            try PushEvent.parse(Data(#"{"ref": "refs/heads/x", "after": "a", "repository": {}}"#.utf8))
        }
        #expect(throws: PushRejection.malformed("the payload is not a JSON object")) { try PushEvent.parse(Data("[]".utf8)) }
        #expect((try? PushEvent.parse(Data(#"{"ref": "r", "after": "a", "repository": {"full_name": "o/r"}, "pusher": null}"#.utf8)))?.pusher == nil)
    }
}

/// Push-shaped JSON text written by hand (not by an encoder), so escapes and spacing vary.
enum GeneratedPush {
    static func make(_ random: inout SeededGenerator) -> String {
        var members = [
            ("ref", string(&random)), ("after", string(&random)),
            ("repository", object(&random, [("full_name", string(&random)), ("clone_url", optionalString(&random)),
                                            ("default_branch", optionalString(&random))])),
        ]
        if Bool.random(using: &random) { members.append(("deleted", Int.random(in: 0..<8, using: &random) == 0 ? "1" : ["true", "false", "null"].randomElement(using: &random)!)) }
        if Bool.random(using: &random) { members.append(("pusher", Bool.random(using: &random) ? "null" : object(&random, [("name", optionalString(&random))]))) }
        for _ in 0..<Int.random(in: 0..<6, using: &random) { members.append((key(&random), value(&random, depth: 0))) }
        members.shuffle(using: &random)
        return object(&random, members)
    }

    static func object(_ random: inout SeededGenerator, _ members: [(String, String)]) -> String {
        let space = [" ", "", "\n\t", "\r\n "].randomElement(using: &random)!
        return "{" + space + members.map { quoted($0.0, &random) + space + ":" + space + $0.1 }.joined(separator: "," + space) + space + "}"
    }

    static func key(_ random: inout SeededGenerator) -> String {
        ["x", "commits", "head_commit", "é", "ref_", "repository2", "😀", ""].randomElement(using: &random)!
    }

    static func optionalString(_ random: inout SeededGenerator) -> String {
        Int.random(in: 0..<4, using: &random) == 0 ? "null" : string(&random)
    }

    static func string(_ random: inout SeededGenerator) -> String {
        let texts = ["refs/heads/main", "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "Codertocat/Hello-World", "ümlaut", "😀 emoji",
                     "quote \" and \\ slash /", "line\nbreak\ttab", "\u{0}nul", "https://github.com/o/r.git", ""]
        return quoted(texts.randomElement(using: &random)!, &random)
    }

    /// `text` as a JSON string, each character written plainly or as one of its escapes.
    static func quoted(_ text: String, _ random: inout SeededGenerator) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            let escape = Int.random(in: 0..<3, using: &random) == 0
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "/" where escape: out += "\\/"
            case "\n": out += escape ? "\\u000a" : "\\n"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || escape:
                if scalar.value > 0xFFFF {
                    let value = scalar.value - 0x10000
                    out += String(format: "\\u%04x\\u%04X", 0xD800 + (value >> 10), 0xDC00 + (value & 0x3FF))
                } else {
                    out += String(format: "\\u%04x", scalar.value)
                }
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func value(_ random: inout SeededGenerator, depth: Int) -> String {
        switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &random) {
        case 0: return string(&random)
        case 1: return ["0", "-1", "3.25", "1e9", "-0.0E-2", "12345678901234567890"].randomElement(using: &random)!
        case 2: return ["true", "false", "null"].randomElement(using: &random)!
        case 3: return "[]"
        case 4: return "[" + (0..<Int.random(in: 1..<4, using: &random)).map { _ in value(&random, depth: depth + 1) }.joined(separator: ",") + "]"
        default: return object(&random, (0..<Int.random(in: 0..<4, using: &random)).map { _ in (key(&random), value(&random, depth: depth + 1)) })
        }
    }
}
