import Foundation

/// A place in a list of jobs: the last job of a page, by the two values the list is sorted by.
/// Its text is opaque to clients (`next_cursor`), and holds no more than the job's id and the
/// time it was queued.
public struct JobCursor: Sendable, Equatable {
    public var queuedAt: Date
    public var id: JobID

    public init(_ job: Job) {
        queuedAt = job.queuedAt
        id = job.id
    }

    /// `<seconds since 1970>_<job id>`, base64url without padding.
    public var text: String {
        Data("\(queuedAt.timeIntervalSince1970)_\(id.rawValue)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Nil for anything that is not a cursor this server made.
    public init?(text: String) {
        guard text.utf8.count <= 200 else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let decoded = String(data: data, encoding: .utf8),
              let split = decoded.firstIndex(of: "_"), let seconds = Double(decoded[..<split]), seconds.isFinite,
              abs(seconds) < 1e11 else { return nil }
        let id = String(decoded[decoded.index(after: split)...])
        guard !id.isEmpty, id.utf8.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return nil }
        queuedAt = Date(timeIntervalSince1970: seconds)
        self.id = JobID(rawValue: id)
    }
}
