@testable import DeferredStore
import DeferredTestSupport
import Testing

/// Free text the stores keep holds no NUL, and loses nothing else.
@Suite struct StoredTextTests {
    /// Seeded: 2,000 strings of NULs, other controls and characters of every UTF-8 length.
    @Test func aNULBecomesAReplacementCharacterAndEverythingElseStays() {
        var random = SeededGenerator(seed: 0x07f4_e75)
        let alphabet: [Unicode.Scalar] = ["\0", "\n", "A", "\u{7F}", "é", "€", "😀", "\u{FFFD}", "\u{1}"]
        for _ in 0..<2_000 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...40, using: &random) { scalars.append(alphabet.randomElement(using: &random)!) }
            let text = String(scalars)
            let kept = StoredText.kept(text)
            #expect(!kept.utf8.contains(0), "\(text.debugDescription)")
            let expected = text.unicodeScalars.map { $0 == "\0" ? "\u{FFFD}" : $0 }
            #expect(Array(kept.unicodeScalars) == expected, "\(text.debugDescription)")
        }
        #expect(StoredText.kept("no NUL here") == "no NUL here")
        #expect(StoredText.kept(nil as String?) == nil)
    }
}
