import DeferredCore
import Foundation
import PostgresNIO

// Reading jobs back.
extension PostgresJobStore {
    public func job(token: ResultToken) async throws(StoreError) -> Job? {
        try await read { c in try await Self.jobs(c, "SELECT \(unescaped: Self.jobColumns) FROM job WHERE token = \(token.rawValue)").first }
    }

    public func job(id: JobID) async throws(StoreError) -> Job? {
        try await read { c in try await Self.jobRecord(c, id.rawValue)?.job() }
    }

    /// One statement whatever the query: a filter left out is a NULL (or empty) parameter.
    public func jobs(matching query: JobQuery) async throws(StoreError) -> [Job] {
        let statuses = query.statuses.map(\.rawValue)
        let since = query.since?.timeIntervalSince1970, before = query.before?.timeIntervalSince1970
        let afterAt = query.after?.queuedAt.timeIntervalSince1970, afterID = query.after?.id.rawValue
        return try await read { c in
            try await Self.jobs(c, """
                SELECT \(unescaped: Self.jobColumns) FROM job
                WHERE (\(query.project)::text IS NULL OR project = \(query.project))
                    AND (cardinality(\(statuses)::text[]) = 0 OR status = ANY(\(statuses)::text[]))
                    AND (\(query.host)::text IS NULL OR host_name = \(query.host))
                    AND (\(since)::double precision IS NULL OR queued_at >= \(since))
                    AND (\(before)::double precision IS NULL OR queued_at < \(before))
                    AND (\(afterAt)::double precision IS NULL OR queued_at < \(afterAt) OR (queued_at = \(afterAt) AND id < \(afterID)))
                ORDER BY queued_at DESC, id DESC LIMIT \(query.limit)
                """)
        }
    }

    public func payload(of id: JobID) async throws(StoreError) -> Data? {
        // This store writes payloads whole (PostgreSQL compresses large values itself); rows
        // copied from a SQLite file (`deferred store copy`) may be compressed.
        try await read { c -> StoredPayload? in
            for try await (body, compressed) in try await c.rows("SELECT body, compressed FROM job_payload WHERE job_id = \(id.rawValue)")
                .decode((Data, Bool).self) {
                return StoredPayload(body: body, compressed: compressed)
            }
            return nil
        }?.payload()
    }

    public func events(of id: JobID, after sequence: Int64) async throws(StoreError) -> [JobEvent] {
        try await read { c in
            try await Self.eventRecords(c, """
                SELECT id, job_id, at, status, detail, host_state FROM job_event WHERE job_id = \(id.rawValue) AND id > \(sequence) ORDER BY id
                """).compactMap { r in
                guard let status = JobStatus(rawValue: r.status) else { return nil }
                return JobEvent(sequence: r.id ?? 0, at: Date(timeIntervalSince1970: r.at), status: status, detail: r.detail)
            }
        }
    }

    public func jobCount() async throws(StoreError) -> Int {
        try await read { c in try await Self.value(c, "SELECT count(*) FROM job", as: Int.self) ?? 0 }
    }

    public func reruns(of id: JobID) async throws(StoreError) -> [JobID] {
        try await read { c in
            try await Self.values(c, "SELECT id FROM job WHERE rerun_of = \(id.rawValue) ORDER BY queued_at, id", as: String.self)
        }.map(JobID.init(rawValue:))
    }

    public func deliveryCount() async throws(StoreError) -> Int {
        try await read { c in try await Self.value(c, "SELECT count(*) FROM delivery", as: Int.self) ?? 0 }
    }
}
