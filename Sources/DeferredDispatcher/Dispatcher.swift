import DeferredArtifacts
import DeferredCore
import DeferredProviders
import DeferredRunner
import DeferredStore
import Foundation
import Logging
import ServiceLifecycle

/// The loop: lease every job that can start, start a `JobAttempt` for it, wait for the next
/// job or freed slot.
///
/// Nothing accepted is lost, nothing runs twice: a stop (graceful or not) leaves running jobs
/// running on their hosts, and the next start takes them up again there (`Lease.resuming`);
/// jobs still waiting for a host go back to the queue. A job found under way at
/// `maxInterruptedStarts` starts in a row, with no graceful stop between, ends as `error`:
/// it may be what stops the server.
public actor Dispatcher: Service {
    private let config: DeferredConfig
    private let store: any JobStore
    private let artifacts: any ArtifactStore
    private let runner: JobRunner
    private let logger: Logger
    /// The one wake path, shared with housekeeping and the host commands of the same server.
    public nonisolated let waker: HostWaker
    let results: ResultsWriter
    /// Ended jobs' folders, removed with the next exec to their host.
    private let forgets: FolderForgets
    /// Static hosts that did not answer, held back from new jobs for a while.
    private let holds = HostHolds()
    private let wakeup: Wakeup
    private var running: [JobID: Task<Void, Never>] = [:]
    /// Jobs someone asked to cancel, raised for their attempts (made before the attempt when
    /// the ask comes first).
    private var cancels: [JobID: CancelSignal] = [:]
    /// Queued jobs being ended as cancelled.
    private var endingInQueue: Set<JobID> = []
    /// Jobs this server's stop left running on their hosts, with the host.
    private var leftRunning: [(job: JobID, host: String)] = []

    public var maxAttempts = 5
    /// Server starts that may find one job running before it ends as `error`: a job that
    /// crashes the server would otherwise crash it again at every start.
    public var maxInterruptedStarts = 3
    /// How often queued jobs are looked at without a wake-up: only jobs waiting out a backoff
    /// need it. A queued job and a freed slot (a job's end stored) each wake the loop at once.
    private let pollInterval: Duration

    public init(config: DeferredConfig, store: any JobStore, artifacts: any ArtifactStore, runner: JobRunner = JobRunner(),
                providers: HostProviders = HostProviders(ec2: nil), outboundRetryBase: Duration = .seconds(1),
                publishAttempts: Int = 6, pollInterval: Duration = .seconds(1), forgetDelay: Duration = .seconds(1),
                time: any TimeSource = SystemTime(), logger: Logger) {
        let post = OutboundPost(retry: RetryPolicy(maxAttempts: 5, base: outboundRetryBase, cap: outboundRetryBase * 30))
        let wakeup = Wakeup()
        let waker = HostWaker(store: store, providers: providers, time: time)
        let forgets = FolderForgets(runner: runner, waker: waker, flushAfter: forgetDelay)
        // The folder is given to the forgets before the slot is freed: the next job's start on
        // the host, which the freed slot may lease at once, takes it along.
        results = ResultsWriter(config: config, store: store, artifacts: artifacts, statuses: CommitStatuses(github: config.github, post: post),
                                notifier: ResultNotifier(post: post), reports: JobReports(), publishAttempts: publishAttempts,
                                endStored: { job, outcome in
                                    if !outcome.leftOnHost, let host = job.hostName { await forgets.add(job.id, host: host) }
                                    wakeup.signal()
                                })
        self.wakeup = wakeup
        self.pollInterval = pollInterval
        self.waker = waker
        self.forgets = forgets
        self.config = config
        self.store = store
        self.artifacts = artifacts
        self.runner = runner
        self.logger = logger
    }

    /// Housekeeping for this dispatcher's server: the same store, artifacts, waker and results writer.
    public nonisolated func housekeeping(every interval: Duration = .seconds(60), time: any TimeSource = SystemTime()) -> Housekeeping {
        Housekeeping(config: config, store: store, artifacts: artifacts, waker: waker, results: results,
                     interval: interval, time: time, logger: logger)
    }

    /// Tells the dispatcher a job was queued. Cheap; callable from any context.
    public nonisolated func jobQueued() {
        wakeup.signal()
    }

    /// Tells the dispatcher someone asked to cancel a job (the store has it). Callable from any context.
    public nonisolated func cancelRequested(_ id: JobID) {
        Task { await cancel(id) }
    }

    public func run() async throws {
        // Jobs queued and places freed by other servers sharing the store wake this loop too.
        store.whenQueueChanges { [wakeup] in wakeup.signal() }
        guard let cancelled = try await cancelWhenGracefulShutdown({ try await self.startUp() }) else { return await stopped() }
        for job in cancelled { await cancelInQueue(job) }
        await cancelWhenGracefulShutdown {
            // A store several servers share: the jobs of a server that stopped or went silent
            // are looked for again and again, not only at this server's start.
            let takeover = self.store.takeoverInterval
            var nextTakeover = ContinuousClock.now + (takeover ?? .zero)
            while !Task.isCancelled {
                if let takeover, ContinuousClock.now >= nextTakeover {
                    do { try await self.recover() } catch { self.logger.warning("cannot look for other servers' jobs: \(error)") }
                    nextTakeover = ContinuousClock.now + takeover
                }
                await self.dispatchReady()
                await self.wakeup.wait(upTo: takeover.map { min($0, self.pollInterval) } ?? self.pollInterval)
            }
        }
        await stopped()
    }

    /// Shutting down: running jobs keep running on their hosts; those still waiting are queued again.
    private func stopped() async {
        for task in running.values { task.cancel() }
        for task in running.values { await task.value }
        await waker.closeAll()
        await store.resign()
        if !leftRunning.isEmpty {
            let hosts = Dictionary(grouping: leftRunning, by: \.host).sorted { $0.key < $1.key }
                .map { "\($0.value.count) on \($0.key)" }.joined(separator: ", ")
            logger.notice("stopped, leaving \(leftRunning.count) job\(leftRunning.count == 1 ? "" : "s") running on their hosts (\(hosts)); the next start follows them again",
                          metadata: ["jobs": "\(leftRunning.map(\.job.rawValue))"])
        }
    }

    /// The start's store work: the configured hosts registered, the jobs the last server left
    /// taken up, and the queued jobs whose cancel came while no server ran (no lease takes
    /// them: missed here, they would wait until the next start). Nil when a graceful stop
    /// came first. Each step is tried again on its own (`startStep`): taking up the jobs
    /// starts attempts that follow them, which must not happen twice.
    private func startUp() async throws -> [Job]? {
        guard try await startStep({ try await self.store.register(hosts: self.config.hosts) }) != nil,
              try await startStep({ try await self.recover() }) != nil else { return nil }
        return try await startStep { try await self.store.cancelledInQueue() }
    }

    /// One step of the start, tried until it goes through. A lock held by another process, a
    /// full disk or a database away for a moment is waited out (`StoreError.waitingOut`, for up
    /// to `storeWriteDeadline`, as a job's end waits) rather than ending the server: the intake
    /// goes on answering meanwhile, and its jobs wait for this. What cannot pass (a row this
    /// version cannot read) is thrown. Nil when a graceful stop came first.
    private nonisolated func startStep<T: Sendable>(_ step: @Sendable () async throws -> T) async throws -> T? {
        do {
            return try await StoreError.waitingOut(for: results.storeWriteDeadline, "start dispatching", logger: logger, step)
        } catch where Task.isCancelled {
            return nil
        }
    }

    /// Jobs the last server left leased go back to the queue, or end when they keep stopping it.
    private func recover() async throws {
        let recovered = try await store.recoverInterrupted(limit: maxInterruptedStarts)
        if !recovered.requeued.isEmpty {
            logger.info("queued again after a restart", metadata: ["jobs": "\(recovered.requeued.map(\.rawValue))"])
        }
        for job in recovered.givenUp {
            var log = logger
            log[metadataKey: "job"] = "\(job.id)"
            log.error("the job was under way at \(maxInterruptedStarts) server starts in a row; ending it")
            await results.complete(job, host: job.hostName ?? "", outcome: JobOutcome(
                status: .error, error: "the job was under way each of the last \(maxInterruptedStarts) times the server stopped; it is not followed again, in case it is what stops the server, and what runs of it on its host is killed",
                startedAt: job.startedAt ?? Date(), finishedAt: Date()), log: log)
            if let host = job.hostName {
                await attempt(Lease(job: job, hostName: host, hostWasUp: true), log: log).killWhatRuns()
            }
        }
        if !recovered.resumed.isEmpty {
            logger.info("taking up again the jobs the last server left running", metadata: ["jobs": "\(recovered.resumed.map(\.job.id.rawValue))"])
        }
        if !recovered.requeued.isEmpty { wakeup.signal() }
        for lease in recovered.resumed { start(lease) }
    }

    /// A job someone asked to cancel: a queued one ends now (no lease takes it any more); a
    /// leased one's attempt stops before its command starts, or has its command killed.
    private func cancel(_ id: JobID) async {
        guard let job = try? await store.job(id: id), !job.status.isFinal, let by = job.cancelRequestedBy else { return }
        if job.status == .queued {
            await cancelInQueue(job)
            return
        }
        let signal = cancels[id] ?? CancelSignal()
        cancels[id] = signal
        // Before its command may run, the attempt is stopped wherever it waits.
        if !signal.raise(by: by) { running[id]?.cancel() }
    }

    private func cancelInQueue(_ job: Job) async {
        // Once: the ask and the end of the job's last attempt may both find it queued.
        guard endingInQueue.insert(job.id).inserted else { return }
        defer { endingInQueue.remove(job.id) }
        guard let now = try? await store.job(id: job.id), !now.status.isFinal else { return }
        cancels[job.id] = nil
        var log = logger
        log[metadataKey: "job"] = "\(job.id)"
        var outcome = JobOutcome(status: .cancelled, startedAt: Date(), finishedAt: Date())
        outcome.cancelledBy = job.cancelRequestedBy
        log.info("cancelled while queued")
        await results.complete(job, host: job.hostName ?? "", outcome: outcome, log: log)
    }

    /// Leases every job that can start now and starts it.
    func dispatchReady() async {
        let config = self.config, holds = self.holds
        while true {
            let lease: Lease?
            do {
                lease = try await store.leaseNext { project in
                    (config.project(named: project)?.hosts ?? []).compactMap { name -> LeaseTarget? in
                        if let host = config.host(named: name) {
                            return .host(name: host.name, maxJobs: host.maxJobs, queuedBefore: holds.takesOnlyQueuedBefore(host))
                        }
                        return config.fleet(named: name).map { .fleet(name: $0.name, maxHosts: $0.maxHosts, maxJobs: $0.maxJobs, provider: $0.provider.rawValue) }
                    }
                }
            } catch {
                logger.error("cannot lease jobs: \(error)")
                return
            }
            guard let lease else { return }
            start(lease)
        }
    }

    private func start(_ lease: Lease) {
        var log = logger
        log[metadataKey: "job"] = "\(lease.job.id)"
        log[metadataKey: "host"] = "\(lease.hostName)"
        let id = lease.job.id, host = lease.hostName
        let signal = cancels[id] ?? CancelSignal(raisedBy: lease.job.cancelRequestedBy, commandMayRun: lease.resuming != nil)
        cancels[id] = signal
        let attempt = attempt(lease, cancel: signal, log: log)
        running[id] = Task {
            let left = await attempt.run()
            // Not in this task, which a cancel of the job cancels: the end's reads and writes
            // of the store would fail as cancelled, and a cancelled job sent back to the queue
            // by its attempt would wait there for ever.
            await Task { await self.ended(id, leftRunningOn: left ? host : nil) }.value
        }
    }

    private func attempt(_ lease: Lease, cancel: CancelSignal = CancelSignal(), log: Logger) -> JobAttempt {
        JobAttempt(lease: lease, config: config, store: store, artifacts: artifacts, runner: runner,
                   waker: waker, results: results, forgets: forgets, holds: holds, maxAttempts: maxAttempts, cancel: cancel, log: log)
    }

    /// An attempt is over. A cancel asked for while the attempt sent its job back to the queue
    /// (its host did not answer, its machinery failed) may have read the job as still leased;
    /// no lease takes a job asked to cancel, so one found queued so ends here.
    private func ended(_ id: JobID, leftRunningOn host: String?) async {
        running[id] = nil
        cancels[id] = nil
        if let host {
            leftRunning.append((id, host))
            return
        }
        if let job = try? await store.job(id: id), job.status == .queued, job.cancelRequestedBy != nil, running[id] == nil {
            await cancelInQueue(job)
        }
    }
}
