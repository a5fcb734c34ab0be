import DeferredCore
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
    private let store: JobStore
    private let artifacts: FileArtifactStore
    private let runner: JobRunner
    private let logger: Logger
    private let connections = HostConnections()
    private let wakeup = Wakeup()
    private var running: [JobID: Task<Void, Never>] = [:]

    public var maxAttempts = 5
    /// How often queued jobs are looked at without a wake-up (for jobs waiting out a backoff).
    public var pollInterval: Duration = .seconds(1)

    public init(config: DeferredConfig, store: JobStore, artifacts: FileArtifactStore, runner: JobRunner = JobRunner(), logger: Logger) {
        self.config = config
        self.store = store
        self.artifacts = artifacts
        self.runner = runner
        self.logger = logger
    }

    /// Tells the dispatcher a job was queued. Cheap; callable from any context.
    public nonisolated func jobQueued() {
        Task { await wakeup.signal() }
    }

    public func run() async throws {
        try await store.register(hosts: config.hosts)
        let recovered = try await store.recoverInterrupted()
        if !recovered.isEmpty {
            logger.info("queued again after a restart", metadata: ["jobs": "\(recovered.map(\.rawValue))"])
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.dispatchReady()
                await self.wakeup.wait(upTo: self.pollInterval)
            }
        }
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
                    (config.project(named: project)?.hosts ?? []).compactMap { name in
                        config.host(named: name).map { (name: $0.name, maxJobs: $0.maxJobs) }
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
        guard let project = config.project(named: job.project), let host = config.host(named: lease.hostName) else {
            await complete(job, host: lease.hostName, outcome: JobOutcome(
                status: .error, error: "project '\(job.project)' or host '\(lease.hostName)' is no longer in deferred.toml",
                startedAt: started, finishedAt: Date()), log: log)
            return
        }
        do throws(RunnerError) {
            let session: SSHSession
            do { session = try await connections.session(for: host) } catch { throw .ssh(error) }
            do { try await store.markRunning(job.id) } catch { log.error("cannot mark running: \(error)") }
            log.info("running")
            let outcome = try await runner.run(job, project: project, on: session)
            await complete(job, host: host.name, outcome: outcome, log: log)
        } catch {
            await machineryFailed(job, host: host.name, error: error, started: started, log: log)
        }
    }

    private func machineryFailed(_ job: Job, host: String, error: RunnerError, started: Date, log: Logger) async {
        if case .ssh = error { await connections.drop(host) }
        let attempts = job.attempts + 1
        let transient: Bool = switch error {
        case .ssh(let e): e.isTransient
        case .cancelled: true
        }
        if case .cancelled = error {
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
        // Backoff: 2, 4, 8 … seconds, at most a minute.
        let delay = min(60, pow(2, Double(attempts)))
        log.warning("machinery failed, trying again in \(Int(delay)) s: \(error)")
        do {
            try await store.requeue(job.id, reason: "\(error); trying again", notBefore: Date().addingTimeInterval(delay), countAttempt: true)
        } catch {
            log.error("cannot queue again: \(error)")
        }
    }

    /// results.json first, then the end state: whoever sees the end sees the file.
    private func complete(_ job: Job, host: String, outcome: JobOutcome, log: Logger) async {
        let document = ResultsDocument(job: job, outcome: outcome, host: .init(name: host, woke: false))
        do {
            try artifacts.writeResults(try document.encoded(), token: job.token)
            try await store.finish(job.id, outcome: outcome)
            log.info("finished", metadata: ["status": "\(outcome.status.rawValue)"])
        } catch {
            log.error("cannot record the end of the job: \(error)")
        }
    }
}
