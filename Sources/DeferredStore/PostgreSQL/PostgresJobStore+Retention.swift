import DeferredCore
import Foundation
import PostgresNIO

// Retention.
extension PostgresJobStore {
    public func jobsPastRetention(finishedBefore cutoff: Date, limit: Int) async throws(StoreError) -> [Job] {
        try await read { c in
            try await Self.jobs(c, """
                SELECT \(unescaped: Self.jobColumns) FROM job
                WHERE expired_at IS NULL AND finished_at IS NOT NULL AND finished_at < \(cutoff.timeIntervalSince1970)
                ORDER BY finished_at LIMIT \(limit)
                """)
        }
    }

    public func markExpired(_ id: JobID, at: Date) async throws(StoreError) {
        try await transaction { c in
            try await c.sql("UPDATE job SET expired_at = \(at.timeIntervalSince1970) WHERE id = \(id.rawValue) AND expired_at IS NULL")
            try await c.sql("DELETE FROM job_payload WHERE job_id = \(id.rawValue)")
        }
    }
}
