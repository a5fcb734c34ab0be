import DeferredArtifacts
import DeferredCore
import DeferredStore
import Foundation
import Logging
import Metrics

/// The end of every job, whatever ended it (its command, the machinery giving up, the crash-loop
/// guard): results.json written from the outcome, the job's files and results.json (last)
/// into the artifact store, then the end state, then the reports to GitHub and notify_url.
/// Whoever sees the end sees every file.
struct ResultsWriter: Sendable {
    let config: DeferredConfig
    let store: any JobStore
    let artifacts: any ArtifactStore
    let statuses: CommitStatuses
    let notifier: ResultNotifier
    let reports: JobReports
    /// Tries at storing a finished job's files (1, 2, 4 … seconds apart) before its end is held.
    var publishAttempts = 6
    /// Told when a job's end is stored, before anything else: its folder on the host may go
    /// now, and its host's slot is free for the next job, while this job's reports still go on.
    var endStored: @Sendable (Job, JobOutcome) async -> Void = { _, _ in }
    /// How long the end of a job (or its held results) is tried against a locked or failing
    /// store before it is given up (then a restart finds the job and queues it again).
    var storeWriteDeadline: Duration = .seconds(15 * 60)

    /// An artifact store that failed is tried again after 1, 2, 4 … seconds.
    static let publishBackoff = RetryPolicy(base: .seconds(1), cap: .seconds(60), jittered: false)

    /// Writes results.json and ends the job. A store that fails is tried again with backoff;
    /// a remote one that keeps failing leaves the files staged (served from there) for
    /// housekeeping to send. A job is recorded as ended only once its results.json can be read
    /// back: until then (a full disk) its end is held for housekeeping to finish.
    ///
    /// An end once decided is written whatever happens to the caller: a job cancelled before
    /// its command started ends inside the attempt's cancelled task, and a write that gave up
    /// there (a lock it waited on) would leave the job unended until a restart.
    func complete(_ job: Job, host: String, woke: Bool = false, outcome: JobOutcome, log: Logger) async {
        let writer = self
        await Task { await writer.write(job, host: host, woke: woke, outcome: outcome, log: log) }.value
    }

    private func write(_ job: Job, host: String, woke: Bool, outcome: JobOutcome, log: Logger) async {
        // A server that stalled past takeover_seconds finds its job followed by another: that
        // one stores the files and the end, and this one's results.json must not race it.
        if (try? await store.follows(job.id)) == false {
            log.warning("another server took the job over while this one stalled: it stores the job's files and end")
            return
        }
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

    /// Jobs whose results.json could not be stored when they ended: stored now, then ended.
    func finishHeld(logger: Logger) async {
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

    /// Records the end in the store, however long a lock holds it, then tells others.
    private func recordEnd(_ job: Job, outcome: JobOutcome, results: Data, log: Logger) async {
        let store = self.store
        guard await outlastingLocks("record the end of the job", log: log, { () async throws(StoreError) in
            try await store.finish(job.id, outcome: outcome)
        }) else { return }
        await endStored(job, outcome)
        log.info("finished", metadata: ["status": "\(outcome.status.rawValue)"])
        Self.count(job, outcome)
        guard let project = config.project(named: job.project) else { return }
        let targetURL = ResultURLs.statusTarget(config, job)
        let description = outcome.error ?? "\(outcome.status.rawValue)\(outcome.exitStatus.map { " (exit status \($0))" } ?? "") on \(job.hostName ?? "its host")"
        await reports.send(for: job.id) { [statuses, notifier] in
            await statuses.report(CommitStatuses.state(for: outcome.status), job: job, project: project, targetURL: targetURL,
                                  description: description, logger: log)
            await notifier.notify(results, job: job, project: project, logger: log)
        }
    }

    /// `/metrics`' figures of a job's end: by end state, and how long it waited and ran.
    static func count(_ job: Job, _ outcome: JobOutcome) {
        Counter(label: MetricName.jobsFinished, dimensions: [("status", outcome.status.rawValue), ("project", job.project)]).increment()
        let waited = outcome.startedAt.timeIntervalSince(job.queuedAt), ran = outcome.finishedAt.timeIntervalSince(outcome.startedAt)
        Metrics.Timer(label: MetricName.jobWait).recordNanoseconds(Int64(max(0, waited) * 1e9))
        Metrics.Timer(label: MetricName.jobRun).recordNanoseconds(Int64(max(0, ran) * 1e9))
        let bytes = outcome.artifacts.files.reduce(Int64(0)) { $0 + $1.bytes }
        if bytes > 0 { Counter(label: MetricName.artifactBytes, dimensions: [("project", job.project)]).increment(by: bytes) }
    }

    /// Tries a store write that a long lock (or a failing disk) refuses, with backoff up to
    /// half a minute, for up to `storeWriteDeadline`, saying each failure in the log.
    ///
    /// Each try runs to its end even when the caller is cancelled (a job cancelled while its
    /// attempt queues it again, a graceful stop): a write cut off while it waited on a lock
    /// would leave the job half moved. Only the retries stop with the caller.
    func outlastingLocks(_ what: String, log: Logger, _ write: @escaping @Sendable () async throws(StoreError) -> Void) async -> Bool {
        let deadline = ContinuousClock.now + storeWriteDeadline
        var retry = 0
        while true {
            do throws(StoreError) {
                try await Task { () async -> Result<Void, StoreError> in
                    do throws(StoreError) { try await write() } catch { return .failure(error) }
                    return .success(())
                }.value.get()
                if retry > 0 { log.info("could \(what) after \(retry + 1) tries") }
                return true
            } catch .leaseLost(let why) {
                // No wait makes the job this server's again.
                log.warning("cannot \(what): \(why)")
                return false
            } catch {
                retry += 1
                guard ContinuousClock.now < deadline, !Task.isCancelled else {
                    log.error("cannot \(what), gave up after \(retry) tries: \(error)")
                    return false
                }
                log.warning("cannot \(what) yet (try \(retry)), trying again: \(error)")
                try? await Task.sleep(for: StoreError.retryBackoff.delay(beforeRetry: retry))
            }
        }
    }
}
