import DeferredCore
import Foundation
import GRDB
import Synchronization

/// Jobs, their events, deliveries seen and hosts, in SQLite through GRDB (WAL).
///
/// Every method is async and runs on GRDB's own queues, so the HTTP event loop never waits
/// on the disk. Leases and the end of a job are single write transactions: a host's count
/// of running jobs and its idle clock always agree with the jobs table.
public final class JobStore: Sendable {
    private let pool: DatabasePool
    /// Wakes listeners of a job's feed after its events or output change.
    public let changes = JobChanges()
    /// The last feed read of each job, by cursor and version, under way or done: a thousand
    /// listeners that are all caught up cost one read per change, not a thousand, and those
    /// woken by the same change join the read the first of them started.
    private let feedReads = Mutex<[JobID: FeedRead]>([:])

    /// Feed reads that went to the database, for the tests of sharing them.
    let feedReadsMade = Atomic<Int>(0)

    /// How long a write waits for another process's lock on the file before it fails.
    public static let lockWait: TimeInterval = 2
    /// How long an intake write may wait (for the lock, or behind the dispatcher's writes that
    /// wait for it) before the sender is told to come back: GitHub waits 10 s at most.
    public static let intakeDeadline: Duration = .seconds(3)

    private struct FeedRead {
        var cursor: FeedCursor
        var version: UInt64
        var result: Task<Result<Feed, StoreError>, Never>
    }

    public init(path: String) throws(StoreError) {
        do {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            if !FileManager.default.fileExists(atPath: folder) { try PrivateFiles.makeFolder(folder) }
            // SQLite gives the -wal and -shm files the database's own mode: 0600 before it opens.
            let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, PrivateFiles.fileMode)
            if fd >= 0 { close(fd) }
            for file in [path, path + "-wal", path + "-shm"] { PrivateFiles.restrict(file) }
            var config = Configuration()
            // idle-sleep in cron and serve share the file: wait for each other's writes, but
            // not so long that a webhook's sender (GitHub waits 10 s) hears nothing: past this
            // the intake answers 503 with Retry-After, and the dispatcher tries its writes again.
            config.busyMode = .timeout(Self.lockWait)
            pool = try DatabasePool(path: path, configuration: config)
            try Schema.migrator.migrate(pool)
        } catch {
            throw .cannotOpen(path: path, reason: "\(error)")
        }
    }

    // MARK: Intake

    /// Stores a new queued push job, unless its delivery id or its signed body (`bodySHA256`:
    /// the same push replayed under a new, unsigned delivery id) was seen before: then the
    /// earlier job. Refused while `maxQueued` jobs of its project wait. `payload`, the
    /// webhook's body, is kept for the job's page.
    public func enqueue(_ job: Job, delivery: String?, payload: Data? = nil, bodySHA256: String? = nil,
                        maxQueued: Int = .max, detail: String? = nil) async throws(StoreError) -> EnqueueResult {
        try await intakeWrite { db in
            if let delivery, let seen = try DeliveryRecord.fetchOne(db, key: delivery),
               let existing = try JobRecord.fetchOne(db, key: seen.jobID) {
                return .duplicate(try existing.job())
            }
            if let bodySHA256, let seen = try DeliveryRecord.filter(Column("body_sha256") == bodySHA256).fetchOne(db),
               let existing = try JobRecord.fetchOne(db, key: seen.jobID) {
                return .duplicate(try existing.job())
            }
            let waiting = try Self.waitingJobs(db, project: job.project)
            guard waiting < maxQueued else { return .queueFull(queued: waiting) }
            try Self.insert(db, job, delivery: delivery, detail: detail)
            if let payload { try JobPayloadRecord(jobID: job.id.rawValue, body: payload).insert(db) }
            if let delivery {
                try DeliveryRecord(guid: delivery, jobID: job.id.rawValue, receivedAt: job.queuedAt.timeIntervalSince1970,
                                   bodySHA256: bodySHA256).insert(db)
            }
            return .created(job)
        }
    }

    /// Idempotency keys are remembered this long.
    public static let idempotencyWindow: TimeInterval = 24 * 3600

    /// Stores a posted script's job, in one transaction with its checks: a repeated
    /// idempotency key answers with its job (or a conflict), a full queue of its project refuses.
    public func enqueueScript(_ job: Job, idempotency: IdempotencyClaim?, maxQueued: Int) async throws(StoreError) -> ScriptEnqueueResult {
        try await intakeWrite { db in
            if let idempotency, let seen = try IdempotencyRecord.fetchOne(db, key: ["project": job.project, "key": idempotency.key]) {
                if seen.createdAt >= job.queuedAt.timeIntervalSince1970 - Self.idempotencyWindow,
                   let existing = try JobRecord.fetchOne(db, key: seen.jobID) {
                    return seen.bodySHA256 == idempotency.bodySHA256 ? .replayed(try existing.job()) : .conflict(try existing.job())
                }
                try seen.delete(db)
            }
            let waiting = try Self.waitingJobs(db, project: job.project)
            guard waiting < maxQueued else { return .queueFull(queued: waiting) }
            try Self.insert(db, job, delivery: nil, detail: "script")
            if let idempotency {
                try IdempotencyRecord(project: job.project, key: idempotency.key, bodySHA256: idempotency.bodySHA256,
                                      jobID: job.id.rawValue, createdAt: job.queuedAt.timeIntervalSince1970).insert(db)
            }
            return .created(job)
        }
    }

    private static func insert(_ db: Database, _ job: Job, delivery: String?, detail: String?) throws {
        try JobRecord(job, delivery: delivery).insert(db)
        try record(db, job.id, job.status, detail: detail, at: job.queuedAt)
    }

    // MARK: Reading

    public func job(token: ResultToken) async throws(StoreError) -> Job? {
        try await read { db in try JobRecord.filter(Column("token") == token.rawValue).fetchOne(db)?.job() }
    }

    public func job(id: JobID) async throws(StoreError) -> Job? {
        try await read { db in try JobRecord.fetchOne(db, key: id.rawValue)?.job() }
    }

    /// The latest jobs first, of one project or of all.
    public func jobs(project: String? = nil, limit: Int = 50) async throws(StoreError) -> [Job] {
        try await read { db in
            var request = JobRecord.all()
            if let project { request = request.filter(Column("project") == project) }
            return try request.order(Column("queued_at").desc, Column("id").desc).limit(limit).fetchAll(db).map { try $0.job() }
        }
    }

    /// The webhook payload a push job came from; nil for a script, or past retention.
    public func payload(of id: JobID) async throws(StoreError) -> Data? {
        try await read { db in try JobPayloadRecord.fetchOne(db, key: id.rawValue)?.body }
    }

    /// The job's state changes in order, those after `sequence` only.
    public func events(of id: JobID, after sequence: Int64 = 0) async throws(StoreError) -> [JobEvent] {
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

    public func deliveryCount() async throws(StoreError) -> Int {
        try await read { db in try DeliveryRecord.fetchCount(db) }
    }

    // MARK: Hosts

    /// Makes a row for every configured host that has none; keeps the state of the others.
    public func register(hosts: [HostConfig]) async throws(StoreError) {
        try await write { db in
            for host in hosts where try HostRecord.fetchOne(db, key: host.name) == nil {
                // A static host is always up; a cloud host's state is learnt when it is first
                // woken. Either way its idle clock starts now.
                try HostRecord(name: host.name, provider: host.provider.rawValue,
                               state: (host.provider == .static ? HostState.ready : .unknown).rawValue,
                               idleSince: Date().timeIntervalSince1970, lastJobID: nil).insert(db)
            }
        }
    }

    public func hosts() async throws(StoreError) -> [HostStatus] {
        try await read { db in
            try HostRecord.order(Column("name")).fetchAll(db).map { try Self.status($0, db) }
        }
    }

    // MARK: Dispatching

    /// Leases the oldest runnable queued job to the first of its project's hosts that has
    /// room, in one transaction. `targetsFor` gives a project's hosts and fleets in order; a
    /// fleet offers its hosts first, then a new one (state `provisioning`, no instance yet)
    /// while it has fewer than `max_hosts`, counted in the same transaction, so however many
    /// jobs arrive together a fleet never grows past its limit. Nil when nothing can run now.
    public func leaseNext(now: Date = Date(), targetsFor: @escaping @Sendable (String) -> [LeaseTarget]) async throws(StoreError) -> Lease? {
        let lease = try await write { db -> Lease? in
            let candidates = try JobRecord
                .filter(Column("status") == JobStatus.queued.rawValue && Column("not_before") <= now.timeIntervalSince1970)
                .order(Column("queued_at"), Column("id"))
                .limit(100)
                .fetchAll(db)
            for candidate in candidates {
                for target in targetsFor(candidate.project) {
                    switch target {
                    case .host(let name, let maxJobs):
                        if let lease = try Self.lease(db, candidate, to: name, maxJobs: maxJobs, now: now) { return lease }
                    case .fleet(let fleet, let maxHosts, let maxJobs):
                        let members = try HostRecord.filter(Column("fleet") == fleet).order(Column("name")).fetchAll(db)
                        for member in members {
                            if let lease = try Self.lease(db, candidate, to: member.name, maxJobs: maxJobs, now: now) { return lease }
                        }
                        guard members.count < maxHosts else { continue }
                        let name = "\(fleet)-\(Hex.encode((0..<4).map { _ in UInt8.random(in: 0...255) }))"
                        try HostRecord(name: name, provider: "ec2", state: HostState.provisioning.rawValue, idleSince: nil,
                                       lastJobID: nil, fleet: fleet, instanceID: nil).insert(db)
                        if let lease = try Self.lease(db, candidate, to: name, maxJobs: maxJobs, now: now) { return lease }
                    }
                }
            }
            return nil
        }
        if let lease { changes.notify(lease.job.id) }
        return lease
    }

    /// Gives `candidate` to `host` if it has room and is not being put to sleep.
    private static func lease(_ db: Database, _ candidate: JobRecord, to host: String, maxJobs: Int, now: Date) throws -> Lease? {
        guard try activeJobs(db, host: host) < maxJobs else { return nil }
        let state = try HostRecord.fetchOne(db, key: host).flatMap { HostState(rawValue: $0.state) } ?? .unknown
        // A host being put to sleep takes no job until it has stopped; then it is woken.
        if state == .stopping { return nil }
        let up = state == .ready || state == .busy
        var record = candidate
        record.status = JobStatus.waitingForHost.rawValue
        record.hostName = host
        try record.update(db)
        let detail = up ? "host \(host)" : state == .provisioning ? "host \(host): launching a new instance"
                                                                   : "host \(host), which is \(state.rawValue): waking it"
        try Self.record(db, JobID(rawValue: record.id), .waitingForHost, detail: detail, at: now)
        if state != .provisioning {
            try db.execute(sql: "UPDATE host SET state = ?, idle_since = NULL WHERE name = ?",
                           arguments: [(up ? HostState.busy : .waking).rawValue, host])
        }
        return Lease(job: try record.job(), hostName: host, hostWasUp: up)
    }

    /// The instance a fleet's host was launched as.
    public func recordInstance(_ host: String, instanceID: String) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "UPDATE host SET instance_id = ?, state = ? WHERE name = ?",
                           arguments: [instanceID, HostState.waking.rawValue, host])
        }
    }

    /// A fleet's host whose instance is gone (terminated, or never came up).
    public func removeHost(_ name: String) async throws(StoreError) {
        try await write { db in _ = try HostRecord.deleteOne(db, key: name) }
    }

    public func host(named name: String) async throws(StoreError) -> HostStatus? {
        try await read { db in try HostRecord.fetchOne(db, key: name).map { try Self.status($0, db) } }
    }

    /// A step of the job's wait for its host (the instance's state), as an event.
    public func note(_ id: JobID, waiting detail: String, host: HostProgress? = nil, at: Date = Date()) async throws(StoreError) {
        try await write { db in try Self.record(db, id, .waitingForHost, detail: detail, hostState: host, at: at) }
        changes.notify(id)
    }

    // MARK: Output and the feed

    /// Stores a batch of a job's output as it streams, for late listeners and the job page.
    /// Each chunk carries the time its first byte arrived: a batch stored after the job's exit
    /// still sorts before the job's end in the feed.
    public func appendOutput(_ id: JobID, _ chunks: [(stream: OutputChunk.Stream, text: String, at: Date)]) async throws(StoreError) {
        guard !chunks.isEmpty else { return }
        try await write { db in
            for chunk in chunks {
                try JobOutputRecord(id: nil, jobID: id.rawValue, at: chunk.at.timeIntervalSince1970, stream: chunk.stream.rawValue, text: chunk.text).insert(db)
            }
        }
        changes.notify(id)
    }

    /// State events and output after `cursor`, merged in time order, each with the cursor past
    /// it, and whether the job has ended, from the same read: a listener that finds nothing new
    /// and the job ended has seen everything.
    public func feed(of id: JobID, after cursor: FeedCursor) async throws(StoreError) -> Feed {
        let version = changes.version(of: id)
        let read = feedReads.withLock { reads in
            if let last = reads[id], last.cursor == cursor, last.version == version { return last.result }
            if reads.count > 256 { reads.removeAll() }
            // A task of its own: a listener that goes away cancels its wait, not the read others share.
            let result = Task { () -> Result<Feed, StoreError> in
                do throws(StoreError) { return .success(try await self.readFeed(of: id, after: cursor)) } catch { return .failure(error) }
            }
            reads[id] = FeedRead(cursor: cursor, version: version, result: result)
            return result
        }
        switch await read.value {
        case .success(let feed):
            return feed
        case .failure(let error):
            // A failed read is not kept: the next listener tries again.
            feedReads.withLock { reads in if reads[id]?.result == read { reads[id] = nil } }
            throw error
        }
    }

    /// Output rows one feed read takes at most (each at most 64 KiB): memory stays bounded
    /// however large a job's output, and a listener far behind catches up page by page.
    static let feedPageRows = 32

    private func readFeed(of id: JobID, after cursor: FeedCursor) async throws(StoreError) -> Feed {
        feedReadsMade.add(1, ordering: .relaxed)
        var (events, output, status) = try await read { db in
            (try JobEventRecord.filter(Column("job_id") == id.rawValue && Column("id") > cursor.event).order(Column("id")).fetchAll(db),
             try JobOutputRecord.filter(Column("job_id") == id.rawValue && Column("id") > cursor.output).order(Column("id"))
                .limit(Self.feedPageRows).fetchAll(db),
             try String.fetchOne(db, sql: "SELECT status FROM job WHERE id = ?", arguments: [id.rawValue]))
        }
        // A full page may have more output after it: events later than its last row wait for
        // the next page, so that the feed stays in time order.
        let hasMore = output.count == Self.feedPageRows
        if hasMore, let last = output.last { events.removeAll { $0.at > last.at } }
        return Self.merge(events, output, from: cursor, jobEnded: !hasMore && (status.flatMap(JobStatus.init(rawValue:))?.isFinal ?? true),
                          hasMore: hasMore)
    }

    /// The job's events and its latest output, at most about `outputBytes` of it, for a page
    /// that shows the end of a long log; `cut` when earlier output was left out. The cursor
    /// of its last item is where a live view goes on from.
    public func recentFeed(of id: JobID, outputBytes: Int) async throws(StoreError) -> (feed: Feed, cut: Bool) {
        let (events, output, cut, status) = try await read { db in
            var rows: [JobOutputRecord] = [], bytes = 0, before = Int64.max, cut = false
            // Newest first, a page at a time, until the budget is spent.
            page: while true {
                let batch = try JobOutputRecord.filter(Column("job_id") == id.rawValue && Column("id") < before)
                    .order(Column("id").desc).limit(Self.feedPageRows).fetchAll(db)
                for row in batch {
                    bytes += row.text.utf8.count
                    if bytes > outputBytes { cut = true; break page }
                    rows.append(row)
                }
                guard batch.count == Self.feedPageRows, let oldest = batch.last?.id else { break }
                before = oldest
            }
            return (try JobEventRecord.filter(Column("job_id") == id.rawValue).order(Column("id")).fetchAll(db),
                    Array(rows.reversed()), cut,
                    try String.fetchOne(db, sql: "SELECT status FROM job WHERE id = ?", arguments: [id.rawValue]))
        }
        // Output left out is skipped by the cursor too: a live view continues after what is shown.
        let start = FeedCursor(event: 0, output: max(0, (output.first?.id ?? 1) - 1))
        let feed = Self.merge(events, output, from: start, jobEnded: status.flatMap(JobStatus.init(rawValue:))?.isFinal ?? true, hasMore: false)
        return (feed, cut)
    }

    /// Events and output rows in time order, each with the cursor past it. A state change and
    /// output at the same instant: the state first.
    private static func merge(_ events: [JobEventRecord], _ output: [JobOutputRecord], from cursor: FeedCursor,
                              jobEnded: Bool, hasMore: Bool) -> Feed {
        var items: [FeedItem] = []
        var position = cursor
        var e = events.startIndex, o = output.startIndex
        while e < events.endIndex || o < output.endIndex {
            if o == output.endIndex || (e < events.endIndex && events[e].at <= output[o].at) {
                let r = events[e]
                e += 1
                guard let status = JobStatus(rawValue: r.status) else { continue }
                position.event = r.id ?? position.event
                items.append(FeedItem(kind: .state(JobEvent(sequence: r.id ?? 0, at: Date(timeIntervalSince1970: r.at), status: status,
                                                             detail: r.detail, hostState: r.hostState.flatMap(HostProgress.init))),
                                      cursor: position))
            } else {
                let r = output[o]
                o += 1
                position.output = r.id ?? position.output
                items.append(FeedItem(kind: .output(OutputChunk(sequence: r.id ?? 0, at: Date(timeIntervalSince1970: r.at),
                                                                stream: OutputChunk.Stream(rawValue: r.stream) ?? .stdout, text: r.text)),
                                      cursor: position))
            }
        }
        return Feed(items: items, jobEnded: jobEnded, hasMore: hasMore)
    }

    /// Sets a host's state outside a lease or a job's end: woken, stopped, or unknown after a failure.
    public func markHost(_ name: String, _ state: HostState) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "UPDATE host SET state = ? WHERE name = ?", arguments: [state.rawValue, name])
        }
    }

    /// A host woken by hand: ready, its idle clock starting now unless a job holds it.
    public func markWoken(_ name: String, at: Date = Date()) async throws(StoreError) {
        try await write { db in
            let busy = try Self.activeJobs(db, host: name) > 0
            try db.execute(sql: "UPDATE host SET state = ?, idle_since = ? WHERE name = ?",
                           arguments: [(busy ? HostState.busy : .ready).rawValue, busy ? nil : at.timeIntervalSince1970, name])
        }
    }

    /// Hosts among `names` that are up or unknown, idle since `cutoff` or earlier, with no
    /// job. With `claim`, they are marked `stopping` in the same transaction, so no lease
    /// can give them a job while they are put to sleep.
    public func idleHosts(among names: Set<String>, idleSince cutoff: Date, claim: Bool) async throws(StoreError) -> [HostStatus] {
        try await write { db in
            var found: [HostStatus] = []
            // Hosts a fleet made are cloud hosts too, whatever their names.
            for record in try HostRecord.filter(names.contains(Column("name")) || Column("fleet") != nil).order(Column("name")).fetchAll(db) {
                guard let state = HostState(rawValue: record.state), state == .ready || state == .unknown,
                      let idleSince = record.idleSince, idleSince <= cutoff.timeIntervalSince1970,
                      try Self.activeJobs(db, host: record.name) == 0 else { continue }
                if claim {
                    try db.execute(sql: "UPDATE host SET state = ? WHERE name = ?", arguments: [HostState.stopping.rawValue, record.name])
                }
                found.append(HostStatus(name: record.name, provider: record.provider, state: state,
                                        idleSince: Date(timeIntervalSince1970: idleSince),
                                        lastJobID: record.lastJobID.map(JobID.init(rawValue:)), activeJobs: 0,
                                        fleet: record.fleet, instanceID: record.instanceID))
            }
            return found
        }
    }

    public func markRunning(_ id: JobID, at: Date = Date()) async throws(StoreError) {
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
            guard JobStatus(rawValue: record.status)?.isFinal != true else { return }
            record.status = outcome.status.rawValue
            record.startedAt = record.startedAt ?? outcome.startedAt.timeIntervalSince1970
            record.finishedAt = outcome.finishedAt.timeIntervalSince1970
            try record.update(db)
            let detail = [outcome.exitStatus.map { "exit status \($0)" }, outcome.signal.map { "signal \($0)" }, outcome.error]
                .compactMap { $0 }.joined(separator: "; ")
            try Self.record(db, id, outcome.status, detail: detail.isEmpty ? nil : detail, at: outcome.finishedAt)
            if let host = record.hostName {
                try Self.release(db, host: host, lastJob: id, at: outcome.finishedAt)
            }
        }
        changes.notify(id)
    }

    /// Keeps a job's end and its results.json while the artifact store cannot take the file
    /// (a full disk, a bucket that is down). The job stays as it is, its host held, until
    /// `pendingResults` are stored and finished; a restart does not run it again.
    public func holdResults(_ id: JobID, outcome: JobOutcome, results: Data, at: Date = Date()) async throws(StoreError) {
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

    /// Ended jobs that finished before `cutoff` and whose files are not yet expired, oldest first.
    public func jobsPastRetention(finishedBefore cutoff: Date, limit: Int = 500) async throws(StoreError) -> [Job] {
        try await read { db in
            try JobRecord.filter(Column("expired_at") == nil && Column("finished_at") != nil && Column("finished_at") < cutoff.timeIntervalSince1970)
                .order(Column("finished_at")).limit(limit).fetchAll(db).map { try $0.job() }
        }
    }

    /// Marks a job's stored files deleted, and its webhook payload with them: its URLs answer
    /// 410 from now on.
    public func markExpired(_ id: JobID, at: Date = Date()) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "UPDATE job SET expired_at = ? WHERE id = ? AND expired_at IS NULL",
                           arguments: [at.timeIntervalSince1970, id.rawValue])
            _ = try JobPayloadRecord.deleteOne(db, key: id.rawValue)
        }
    }

    /// Sends a leased job back to the queue after the machinery failed (SSH, host), to be
    /// tried again from `notBefore`. Counts an attempt when `countAttempt` is set.
    public func requeue(_ id: JobID, reason: String, notBefore: Date, countAttempt: Bool, at: Date = Date()) async throws(StoreError) {
        try await write { db in
            guard var record = try JobRecord.fetchOne(db, key: id.rawValue) else { throw StoreError.unknownJob(id.rawValue) }
            let host = record.hostName
            record.status = JobStatus.queued.rawValue
            record.hostName = nil
            record.startedAt = nil
            record.notBefore = notBefore.timeIntervalSince1970
            if countAttempt { record.attempts += 1 }
            try record.update(db)
            try Self.record(db, id, .queued, detail: reason, at: at)
            if let host { try Self.release(db, host: host, lastJob: id, at: at) }
        }
        changes.notify(id)
    }

    /// Jobs that held a lease when the server stopped go back to the queue, so none is lost.
    /// Each start that finds a job so counts; a job found at `limit` starts (it may be what
    /// crashes the server) is not queued again but handed back, for the caller to end as
    /// `error` with its results.json. Jobs whose results wait for the store are left alone:
    /// they ran, and only their file is missing.
    public func recoverInterrupted(limit: Int = 3, at: Date = Date()) async throws(StoreError) -> Recovery {
        let (stranded, givenUp) = try await write { db -> ([JobID], [Job]) in
            let held = Set(try String.fetchAll(db, sql: "SELECT job_id FROM pending_result"))
            var stranded: [JobID] = [], givenUp: [Job] = []
            for var record in try JobRecord.filter(JobStatus.leased.map(\.rawValue).contains(Column("status"))).fetchAll(db)
            where !held.contains(record.id) {
                record.interruptedStarts += 1
                try record.update(db)
                if record.interruptedStarts >= limit { givenUp.append(try record.job()) } else { stranded.append(JobID(rawValue: record.id)) }
            }
            return (stranded, givenUp)
        }
        for id in stranded {
            try await requeue(id, reason: "the server stopped while the job ran; running it again", notBefore: at, countAttempt: false, at: at)
        }
        return Recovery(requeued: stranded, givenUp: givenUp)
    }

    // MARK: Helpers

    private static func status(_ r: HostRecord, _ db: Database) throws -> HostStatus {
        HostStatus(name: r.name, provider: r.provider, state: HostState(rawValue: r.state) ?? .unknown,
                   idleSince: r.idleSince.map(Date.init(timeIntervalSince1970:)),
                   lastJobID: r.lastJobID.map(JobID.init(rawValue:)),
                   activeJobs: try activeJobs(db, host: r.name), fleet: r.fleet, instanceID: r.instanceID)
    }

    /// A project's jobs that wait: queued, or leased and waiting for their host.
    private static func waitingJobs(_ db: Database, project: String) throws -> Int {
        try JobRecord.filter(Column("project") == project
            && [JobStatus.queued.rawValue, JobStatus.waitingForHost.rawValue].contains(Column("status"))).fetchCount(db)
    }

    private static func activeJobs(_ db: Database, host: String) throws -> Int {
        try JobRecord.filter(Column("host_name") == host && JobStatus.leased.map(\.rawValue).contains(Column("status"))).fetchCount(db)
    }

    private static func release(_ db: Database, host: String, lastJob: JobID, at: Date) throws {
        if try activeJobs(db, host: host) == 0 {
            try db.execute(sql: "UPDATE host SET state = ?, idle_since = ?, last_job_id = ? WHERE name = ?",
                           arguments: [HostState.ready.rawValue, at.timeIntervalSince1970, lastJob.rawValue, host])
        } else {
            try db.execute(sql: "UPDATE host SET last_job_id = ? WHERE name = ?", arguments: [lastJob.rawValue, host])
        }
    }

    private static func record(_ db: Database, _ id: JobID, _ status: JobStatus, detail: String?, hostState: HostProgress? = nil, at: Date) throws {
        try JobEventRecord(id: nil, jobID: id.rawValue, at: at.timeIntervalSince1970, status: status.rawValue, detail: detail,
                           hostState: hostState?.rawValue).insert(db)
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        try await mappingErrors { try await pool.write(body) }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        try await mappingErrors { try await pool.read(body) }
    }

    private enum IntakeRace<T: Sendable>: Sendable {
        case done(Result<T, StoreError>)
        case late
    }

    /// A write for a sender that waits for its answer: given up after `intakeDeadline`. The
    /// write is cancelled then; if it got through all the same, its answer stands, so a
    /// refusal always means nothing was stored.
    private func intakeWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        let race = await withTaskGroup(of: IntakeRace<T>.self) { group -> IntakeRace<T> in
            group.addTask {
                do throws(StoreError) { return .done(.success(try await self.write(body))) } catch { return .done(.failure(error)) }
            }
            group.addTask {
                try? await Task.sleep(for: Self.intakeDeadline)
                return .late
            }
            var answer = IntakeRace<T>.late
            while let next = await group.next() {
                if case .done = next { answer = next }
                group.cancelAll()
            }
            return answer
        }
        switch race {
        case .done(let result): return try result.get()
        case .late: throw .busy("a write waited \(Self.intakeDeadline)")
        }
    }

    /// GRDB's errors become `StoreError`; ours pass through. A lock that outlasted the wait,
    /// and a write cancelled while it waited, are `busy`.
    private func mappingErrors<T>(_ operation: () async throws -> T) async throws(StoreError) -> T {
        do {
            return try await operation()
        } catch let error as StoreError {
            throw error
        } catch is CancellationError {
            throw .busy("the write was given up while it waited")
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            throw .busy("\(error.message ?? "database is locked")")
        } catch {
            throw .database("\(error)")
        }
    }
}
