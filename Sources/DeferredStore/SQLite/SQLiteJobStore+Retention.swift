import DeferredCore
import Foundation
import GRDB

// Retention.
extension SQLiteJobStore {
    /// Ended jobs that finished before `cutoff` and whose files are not yet expired, oldest first.
    public func jobsPastRetention(finishedBefore cutoff: Date, limit: Int) async throws(StoreError) -> [Job] {
        try await read { db in
            try JobRecord.filter(Column("expired_at") == nil && Column("finished_at") != nil && Column("finished_at") < cutoff.timeIntervalSince1970)
                .order(Column("finished_at")).limit(limit).fetchAll(db).map { try $0.job() }
        }
    }

    /// Marks a job's stored files deleted, and its webhook payload with them: its URLs answer
    /// 410 from now on.
    public func markExpired(_ id: JobID, at: Date) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "UPDATE job SET expired_at = ? WHERE id = ? AND expired_at IS NULL",
                           arguments: [at.timeIntervalSince1970, id.rawValue])
            _ = try JobPayloadRecord.deleteOne(db, key: id.rawValue)
        }
    }
}
