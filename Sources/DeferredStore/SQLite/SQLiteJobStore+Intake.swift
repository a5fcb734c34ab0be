import DeferredCore
import Foundation
import GRDB

// Intake: deduplicated, bounded, in one transaction with its checks.
extension SQLiteJobStore {
    /// Stores a new queued push job, unless its delivery id or its signed body (`bodySHA256`:
    /// the same push replayed under a new, unsigned delivery id) was seen before: then the
    /// earlier job. Refused while `maxQueued` jobs of its project wait. `payload`, the
    /// webhook's body, is kept for the job's page.
    public func enqueue(_ job: Job, delivery: String?, payload: Data?, bodySHA256: String?,
                        maxQueued: Int, detail: String?) async throws(StoreError) -> EnqueueResult {
        let record = try JobRecord(job, delivery: delivery)
        // Compressed here, on the request's task: the writer every delivery waits for only copies it.
        let payload = payload.map { JobPayloadRecord(jobID: job.id.rawValue, StoredPayload(keeping: $0)) }
        return try await intakeWrite { db in
            // Statements every delivery runs are prepared once per connection, not built again.
            if let delivery, let seen = try String.fetchOne(db.cachedStatement(sql: "SELECT job_id FROM delivery WHERE guid = ?"),
                                                            arguments: [delivery]),
               let existing = try Self.jobRecord(db, seen) {
                return .duplicate(try existing.job())
            }
            if let bodySHA256,
               let seen = try String.fetchOne(db.cachedStatement(sql: "SELECT job_id FROM delivery WHERE body_sha256 = ? LIMIT 1"),
                                              arguments: [bodySHA256]),
               let existing = try Self.jobRecord(db, seen) {
                return .duplicate(try existing.job())
            }
            let waiting = try Self.waitingJobs(db, project: job.project)
            guard waiting < maxQueued else { return .queueFull(queued: waiting) }
            try Self.insert(db, job, as: record, detail: detail)
            try payload?.insertPrepared(db)
            if let delivery {
                try DeliveryRecord(guid: delivery, jobID: job.id.rawValue, receivedAt: job.queuedAt.timeIntervalSince1970,
                                   bodySHA256: bodySHA256).insertPrepared(db)
            }
            return .created(job)
        }
    }

    /// Stores a posted script's job, in one transaction with its checks: a repeated
    /// idempotency key answers with its job (or a conflict), a full queue of its project refuses.
    public func enqueueScript(_ job: Job, idempotency: IdempotencyClaim?, maxQueued: Int) async throws(StoreError) -> ScriptEnqueueResult {
        let record = try JobRecord(job, delivery: nil)
        return try await intakeWrite { db in
            if let idempotency, let seen = try IdempotencyRecord.fetchOne(db, key: ["project": job.project, "key": idempotency.key]) {
                if seen.createdAt >= job.queuedAt.timeIntervalSince1970 - StorePolicy.idempotencyWindow,
                   let existing = try Self.jobRecord(db, seen.jobID) {
                    return seen.bodySHA256 == idempotency.bodySHA256 ? .replayed(try existing.job()) : .conflict(try existing.job())
                }
                try seen.delete(db)
            }
            let waiting = try Self.waitingJobs(db, project: job.project)
            guard waiting < maxQueued else { return .queueFull(queued: waiting) }
            try Self.insert(db, job, as: record, detail: "script")
            if let idempotency {
                try IdempotencyRecord(project: job.project, key: idempotency.key, bodySHA256: idempotency.bodySHA256,
                                      jobID: job.id.rawValue, createdAt: job.queuedAt.timeIntervalSince1970).insert(db)
            }
            return .created(job)
        }
    }

    static func jobRecord(_ db: Database, _ id: String) throws -> JobRecord? {
        try JobRecord.fetchOne(db.cachedStatement(sql: "SELECT * FROM job WHERE id = ?"), arguments: [id])
    }


    /// A new job's row (`record`, made by `JobRecord(_:delivery:)`) and its first event.
    static func insert(_ db: Database, _ job: Job, as record: JobRecord, detail: String?) throws {
        try record.insertPrepared(db)
        try Self.record(db, job.id, job.status, detail: detail, at: job.queuedAt)
    }
}
