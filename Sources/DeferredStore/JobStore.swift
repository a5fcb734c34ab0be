import DeferredCore
import Foundation

/// What HTTP and the dispatcher see of the store, by concern. `SQLiteJobStore` (one server)
/// and `PostgresJobStore` (any number sharing it) both pass the same conformance suite
/// (Tests/DeferredStoreTests). Every change of a job's state is one transaction: a host's count
/// of running jobs and its idle clock always agree with the jobs table.
public protocol JobStore: JobIntake, JobReading, HostRegistry, JobLeasing, JobFeed, JobRetention {}

/// Jobs coming in: deduplicated, bounded per project, one transaction with their checks.
public protocol JobIntake: Sendable {
    /// Stores a new queued push job, unless its delivery id or its signed body (`bodySHA256`:
    /// the same push replayed under a new, unsigned delivery id) was seen before: then the
    /// earlier job. Refused while `maxQueued` jobs of its project wait. `payload`, the
    /// webhook's body, is kept for the job's page.
    func enqueue(_ job: Job, delivery: String?, payload: Data?, bodySHA256: String?,
                 maxQueued: Int, detail: String?) async throws(StoreError) -> EnqueueResult

    /// Stores a posted script's job: a repeated idempotency key answers with its job (or a
    /// conflict when the body differs) within `StorePolicy.idempotencyWindow`; a full queue
    /// of its project refuses.
    func enqueueScript(_ job: Job, idempotency: IdempotencyClaim?, maxQueued: Int) async throws(StoreError) -> ScriptEnqueueResult
}

/// Jobs read back, for result URLs, the dashboard and the command line.
public protocol JobReading: Sendable {
    func job(token: ResultToken) async throws(StoreError) -> Job?
    func job(id: JobID) async throws(StoreError) -> Job?
    /// The jobs `query` picks, newest first, at most its limit.
    func jobs(matching query: JobQuery) async throws(StoreError) -> [Job]
    /// The webhook payload a push job came from; nil for a script, or past retention.
    func payload(of id: JobID) async throws(StoreError) -> Data?
    /// The job's state changes in order, those after `sequence` only.
    func events(of id: JobID, after sequence: Int64) async throws(StoreError) -> [JobEvent]
    func jobCount() async throws(StoreError) -> Int
    /// The jobs made to run `id` again, oldest first.
    func reruns(of id: JobID) async throws(StoreError) -> [JobID]
    func deliveryCount() async throws(StoreError) -> Int
}

/// Build hosts as the store knows them: state, idle clock, the jobs they hold.
public protocol HostRegistry: Sendable {
    /// Makes a row for every configured host that has none; keeps the state of the others.
    func register(hosts: [HostConfig], at: Date) async throws(StoreError)
    func hosts() async throws(StoreError) -> [HostStatus]
    func host(named name: String) async throws(StoreError) -> HostStatus?
    /// The instance a fleet's host was launched as.
    func recordInstance(_ host: String, instanceID: String) async throws(StoreError)
    /// A fleet's host whose instance is gone (terminated, or never came up).
    func removeHost(_ name: String) async throws(StoreError)
    /// Sets a host's state outside a lease or a job's end: woken, stopped, or unknown after a failure.
    func markHost(_ name: String, _ state: HostState) async throws(StoreError)
    /// A host woken by hand: ready, its idle clock starting now unless a job holds it.
    func markWoken(_ name: String, at: Date) async throws(StoreError)
    /// Hosts among `names` (and every fleet host) that are up or unknown, idle since `cutoff`
    /// or earlier, with no job. With `claim`, they are marked `stopping` in the same
    /// transaction, so no lease can give them a job while they are put to sleep.
    func idleHosts(among names: Set<String>, idleSince cutoff: Date, claim: Bool) async throws(StoreError) -> [HostStatus]
    /// A fleet's new instance never became reachable: the fleet's next launch waits longer
    /// with each such instance in a row (`LaunchBackoff`, kept by `leaseNext`).
    func recordBootFailure(fleet: String, reason: String, at: Date) async throws(StoreError)
    /// A fleet's new instance answered: its launches go at once again.
    func recordBootSuccess(fleet: String) async throws(StoreError)
    /// Fleets whose last launches failed, for the host list.
    func fleetBootFailures() async throws(StoreError) -> [FleetBootFailures]
}

/// A job's way from the queue to its end.
public protocol JobLeasing: Sendable {
    /// Leases the oldest runnable queued job to the first of its project's hosts that has
    /// room, in one transaction. `targetsFor` gives a project's hosts and fleets in order; a
    /// fleet offers its hosts first, then a new one (state `provisioning`) while it has fewer
    /// than `max_hosts`, counted in the same transaction. Nil when nothing can run now.
    func leaseNext(now: Date, targetsFor: @escaping @Sendable (String) -> [LeaseTarget]) async throws(StoreError) -> Lease?
    /// A step of the job's wait for its host (the instance's state), as an event.
    func note(_ id: JobID, waiting detail: String, host: HostProgress?, at: Date) async throws(StoreError)
    /// The job's command is about to start. A store several servers share refuses
    /// (`leaseLost`) when the job is no longer this server's: its command must not start.
    func markRunning(_ id: JobID, at: Date) async throws(StoreError)
    /// Ends a job and frees its host; the host's idle clock starts when its last job ends.
    /// Only a job that holds a lease ends: one that ended already keeps its end. Its held
    /// results, if any, are dropped in the same transaction.
    func finish(_ id: JobID, outcome: JobOutcome) async throws(StoreError)
    /// Sends a leased job back to the queue after the machinery failed, to be tried again
    /// from `notBefore`. Counts an attempt when `countAttempt` is set. `hostState`, when
    /// given, is the host's state after, in the same transaction: a host whose wake failed is
    /// `unknown` before any other lease can find it `ready` and skip the wake.
    func requeue(_ id: JobID, reason: String, notBefore: Date, countAttempt: Bool, hostState: HostState?, at: Date) async throws(StoreError)
    /// Jobs that held a lease when the server stopped: those still waiting for their host go
    /// back to the queue; those running (their command may run on its host) keep their host
    /// and are handed back as leases to take up again (`Lease.resuming`). Each start that
    /// finds a job so counts (a graceful stop that left it running does not); a job found at
    /// `limit` starts is handed back instead, for the caller to end as `error`. Jobs whose
    /// results wait for the artifact store are left alone.
    func recoverInterrupted(limit: Int, at: Date) async throws(StoreError) -> Recovery
    /// Asks to cancel a job that has not ended: who asked is kept (a queued job is never leased
    /// from then on) and an event says so. Returns the job as it is now (an ended job
    /// unchanged), or nil for an unknown one.
    func requestCancel(_ id: JobID, by: String, at: Date) async throws(StoreError) -> Job?
    /// Queued jobs that someone asked to cancel: they end as `cancelled` without running.
    func cancelledInQueue() async throws(StoreError) -> [Job]
    /// The server stops and leaves the running job to run on on its host, to be taken up again
    /// at its next start: an event says so, and the stop does not count as a crash.
    func leaveRunning(_ id: JobID, detail: String, at: Date) async throws(StoreError)
    /// Keeps a job's end and its results.json while the artifact store cannot take the file.
    /// The job stays as it is, its host held, until finished; a restart does not run it again.
    func holdResults(_ id: JobID, outcome: JobOutcome, results: Data, at: Date) async throws(StoreError)
    /// The jobs whose results.json waits for the artifact store, oldest first.
    func pendingResults() async throws(StoreError) -> [PendingResult]
    /// Whether this server still follows the job, and so may store its files and its end. A store
    /// several servers share says no once another server took the job over (this one stalled
    /// past `takeover_seconds`); its writes of the job are refused then too (`leaseLost`).
    func follows(_ id: JobID) async throws(StoreError) -> Bool
    /// For a store several servers share: how often to call `recoverInterrupted` again, which
    /// then takes over the jobs of servers that stopped or went silent. Nil for a store one
    /// server has alone, whose start is the only time to look.
    var takeoverInterval: Duration? { get }
    /// The server stops: the jobs it leaves running may be taken over at once.
    func resign() async
    /// Calls `wake` when another server queued a job or freed a host's place, so the
    /// dispatcher leases at once rather than at its next poll. A store one server has alone
    /// never calls it: the server's own changes wake its dispatcher directly.
    func whenQueueChanges(_ wake: @escaping @Sendable () -> Void)
    /// Whether this server does the shared chores (retention, idle sleep) now: one server at a
    /// time among those sharing the store, for `duration` unless it claims again before. A
    /// server that stops or dies lets go by itself when the time is out. A store one server has
    /// alone always answers yes.
    func claimHousekeeping(for duration: Duration) async -> Bool
}

/// A job's live story: its state events and output, merged, read from a cursor.
public protocol JobFeed: Sendable {
    /// Wakes listeners of a job's feed after its events or output change.
    var changes: JobChanges { get }
    /// Stores a batch of a job's output as it streams. Each chunk carries the time its first
    /// byte arrived: a batch stored after the job's exit still sorts before the job's end.
    /// `position`, stored in the same transaction, is how far into the host's output files the
    /// stored output now goes: where a server that takes the job up again reads on from.
    func appendOutput(_ id: JobID, _ chunks: [(stream: OutputChunk.Stream, text: String, at: Date)],
                      through position: OutputPosition?) async throws(StoreError)
    /// How far the job's stored output goes into its output files on the host; nil before any.
    func outputPosition(of id: JobID) async throws(StoreError) -> OutputPosition?
    /// State events and output after `cursor`, merged in time order, each with the cursor
    /// past it, at most a page of output (`hasMore` then), and whether the job has ended, from
    /// the same read.
    func feed(of id: JobID, after cursor: FeedCursor) async throws(StoreError) -> Feed
    /// The job's events and its latest output, at most about `outputBytes` of it; `cut` when
    /// earlier output was left out. The cursor of its last item is where a live view goes on.
    func recentFeed(of id: JobID, outputBytes: Int) async throws(StoreError) -> (feed: Feed, cut: Bool)
}

/// Ended jobs past their keeping time.
public protocol JobRetention: Sendable {
    /// Ended jobs that finished before `cutoff` and whose files are not yet expired, oldest first.
    func jobsPastRetention(finishedBefore cutoff: Date, limit: Int) async throws(StoreError) -> [Job]
    /// Marks a job's stored files deleted, and its webhook payload with them: its URLs answer
    /// 410 from now on.
    func markExpired(_ id: JobID, at: Date) async throws(StoreError)
}

/// Rules every store keeps alike.
public enum StorePolicy {
    /// Idempotency keys are remembered this long.
    public static let idempotencyWindow: TimeInterval = 24 * 3600
    /// Output rows one feed read takes at most (each at most 64 KiB): memory stays bounded
    /// however large a job's output, and a listener far behind catches up page by page.
    public static let feedPageRows = 32
}

// The defaults callers lean on.
public extension JobIntake {
    func enqueue(_ job: Job, delivery: String?, payload: Data? = nil) async throws(StoreError) -> EnqueueResult {
        try await enqueue(job, delivery: delivery, payload: payload, bodySHA256: nil, maxQueued: .max, detail: nil)
    }
}

public extension JobReading {
    func jobs(limit: Int = 50) async throws(StoreError) -> [Job] { try await jobs(project: nil, limit: limit) }

    /// The latest jobs first, of one project or of all.
    func jobs(project: String?, limit: Int) async throws(StoreError) -> [Job] {
        try await jobs(matching: JobQuery(project: project, limit: limit))
    }

    func events(of id: JobID) async throws(StoreError) -> [JobEvent] { try await events(of: id, after: 0) }
}

public extension HostRegistry {
    func register(hosts: [HostConfig]) async throws(StoreError) { try await register(hosts: hosts, at: Date()) }
    func markWoken(_ name: String) async throws(StoreError) { try await markWoken(name, at: Date()) }
}

public extension JobLeasing {
    var takeoverInterval: Duration? { nil }

    func resign() async {}

    func whenQueueChanges(_ wake: @escaping @Sendable () -> Void) {}

    func claimHousekeeping(for duration: Duration) async -> Bool { true }

    func leaseNext(targetsFor: @escaping @Sendable (String) -> [LeaseTarget]) async throws(StoreError) -> Lease? {
        try await leaseNext(now: Date(), targetsFor: targetsFor)
    }

    func note(_ id: JobID, waiting detail: String, host: HostProgress? = nil) async throws(StoreError) {
        try await note(id, waiting: detail, host: host, at: Date())
    }

    func markRunning(_ id: JobID) async throws(StoreError) { try await markRunning(id, at: Date()) }

    func requeue(_ id: JobID, reason: String, notBefore: Date, countAttempt: Bool, hostState: HostState? = nil) async throws(StoreError) {
        try await requeue(id, reason: reason, notBefore: notBefore, countAttempt: countAttempt, hostState: hostState, at: Date())
    }

    func requeue(_ id: JobID, reason: String, notBefore: Date, countAttempt: Bool, at: Date) async throws(StoreError) {
        try await requeue(id, reason: reason, notBefore: notBefore, countAttempt: countAttempt, hostState: nil, at: at)
    }

    func recoverInterrupted(limit: Int) async throws(StoreError) -> Recovery {
        try await recoverInterrupted(limit: limit, at: Date())
    }

    func requestCancel(_ id: JobID, by: String) async throws(StoreError) -> Job? {
        try await requestCancel(id, by: by, at: Date())
    }

    func leaveRunning(_ id: JobID, detail: String) async throws(StoreError) {
        try await leaveRunning(id, detail: detail, at: Date())
    }

    func holdResults(_ id: JobID, outcome: JobOutcome, results: Data) async throws(StoreError) {
        try await holdResults(id, outcome: outcome, results: results, at: Date())
    }
}

public extension JobFeed {
    func appendOutput(_ id: JobID, _ chunks: [(stream: OutputChunk.Stream, text: String, at: Date)]) async throws(StoreError) {
        try await appendOutput(id, chunks, through: nil)
    }
}

public extension JobRetention {
    func jobsPastRetention(finishedBefore cutoff: Date) async throws(StoreError) -> [Job] {
        try await jobsPastRetention(finishedBefore: cutoff, limit: 500)
    }

    func markExpired(_ id: JobID) async throws(StoreError) { try await markExpired(id, at: Date()) }
}
