import DeferredCore

/// `/api/jobs?cursor=`: text from anyone with the admin token, read back into a place in the
/// list. A cursor that reads must write the same text back (what a client keeps is the text).
enum CursorFuzzing {
    static func run(_ bytes: [UInt8]) {
        guard let cursor = JobCursor(text: String(decoding: bytes, as: UTF8.self)) else { return }
        precondition(JobCursor(text: cursor.text) == cursor, "a cursor's text does not read back as the cursor")
    }
}
