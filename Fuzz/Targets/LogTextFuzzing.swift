import DeferredCore

/// Text from a request as the intake's log prints it (`PrintableText`).
enum LogTextFuzzing {
    static func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        for limit in [1, 36, 100, 300] {
            let cleaned = PrintableText.cleaned(text, limit: limit)
            precondition(cleaned.unicodeScalars.allSatisfy(PrintableText.isAllowed), "a control character or separator kept: \(cleaned.debugDescription)")
            precondition(cleaned.count <= limit + 1, "\(cleaned.count) characters for a limit of \(limit)")
            if text.count <= limit, text.unicodeScalars.allSatisfy(PrintableText.isAllowed) {
                precondition(cleaned == text, "printable text within the limit changed: \(text.debugDescription) → \(cleaned.debugDescription)")
            }
        }
    }
}
