import DeferredStore

/// A host's bytes (a job's output, an error quoting it) as the stores keep them as text
/// (`StoredText`): no NUL left, every other character as it was.
enum StoredTextFuzzing {
    static func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let kept = StoredText.kept(text)
        precondition(!kept.utf8.contains(0), "a NUL kept: \(kept.debugDescription)")
        precondition(kept.unicodeScalars.count == text.unicodeScalars.count, "characters lost or added: \(text.debugDescription)")
        for (before, after) in zip(text.unicodeScalars, kept.unicodeScalars) {
            precondition(after == (before == "\0" ? "\u{FFFD}" : before), "\(before) became \(after)")
        }
    }
}
