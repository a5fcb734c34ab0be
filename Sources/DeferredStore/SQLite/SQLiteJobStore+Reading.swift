import DeferredCore
import Foundation
import GRDB

// Reading jobs back.
extension SQLiteJobStore {
    public func job(token: ResultToken) async throws(StoreError) -> Job? {
        try await read { db in try JobRecord.filter(Column("token") == token.rawValue).fetchOne(db)?.job() }
    }

    public func job(id: JobID) async throws(StoreError) -> Job? {
        try await read { db in try JobRecord.fetchOne(db, key: id.rawValue)?.job() }
    }

    /// The latest jobs first, of one project or of all.
    public func jobs(matching query: JobQuery) async throws(StoreError) -> [Job] {
        try await read { db in
            var request = JobRecord.all()
            if let project = query.project { request = request.filter(Column("project") == project) }
            if !query.statuses.isEmpty { request = request.filter(query.statuses.map(\.rawValue).contains(Column("status"))) }
            if let host = query.host { request = request.filter(Column("host_name") == host) }
            if let since = query.since { request = request.filter(Column("queued_at") >= since.timeIntervalSince1970) }
            if let before = query.before { request = request.filter(Column("queued_at") < before.timeIntervalSince1970) }
            if let after = query.after {
                let at = after.queuedAt.timeIntervalSince1970
                request = request.filter(sql: "queued_at < ? OR (queued_at = ? AND id < ?)", arguments: [at, at, after.id.rawValue])
            }
            return try request.order(Column("queued_at").desc, Column("id").desc).limit(query.limit).fetchAll(db).map { try $0.job() }
        }
    }

    /// The webhook payload a push job came from; nil for a script, or past retention.
    public func payload(of id: JobID) async throws(StoreError) -> Data? {
        try await read { db in try JobPayloadRecord.fetchOne(db, key: id.rawValue)?.stored }?.payload()
    }

    /// The job's state changes in order, those after `sequence` only.
    public func events(of id: JobID, after sequence: Int64) async throws(StoreError) -> [JobEvent] {
        try await read { db in
            try JobEventRecord.filter(Column("job_id") == id.rawValue && Column("id") > sequence).order(Column("id")).fetchAll(db).compactMap { r in
                guard let status = JobStatus(rawValue: r.status) else { return nil }
                return JobEvent(sequence: r.id ?? 0, at: Date(timeIntervalSince1970: r.at), status: status, detail: r.detail)
            }
        }
    }

    public func jobCount() async throws(StoreError) -> Int {
        try await read { db in try JobRecord.fetchCount(db) }
    }

    public func reruns(of id: JobID) async throws(StoreError) -> [JobID] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT id FROM job WHERE rerun_of = ? ORDER BY queued_at, id", arguments: [id.rawValue])
        }.map(JobID.init(rawValue:))
    }

    public func deliveryCount() async throws(StoreError) -> Int {
        try await read { db in try DeliveryRecord.fetchCount(db) }
    }
}
