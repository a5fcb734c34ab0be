import DeferredCore
import DeferredTestSupport
import Testing

/// What a request's text becomes in the intake's log: printable, one line, cut short.
@Suite struct PrintableTextTests {
    /// The definition `cleaned` keeps, written the plain way: each scalar judged alone.
    static func cleanedOneScalarAtATime(_ text: String, limit: Int) -> String {
        let kept = text.unicodeScalars.map { scalar -> String in
            switch scalar.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator: "?"
            default: String(scalar)
            }
        }.joined()
        return kept.count > limit ? String(kept.prefix(limit)) + "…" : kept
    }

    @Test func controlCharactersAndSeparatorsCannotStartALineOfTheirOwn() {
        #expect(PrintableText.cleaned("72d3162e-cc78-11e3-81ab-4c9367dc0958") == "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        #expect(PrintableText.cleaned("a\nb\rc\u{1b}[31md\u{7f}e\u{2028}f\u{2029}g\u{85}h") == "a?b?c?[31md?e?f?g?h")
        #expect(PrintableText.cleaned(String(repeating: "x", count: 101)) == String(repeating: "x", count: 100) + "…")
        #expect(PrintableText.cleaned(String(repeating: "x", count: 100)) == String(repeating: "x", count: 100))
        #expect(PrintableText.cleaned("déjà vu 🚀", limit: 7) == "déjà vu…")
    }

    /// Generated text of every kind (printable ASCII, controls, separators, accents, combining
    /// marks, emoji, lengths around the limit) comes out as the plain definition says.
    @Test func generatedTextIsCleanedAsThePlainDefinitionSays() {
        var random = SeededGenerator(seed: 0x1a7e_109)
        let pieces: [String] = ["a", "Z", "0", " ", "-", "~", "\n", "\r", "\t", "\u{0}", "\u{1b}", "\u{7f}", "\u{85}", "\u{2028}",
                                "\u{2029}", "é", "e\u{301}", "ß", "日本", "🚀", "👩‍👩‍👧", "\u{200b}", "\u{feff}", "\r\n"]
        for _ in 0..<2000 {
            let length = Int.random(in: 0...130, using: &random)
            let text = (0..<length).map { _ in pieces[Int.random(in: 0..<pieces.count, using: &random)] }.joined()
            let limit = [5, 36, 100, 300][Int.random(in: 0..<4, using: &random)]
            #expect(PrintableText.cleaned(text, limit: limit) == Self.cleanedOneScalarAtATime(text, limit: limit), "\(text.debugDescription) limit \(limit)")
        }
    }
}
