import DeferredConfigFile
import DeferredTestSupport
import Foundation
import Testing

/// The TOML compliance suite (toml-lang/toml-test, the files it lists for TOML 1.0.0): every
/// valid document parses to the value in its `.json`, every invalid one is refused with a line.
struct TOMLComplianceTests {
    static let suite = Fixtures.root.appendingPathComponent("toml-test")

    static func listed(_ kind: String) throws -> [String] {
        let list = try String(contentsOf: suite.appendingPathComponent("files-toml-1.0.0"), encoding: .utf8)
        return list.split(separator: "\n").map(String.init).filter { $0.hasPrefix(kind + "/") && $0.hasSuffix(".toml") }
    }

    @Test func everyValidDocumentParsesToItsExpectedValue() throws {
        let files = try Self.listed("valid")
        #expect(files.count > 150, "the suite lists \(files.count) valid files")
        var failures: [String] = []
        for file in files {
            let bytes = Array(try Data(contentsOf: Self.suite.appendingPathComponent(file)))
            let expected = try JSONSerialization.jsonObject(
                with: try Data(contentsOf: Self.suite.appendingPathComponent(String(file.dropLast(5)) + ".json")), options: [.fragmentsAllowed])
            do {
                let table = try TOMLParser.parse(bytes: bytes)
                if let difference = Self.difference(.table(table), expected, at: "") { failures.append("\(file): \(difference)") }
            } catch {
                failures.append("\(file): refused: \(error)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(files.count) valid files:\n\(failures.joined(separator: "\n"))")
    }

    @Test func everyInvalidDocumentIsRefusedWithALine() throws {
        let files = try Self.listed("invalid")
        #expect(files.count > 300, "the suite lists \(files.count) invalid files")
        var accepted: [String] = []
        for file in files {
            let bytes = Array(try Data(contentsOf: Self.suite.appendingPathComponent(file)))
            do {
                _ = try TOMLParser.parse(bytes: bytes)
                accepted.append(file)
            } catch {
                let lines = bytes.count { $0 == UInt8(ascii: "\n") } + 1
                #expect((1...lines).contains(error.line), "\(file): line \(error.line) of \(lines): \(error.message)")
            }
        }
        #expect(accepted.isEmpty, "\(accepted.count) of \(files.count) invalid files were accepted:\n\(accepted.joined(separator: "\n"))")
    }

    /// Where `value` differs from the suite's tagged JSON (`{"type": …, "value": "…"}` for a
    /// scalar), or nil when it matches.
    static func difference(_ value: TOMLValue, _ expected: Any, at path: String) -> String? {
        if let tagged = expected as? [String: Any], tagged.count == 2,
           let type = tagged["type"] as? String, let text = tagged["value"] as? String {
            return scalarMatches(value, type: type, text: text) ? nil : "\(path): \(value) is not \(type) \(text)"
        }
        if let items = expected as? [Any] {
            guard case .array(let values) = value, values.count == items.count else { return "\(path): \(value) is not an array of \(items.count)" }
            for (i, pair) in zip(values, items).enumerated() {
                if let difference = difference(pair.0, pair.1, at: "\(path)[\(i)]") { return difference }
            }
            return nil
        }
        if let object = expected as? [String: Any] {
            guard case .table(let table) = value, Set(table.keys) == Set(object.keys) else {
                return "\(path): \(value) does not have the keys \(object.keys.sorted())"
            }
            for key in table.keys {
                if let difference = difference(table[key]!, object[key]!, at: path + "." + key) { return difference }
            }
            return nil
        }
        return "\(path): unexpected JSON \(expected)"
    }

    static func scalarMatches(_ value: TOMLValue, type: String, text: String) -> Bool {
        switch (type, value) {
        case ("string", .string(let s)): return s == text
        case ("integer", .integer(let i)): return Int(text) == i
        case ("bool", .bool(let b)): return text == String(b)
        case ("float", .float(let d)):
            switch text {
            case "nan", "+nan", "-nan": return d.isNaN
            case "inf", "+inf": return d == .infinity
            case "-inf": return d == -.infinity
            default: return Double(text) == d
            }
        case (_, .dateTime(let moment)):
            // The suite's value is itself a TOML date-time: read it the same way and compare fields.
            guard case .dateTime(let wanted)? = try? TOMLParser.parse("v = " + text)["v"], moment == wanted else { return false }
            switch type {
            case "datetime": return moment.date != nil && moment.time != nil && moment.offsetMinutes != nil
            case "datetime-local": return moment.date != nil && moment.time != nil && moment.offsetMinutes == nil
            case "date-local": return moment.date != nil && moment.time == nil
            case "time-local": return moment.date == nil && moment.time != nil
            default: return false
            }
        default: return false
        }
    }
}
