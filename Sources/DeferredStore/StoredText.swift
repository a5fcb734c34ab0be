/// Free text as both stores keep it: a NUL becomes U+FFFD. Text a job's host had a hand in
/// (its output, an error that quotes what it said, a fleet's boot failure) may hold any
/// character; SQLite's text binding ends a string at a NUL, losing the rest, and PostgreSQL
/// refuses a NUL in text, failing the write (a job's end among them).
public enum StoredText {
    public static func kept(_ text: String) -> String {
        guard text.utf8.contains(0) else { return text }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: text.unicodeScalars.lazy.map { $0 == "\0" ? "\u{FFFD}" : $0 })
        return String(scalars)
    }

    public static func kept(_ text: String?) -> String? { text.map(kept) }
}
