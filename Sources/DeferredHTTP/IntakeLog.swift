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

    init(_ logger: Logger, kind: String, delivery: String? = nil, project: String? = nil, idempotencyKey: String? = nil) {
        var logger = logger
        logger[metadataKey: "intake"] = .string(kind)
        if let delivery { logger[metadataKey: "delivery"] = .string(Self.clean(delivery)) }
        if let project { logger[metadataKey: "project"] = .string(Self.clean(project)) }
        if let idempotencyKey { logger[metadataKey: "idempotency_key"] = .string(Self.clean(idempotencyKey)) }
        self.logger = logger
        self.kind = kind
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
        logger.info(again ? "accepted again: the job this delivery made before" : "accepted", metadata: ["job": .string(job.id.rawValue)])
    }

    func ignored(_ why: String) {
        ServerMetrics.received(kind, outcome: "ignored")
        logger.info("ignored: \(Self.clean(why, limit: 300))")
    }

    func refused(_ error: any Error) {
        ServerMetrics.received(kind, outcome: "refused", reason: (error as? APIError).map { String($0.status.code) } ?? "error")
        if let error = error as? APIError {
            logger.notice("refused \(error.status.code): \(Self.clean(error.message, limit: 300))", metadata: ["status": .stringConvertible(error.status.code)])
        } else {
            logger.error("failed: \(Self.clean("\(error)", limit: 300))")
        }
    }

    /// Printable ASCII and other printable characters, at most `limit` of them.
    static func clean(_ text: String, limit: Int = 100) -> String {
        let kept = text.unicodeScalars.map { $0.properties.generalCategory == .control || $0.properties.generalCategory == .lineSeparator
            || $0.properties.generalCategory == .paragraphSeparator ? "?" : String($0) }.joined()
        return kept.count > limit ? String(kept.prefix(limit)) + "…" : kept
    }
}
