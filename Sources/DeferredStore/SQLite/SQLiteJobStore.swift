import DeferredCore
import DeferredFiles
import Foundation
import GRDB
import Synchronization

/// The store in one SQLite file through GRDB (WAL): the embedded default, for one server.
///
/// Every method is async and runs on GRDB's own queues, so the HTTP event loop never waits
/// on the disk. Leases and the end of a job are single write transactions. The methods live
/// beside this file by concern (intake, reading, hosts, leases, feed, retention), as the
/// `JobStore` protocols group them.
public final class SQLiteJobStore: JobStore {
    let pool: DatabasePool

    /// Held by `deferred serve` while it runs: no second server on this file.
    private let serverLock: SQLiteServerLock?

    /// Intake writes, committed in batches.
    let intake: GroupCommit

    /// Wakes listeners of a job's feed after its events or output change.
    public let changes = JobChanges()

    /// Feed reads shared by listeners at the same cursor and version.
    let feedReads = SharedFeedReads()

    /// Feed reads that went to the database, for the tests of sharing them.
    var feedReadsMade: Int { feedReads.made.load(ordering: .relaxed) }

    /// How long a write waits for another process's lock on the file before it fails.
    public static let lockWait: TimeInterval = 2

    /// How long an intake write may wait (for the lock, or behind the dispatcher's writes that
    /// wait for it) before the sender is told to come back: GitHub waits 10 s at most.
    public static let intakeDeadline: Duration = .seconds(3)

    /// How many pages the WAL may hold before the writer checkpoints it itself, inside a commit
    /// (SQLite's default is 1,000). `WALCheckpointer` copies the intake's pages well before this,
    /// off the writer; this is what lets the WAL start again from its beginning.
    static let walPagesBeforeWriterCheckpoints = 4_000

    /// Intake writes between two of `WALCheckpointer`'s copies, unless the store is opened with
    /// another count: few, so that each copy is small (why: `WALCheckpointer`).
    public static let intakeWritesBetweenCheckpoints = 32

    /// Copies the WAL into the database file after every `checkpointEvery` intake writes.
    let checkpointer: WALCheckpointer

    /// `serving`: for `deferred serve`, which is refused while another server has the file.
    /// `checkpointEvery`: intake writes between two checkpoints off the writer (smaller in tests).
    public init(path: String, serving: Bool = false, checkpointEvery: Int = intakeWritesBetweenCheckpoints) throws(StoreError) {
        do {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            if !FileManager.default.fileExists(atPath: folder) { try PrivateFiles.makeFolder(folder) }
        } catch {
            throw .cannotOpen(path: path, reason: "\(error)")
        }
        serverLock = serving ? try SQLiteServerLock(statePath: path) : nil
        do {
            // SQLite gives the -wal and -shm files the database's own mode: 0600 before it opens.
            let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, PrivateFiles.fileMode)
            if fd >= 0 { close(fd) }
            for file in [path, path + "-wal", path + "-shm"] { PrivateFiles.restrict(file) }
            var config = Configuration()
            // idle-sleep in cron and serve share the file: wait for each other's writes, but
            // not so long that a webhook's sender (GitHub waits 10 s) hears nothing: past this
            // the intake answers 503 with Retry-After, and the dispatcher tries its writes again.
            config.busyMode = .timeout(Self.lockWait)
            config.prepareDatabase { db in
                // Each intake write runs in a savepoint of its batch; SQLite keeps what a
                // savepoint would undo in a temporary file once it passes 64 KiB, and a batch's
                // writes made, filled and deleted hundreds of those files a second.
                try db.execute(sql: "PRAGMA temp_store = MEMORY")
            }
            pool = try DatabasePool(path: path, configuration: config)
            // GRDB opens WAL databases with synchronous = NORMAL, which syncs only at checkpoints:
            // a commit outlives kill -9 but not a power cut. A 202 promises the job is on disk, so
            // the writer syncs the WAL at every commit; group commit makes that one sync per batch
            // of deliveries (the intake bench showed no change in rate).
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.walPagesBeforeWriterCheckpoints)")
            }
            try Schema.migrator.migrate(pool)
            let checkpointer = try WALCheckpointer(path: path, everyWrites: checkpointEvery, lockWait: Self.lockWait)
            intake = GroupCommit(pool: pool, deadline: Self.intakeDeadline, onCommit: checkpointer.committed)
            self.checkpointer = checkpointer
        } catch {
            // Opening writes when the file has no WAL yet (a clean stop removes it): another
            // process's lock then refuses it, which passes, unlike what `cannotOpen` names.
            if case .busy(let what) = StoreError(sqlite: error) { throw .busy(what) }
            throw .cannotOpen(path: path, reason: "\(error)")
        }
    }

    static func status(_ r: HostRecord, _ db: Database) throws -> HostStatus {
        HostStatus(name: r.name, provider: r.provider, state: HostState(rawValue: r.state) ?? .unknown,
                   idleSince: r.idleSince.map(Date.init(timeIntervalSince1970:)),
                   lastJobID: r.lastJobID.map(JobID.init(rawValue:)),
                   activeJobs: try activeJobs(db, host: r.name), fleet: r.fleet, instanceID: r.instanceID)
    }

    /// A project's jobs that wait: queued, or leased and waiting for their host.
    static func waitingJobs(_ db: Database, project: String) throws -> Int {
        // Kept by triggers (Schema v12) with every change of a job's status.
        try Int.fetchOne(db.cachedStatement(sql: "SELECT jobs FROM project_waiting WHERE project = ?"), arguments: [project]) ?? 0
    }

    private static let activeJobsSQL = "SELECT COUNT(*) FROM job WHERE host_name = ? AND status IN ("
        + JobStatus.leased.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"

    static func activeJobs(_ db: Database, host: String) throws -> Int {
        // Asked on every lease: a statement prepared once, not built from the query interface.
        try Int.fetchOne(db.cachedStatement(sql: activeJobsSQL), arguments: [host]) ?? 0
    }

    static func release(_ db: Database, host: String, lastJob: JobID, at: Date) throws {
        if try activeJobs(db, host: host) == 0 {
            try db.execute(sql: "UPDATE host SET state = ?, idle_since = ?, last_job_id = ? WHERE name = ?",
                           arguments: [HostState.ready.rawValue, at.timeIntervalSince1970, lastJob.rawValue, host])
        } else {
            try db.execute(sql: "UPDATE host SET last_job_id = ? WHERE name = ?", arguments: [lastJob.rawValue, host])
        }
    }

    static func record(_ db: Database, _ id: JobID, _ status: JobStatus, detail: String?, hostState: HostProgress? = nil, at: Date) throws {
        try JobEventRecord(id: nil, jobID: id.rawValue, at: at.timeIntervalSince1970, status: status.rawValue, detail: StoredText.kept(detail),
                           hostState: hostState?.rawValue).insertPrepared(db)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        try await mappingErrors { try await pool.write(body) }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        try await mappingErrors { try await pool.read(body) }
    }

    /// A write for a sender that waits for its answer, committed together with the others
    /// that arrive meanwhile (`GroupCommit`): given up after `intakeDeadline` if it could not
    /// start by then, so a refusal always means nothing was stored.
    func intakeWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        try await intake.write(body)
    }

    func mappingErrors<T>(_ operation: () async throws -> T) async throws(StoreError) -> T {
        do {
            return try await operation()
        } catch {
            throw StoreError(sqlite: error)
        }
    }
}

extension StoreError {
    /// GRDB's errors as `StoreError`; ours pass through. A lock that outlasted the wait, and a
    /// write cancelled while it waited, are `busy`.
    init(sqlite error: any Error) {
        switch error {
        case let error as StoreError:
            self = error
        case is CancellationError:
            self = .busy("the write was given up while it waited")
        case let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED:
            self = .busy("\(error.message ?? "database is locked")")
        default:
            self = .database("\(error)")
        }
    }
}
