import DeferredCore
import Foundation
import Logging
import PostgresNIO

// Reading rows back into the records both stores share.
extension PostgresJobStore {
    static let jobColumns = """
        id, token, project, trigger, status, host_name, attempts, not_before, queued_at, started_at, finished_at, \
        delivery, expired_at, interrupted_starts, rerun_of, cancel_token, cancel_requested_by
        """

    static func jobRecords(_ c: PostgresConnection, _ query: PostgresQuery) async throws -> [JobRecord] {
        var records: [JobRecord] = []
        for try await row in try await c.rows(query) {
            let (id, token, project, trigger, status, hostName, attempts, notBefore, queuedAt, startedAt, finishedAt,
                 delivery, expiredAt, interruptedStarts, rerunOf, cancelToken, cancelRequestedBy) =
                try row.decode((String, String, String, String, String, String?, Int, Double, Double, Double?, Double?,
                                String?, Double?, Int, String?, String?, String?).self)
            records.append(JobRecord(id: id, token: token, project: project, trigger: trigger, status: status, hostName: hostName,
                                     attempts: attempts, notBefore: notBefore, queuedAt: queuedAt, startedAt: startedAt,
                                     finishedAt: finishedAt, delivery: delivery, expiredAt: expiredAt,
                                     interruptedStarts: interruptedStarts, rerunOf: rerunOf, cancelToken: cancelToken,
                                     cancelRequestedBy: cancelRequestedBy))
        }
        return records
    }

    static func jobRecord(_ c: PostgresConnection, _ id: String, locking: Bool = false) async throws -> JobRecord? {
        try await jobRecords(c, "SELECT \(unescaped: jobColumns) FROM job WHERE id = \(id) \(unescaped: locking ? "FOR UPDATE" : "")").first
    }

    static func jobs(_ c: PostgresConnection, _ query: PostgresQuery) async throws -> [Job] {
        try await jobRecords(c, query).map { try $0.job() }
    }

    /// The first column of the first row, or nil.
    static func value<T: PostgresDecodable & Sendable>(_ c: PostgresConnection, _ query: PostgresQuery, as type: T.Type) async throws -> T? {
        for try await value in try await c.rows(query).decode(T.self) { return value }
        return nil
    }

    static func values<T: PostgresDecodable & Sendable>(_ c: PostgresConnection, _ query: PostgresQuery, as type: T.Type) async throws -> [T] {
        var values: [T] = []
        for try await value in try await c.rows(query).decode(T.self) { values.append(value) }
        return values
    }

    static func eventRecords(_ c: PostgresConnection, _ query: PostgresQuery) async throws -> [JobEventRecord] {
        var records: [JobEventRecord] = []
        for try await (id, jobID, at, status, detail, hostState) in try await c.rows(query)
            .decode((Int64, String, Double, String, String?, String?).self) {
            records.append(JobEventRecord(id: id, jobID: jobID, at: at, status: status, detail: detail, hostState: hostState))
        }
        return records
    }

    static func outputRecords(_ c: PostgresConnection, _ query: PostgresQuery) async throws -> [JobOutputRecord] {
        var records: [JobOutputRecord] = []
        for try await (id, jobID, at, stream, text) in try await c.rows(query).decode((Int64, String, Double, String, String).self) {
            records.append(JobOutputRecord(id: id, jobID: jobID, at: at, stream: stream, text: text))
        }
        return records
    }

    /// A host's row and the count of jobs that hold it (constants of ours in the text, no input).
    static let hostColumns = """
        h.name, h.provider, h.state, h.idle_since, h.last_job_id, h.fleet, h.instance_id, \
        (SELECT count(*) FROM job j WHERE j.host_name = h.name AND j.status IN ('\(JobStatus.leased.map(\.rawValue).joined(separator: "', '"))'))
        """

    /// Hosts with the count of jobs that hold them.
    static func hostStatuses(_ c: PostgresConnection, _ query: PostgresQuery) async throws -> [HostStatus] {
        var hosts: [HostStatus] = []
        for try await (name, provider, state, idleSince, lastJobID, fleet, instanceID, active) in try await c.rows(query)
            .decode((String, String, String, Double?, String?, String?, String?, Int).self) {
            hosts.append(HostStatus(name: name, provider: provider, state: HostState(rawValue: state) ?? .unknown,
                                    idleSince: idleSince.map(Date.init(timeIntervalSince1970:)),
                                    lastJobID: lastJobID.map(JobID.init(rawValue:)), activeJobs: active, fleet: fleet, instanceID: instanceID))
        }
        return hosts
    }

    static func activeJobs(_ c: PostgresConnection, host: String) async throws -> Int {
        try await value(c, "SELECT count(*) FROM job WHERE host_name = \(host) AND status = ANY(\(JobStatus.leased.map(\.rawValue)))",
                        as: Int.self) ?? 0
    }

    static func record(_ c: PostgresConnection, _ id: JobID, _ status: JobStatus, detail: String?, hostState: HostProgress? = nil,
                       at: Date) async throws {
        try await lockFeed(c, id)
        // Told to the other servers at commit: the job's listeners, and the dispatchers when a
        // job is queued or ends (a place freed).
        let queue = status == .queued || status.isFinal
        try await c.sql("""
            WITH e AS (
                INSERT INTO job_event (job_id, at, status, detail, host_state)
                VALUES (\(id.rawValue), \(at.timeIntervalSince1970), \(status.rawValue), \(StoredText.kept(detail)), \(hostState?.rawValue))
                RETURNING job_id)
            SELECT \(unescaped: Self.announceJob("e.job_id"))\(unescaped: queue ? ", " + Self.announceQueue : "") FROM e
            """)
    }

    /// SQL that tells the other servers (`ChangeListener`) a job's feed changed: the server's
    /// name is its connections' `application_name`.
    static func announceJob(_ job: String) -> String {
        "pg_notify('\(ChangeListener.jobChannel)', current_setting('application_name') || ' ' || \(job))"
    }

    /// SQL that tells the other servers' dispatchers to lease.
    static let announceQueue = "pg_notify('\(ChangeListener.queueChannel)', current_setting('application_name'))"

    /// Takes the job's row until the transaction ends, before its events or output are added.
    /// A sequence hands out ids as rows are inserted, not as they commit: without the lock a
    /// reader could see a later id committed first, move its cursor past it, and never see the
    /// earlier one. With it, a job's rows commit in the order of their ids.
    static func lockFeed(_ c: PostgresConnection, _ id: JobID) async throws {
        try await c.sql("SELECT 1 FROM job WHERE id = \(id.rawValue) FOR UPDATE")
    }

    /// Locks the job's row, as `lockFeed`, and for a serving store refuses (`leaseLost`) a job
    /// leased to another server: one that took it over while this one stalled. Only the server
    /// that follows a job writes its output, its steps and its end, so a server that wakes from
    /// a stall changes nothing of it before its next heartbeat tells it to stop.
    static func lockFollowed(_ c: PostgresConnection, _ id: JobID, by me: String?) async throws {
        let row = try await c.rows("""
            SELECT status, server_id, EXISTS (SELECT 1 FROM pending_result WHERE job_id = \(id.rawValue))
            FROM job WHERE id = \(id.rawValue) FOR UPDATE OF job
            """).decode((String, String?, Bool).self).first { _ in true }
        // A held end (results.json waiting for the artifact store) is whoever's that can store it.
        guard let me, let (status, owner, held) = row, owner != me, !held,
              let status = JobStatus(rawValue: status), JobStatus.leased.contains(status) else { return }
        throw StoreError.leaseLost("job \(id.rawValue) is followed by another server now, which took it over")
    }

    /// Frees `host` of a job: ready with its idle clock started when no job holds it any more.
    static func release(_ c: PostgresConnection, host: String, lastJob: JobID, at: Date) async throws {
        // The host's row first: a lease counting its jobs waits for this transaction.
        try await c.sql("SELECT name FROM host WHERE name = \(host) FOR UPDATE")
        if try await activeJobs(c, host: host) == 0 {
            try await c.sql("""
                UPDATE host SET state = \(HostState.ready.rawValue), idle_since = \(at.timeIntervalSince1970), last_job_id = \(lastJob.rawValue)
                WHERE name = \(host)
                """)
        } else {
            try await c.sql("UPDATE host SET last_job_id = \(lastJob.rawValue) WHERE name = \(host)")
        }
    }

    static func update(_ c: PostgresConnection, _ r: JobRecord) async throws {
        try await c.sql("""
            UPDATE job SET status = \(r.status), host_name = \(r.hostName), attempts = \(r.attempts), not_before = \(r.notBefore),
                started_at = \(r.startedAt), finished_at = \(r.finishedAt), expired_at = \(r.expiredAt),
                interrupted_starts = \(r.interruptedStarts), cancel_requested_by = \(r.cancelRequestedBy)
            WHERE id = \(r.id)
            """)
    }

    static func outputPosition(_ c: PostgresConnection, of id: String) async throws -> OutputPosition? {
        for try await (stdout, stderr, cut) in try await c.rows("SELECT stdout, stderr, cut FROM job_output_position WHERE job_id = \(id)")
            .decode((Int64, Int64, Bool).self) {
            return OutputPosition(stdout: stdout, stderr: stderr, cut: cut)
        }
        return nil
    }

    static func bootFailures(_ c: PostgresConnection, fleet: String?) async throws -> [FleetBootFailures] {
        var failures: [FleetBootFailures] = []
        let query: PostgresQuery = fleet.map { "SELECT fleet, count, last_reason, last_at FROM fleet_boot_failure WHERE fleet = \($0)" }
            ?? "SELECT fleet, count, last_reason, last_at FROM fleet_boot_failure ORDER BY fleet"
        for try await (fleet, count, reason, at) in try await c.rows(query).decode((String, Int, String, Double).self) {
            failures.append(FleetBootFailures(fleet: fleet, count: count, lastReason: reason, lastAt: Date(timeIntervalSince1970: at)))
        }
        return failures
    }
}

extension PostgresConnection {
    /// A statement of the store's, and its rows. The queries carry their values as binds; only
    /// our own constants are ever written into the text (`unescaped:`).
    func rows(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        try await self.query(query, logger: PostgresJobStore.queryLogger, file: file, line: line)
    }

    /// A statement whose rows, if any, are of no use.
    func sql(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws {
        _ = try await rows(query, file: file, line: line)
    }
}

extension PostgresJobStore {
    /// Statements log nothing: failures reach the caller as `StoreError`.
    static let queryLogger = Logger(label: "deferred.store.sql", factory: { _ in SwiftLogNoOpLogHandler() })
}
