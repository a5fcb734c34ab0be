/// Text from a request (a delivery id, a project name, an error about a payload) as a log may
/// print it: one line, printable, cut short, so a request cannot write a line of its own into
/// a text log.
public enum PrintableText {
    /// At most `limit` characters (then `…`); a control character or a line or paragraph
    /// separator becomes `?`. Every intake request passes its delivery id through here: text
    /// that needs no change (printable ASCII, the usual case) is returned as it is, without
    /// building a string a character at a time.
    public static func cleaned(_ text: String, limit: Int = 100) -> String {
        if text.utf8.count <= limit, text.utf8.allSatisfy({ (0x20...0x7e).contains($0) }) { return text }
        var kept = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            kept.append(isAllowed(scalar) ? scalar : "?")
        }
        let cleaned = String(kept)
        return cleaned.count > limit ? String(cleaned.prefix(limit)) + "…" : cleaned
    }

    /// Whether `scalar` may stand in a cleaned text as it is.
    public static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: false
        default: true
        }
    }
}
