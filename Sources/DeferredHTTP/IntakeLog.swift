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
        if let delivery { fields["delivery"] = .string(PrintableText.cleaned(delivery)) }
        if let project { fields["project"] = .string(PrintableText.cleaned(project)) }
        if let idempotencyKey { fields["idempotency_key"] = .string(PrintableText.cleaned(idempotencyKey)) }
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
        logger.info("ignored: \(PrintableText.cleaned(why, limit: 300))", metadata: fields)
    }

    func refused(_ error: any Error) {
        ServerMetrics.received(kind, outcome: "refused", reason: (error as? APIError).map { String($0.status.code) } ?? "error")
        if let error = error as? APIError {
            logger.notice("refused \(error.status.code): \(PrintableText.cleaned(error.message, limit: 300))",
                          metadata: fields.merging(["status": .stringConvertible(error.status.code)]) { $1 })
        } else {
            logger.error("failed: \(PrintableText.cleaned("\(error)", limit: 300))", metadata: fields)
        }
    }
}
