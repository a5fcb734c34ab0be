import DeferredCore
import Foundation
import GRDB

// A job from the queue to its end.
extension SQLiteJobStore {
    /// Leases the oldest runnable queued job to the first of its project's hosts that has
    /// room, in one transaction. `targetsFor` gives a project's hosts and fleets in order; a
    /// fleet offers its hosts first, then a new one (state `provisioning`, no instance yet)
    /// while it has fewer than `max_hosts`, counted in the same transaction, so however many
    /// jobs arrive together a fleet never grows past its limit. Nil when nothing can run now.
    public func leaseNext(now: Date, targetsFor: @escaping @Sendable (String) -> [LeaseTarget]) async throws(StoreError) -> Lease? {
        let lease = try await write { db -> Lease? in
            // Projects and ids in queue order (index job_by_status_in_order), stepped through
            // without copying rows: the whole row is read for the one job leased. This runs on
            // every wake-up of the dispatcher, however long the queue; behind a full host, each
            // candidate after the first is its project's name compared and passed by. A lease
            // returns at once, so the cursor never reads on past a change of the table.
            let candidates = try Row.fetchCursor(db.cachedStatement(sql: """
                SELECT project, id, queued_at FROM job
                WHERE status = ? AND not_before <= ? AND cancel_requested_by IS NULL
                ORDER BY queued_at, id LIMIT 100
                """), arguments: [JobStatus.queued.rawValue, now.timeIntervalSince1970])
            // A host that refused one candidate (full, or being put to sleep) refuses them all,
            // and a project none of whose targets took a job has no place for its next one:
            // each is asked once, not once per queued job.
            var refusedHosts: Set<String> = [], refusedProjects: Set<String> = []
            func lease(_ id: String, to host: String, maxJobs: Int) throws -> Lease? {
                guard !refusedHosts.contains(host) else { return nil }
                if let lease = try Self.lease(db, id, to: host, maxJobs: maxJobs, now: now) { return lease }
                refusedHosts.insert(host)
                return nil
            }
            while let row = try candidates.next() {
                let project: String = row[0]
                guard !refusedProjects.contains(project) else { continue }
                let candidate = (id: row[1] as String, project: project, queuedAt: row[2] as Double)
                for target in targetsFor(candidate.project) {
                    switch target {
                    case .host(let name, let maxJobs, _):
                        guard target.takes(queuedAt: candidate.queuedAt) else {
                            refusedHosts.insert(name)
                            continue
                        }
                        if let lease = try lease(candidate.id, to: name, maxJobs: maxJobs) { return lease }
                    case .fleet(let fleet, let maxHosts, let maxJobs, let provider):
                        let members = try HostRecord.filter(Column("fleet") == fleet).order(Column("name")).fetchAll(db)
                        for member in members {
                            if let lease = try lease(candidate.id, to: member.name, maxJobs: maxJobs) { return lease }
                        }
                        guard members.count < maxHosts else { continue }
                        // Instances that never answered hold the fleet's next launch back.
                        if let failures = try Row.fetchOne(db, sql: "SELECT fleet, count, last_reason, last_at FROM fleet_boot_failure WHERE fleet = ?",
                                                           arguments: [fleet]).map(Self.bootFailures),
                           failures.nextLaunch > now { continue }
                        let name = "\(fleet)-\(Hex.encode((0..<4).map { _ in UInt8.random(in: 0...255) }))"
                        try HostRecord(name: name, provider: provider, state: HostState.provisioning.rawValue, idleSince: nil,
                                       lastJobID: nil, fleet: fleet, instanceID: nil).insert(db)
                        if let lease = try lease(candidate.id, to: name, maxJobs: maxJobs) { return lease }
                    }
                }
                refusedProjects.insert(candidate.project)
            }
            return nil
        }
        if let lease { changes.notify(lease.job.id) }
        return lease
    }

    /// Gives `candidate` to `host` if it has room and is not being put to sleep.
    static func lease(_ db: Database, _ candidate: String, to host: String, maxJobs: Int, now: Date) throws -> Lease? {
        guard try activeJobs(db, host: host) < maxJobs else { return nil }
        let state = try HostRecord.fetchOne(db, key: host).flatMap { HostState(rawValue: $0.state) } ?? .unknown
        // A host being put to sleep takes no job until it has stopped; then it is woken.
        if state == .stopping { return nil }
        guard var record = try jobRecord(db, candidate) else { return nil }
        let (up, detail) = record.lease(to: host, hostState: state)
        try record.update(db)
        try Self.record(db, JobID(rawValue: record.id), .waitingForHost, detail: detail, at: now)
        if state != .provisioning {
            try db.execute(sql: "UPDATE host SET state = ?, idle_since = NULL WHERE name = ?",
                           arguments: [(up ? HostState.busy : .waking).rawValue, host])
        }
        return Lease(job: try record.job(), hostName: host, hostWasUp: up)
    }

    /// A step of the job's wait for its host (the instance's state), as an event.
    public func note(_ id: JobID, waiting detail: String, host: HostProgress?, at: Date) async throws(StoreError) {
        try await write { db in try Self.record(db, id, .waitingForHost, detail: detail, hostState: host, at: at) }
        changes.notify(id)
    }

    public func markRunning(_ id: JobID, at: Date) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "UPDATE job SET status = ?, started_at = ? WHERE id = ?",
                           arguments: [JobStatus.running.rawValue, at.timeIntervalSince1970, id.rawValue])
            try Self.record(db, id, .running, detail: nil, at: at)
        }
        changes.notify(id)
    }

    /// Ends a job and frees its host; the host's idle clock starts when its last job ends.
    /// Only a job that holds a lease ends: one that ended already keeps its end (a second
    /// finish changes nothing). Its held results, if any, are dropped in the same transaction.
    public func finish(_ id: JobID, outcome: JobOutcome) async throws(StoreError) {
        try await write { db in
            guard var record = try JobRecord.fetchOne(db, key: id.rawValue) else { throw StoreError.unknownJob(id.rawValue) }
            _ = try PendingResultRecord.deleteOne(db, key: id.rawValue)
            let (ended, detail) = record.end(with: outcome)
            guard ended else { return }
            try record.update(db)
            try Self.record(db, id, outcome.status, detail: detail, at: outcome.finishedAt)
            if let host = record.hostName {
                try Self.release(db, host: host, lastJob: id, at: outcome.finishedAt)
            }
        }
        changes.notify(id)
    }

    /// Sends a leased job back to the queue after the machinery failed (SSH, host), to be
    /// tried again from `notBefore`. Counts an attempt when `countAttempt` is set.
    public func requeue(_ id: JobID, reason: String, notBefore: Date, countAttempt: Bool, hostState: HostState?, at: Date) async throws(StoreError) {
        try await write { db in
            guard var record = try JobRecord.fetchOne(db, key: id.rawValue) else { throw StoreError.unknownJob(id.rawValue) }
            let host = record.requeue(notBefore: notBefore, countAttempt: countAttempt)
            try record.update(db)
            try Self.record(db, id, .queued, detail: reason, at: at)
            if let host { try Self.release(db, host: host, lastJob: id, at: at) }
            if let host, let hostState {
                try db.execute(sql: "UPDATE host SET state = ? WHERE name = ?", arguments: [hostState.rawValue, host])
            }
        }
        changes.notify(id)
    }

    /// Jobs that held a lease when the server stopped: none is lost, none runs twice. Those
    /// still waiting for their host go back to the queue. Those running keep their host and
    /// come back as leases to take up again, with how far their stored output goes: their
    /// command may run on on the host, and is followed there, not started again. Each start
    /// that finds a job so counts; a job found at `limit` starts (it may be what crashes the
    /// server) is handed back instead, for the caller to end as `error` with its results.json.
    /// Jobs whose results wait for the store are left alone: they ran, and only their file is
    /// missing.
    public func recoverInterrupted(limit: Int, at: Date) async throws(StoreError) -> Recovery {
        let (stranded, givenUp, resumed) = try await write { db -> ([JobID], [Job], [Lease]) in
            let held = Set(try String.fetchAll(db, sql: "SELECT job_id FROM pending_result"))
            var stranded: [JobID] = [], givenUp: [Job] = [], resumed: [Lease] = []
            for var record in try JobRecord.filter(JobStatus.leased.map(\.rawValue).contains(Column("status"))).fetchAll(db)
            where !held.contains(record.id) {
                let found = record.interruptedAtStart(limit: limit)
                try record.update(db)
                switch found {
                case .givenUp:
                    givenUp.append(try record.job())
                case .resumed(let host):
                    let position = try Self.outputPosition(db, of: record.id)
                    try Self.record(db, JobID(rawValue: record.id), .running, detail: JobWords.resumed(on: host), at: at)
                    resumed.append(Lease(job: try record.job(), hostName: host, hostWasUp: true, resuming: position ?? .start))
                case .stranded:
                    stranded.append(JobID(rawValue: record.id))
                }
            }
            return (stranded, givenUp, resumed)
        }
        for id in stranded {
            try await requeue(id, reason: JobWords.stranded, notBefore: at, countAttempt: false, at: at)
        }
        for lease in resumed { changes.notify(lease.job.id) }
        return Recovery(requeued: stranded, givenUp: givenUp, resumed: resumed)
    }

    /// Asks to cancel a job that has not ended, in one transaction with the check: a queued
    /// job is never leased from then on (`leaseNext` passes it by).
    public func requestCancel(_ id: JobID, by: String, at: Date) async throws(StoreError) -> Job? {
        let job = try await write { db -> Job? in
            guard var record = try JobRecord.fetchOne(db, key: id.rawValue) else { return nil }
            guard let status = record.askCancel(by: by) else { return try record.job() }
            try record.update(db)
            try Self.record(db, id, status, detail: JobWords.cancelAsked(by: by), at: at)
            return try record.job()
        }
        if job != nil { changes.notify(id) }
        return job
    }

    public func cancelledInQueue() async throws(StoreError) -> [Job] {
        try await read { db in
            try JobRecord.filter(Column("status") == JobStatus.queued.rawValue && Column("cancel_requested_by") != nil)
                .order(Column("queued_at")).fetchAll(db).map { try $0.job() }
        }
    }

    /// The server stops and leaves the running job to run on: an event says so, and the
    /// stop does not count towards the crash-loop guard.
    /// One server has the file alone: it follows every job it leased.
    public func follows(_ id: JobID) async throws(StoreError) -> Bool { true }

    public func leaveRunning(_ id: JobID, detail: String, at: Date) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "UPDATE job SET interrupted_starts = 0 WHERE id = ?", arguments: [id.rawValue])
            try Self.record(db, id, .running, detail: detail, at: at)
        }
        changes.notify(id)
    }

    /// Keeps a job's end and its results.json while the artifact store cannot take the file
    /// (a full disk, a bucket that is down). The job stays as it is, its host held, until
    /// `pendingResults` are stored and finished; a restart does not run it again.
    public func holdResults(_ id: JobID, outcome: JobOutcome, results: Data, at: Date) async throws(StoreError) {
        try await write { db in try PendingResultRecord(id, outcome: outcome, results: results, since: at).save(db) }
    }

    /// The jobs whose results.json waits for the artifact store, oldest first.
    public func pendingResults() async throws(StoreError) -> [PendingResult] {
        try await read { db in
            try PendingResultRecord.order(Column("since")).fetchAll(db).compactMap { record -> PendingResult? in
                guard let job = try JobRecord.fetchOne(db, key: record.jobID)?.job() else { return nil }
                return PendingResult(job: job, outcome: try record.outcome(), results: record.results)
            }
        }
    }
}
