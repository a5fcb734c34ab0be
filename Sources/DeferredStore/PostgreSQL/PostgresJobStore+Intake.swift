import DeferredCore
import Foundation
import PostgresNIO

// Intake: deduplicated cluster-wide, bounded per project, each delivery one statement.
extension PostgresJobStore {
    /// One statement, committed on its own: the delivery looked up by its id and its signed
    /// body, its project's count taken within the limit, and the job with its first event, its
    /// payload and its delivery written, all or nothing. The count's row is held only while the
    /// database commits, never across a round trip to this server: deliveries for one project
    /// from many connections (or servers) queue on it for microseconds, not milliseconds.
    public func enqueue(_ job: Job, delivery: String?, payload: Data?, bodySHA256: String?,
                        maxQueued: Int, detail: String?) async throws(StoreError) -> EnqueueResult {
        let record = try JobRecord(job, delivery: delivery)
        return try await intakeWrite(.autocommit) { c in
            switch try await Self.insertQueued(c, record, delivery: delivery, payload: payload, bodySHA256: bodySHA256,
                                               idempotency: nil, maxQueued: maxQueued, detail: detail) {
            case .inserted: return .created(job)
            case .full(let waiting): return .queueFull(queued: waiting)
            case .seen(let earlier):
                // Stored by an earlier delivery, which no later one can undo: read on its own.
                guard let existing = try await Self.jobRecord(c, earlier) else { throw StoreError.conflict("job \(earlier) went") }
                return .duplicate(try existing.job())
            }
        }
    }

    /// A script's job: its idempotency key looked up first, in the same transaction as the
    /// statement that stores the job and the key (the count's row taken last, as for pushes).
    public func enqueueScript(_ job: Job, idempotency: IdempotencyClaim?, maxQueued: Int) async throws(StoreError) -> ScriptEnqueueResult {
        let record = try JobRecord(job, delivery: nil)
        return try await intakeWrite(.transaction) { c in
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
            switch try await Self.insertQueued(c, record, delivery: nil, payload: nil, bodySHA256: nil,
                                               idempotency: idempotency, maxQueued: maxQueued, detail: "script") {
            case .inserted: return .created(job)
            case .full(let waiting): return .queueFull(queued: waiting)
            case .seen(let earlier): throw StoreError.database("a script's job \(job.id) found delivery job \(earlier)")
            }
        }
    }


    /// What the intake statement did.
    enum Insertion {
        case inserted
        /// The delivery (by id, or by its signed body) is this earlier job's.
        case seen(String)
        /// The project's queue holds `maxQueued` or more: nothing was written.
        case full(Int)
    }

    /// The delivery's earlier job, or the new job counted among its project's waiting ones,
    /// written with its first event, payload, delivery and idempotency key, and announced to the
    /// other servers at the commit: one statement, one round trip. The count is an upsert whose
    /// update only happens below `maxQueued`, on the row's latest version: two servers filling a
    /// project's last place at once queue on the row, and the second finds it taken.
    static func insertQueued(_ c: PostgresConnection, _ r: JobRecord, delivery: String?, payload: Data?, bodySHA256: String?,
                             idempotency: IdempotencyClaim?, maxQueued: Int, detail: String?) async throws -> Insertion {
        let limit = Int64(clamping: maxQueued)
        let rows = try await c.rows("""
            WITH seen AS (
                SELECT job_id FROM delivery WHERE guid = \(delivery) OR body_sha256 = \(bodySHA256)
                ORDER BY guid = \(delivery) DESC NULLS LAST LIMIT 1),
            w AS (
                INSERT INTO project_waiting (project, jobs) SELECT \(r.project), 1 WHERE \(limit) > 0 AND NOT EXISTS (SELECT FROM seen)
                ON CONFLICT (project) DO UPDATE SET jobs = project_waiting.jobs + 1 WHERE project_waiting.jobs < \(limit)
                RETURNING jobs),
            j AS (
                INSERT INTO job (\(unescaped: jobColumns))
                SELECT \(r.id), \(r.token), \(r.project), \(r.trigger), \(r.status), \(r.hostName), \(r.attempts), \(r.notBefore),
                    \(r.queuedAt), \(r.startedAt), \(r.finishedAt), \(r.delivery), \(r.expiredAt), \(r.interruptedStarts), \(r.rerunOf),
                    \(r.cancelToken), \(r.cancelRequestedBy) FROM w
                RETURNING id),
            e AS (INSERT INTO job_event (job_id, at, status, detail) SELECT id, \(r.queuedAt), \(r.status), \(detail) FROM j),
            p AS (INSERT INTO job_payload (job_id, body) SELECT id, \(payload)::bytea FROM j WHERE \(payload)::bytea IS NOT NULL),
            d AS (INSERT INTO delivery (guid, job_id, received_at, body_sha256)
                  SELECT \(delivery)::text, id, \(r.queuedAt), \(bodySHA256)::text FROM j WHERE \(delivery)::text IS NOT NULL),
            k AS (INSERT INTO idempotency_key (project, key, body_sha256, job_id, created_at)
                  SELECT \(r.project), \(idempotency?.key)::text, \(idempotency?.bodySHA256)::text, id, \(r.queuedAt)
                  FROM j WHERE \(idempotency?.key)::text IS NOT NULL)
            SELECT (SELECT job_id FROM seen), w.jobs, (SELECT jobs FROM project_waiting WHERE project = \(r.project)),
                CASE WHEN w.jobs IS NOT NULL THEN concat(\(unescaped: announceJob("(SELECT id FROM j)")), \(unescaped: announceQueue)) END
            FROM (VALUES (1)) AS one LEFT JOIN w ON true
            """).decode((String?, Int?, Int?, String?).self)
        for try await (seen, claimed, waiting, _) in rows {
            if let seen { return .seen(seen) }
            if claimed != nil { return .inserted }
            // Refused on the count's latest version, which the statement's snapshot (taken before
            // it waited for the row) may not show yet: at least the limit waits.
            return .full(max(waiting ?? 0, maxQueued))
        }
        throw StoreError.database("the intake statement answered no row")
    }
}
