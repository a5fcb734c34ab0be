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
            if let waiting = try await Self.countQueued(c, job, maxQueued: maxQueued) { return .queueFull(queued: waiting) }
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
            if let waiting = try await Self.countQueued(c, job, maxQueued: maxQueued) { return .queueFull(queued: waiting) }
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

    /// The new job counted among its project's waiting ones and announced to the other servers,
    /// in one statement, the last before the commit: the count's row is taken here and held
    /// only for the commit, so two servers taking deliveries for one project at once never
    /// both fill its last place, and the count is read, not counted, however long the queue.
    /// Over the limit, the job is unwritten (savepoint `intake`) and the others are returned.
    static func countQueued(_ c: PostgresConnection, _ job: Job, maxQueued: Int) async throws -> Int? {
        var binds = PostgresBindings()
        binds.append(job.project)
        binds.append(job.id.rawValue)
        let waiting = try await value(c, PostgresQuery(unsafeSQL: """
            WITH w AS (INSERT INTO project_waiting (project, jobs) VALUES ($1, 1)
                       ON CONFLICT (project) DO UPDATE SET jobs = project_waiting.jobs + 1 RETURNING jobs)
            SELECT w.jobs, \(announceJob("$2::text")), \(announceQueue) FROM w
            """, binds: binds), as: Int.self) ?? 1
        guard maxQueued < .max, waiting - 1 >= maxQueued else { return nil }
        try await c.sql("ROLLBACK TO SAVEPOINT intake")
        return waiting - 1
    }
}
