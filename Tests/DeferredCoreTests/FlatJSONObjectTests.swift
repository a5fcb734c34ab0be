import DeferredCore
import DeferredTestSupport
import Foundation
import Testing

/// The hand-written JSON of the intake's small objects is JSONEncoder's text, byte for byte,
/// whatever the strings hold: quotes, backslashes, slashes, every control character, non-ASCII.
@Suite struct FlatJSONObjectTests {
    @Test func writesWhatJSONEncoderWrites() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var generator = SeededGenerator(seed: 16)
        for _ in 0..<2_000 {
            let fields = (0..<Int.random(in: 0...4, using: &generator)).map { index in
                ("\(index)" + generator.hostileString(), generator.hostileString())
            }
            var object = FlatJSONObject()
            for (key, value) in fields { object.add(key, value) }
            let expected = try encoder.encode(Dictionary(fields) { first, _ in first })
            #expect(object.text == Array(expected), "\(fields)")
            let read = try JSONSerialization.jsonObject(with: Data(object.text)) as? [String: String]
            #expect(read == Dictionary(fields) { first, _ in first })
        }
    }
}
