import DeferredArtifacts
import DeferredCore
import DeferredFiles
import DeferredProviders
import DeferredRunner
import DeferredSSH
import DeferredStore
import Foundation
import Synchronization
import Logging
import Metrics

/// One try at one leased job, top to bottom: find its host → launch or wake it → connect →
/// bootstrap (a fleet's host) → run and collect → write results.json → finish → report.
/// A failure of the machinery (not of the job) sends the job back to the queue with backoff,
/// until `maxAttempts`; then it ends as `error`, with its results.json like every job.
struct JobAttempt: Sendable {
    let lease: Lease
    let config: DeferredConfig
    let store: any JobStore
    let artifacts: any ArtifactStore
    let runner: JobRunner
    let waker: HostWaker
    let results: ResultsWriter
    let forgets: FolderForgets
    let holds: HostHolds
    let maxAttempts: Int
    /// Raised when someone asks to cancel the job.
    let cancel: CancelSignal
    let log: Logger

    /// A job whose machinery failed waits 2, 4, 8 … seconds, at most a minute, in the queue.
    static let requeueBackoff = RetryPolicy(base: .seconds(1), cap: .seconds(60), jittered: false)

    /// Where the job runs: a configured host, or a fleet's (launched for it when new).
    private struct Placement {
        var project: ProjectConfig
        var host: HostConfig?
        var fleet: FleetConfig?
    }

    /// Runs the try; true when the server's stop left the job's command running on its host,
    /// to be taken up again at the next start.
    @discardableResult
    func run() async -> Bool {
        let job = lease.job, started = Date()
        guard let placement = await place() else {
            await results.complete(job, host: lease.hostName, outcome: JobOutcome(
                status: .error, error: "project '\(job.project)' or host '\(lease.hostName)' is no longer in deferred.toml",
                startedAt: started, finishedAt: Date()), log: log)
            return false
        }
        if let position = lease.resuming { return await resume(placement, from: position) }
        if let by = cancel.raisedBy {
            await endCancelled(by: by, started: started)
            return false
        }
        await reportWaiting(placement.project)
        var commandMayRun = false
        do throws(MachineryFailure) {
            let (host, woke) = try await bringUp(placement)
            let session = try await connect(host)
            if let fleet = placement.fleet { try await bootstrap(fleet, on: session) }
            guard cancel.commandStarts() else {
                await endCancelled(by: cancel.raisedBy ?? "admin", started: started)
                return false
            }
            guard await markRunning() else { return false }
            commandMayRun = true
            let files = try freshStaging()
            let forgetting = await forgets.take(host: host.name)
            let outcome = try await recording(on: host, from: .start) { [runner, job, cancel] recontact, onOutput throws(RunnerError) in
                try await runner.run(job, project: placement.project, on: session, attempt: job.attempts + 1, files: files,
                                     forgetting: forgetting, recontact: recontact, cancel: cancel, onOutput: onOutput)
            }
            await end(outcome, on: host, woke: woke)
            return false
        } catch {
            return await machineryFailed(error, started: started, commandMayRun: commandMayRun)
        }
    }

    /// Takes up a job whose command a server started before it stopped: the output stored so
    /// far is where output.log and the event stream go on from, and the command is followed,
    /// never started again unless its host lost it.
    private func resume(_ placement: Placement, from position: OutputPosition) async -> Bool {
        let job = lease.job, startedAt = job.startedAt ?? Date()
        guard let host = placement.host else {
            await results.complete(job, host: lease.hostName, outcome: JobOutcome(
                status: .error, error: "host \(lease.hostName) has no instance any more", startedAt: startedAt, finishedAt: Date()), log: log)
            return false
        }
        log.info("taking the job up again on its host")
        let files = artifacts.files(for: job.token)
        let resumption = await storedOutput(of: job.id, through: position, startedAt: startedAt, into: files)
        do throws(MachineryFailure) {
            let outcome = try await recording(on: host, from: position) { [runner, cancel] recontact, onOutput throws(RunnerError) in
                try await runner.resume(job, project: placement.project, from: resumption, files: files,
                                        recontact: recontact, cancel: cancel, onOutput: onOutput)
            }
            await end(outcome, on: host, woke: false)
            return false
        } catch {
            return await machineryFailed(error, started: startedAt, commandMayRun: true)
        }
    }

    /// Cancelled before its command started: it ends so, its host free at once.
    private func endCancelled(by: String, started: Date) async {
        var outcome = JobOutcome(status: .cancelled, startedAt: started, finishedAt: Date())
        outcome.cancelledBy = by
        log.info("cancelled before the command started")
        await results.complete(lease.job, host: lease.hostName, outcome: outcome, log: log)
    }

    /// The job's end: results.json, then its folder on the host goes (kept until now, so a
    /// server stopped before the end was stored collects it again rather than run it again),
    /// with the next exec to the host.
    private func end(_ outcome: JobOutcome, on host: HostConfig, woke: Bool) async {
        await results.complete(lease.job, host: lease.hostName, woke: woke, outcome: outcome, log: log)
        guard !outcome.leftOnHost else { return }
        await forgets.flushSoon(on: host)
    }

    // MARK: Steps

    /// The job's project and host as deferred.toml has them now; nil when either is gone.
    private func place() async -> Placement? {
        guard let project = config.project(named: lease.job.project) else { return nil }
        if let host = config.host(named: lease.hostName) { return Placement(project: project, host: host) }
        let row = try? await store.host(named: lease.hostName)
        guard let fleet = row?.fleet.flatMap(config.fleet(named:)) else { return nil }
        return Placement(project: project, host: row?.instanceID.map { fleet.host(named: lease.hostName, instanceID: $0) }, fleet: fleet)
    }

    /// The host up and answering SSH: launched first when the fleet's host is new, woken when
    /// it was not known to be up. Returns whether it had to be started.
    private func bringUp(_ placement: Placement) async throws(MachineryFailure) -> (HostConfig, woke: Bool) {
        var launched = false
        let host: HostConfig
        if let known = placement.host {
            host = known
        } else if let fleet = placement.fleet {
            host = try await waker.launch(fleet, hostName: lease.hostName, project: placement.project.name, progress: noteProgress)
            launched = true
        } else {
            throw .wake(ProviderError(host: lease.hostName, reason: "is no longer in deferred.toml", isTransient: false))
        }
        guard await waker.mustWake(host, wasUp: lease.hostWasUp) else { return (host, launched) }
        do throws(MachineryFailure) {
            let wake = try await waker.wake(host, log: log, progress: noteProgress)
            if launched, let fleet = placement.fleet { try? await store.recordBootSuccess(fleet: fleet.name) }
            try? await store.note(lease.job.id, waiting: "host \(host.name) is up\(wake.woke ? " (woken)" : "")", host: .ready)
            return (host, wake.woke || launched)
        } catch where launched {
            // An instance that never came up is of no use: it goes, and the job waits for
            // another, which the fleet launches later with each such instance in a row.
            if let fleet = placement.fleet {
                await waker.discard(host, of: fleet.name, reason: error.description)
                let failures = (try? await store.fleetBootFailures())?.first { $0.fleet == fleet.name }
                if let failures {
                    try? await store.note(lease.job.id, waiting: "fleet \(fleet.name): \(fleet.machineNoun) \(host.machineID ?? "-") never answered and was terminated (\(failures.count) in a row); the fleet launches again no sooner than \(RFC3339.string(failures.nextLaunch))", host: nil)
                }
            }
            throw error
        }
    }

    /// How the runner gets back to this job's host when the connection breaks mid-job (or
    /// first reaches it, for a job taken up again): the host shows as `unreachable` while it
    /// does not answer, and the job's events say so.
    private func recontact(_ host: HostConfig) -> JobRunner.Recontact {
        let waker = self.waker, store = self.store, id = lease.job.id, log = self.log, progress = noteProgress
        return JobRunner.Recontact(
            reconnect: { broken throws(SSHError) in
                if let broken {
                    Counter(label: MetricName.sshReconnects, dimensions: [("host", host.name)]).increment()
                    return try await waker.reconnect(host, replacing: broken)
                }
                // A cloud host's address is learnt at its wake, which a restarted server has not seen.
                if await waker.mustWake(host, wasUp: true) {
                    do throws(MachineryFailure) { _ = try await waker.wake(host, log: log, progress: progress) } catch {
                        throw .connectFailed(host: host.name, port: host.port, reason: error.description)
                    }
                }
                return try await waker.session(for: host)
            },
            hostWait: .seconds(host.hostWaitMinutes * 60),
            onContact: { lost in
                if let lost {
                    log.warning("host \(host.name) does not answer, waiting for it: \(lost)")
                    try? await store.markHost(host.name, .unreachable)
                    try? await store.note(id, waiting: "host \(host.name) does not answer: \(lost); the job is followed again once it does (up to \(host.hostWaitMinutes.formatted()) minutes, host_wait_minutes)", host: nil)
                } else {
                    await Self.answersAgain(host, job: id, store: store, detail: "; following the job from where it was")
                }
            })
    }

    /// A host that did not answer does again: busy with this job, which says so.
    private static func answersAgain(_ host: HostConfig, job: JobID, store: any JobStore, detail: String = "") async {
        try? await store.markHost(host.name, .busy)
        try? await store.note(job, waiting: "host \(host.name) answers again\(detail)", host: .ready)
    }

    /// The host's SSH connection. A static host that does not answer is `unreachable` and its
    /// job waits for it (a cloud host's provider is asked again at the next try instead).
    private func connect(_ host: HostConfig) async throws(MachineryFailure) -> SSHSession {
        let session: SSHSession
        do {
            session = try await waker.session(for: host)
        } catch {
            guard case .connectFailed = error, host.provider == .static else { throw .runner(.ssh(error)) }
            throw .unreachable(host: host, error)
        }
        holds.answered(host.name)
        if (try? await store.host(named: host.name))?.state == .unreachable {
            await Self.answersAgain(host, job: lease.job.id, store: store)
        }
        return session
    }

    /// A fleet's set-up script, once per host and version.
    private func bootstrap(_ fleet: FleetConfig, on session: SSHSession) async throws(MachineryFailure) {
        guard let script = try? String(contentsOfFile: fleet.bootstrap, encoding: .utf8) else {
            throw .runner(.bootstrapFailed(status: nil, output: "cannot read the bootstrap script \(fleet.bootstrap)"))
        }
        do throws(RunnerError) {
            let output = try await runner.bootstrap(script, on: session)
            try? await store.note(lease.job.id, waiting: "host \(lease.hostName): \(output.split(separator: "\n").last ?? "bootstrapped")",
                                  host: .bootstrapping)
        } catch { throw .runner(error) }
    }

    /// False when the job was taken over by another server sharing the store (this one was
    /// taken for dead): its command is not started here; the other server runs it.
    private func markRunning() async -> Bool {
        let store = self.store, id = lease.job.id
        let lost = Mutex(false)
        _ = await results.outlastingLocks("mark the job running", log: log) { () async throws(StoreError) in
            do throws(StoreError) { try await store.markRunning(id) } catch .leaseLost { lost.withLock { $0 = true } }
        }
        if lost.withLock({ $0 }) {
            log.warning("not starting the job: another server took it over while this one waited (it was taken for dead)")
            return false
        }
        log.info("running")
        return true
    }

    /// The job's staging folder on the server, emptied of what an earlier attempt left:
    /// the runner fills it (output.log, artifacts/), the results writer publishes it.
    private func freshStaging() throws(MachineryFailure) -> JobFiles {
        let files = artifacts.files(for: lease.job.token)
        do {
            let manager = FileManager.default
            for path in [files.artifacts, files.outputLog] where manager.fileExists(atPath: path) {
                try manager.removeItem(atPath: path)
            }
            try PrivateFiles.makeFolder(files.folder)
        } catch {
            throw .runner(.artifactsUnwritable(folder: files.folder, reason: "\(error)"))
        }
        return files
    }

    /// Runs (or follows again) the command and collects its files, its output recorded as it
    /// streams from `position` on.
    private func recording(
        on host: HostConfig, from position: OutputPosition,
        _ body: (JobRunner.Recontact, @escaping @Sendable (OutputSlice) -> Void) async throws(RunnerError) -> JobOutcome
    ) async throws(MachineryFailure) -> JobOutcome {
        let recorder = OutputRecorder(job: lease.job.id, store: store, from: position)
        do {
            let outcome = try await body(recontact(host)) { recorder.take($0) }
            await recorder.close()
            if outcome.leftOnHost { killWhenAnswering(on: host) }
            return outcome
        } catch {
            await recorder.close()
            throw .runner(error)
        }
    }

    /// output.log and the tails of results.json as the stored output has them, for a job taken
    /// up again: the runner appends what follows `position`. (Bytes a job wrote that are not
    /// UTF-8 read back as U+FFFD here: the store keeps text.)
    private func storedOutput(of id: JobID, through position: OutputPosition, startedAt: Date, into files: JobFiles) async -> Resumption {
        var resumption = Resumption(position: position, startedAt: startedAt)
        try? PrivateFiles.makeFolder(files.folder)
        _ = FileManager.default.createFile(atPath: files.outputLog, contents: nil, attributes: [.posixPermissions: PrivateFiles.fileMode])
        let log = FileHandle(forWritingAtPath: files.outputLog)
        defer { try? log?.close() }
        var cursor = FeedCursor()
        while let feed = try? await store.feed(of: id, after: cursor) {
            for item in feed.items {
                cursor = item.cursor
                guard case .output(let chunk) = item.kind else { continue }
                let bytes = Array(chunk.text.utf8)
                try? log?.write(contentsOf: bytes)
                if chunk.stream == .stdout { resumption.stdoutTail.append(bytes) } else { resumption.stderrTail.append(bytes) }
            }
            if !feed.hasMore { break }
        }
        return resumption
    }

    // MARK: Around the steps

    private var noteProgress: HostWaker.Progress {
        let store = self.store, id = lease.job.id, name = lease.hostName
        return { step, phase in try? await store.note(id, waiting: "host \(name): \(step)", host: phase) }
    }

    /// Queued before any later report of the job, so GitHub sees "pending" first.
    private func reportWaiting(_ project: ProjectConfig) async {
        let job = lease.job, host = lease.hostName, log = self.log, statusURL = ResultURLs.statusTarget(config, job)
        await results.reports.send(for: job.id) { [statuses = results.statuses] in
            await statuses.report(.pending, job: job, project: project, targetURL: statusURL,
                                  description: "waiting for host \(host)", logger: log)
        }
    }

    /// A job given up on while its command may still run (the crash-loop guard): what runs of
    /// it on its host is killed.
    func killWhatRuns() async {
        guard lease.job.status == .running, let placement = await place(), let host = placement.host else { return }
        killWhenAnswering(on: host)
    }

    /// A timed-out job whose host stopped answering: its processes are killed once the host
    /// answers again, tried with backoff for an hour.
    private func killWhenAnswering(on host: HostConfig) {
        let runner = self.runner, waker = self.waker, id = lease.job.id, log = self.log
        Task {
            let backoff = RetryPolicy(maxAttempts: .max, base: .seconds(1), cap: .seconds(30))
            let deadline = ContinuousClock.now + .seconds(3600)
            var retry = 0
            while ContinuousClock.now < deadline {
                do {
                    try await runner.kill(id, on: try await waker.session(for: host))
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

    /// Returns whether the server's stop left the job's command running.
    private func machineryFailed(_ error: MachineryFailure, started: Date, commandMayRun: Bool) async -> Bool {
        let job = lease.job, host = lease.hostName
        if case .runner(.ssh) = error { await waker.drop(host) }
        if !commandMayRun, let by = cancel.raisedBy {
            // Stopped on its way to the host because someone cancelled it.
            await endCancelled(by: by, started: started)
            return false
        }
        if case .runner(.cancelled) = error {
            // The server stops. A command that may have started runs on, detached, and is
            // followed again at the next start; a job still waiting goes back to the queue.
            if commandMayRun {
                try? await store.leaveRunning(job.id, detail: "the server stopped; the job runs on on host \(host) and is followed again when the server starts")
                return true
            }
            try? await store.requeue(job.id, reason: error.description, notBefore: Date(), countAttempt: false)
            return false
        }
        if case .unreachable(let config, let reason) = error {
            await waitForHost(config, reason, started: started)
            return false
        }
        let attempts = job.attempts + 1
        guard error.isTransient, attempts < maxAttempts else {
            log.error("giving up: \(error)")
            await results.complete(job, host: host, outcome: JobOutcome(
                status: .error, error: "\(error) (after \(attempts) attempt\(attempts == 1 ? "" : "s"))",
                startedAt: started, finishedAt: Date()), log: log)
            return false
        }
        let delay = Self.requeueBackoff.delay(beforeRetry: attempts)
        log.warning("machinery failed, trying again in \(delay): \(error)")
        let store = self.store, reason = "\(error); trying again", notBefore = Date().addingTimeInterval(delay.timeInterval)
        // A host whose wake failed is in a state only its provider knows: marked so in the
        // requeue's own transaction, so no lease between finds it `ready` and skips the wake.
        let after: HostState? = error.isWakeFailure ? .unknown : nil
        _ = await results.outlastingLocks("queue the job again", log: log) { () async throws(StoreError) in
            try await store.requeue(job.id, reason: reason, notBefore: notBefore, countAttempt: true, hostState: after)
        }
        return false
    }

    /// A job whose host does not answer waits in the queue, its attempts not counted, 2, 4 …
    /// seconds apart and at most a minute, until it has waited `host_wait_minutes` since it was
    /// queued; then it ends as `error` saying so.
    private func waitForHost(_ host: HostConfig, _ reason: SSHError, started: Date) async {
        let job = lease.job, minutes = host.hostWaitMinutes.formatted()
        holds.missed(host.name)
        guard Date().timeIntervalSince(job.queuedAt) < host.hostWaitMinutes * 60 else {
            log.error("giving up: host \(host.name) did not answer for \(minutes) minutes: \(reason)")
            await results.complete(job, host: host.name, outcome: JobOutcome(
                status: .error, error: "host \(host.name) did not answer for \(minutes) minutes (host_wait_minutes): \(reason)",
                startedAt: started, finishedAt: Date()), log: log)
            return
        }
        let waits = (try? await store.events(of: job.id))?.filter { ($0.detail ?? "").contains("does not answer") }.count ?? 0
        let delay = Self.requeueBackoff.delay(beforeRetry: waits + 1)
        log.warning("host \(host.name) does not answer, waiting \(delay): \(reason)")
        let store = self.store, notBefore = Date().addingTimeInterval(delay.timeInterval)
        let detail = "host \(host.name) does not answer: \(reason); waiting for it (up to \(minutes) minutes, host_wait_minutes)"
        _ = await results.outlastingLocks("queue the job again", log: log) { () async throws(StoreError) in
            try await store.requeue(job.id, reason: detail, notBefore: notBefore, countAttempt: false, hostState: .unreachable)
        }
    }
}
