import DeferredCore
import Foundation
import PostgresNIO

// A job from the queue to its end.
extension PostgresJobStore {
    /// As SQLite's, with row locks for its single writer: the candidates are locked and those
    /// another server is leasing are passed by (`SKIP LOCKED`); a host's row is locked before
    /// its jobs are counted, and a fleet's size under an advisory lock, so `max_jobs` and
    /// `max_hosts` hold across every server.
    public func leaseNext(now: Date, targetsFor: @escaping @Sendable (String) -> [LeaseTarget]) async throws(StoreError) -> Lease? {
        let server = membership?.id
        let lease = try await transaction { c -> Lease? in
            // Read without locks; each is locked only when its turn comes, and passed by if
            // another server's lease has it (so leases on several servers go side by side).
            var candidates: [(id: String, project: String, queuedAt: Double)] = []
            for try await (id, project, queuedAt) in try await c.rows("""
                SELECT id, project, queued_at FROM job
                WHERE status = \(JobStatus.queued.rawValue) AND not_before <= \(now.timeIntervalSince1970) AND cancel_requested_by IS NULL
                ORDER BY queued_at, id LIMIT 100
                """).decode((String, String, Double).self) {
                candidates.append((id, project, queuedAt))
            }
            // A host that refused one candidate refuses them all, and a project none of whose
            // targets took a job has no place for its next one: each is asked once.
            var refusedHosts: Set<String> = [], refusedProjects: Set<String> = []
            func lease(_ id: String, to host: String, maxJobs: Int) async throws -> Lease? {
                guard !refusedHosts.contains(host) else { return nil }
                if let lease = try await Self.lease(c, id, to: host, maxJobs: maxJobs, now: now, server: server) { return lease }
                refusedHosts.insert(host)
                return nil
            }
            func offer(_ candidate: (id: String, project: String, queuedAt: Double), to target: LeaseTarget) async throws -> Lease? {
                let id = candidate.id
                switch target {
                case .host(let name, let maxJobs, _):
                    guard target.takes(queuedAt: candidate.queuedAt) else {
                        refusedHosts.insert(name)
                        return nil
                    }
                    return try await lease(id, to: name, maxJobs: maxJobs)
                case .fleet(let fleet, let maxHosts, let maxJobs, let provider):
                    try await c.sql("SELECT pg_advisory_xact_lock(\(AdvisoryLock.fleetSize), hashtext(\(fleet)))")
                    let members = try await Self.values(c, "SELECT name FROM host WHERE fleet = \(fleet) ORDER BY name", as: String.self)
                    for member in members {
                        if let lease = try await lease(id, to: member, maxJobs: maxJobs) { return lease }
                    }
                    guard members.count < maxHosts else { return nil }
                    // Instances that never answered hold the fleet's next launch back.
                    if let failures = try await Self.bootFailures(c, fleet: fleet).first, failures.nextLaunch > now { return nil }
                    let name = "\(fleet)-\(Hex.encode((0..<4).map { _ in UInt8.random(in: 0...255) }))"
                    try await c.sql("""
                        INSERT INTO host (name, provider, state, fleet) VALUES (\(name), \(provider), \(HostState.provisioning.rawValue), \(fleet))
                        """)
                    return try await lease(id, to: name, maxJobs: maxJobs)
                }
            }
            for candidate in candidates where !refusedProjects.contains(candidate.project) {
                guard try await Self.value(c, """
                    SELECT id FROM job WHERE id = \(candidate.id) AND status = \(JobStatus.queued.rawValue) AND cancel_requested_by IS NULL
                    FOR UPDATE SKIP LOCKED
                    """, as: String.self) != nil else { continue }
                for target in targetsFor(candidate.project) {
                    // Each target is tried under a savepoint: a host or fleet that refuses lets go
                    // of the locks it took at once, so a lease holds one host's lock at most, taken
                    // last, and leases and idle claims never wait on each other in a circle.
                    try await c.sql("SAVEPOINT target")
                    if let lease = try await offer(candidate, to: target) { return lease }
                    try await c.sql("ROLLBACK TO SAVEPOINT target")
                    try await c.sql("RELEASE SAVEPOINT target")
                }
                refusedProjects.insert(candidate.project)
            }
            return nil
        }
        if let lease { changes.notify(lease.job.id) }
        return lease
    }

    /// Gives `candidate` to `host` if it has room and is not being put to sleep; the host's
    /// row is locked first, so no other server counts its jobs meanwhile.
    static func lease(_ c: PostgresConnection, _ candidate: String, to host: String, maxJobs: Int, now: Date,
                      server: String?) async throws -> Lease? {
        // A full host is passed by without a lock; one with room is locked and counted again.
        // A host that refuses after all is let go of by the caller's savepoint.
        guard try await activeJobs(c, host: host) < maxJobs else { return nil }
        let found = try await value(c, "SELECT state FROM host WHERE name = \(host) FOR UPDATE", as: String.self)
        guard try await activeJobs(c, host: host) < maxJobs else { return nil }
        let state = found.flatMap(HostState.init(rawValue:)) ?? .unknown
        // A host being put to sleep takes no job until it has stopped; then it is woken.
        if state == .stopping { return nil }
        guard var record = try await jobRecord(c, candidate) else { return nil }
        let (up, detail) = record.lease(to: host, hostState: state)
        try await update(c, record)
        // The server that follows the job from now on, until it stops or is taken for dead.
        try await c.sql("UPDATE job SET server_id = \(server) WHERE id = \(candidate)")
        try await Self.record(c, JobID(rawValue: record.id), .waitingForHost, detail: detail, at: now)
        if state != .provisioning {
            try await c.sql("UPDATE host SET state = \((up ? HostState.busy : .waking).rawValue), idle_since = NULL WHERE name = \(host)")
        }
        return Lease(job: try record.job(), hostName: host, hostWasUp: up)
    }

    public func note(_ id: JobID, waiting detail: String, host: HostProgress?, at: Date) async throws(StoreError) {
        let me = membership?.id
        try await transaction { c in
            try await Self.lockFollowed(c, id, by: me)
            try await Self.record(c, id, .waitingForHost, detail: detail, hostState: host, at: at)
        }
        changes.notify(id)
    }

    /// The last step before a command starts, so the one that fences a server taken for dead:
    /// only the server the job is leased to marks it running. One whose job was taken over
    /// meanwhile (and perhaps leased again elsewhere) hears `leaseLost` and must not start it.
    public func markRunning(_ id: JobID, at: Date) async throws(StoreError) {
        let me = membership?.id
        try await transaction { c in
            guard try await Self.value(c, """
                UPDATE job SET status = \(JobStatus.running.rawValue), started_at = \(at.timeIntervalSince1970)
                WHERE id = \(id.rawValue) AND server_id IS NOT DISTINCT FROM \(me) RETURNING id
                """, as: String.self) != nil else {
                throw StoreError.leaseLost("job \(id.rawValue) is no longer this server's: another server took it over")
            }
            try await Self.record(c, id, .running, detail: nil, at: at)
        }
        changes.notify(id)
    }

    /// Only a job that holds a lease ends: the job's row is locked and read in the transaction,
    /// so an end another server wrote first is kept.
    public func finish(_ id: JobID, outcome: JobOutcome) async throws(StoreError) {
        let me = membership?.id
        try await transaction { c in
            try await Self.lockFollowed(c, id, by: me)
            guard var record = try await Self.jobRecord(c, id.rawValue, locking: true) else { throw StoreError.unknownJob(id.rawValue) }
            try await c.sql("DELETE FROM pending_result WHERE job_id = \(id.rawValue)")
            let (ended, detail) = record.end(with: outcome)
            guard ended else { return }
            try await Self.update(c, record)
            try await Self.record(c, id, outcome.status, detail: detail, at: outcome.finishedAt)
            if let host = record.hostName {
                try await Self.release(c, host: host, lastJob: id, at: outcome.finishedAt)
            }
        }
        changes.notify(id)
    }

    public func requeue(_ id: JobID, reason: String, notBefore: Date, countAttempt: Bool, hostState: HostState?, at: Date) async throws(StoreError) {
        let me = membership?.id
        try await transaction { c in
            try await Self.lockFollowed(c, id, by: me)
            guard var record = try await Self.jobRecord(c, id.rawValue, locking: true) else { throw StoreError.unknownJob(id.rawValue) }
            let host = record.requeue(notBefore: notBefore, countAttempt: countAttempt)
            try await Self.update(c, record)
            try await Self.record(c, id, .queued, detail: reason, at: at)
            if let host { try await Self.release(c, host: host, lastJob: id, at: at) }
            if let host, let hostState { try await c.sql("UPDATE host SET state = \(hostState.rawValue) WHERE name = \(host)") }
        }
        changes.notify(id)
    }

    /// With several servers (a serving store): the leased jobs of servers that stopped or
    /// whose heartbeat is older than `takeover_seconds`, and of none, become this server's; a
    /// job another live server follows is never touched, and each is locked while it moves
    /// (`SKIP LOCKED`: two live servers never take one job). The dead servers' rows go after.
    public func recoverInterrupted(limit: Int, at: Date) async throws(StoreError) -> Recovery {
        let me = membership?.id, takeover = Double(membership?.takeoverSeconds ?? 0)
        let (stranded, givenUp, resumed) = try await transaction { c -> ([JobID], [Job], [Lease]) in
            let held = Set(try await Self.values(c, "SELECT job_id FROM pending_result", as: String.self))
            var stranded: [JobID] = [], givenUp: [Job] = [], resumed: [Lease] = []
            let leased = JobStatus.leased.map(\.rawValue)
            let orphans: PostgresQuery = me == nil ? """
                SELECT \(unescaped: Self.jobColumns) FROM job WHERE status = ANY(\(leased)) ORDER BY queued_at, id FOR UPDATE
                """ : """
                SELECT \(unescaped: Self.jobColumns) FROM job
                WHERE status = ANY(\(leased)) AND server_id IS DISTINCT FROM \(me)
                    AND (server_id IS NULL OR server_id NOT IN (
                        SELECT id FROM server WHERE heartbeat_at >= \(unescaped: ServerMembership.now) - \(takeover)))
                ORDER BY queued_at, id FOR UPDATE SKIP LOCKED
                """
            for var record in try await Self.jobRecords(c, orphans) where !held.contains(record.id) {
                if let me { try await c.sql("UPDATE job SET server_id = \(me) WHERE id = \(record.id)") }
                let found = record.interruptedAtStart(limit: limit)
                try await Self.update(c, record)
                switch found {
                case .givenUp:
                    givenUp.append(try record.job())
                case .resumed(let host):
                    let position = try await Self.outputPosition(c, of: record.id)
                    try await Self.record(c, JobID(rawValue: record.id), .running, detail: JobWords.resumed(on: host), at: at)
                    resumed.append(Lease(job: try record.job(), hostName: host, hostWasUp: true, resuming: position ?? .start))
                case .stranded:
                    stranded.append(JobID(rawValue: record.id))
                }
            }
            if let me {
                try await c.sql("""
                    DELETE FROM server WHERE id <> \(me) AND heartbeat_at < \(unescaped: ServerMembership.now) - \(takeover)
                    """)
            }
            return (stranded, givenUp, resumed)
        }
        for id in stranded {
            try await requeue(id, reason: JobWords.stranded, notBefore: at, countAttempt: false, at: at)
        }
        for lease in resumed { changes.notify(lease.job.id) }
        return Recovery(requeued: stranded, givenUp: givenUp, resumed: resumed)
    }

    public func follows(_ id: JobID) async throws(StoreError) -> Bool {
        let me = membership?.id
        do {
            try await read { c in try await Self.lockFollowed(c, id, by: me) }
            return true
        } catch .leaseLost {
            return false
        }
    }

    public func requestCancel(_ id: JobID, by: String, at: Date) async throws(StoreError) -> Job? {
        let job = try await transaction { c -> Job? in
            guard var record = try await Self.jobRecord(c, id.rawValue, locking: true) else { return nil }
            guard let status = record.askCancel(by: by) else { return try record.job() }
            try await Self.update(c, record)
            try await Self.record(c, id, status, detail: JobWords.cancelAsked(by: by), at: at)
            return try record.job()
        }
        if job != nil { changes.notify(id) }
        return job
    }

    public func cancelledInQueue() async throws(StoreError) -> [Job] {
        try await read { c in
            try await Self.jobs(c, """
                SELECT \(unescaped: Self.jobColumns) FROM job WHERE status = \(JobStatus.queued.rawValue) AND cancel_requested_by IS NOT NULL
                ORDER BY queued_at
                """)
        }
    }

    public func leaveRunning(_ id: JobID, detail: String, at: Date) async throws(StoreError) {
        let me = membership?.id
        try await transaction { c in
            try await Self.lockFollowed(c, id, by: me)
            try await c.sql("UPDATE job SET interrupted_starts = 0 WHERE id = \(id.rawValue)")
            try await Self.record(c, id, .running, detail: detail, at: at)
        }
        changes.notify(id)
    }

    public func holdResults(_ id: JobID, outcome: JobOutcome, results: Data, at: Date) async throws(StoreError) {
        let r = PendingResultRecord(id, outcome: outcome, results: results, since: at), me = membership?.id
        try await transaction { c in
            try await Self.lockFollowed(c, id, by: me)
            try await c.sql("""
                INSERT INTO pending_result (job_id, status, exit_status, signal, error, started_at, finished_at, results, since)
                VALUES (\(r.jobID), \(r.status), \(r.exitStatus), \(r.signal), \(r.error), \(r.startedAt), \(r.finishedAt), \(r.results), \(r.since))
                ON CONFLICT (job_id) DO UPDATE SET status = excluded.status, exit_status = excluded.exit_status, signal = excluded.signal,
                    error = excluded.error, started_at = excluded.started_at, finished_at = excluded.finished_at,
                    results = excluded.results, since = excluded.since
                """)
        }
    }

    public func pendingResults() async throws(StoreError) -> [PendingResult] {
        try await read { c in
            var pending: [PendingResult] = []
            var rows: [PendingResultRecord] = []
            for try await (jobID, status, exitStatus, signal, error, startedAt, finishedAt, results, since) in try await c.rows("""
                SELECT job_id, status, exit_status, signal, error, started_at, finished_at, results, since FROM pending_result ORDER BY since
                """).decode((String, String, Int?, String?, String?, Double, Double, Data, Double).self) {
                rows.append(PendingResultRecord(jobID: jobID, status: status, exitStatus: exitStatus, signal: signal, error: error,
                                                startedAt: startedAt, finishedAt: finishedAt, results: results, since: since))
            }
            for row in rows {
                guard let job = try await Self.jobRecord(c, row.jobID)?.job() else { continue }
                pending.append(PendingResult(job: job, outcome: try row.outcome(), results: row.results))
            }
            return pending
        }
    }
}

/// The first key of each transaction advisory lock the store takes (the second is a name's
/// hash), apart from the migration lock's single key.
enum AdvisoryLock {
    static let fleetSize: Int32 = 2
}
