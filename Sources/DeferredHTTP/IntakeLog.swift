import DeferredCore
import DeferredStore
import Hummingbird
import Logging

/// Every intake decision, logged once with what identifies the request (the delivery id, or a
/// script's project and idempotency key) and why: accepted with its job, ignored, or refused
/// with its status. Text from the request is cut short and stripped of control characters,
/// so a payload cannot write a line of its own into a text log.
struct IntakeLog {
    let logger: Logger
    /// `webhook` or `script`, as `/metrics` counts them.
    let kind: String
    /// What identifies the request, given with the one line logged about it. Not set on the
    /// logger: swift-log's text handler formats all of a logger's metadata again at each change.
    let fields: Logger.Metadata

    init(_ logger: Logger, kind: String, delivery: String? = nil, project: String? = nil, idempotencyKey: String? = nil) {
        var fields: Logger.Metadata = ["intake": .string(kind)]
        if let delivery { fields["delivery"] = .string(Self.clean(delivery)) }
        if let project { fields["project"] = .string(Self.clean(project)) }
        if let idempotencyKey { fields["idempotency_key"] = .string(Self.clean(idempotencyKey)) }
        self.logger = logger
        self.kind = kind
        self.fields = fields
    }

    /// Runs a request's decision: a refusal (any error) is logged here; an acceptance or an
    /// ignored request is logged where it is decided, with its job or its reason.
    func deciding(_ decide: () async throws -> Response) async throws -> Response {
        do {
            return try await decide()
        } catch let error as StoreError {
            // Logged as the 503 it is answered with.
            let refusal = APIError.storeFailed(error)
            refused(refusal)
            throw refusal
        } catch {
            refused(error)
            throw error
        }
    }

    func accepted(_ job: Job, again: Bool = false) {
        ServerMetrics.received(kind, outcome: again ? "accepted_again" : "accepted")
        logger.info(again ? "accepted again: the job this delivery made before" : "accepted",
                    metadata: fields.merging(["job": .string(job.id.rawValue)]) { $1 })
    }

    func ignored(_ why: String) {
        ServerMetrics.received(kind, outcome: "ignored")
        logger.info("ignored: \(Self.clean(why, limit: 300))", metadata: fields)
    }

    func refused(_ error: any Error) {
        ServerMetrics.received(kind, outcome: "refused", reason: (error as? APIError).map { String($0.status.code) } ?? "error")
        if let error = error as? APIError {
            logger.notice("refused \(error.status.code): \(Self.clean(error.message, limit: 300))",
                          metadata: fields.merging(["status": .stringConvertible(error.status.code)]) { $1 })
        } else {
            logger.error("failed: \(Self.clean("\(error)", limit: 300))", metadata: fields)
        }
    }

    /// Printable ASCII and other printable characters, at most `limit` of them; a control
    /// character or a line or paragraph separator becomes `?`. Every intake request passes its
    /// delivery id through here: text that needs no change (printable ASCII, the usual case) is
    /// returned as it is, without building a string a character at a time.
    static func clean(_ text: String, limit: Int = 100) -> String {
        if text.utf8.count <= limit, text.utf8.allSatisfy({ (0x20...0x7e).contains($0) }) { return text }
        var kept = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator: kept.append("?")
            default: kept.append(scalar)
            }
        }
        let cleaned = String(kept)
        return cleaned.count > limit ? String(cleaned.prefix(limit)) + "…" : cleaned
    }
}
