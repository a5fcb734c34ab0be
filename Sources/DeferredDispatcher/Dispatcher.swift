import DeferredArtifacts
import DeferredCloud
import DeferredCore
import DeferredProviders
import DeferredRunner
import DeferredSSH
import DeferredStore
import Foundation
import Logging
import ServiceLifecycle

/// Leases queued jobs to free hosts and runs them, writing every job's results.json.
///
/// Nothing accepted is lost: jobs that held a lease when the server stopped are queued again
/// at start; a failure of the machinery (SSH) sends the job back with backoff and counts an
/// attempt; only after `maxAttempts` does it end as `error`, with its results.json.
public actor Dispatcher: Service {
    private let config: DeferredConfig
    private let store: any JobStore
    private let artifacts: any ArtifactStore
    private let runner: JobRunner
    private let logger: Logger
    private let providers: HostProviders
    private let connections = HostConnections()
    private let wakeup = Wakeup()
    private var running: [JobID: Task<Void, Never>] = [:]
    /// Wakes in progress, one per host, shared by the jobs that wait for it.
    private var wakes: [String: Task<HostWake, any Error>] = [:]
    /// Where SSH finds a cloud host that has no configured address, learnt at its wake.
    private var addresses: [String: String] = [:]
    /// Each job's reports to others (commit statuses, notify_url), sent in order, off the job's path.
    private var reports: [JobID: (token: UUID, task: Task<Void, Never>)] = [:]
    private let statuses: CommitStatuses
    private let notifier: ResultNotifier

    public var maxAttempts = 5
    /// Server starts that may find one job running before it ends as `error`: a job that
    /// crashes the server would otherwise crash it again at every start.
    public var maxInterruptedStarts = 3
    /// How long the end of a job (or its held results) is tried against a locked or failing
    /// store before it is given up (then a restart finds the job and queues it again).
    public var storeWriteDeadline: Duration = .seconds(15 * 60)
    /// Tries at storing a finished job's files (1, 2, 4 … seconds apart) before it ends without them.
    public var publishAttempts = 6
    /// A job whose machinery failed waits 2, 4, 8 … seconds, at most a minute, in the queue.
    static let requeueBackoff = RetryPolicy(base: .seconds(1), cap: .seconds(60), jittered: false)
    /// An artifact store that failed is tried again after 1, 2, 4 … seconds.
    static let publishBackoff = RetryPolicy(base: .seconds(1), cap: .seconds(60), jittered: false)
    /// How often queued jobs are looked at without a wake-up (for jobs waiting out a backoff).
    public var pollInterval: Duration = .seconds(1)
    /// How often idle cloud hosts are looked for and put to sleep.
    public var sleepCheckInterval: Duration = .seconds(60)

    public init(config: DeferredConfig, store: any JobStore, artifacts: any ArtifactStore, runner: JobRunner = JobRunner(),
                providers: HostProviders = HostProviders(ec2: nil), outboundRetryBase: Duration = .seconds(1), logger: Logger) {
        let post = OutboundPost(retry: RetryPolicy(maxAttempts: 5, base: outboundRetryBase, cap: outboundRetryBase * 30))
        statuses = CommitStatuses(github: config.github, post: post)
        notifier = ResultNotifier(post: post)
        self.config = config
        self.store = store
        self.artifacts = artifacts
        self.runner = runner
        self.providers = providers
        self.logger = logger
    }

    public func setSleepCheckInterval(_ interval: Duration) { sleepCheckInterval = interval }

    /// Tells the dispatcher a job was queued. Cheap; callable from any context.
    public nonisolated func jobQueued() {
        Task { await wakeup.signal() }
    }

    public func run() async throws {
        try await store.register(hosts: config.hosts)
        let recovered = try await store.recoverInterrupted(limit: maxInterruptedStarts)
        if !recovered.requeued.isEmpty {
            logger.info("queued again after a restart", metadata: ["jobs": "\(recovered.requeued.map(\.rawValue))"])
        }
        for job in recovered.givenUp {
            var log = logger
            log[metadataKey: "job"] = "\(job.id)"
            log.error("the job was under way at \(maxInterruptedStarts) server starts in a row; ending it")
            await complete(job, host: job.hostName ?? "", outcome: JobOutcome(
                status: .error, error: "the job was under way each of the last \(maxInterruptedStarts) times the server stopped; it is not run again, in case it is what stops the server",
                startedAt: job.startedAt ?? Date(), finishedAt: Date()), log: log)
        }
        let sleeper = Task { await self.sleepIdleHosts() }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.dispatchReady()
                await self.wakeup.wait(upTo: self.pollInterval)
            }
        }
        sleeper.cancel()
        // Shutting down: jobs that are still running are stopped and queued again.
        for task in running.values { task.cancel() }
        for task in running.values { await task.value }
        await connections.closeAll()
    }

    /// Leases every job that can start now and starts it.
    func dispatchReady() async {
        let config = self.config
        while true {
            let lease: Lease?
            do {
                lease = try await store.leaseNext { project in
                    (config.project(named: project)?.hosts ?? []).compactMap { name -> LeaseTarget? in
                        if let host = config.host(named: name) { return .host(name: host.name, maxJobs: host.maxJobs) }
                        return config.fleet(named: name).map { .fleet(name: $0.name, maxHosts: $0.maxHosts, maxJobs: $0.maxJobs) }
                    }
                }
            } catch {
                logger.error("cannot lease jobs: \(error)")
                return
            }
            guard let lease else { return }
            let id = lease.job.id
            running[id] = Task { await self.perform(lease) }
        }
    }

    private func perform(_ lease: Lease) async {
        let job = lease.job
        defer { running[job.id] = nil }
        var log = logger
        log[metadataKey: "job"] = "\(job.id)"
        log[metadataKey: "host"] = "\(lease.hostName)"
        let started = Date()
        let fleetHost = config.host(named: lease.hostName) == nil ? try? await store.host(named: lease.hostName) : nil
        let fleet = fleetHost?.fleet.flatMap(config.fleet(named:))
        guard let project = config.project(named: job.project), config.host(named: lease.hostName) != nil || fleet != nil else {
            await complete(job, host: lease.hostName, outcome: JobOutcome(
                status: .error, error: "project '\(job.project)' or host '\(lease.hostName)' is no longer in deferred.toml",
                startedAt: started, finishedAt: Date()), log: log)
            return
        }
        var launched = false
        let reportLog = log, statusURL = ResultURLs.statusTarget(config, job)
        report(job) { [statuses] in
            await statuses.report(.pending, job: job, project: project, targetURL: statusURL,
                                  description: "waiting for host \(lease.hostName)", logger: reportLog)
        }
        do throws(MachineryFailure) {
            let host: HostConfig
            if let configured = config.host(named: lease.hostName) {
                host = configured
            } else if let fleet, let id = fleetHost?.instanceID {
                host = fleet.host(named: lease.hostName, instanceID: id)
            } else if let fleet {
                host = try await launch(fleet, hostName: lease.hostName, project: project.name, for: job)
                launched = true
            } else {
                throw .wake(ProviderError(host: lease.hostName, reason: "is no longer in deferred.toml", isTransient: false))
            }
            var woke = false
            do throws(MachineryFailure) {
                if !lease.hostWasUp || (host.address.isEmpty && addresses[host.name] == nil) {
                    woke = try await wake(host, for: job, log: log).woke || launched
                }
            } catch where launched {
                // An instance that never came up is of no use: it goes, and the job waits for another.
                try? await providers.fleets.sleep(host, terminate: true)
                try? await store.removeHost(host.name)
                throw error
            }
            let session: SSHSession
            do { session = try await connections.session(for: reachable(host)) } catch { throw .runner(.ssh(error)) }
            if let fleet {
                let script = try Self.script(at: fleet.bootstrap)
                do throws(RunnerError) {
                    let output = try await runner.bootstrap(script, on: session)
                    try? await store.note(job.id, waiting: "host \(host.name): \(output.split(separator: "\n").last ?? "bootstrapped")", host: .bootstrapping)
                } catch { throw .runner(error) }
            }
            let store = self.store
            _ = await outlastingLocks("mark the job running", log: log) { () async throws(StoreError) in try await store.markRunning(job.id) }
            log.info("running")
            let files = artifacts.files(for: job.token)
            do { try files.reset() } catch { throw .runner(.artifactsUnwritable(folder: files.folder, reason: "\(error)")) }
            let outcome: JobOutcome
            let recorder = OutputRecorder(job: job.id, store: store)
            do {
                outcome = try await runner.run(job, project: project, on: session, files: files) { recorder.take($0) }
                await recorder.close()
                if outcome.leftOnHost { killWhenAnswering(job, on: host, log: log) }
            } catch {
                await recorder.close()
                throw .runner(error)
            }
            await complete(job, host: lease.hostName, woke: woke, outcome: outcome, log: log)
        } catch {
            await machineryFailed(job, host: lease.hostName, error: error, started: started, log: log)
        }
    }

    /// A timed-out job whose host stopped answering: its process group is killed once the
    /// host answers again, tried with backoff for an hour.
    private func killWhenAnswering(_ job: Job, on host: HostConfig, log: Logger) {
        let runner = self.runner, connections = self.connections, reachable = reachable(host)
        Task {
            let backoff = RetryPolicy(maxAttempts: .max, base: .seconds(1), cap: .seconds(30))
            let deadline = ContinuousClock.now + .seconds(3600)
            var retry = 0
            while ContinuousClock.now < deadline {
                do {
                    try await runner.kill(job.id, on: try await connections.session(for: reachable))
                    log.info("killed what the timed-out job left running once its host answered again")
                    return
                } catch {
                    retry += 1
                    try? await Task.sleep(for: backoff.delay(beforeRetry: retry))
                }
            }
            log.error("could not kill what the timed-out job left on host \(host.name) within an hour")
        }
    }

    // MARK: Fleets

    /// Launches a new instance for `fleet`, tagged so reconciliation knows it as ours.
    private func launch(_ fleet: FleetConfig, hostName: String, project: String, for job: Job) async throws(MachineryFailure) -> HostConfig {
        let tags = ["managed-by": "deferred", "deferred-fleet": fleet.name, "deferred-project": project,
                    "deferred-host": hostName, "Name": "deferred \(hostName)"]
        try? await store.note(job.id, waiting: "host \(hostName): launching \(fleet.instanceType) from \(fleet.imageID)\(fleet.spot ? " (spot)" : "")", host: .booting)
        let id: String
        do throws(ProviderError) {
            id = try await providers.fleets.launch(fleet, tags: tags)
        } catch {
            try? await store.removeHost(hostName)
            throw .wake(error)
        }
        try? await store.recordInstance(hostName, instanceID: id)
        try? await store.note(job.id, waiting: "host \(hostName): launched instance \(id)", host: .booting)
        return fleet.host(named: hostName, instanceID: id)
    }

    static func script(at path: String) throws(MachineryFailure) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .runner(.bootstrapFailed(status: nil, output: "cannot read the bootstrap script \(path)"))
        }
        return text
    }

    // MARK: Waking

    /// The host as SSH reaches it: its configured address, or the one its wake found.
    private func reachable(_ host: HostConfig) -> HostConfig {
        var reachable = host
        if host.address.isEmpty { reachable.address = addresses[host.name] ?? "" }
        return reachable
    }

    /// Brings the host up through its provider and waits until SSH answers, within the
    /// host's wake timeout. Jobs that wait for the same host share one wake.
    private func wake(_ host: HostConfig, for job: Job, log: Logger) async throws(MachineryFailure) -> HostWake {
        let task = wakes[host.name] ?? Task { try await self.performWake(host, noting: job.id, log: log) }
        wakes[host.name] = task
        defer { wakes[host.name] = nil }
        do {
            return try await task.value
        } catch let failure as MachineryFailure {
            throw failure
        } catch {
            throw .wake(ProviderError(host: host.name, reason: "\(error)", isTransient: true))
        }
    }

    private func performWake(_ host: HostConfig, noting id: JobID, log: Logger) async throws -> HostWake {
        let provider = providers.provider(for: host)
        let store = self.store
        let limit = Duration.milliseconds(Int64(host.wakeTimeoutMinutes * 60_000))
        log.info("waking host")
        let wake = try await Self.within(limit, host: host) {
            let wake: HostWake
            do throws(ProviderError) {
                wake = try await provider.wake(host) { step in try? await store.note(id, waiting: "host \(host.name): \(step)", host: .waking) }
            } catch {
                throw MachineryFailure.wake(error)
            }
            await self.learn(host.name, address: wake.address)
            try? await store.note(id, waiting: "host \(host.name): waiting for SSH on \(host.address.isEmpty ? wake.address : host.address):\(host.port)", host: .booting)
            try await self.waitForSSH(host)
            return wake
        }
        try? await store.markHost(host.name, .busy)
        try? await store.note(id, waiting: "host \(host.name) is up\(wake.woke ? " (woken)" : "")", host: .ready)
        return wake
    }

    private func learn(_ name: String, address: String) { addresses[name] = address }

    /// TCP, banner and authentication, tried with backoff capped at a second.
    private func waitForSSH(_ host: HostConfig) async throws {
        let backoff = RetryPolicy(base: .milliseconds(100), cap: .seconds(1), jittered: false)
        var tries = 0
        while true {
            do {
                _ = try await connections.session(for: reachable(host))
                return
            } catch {
                guard error.isTransient else { throw MachineryFailure.runner(.ssh(error)) }
                try await Task.sleep(for: backoff.delay(beforeRetry: tries))
                tries += 1
            }
        }
    }

    /// Runs `body`, or fails with a wake timeout once `limit` has passed.
    private static func within<T: Sendable>(_ limit: Duration, host: HostConfig,
                                            _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw MachineryFailure.wakeTimedOut(host: host.name, minutes: host.wakeTimeoutMinutes)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    // MARK: Sleeping

    /// In `serve`: every `sleepCheckInterval`, idle cloud hosts are put to sleep, the files
    /// of jobs past their retention are deleted, and files a remote store refused go up again.
    private func sleepIdleHosts() async {
        let sleeper = IdleSleeper(config: config, store: store, providers: providers)
        let retention = Retention(store: store, artifacts: artifacts, retentionDays: config.artifacts.retentionDays)
        while !Task.isCancelled {
            try? await Task.sleep(for: sleepCheckInterval)
            if Task.isCancelled { return }
            let expired = await retention.pass()
            if !expired.expired.isEmpty || !expired.problems.isEmpty { logger.info("\(expired)") }
            await finishHeldResults()
            let pending = await artifacts.publishPending()
            if !pending.published.isEmpty { logger.info("stored the files of \(pending.published.count) job(s) that waited for the store") }
            for failure in pending.failures { logger.warning("still cannot store \(failure)") }
            for report in await sleeper.pass() {
                logger.info("\(report)")
                if report.slept {
                    await connections.drop(report.host)
                    addresses[report.host] = nil
                }
            }
        }
    }

    private func machineryFailed(_ job: Job, host: String, error: MachineryFailure, started: Date, log: Logger) async {
        if case .runner(.ssh) = error { await connections.drop(host) }
        let attempts = job.attempts + 1
        let transient = error.isTransient
        if case .runner(.cancelled) = error {
            try? await store.requeue(job.id, reason: error.description, notBefore: Date(), countAttempt: false)
            return
        }
        guard transient, attempts < maxAttempts else {
            log.error("giving up: \(error)")
            await complete(job, host: host, outcome: JobOutcome(
                status: .error, error: "\(error) (after \(attempts) attempt\(attempts == 1 ? "" : "s"))",
                startedAt: started, finishedAt: Date()), log: log)
            return
        }
        let delay = Self.requeueBackoff.delay(beforeRetry: attempts)
        log.warning("machinery failed, trying again in \(delay): \(error)")
        let store = self.store, reason = "\(error); trying again"
        let notBefore = Date().addingTimeInterval(Double(delay.components.seconds))
        _ = await outlastingLocks("queue the job again", log: log) { () async throws(StoreError) in
            try await store.requeue(job.id, reason: reason, notBefore: notBefore, countAttempt: true)
        }
        // A host whose wake failed is in a state only its provider knows.
        if error.isWakeFailure { try? await store.markHost(host, .unknown) }
    }

    /// The job's files and results.json (last) into the artifact store, then the end state:
    /// whoever sees the end sees every file. A store that fails is tried again with backoff;
    /// a remote one that keeps failing leaves the files staged (served from there) for the
    /// timer to send. A job is recorded as ended only once its results.json can be read back
    /// from the store: until then (a full disk) its end is held for housekeeping to finish.
    private func complete(_ job: Job, host: String, woke: Bool = false, outcome: JobOutcome, log: Logger) async {
        let files = artifacts.files(for: job.token)
        let document = ResultsDocument(
            job: job, outcome: outcome, host: .init(name: host, woke: woke), resultBase: ResultURLs.base(config, job.token),
            hasOutputLog: FileManager.default.fileExists(atPath: files.outputLog))
        // Encoding a value built here cannot fail; an empty document would say so at once.
        let results = (try? document.encoded()) ?? Data()
        var published = false
        for attempt in 0..<publishAttempts {
            do throws(ArtifactStoreError) {
                try await artifacts.publish(files, artifacts: outcome.artifacts.files, results: results, token: job.token)
                published = true
                break
            } catch {
                log.error("cannot store the job's files (attempt \(attempt + 1) of \(publishAttempts)): \(error)")
                // A refusal (no permission, no such bucket) will not pass by waiting.
                guard error.isTransient, attempt + 1 < publishAttempts else { break }
                try? await Task.sleep(for: Self.publishBackoff.delay(beforeRetry: attempt))
            }
        }
        // A remote store that failed may still have kept the file beside the staged ones.
        let kept = published ? true : await artifacts.read(.results, token: job.token) != nil
        guard kept else {
            let store = self.store
            if await outlastingLocks("hold the job's results until the artifact store takes them", log: log, { () async throws(StoreError) in
                try await store.holdResults(job.id, outcome: outcome, results: results)
            }) {
                log.warning("results.json is not stored yet; housekeeping tries again, and the job ends once it is")
            }
            return
        }
        await recordEnd(job, outcome: outcome, results: results, log: log)
    }

    /// Records the end in the store, however long a lock holds it, then tells others.
    private func recordEnd(_ job: Job, outcome: JobOutcome, results: Data, log: Logger) async {
        let store = self.store
        guard await outlastingLocks("record the end of the job", log: log, { () async throws(StoreError) in
            try await store.finish(job.id, outcome: outcome)
        }) else { return }
        log.info("finished", metadata: ["status": "\(outcome.status.rawValue)"])
        guard let project = config.project(named: job.project) else { return }
        let targetURL = ResultURLs.statusTarget(config, job)
        let description = outcome.error ?? "\(outcome.status.rawValue)\(outcome.exitStatus.map { " (exit status \($0))" } ?? "") on \(job.hostName ?? "its host")"
        report(job) { [statuses, notifier] in
            await statuses.report(CommitStatuses.state(for: outcome.status), job: job, project: project, targetURL: targetURL,
                                  description: description, logger: log)
            await notifier.notify(results, job: job, project: project, logger: log)
        }
    }

    /// Jobs whose results.json could not be stored when they ended: stored now, then ended.
    private func finishHeldResults() async {
        guard let held = try? await store.pendingResults() else { return }
        for pending in held {
            var log = logger
            log[metadataKey: "job"] = "\(pending.job.id)"
            do throws(ArtifactStoreError) {
                try await artifacts.republish(results: pending.results, token: pending.job.token)
            } catch {
                log.warning("results.json still cannot be stored: \(error)")
                continue
            }
            await recordEnd(pending.job, outcome: pending.outcome, results: pending.results, log: log)
        }
    }

    /// Tries a store write that a long lock (or a failing disk) refuses, with backoff up to
    /// half a minute, for up to `storeWriteDeadline`, saying each failure in the log.
    private func outlastingLocks(_ what: String, log: Logger, _ write: () async throws(StoreError) -> Void) async -> Bool {
        let backoff = RetryPolicy(maxAttempts: .max, base: .milliseconds(250), cap: .seconds(30))
        let deadline = ContinuousClock.now + storeWriteDeadline
        var retry = 0
        while true {
            do throws(StoreError) {
                try await write()
                if retry > 0 { log.info("could \(what) after \(retry + 1) tries") }
                return true
            } catch {
                retry += 1
                guard ContinuousClock.now < deadline, !Task.isCancelled else {
                    log.error("cannot \(what), gave up after \(retry) tries: \(error)")
                    return false
                }
                log.warning("cannot \(what) yet (try \(retry)), trying again: \(error)")
                try? await Task.sleep(for: backoff.delay(beforeRetry: retry))
            }
        }
    }

    /// Runs `body` after the job's earlier reports, without holding up the job.
    private func report(_ job: Job, _ body: @escaping @Sendable () async -> Void) {
        let previous = reports[job.id]?.task
        let token = UUID()
        reports[job.id] = (token, Task {
            await previous?.value
            await body()
            await self.forgetReports(of: job.id, token: token)
        })
    }

    private func forgetReports(of id: JobID, token: UUID) {
        if reports[id]?.token == token { reports[id] = nil }
    }
}
