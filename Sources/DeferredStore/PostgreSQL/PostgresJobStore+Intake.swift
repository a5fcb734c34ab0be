import DeferredCore
import Foundation
import PostgresNIO

// Intake: deduplicated cluster-wide, bounded per project, one transaction with its checks.
extension PostgresJobStore {
    public func enqueue(_ job: Job, delivery: String?, payload: Data?, bodySHA256: String?,
                        maxQueued: Int, detail: String?) async throws(StoreError) -> EnqueueResult {
        try await intakeTransaction { c in
            // The delivery seen before, by its id first, then by its signed body: one round trip.
            if delivery != nil || bodySHA256 != nil, let existing = try await Self.jobRecords(c, """
                SELECT \(unescaped: Self.jobColumns) FROM job WHERE id = (
                    SELECT job_id FROM delivery WHERE guid = \(delivery) OR body_sha256 = \(bodySHA256)
                    ORDER BY guid = \(delivery) DESC NULLS LAST LIMIT 1)
                """).first {
                return .duplicate(try existing.job())
            }
            if maxQueued < .max { try await c.sql("SAVEPOINT intake") }
            // A copy that another server stores at the same moment fails here on the unique key,
            // and its transaction, tried again, finds this job.
            try await Self.insertQueued(c, job, delivery: delivery, payload: payload, bodySHA256: bodySHA256, detail: detail)
            if let waiting = try await Self.queueFull(c, project: job.project, maxQueued: maxQueued) { return .queueFull(queued: waiting) }
            try await Self.announceQueued(c, job.id)
            return .created(job)
        }
    }

    public func enqueueScript(_ job: Job, idempotency: IdempotencyClaim?, maxQueued: Int) async throws(StoreError) -> ScriptEnqueueResult {
        try await intakeTransaction { c in
            if let idempotency {
                for try await (bodySHA256, jobID, createdAt) in try await c.rows("""
                    SELECT body_sha256, job_id, created_at FROM idempotency_key WHERE project = \(job.project) AND key = \(idempotency.key)
                    """).decode((String, String, Double).self) {
                    if createdAt >= job.queuedAt.timeIntervalSince1970 - StorePolicy.idempotencyWindow,
                       let existing = try await Self.jobRecord(c, jobID) {
                        return bodySHA256 == idempotency.bodySHA256 ? .replayed(try existing.job()) : .conflict(try existing.job())
                    }
                }
                // Past its window (or its job gone): the key is free again.
                try await c.sql("DELETE FROM idempotency_key WHERE project = \(job.project) AND key = \(idempotency.key)")
            }
            if maxQueued < .max { try await c.sql("SAVEPOINT intake") }
            try await Self.insertQueued(c, job, delivery: nil, payload: nil, bodySHA256: nil, detail: "script")
            if let idempotency {
                try await c.sql("""
                    INSERT INTO idempotency_key (project, key, body_sha256, job_id, created_at)
                    VALUES (\(job.project), \(idempotency.key), \(idempotency.bodySHA256), \(job.id.rawValue), \(job.queuedAt.timeIntervalSince1970))
                    """)
            }
            if let waiting = try await Self.queueFull(c, project: job.project, maxQueued: maxQueued) { return .queueFull(queued: waiting) }
            return .created(job)
        }
    }

    /// A new job with its first event, its payload and its delivery, in one statement (one
    /// round trip: intake's time is mostly the database's answers).
    static func insertQueued(_ c: PostgresConnection, _ job: Job, delivery: String?, payload: Data?, bodySHA256: String?,
                             detail: String?) async throws {
        let r = try JobRecord(job, delivery: delivery)
        try await c.sql("""
            WITH j AS (
                INSERT INTO job (\(unescaped: jobColumns)) VALUES (\(r.id), \(r.token), \(r.project), \(r.trigger), \(r.status), \(r.hostName),
                    \(r.attempts), \(r.notBefore), \(r.queuedAt), \(r.startedAt), \(r.finishedAt), \(r.delivery), \(r.expiredAt),
                    \(r.interruptedStarts), \(r.rerunOf), \(r.cancelToken), \(r.cancelRequestedBy))
                RETURNING id),
            e AS (INSERT INTO job_event (job_id, at, status, detail) SELECT id, \(r.queuedAt), \(r.status), \(detail) FROM j),
            p AS (INSERT INTO job_payload (job_id, body) SELECT id, \(payload)::bytea FROM j WHERE \(payload)::bytea IS NOT NULL)
            INSERT INTO delivery (guid, job_id, received_at, body_sha256)
            SELECT \(delivery)::text, id, \(r.queuedAt), \(bodySHA256)::text FROM j WHERE \(delivery)::text IS NOT NULL
            """)
    }

    /// A new job, told to the other servers at commit: its listeners and their dispatchers.
    static func announceQueued(_ c: PostgresConnection, _ id: JobID) async throws {
        var binds = PostgresBindings()
        binds.append(id.rawValue)
        try await c.sql(PostgresQuery(unsafeSQL: "SELECT \(announceJob("$1::text")), \(announceQueue)", binds: binds))
    }

    /// The queue limit, checked last, after the job is written (savepoint `intake`): the
    /// project's queue is taken for the rest of the transaction and its waiting jobs counted,
    /// so two servers taking deliveries for one project at once never both fill its last
    /// place, and the lock is held for the count and the commit only. Over the limit, the job
    /// is unwritten and the count of the others is returned.
    static func queueFull(_ c: PostgresConnection, project: String, maxQueued: Int) async throws -> Int? {
        guard maxQueued < .max else { return nil }
        try await c.sql("SELECT pg_advisory_xact_lock(\(AdvisoryLock.projectQueue), hashtext(\(project)))")
        let others = (try await value(c, """
            SELECT count(*) FROM job WHERE project = \(project) AND status IN (\(JobStatus.queued.rawValue), \(JobStatus.waitingForHost.rawValue))
            """, as: Int.self) ?? 1) - 1
        guard others >= maxQueued else { return nil }
        try await c.sql("ROLLBACK TO SAVEPOINT intake")
        return others
    }
}

/// The first key of each advisory lock the store takes, so their second keys never meet.
enum AdvisoryLock {
    static let projectQueue: Int32 = 1
    static let fleetSize: Int32 = 2
}
