import DeferredCore
import DeferredSSH
import Foundation
import Synchronization

/// Runs one job on one host and tells its story in order: prepare the folder and check out
/// the commit, run the command under its timeout, collect its result, clean up.
public struct JobRunner: Sendable {
    /// Between SIGTERM and SIGKILL when a job is killed.
    public var killGrace: Int
    /// How long past the kill grace a timed-out job's channel may stay silent before the
    /// server stops waiting for a host that no longer answers.
    public var stallGrace: Duration
    /// result.json larger than this is not read.
    public var resultLimit = 1 << 20

    public init(killGrace: Int = 10, stallGrace: Duration = .seconds(30)) {
        self.killGrace = killGrace
        self.stallGrace = stallGrace
    }

    /// A working connection to the job's host again, after `broken` failed mid-job (nil: the
    /// job is taken up again after a restart, with no connection yet).
    public typealias Reconnect = @Sendable (_ broken: SSHSession?) async throws(SSHError) -> SSHSession

    /// How the runner gets back to a job whose connection broke, and whom it tells.
    public struct Recontact: Sendable {
        public var reconnect: Reconnect
        /// How long the host may not answer before the runner stops waiting for it.
        public var hostWait: Duration
        /// Told when the host first does not answer (with why), and when it answers again (nil).
        public var onContact: @Sendable (SSHError?) async -> Void

        public init(reconnect: @escaping Reconnect, hostWait: Duration, onContact: @escaping @Sendable (SSHError?) async -> Void = { _ in }) {
            self.reconnect = reconnect
            self.hostWait = hostWait
            self.onContact = onContact
        }
    }

    /// Runs a push or a script: `onOutput` sees every read as it arrives, and `files` gets the
    /// whole output as `output.log` and the job's artifacts, unpacked from the host. The command
    /// runs detached on the host: when the connection breaks, the runner reconnects (until the
    /// job's timeout) and follows the output again from the byte it got to, so the job runs
    /// once and its output has no gap and no byte twice. `forgetting`: ended jobs whose folders
    /// go in the same exec as this job's start.
    public func run(
        _ job: Job, project: ProjectConfig, on session: SSHSession, attempt: Int = 1, files: JobFiles, forgetting: [JobID] = [],
        recontact: Recontact? = nil, cancel: CancelSignal? = nil, onOutput: @escaping @Sendable (OutputSlice) -> Void = { _ in }
    ) async throws(RunnerError) -> JobOutcome {
        let start = JobCommands.start(job, project: project, attempt: attempt, forgetting: forgetting)
        return try await follow(job, project: project, reaching: .connected(session), start: (start.command, start.stdin), files: files,
                                from: Resumption(startedAt: Date()), recontact: recontact, cancel: cancel, onOutput: onOutput)
    }

    /// Takes up a job that a server started before and stopped following (it was stopped or
    /// killed): reaches its host through `recontact` (for up to its host_wait_minutes), follows
    /// its output from where `resumption` says the stored output ends, and collects it as
    /// `run` does. Its timeout counts from its own start. A host that lost the job throws
    /// `.jobLost`, the one case in which it runs again.
    public func resume(
        _ job: Job, project: ProjectConfig, from resumption: Resumption, files: JobFiles,
        recontact: Recontact, cancel: CancelSignal? = nil, onOutput: @escaping @Sendable (OutputSlice) -> Void = { _ in }
    ) async throws(RunnerError) -> JobOutcome {
        try await follow(job, project: project, reaching: .notYet, start: nil, files: files, from: resumption,
                         recontact: recontact, cancel: cancel, onOutput: onOutput)
    }

    /// How the follower stands with the job's host.
    private enum Reach {
        case connected(SSHSession)
        /// Not connected yet (a job taken up again).
        case notYet
        /// The connection broke mid-job.
        case broken(SSHSession)
    }

    /// Starts (`start`) or reattaches to the command, follows it to its end across broken
    /// connections, and collects it.
    private func follow(
        _ job: Job, project: ProjectConfig, reaching: Reach, start: (command: String, stdin: [UInt8])?, files: JobFiles,
        from resumption: Resumption, recontact: Recontact?, cancel: CancelSignal?, onOutput: @escaping @Sendable (OutputSlice) -> Void
    ) async throws(RunnerError) -> JobOutcome {
        let started = resumption.startedAt
        let deadline = ContinuousClock.now + .seconds(max(started.timeIntervalSinceNow + project.timeout.timeInterval, 0))
        let log = try OutputLog(path: files.outputLog, appending: start == nil)
        let position = resumption.position
        let budget = OutputBudget(limit: project.maxOutputBytes, used: position.stdout + position.stderr, cut: position.cut)
        // What arrived over every connection the job was followed on, in order.
        let received = Mutex(ReceivedBytes(stdout: position.stdout, stderr: position.stderr,
                                           stdoutTail: resumption.stdoutTail, stderrTail: resumption.stderrTail))
        let record: @Sendable (SSHExecEvent, Bool) -> Void = { event, counted in
            received.withLock { $0.take(event, counted: counted) }
            guard let slice = budget.admit(event) else { return }
            log.append(slice)
            onOutput(slice)
        }
        let limits = ArtifactUnpacker.Limits(maxBytes: project.maxArtifactBytes, maxFiles: project.maxArtifactFiles)
        var reach = reaching
        var command = start?.command ?? "", stdin = start?.stdin ?? []
        var run = Execution(exit: SSHExit(status: nil, signal: nil))
        var host = ""
        following: while true {
            let session: SSHSession
            switch reach {
            case .connected(let connected):
                session = connected
            case .notYet, .broken:
                guard let recontact else { preconditionFailure("only a job with a way back to its host is followed again") }
                // Contact lost (or never had) while the command may run: it is not started
                // again, but followed again, on a new connection, from the bytes already here.
                // A job taken up past its timeout is still reached, to be killed and collected.
                let waitEnds = ContinuousClock.now + recontact.hostWait
                guard let fresh = await reconnecting(reach, until: start == nil ? waitEnds : min(deadline, waitEnds), with: recontact) else {
                    // The server stops: the command runs on, to be followed after the restart.
                    if Task.isCancelled { throw .cancelled }
                    run.abandoned = true
                    if ContinuousClock.now >= deadline { run.timedOut = true } else { run.unanswered = true }
                    break following
                }
                session = fresh
                reach = .connected(fresh)
                let offsets = received.withLock { ($0.stdout, $0.stderr) }
                command = JobCommands.reattach(job.id, stdout: offsets.0, stderr: offsets.1)
                stdin = []
            }
            host = session.endpoint.host
            do throws(RunnerError) {
                let part = try await execute(command, stdin: stdin, job: job, deadline: deadline, cancel: cancel, on: session,
                                             artifacts: (files.artifacts, limits), onOutput: record)
                run.finish(part)
                break following
            } catch .ssh where recontact != nil {
                reach = .broken(session)
            }
        }
        log.close()
        (run.stdout, run.stderr) = received.withLock { ($0.stdoutTail, $0.stderrTail) }
        switch run.exit.status.map(Int32.init) {
        case RemoteScripts.Verdict.lost:
            throw .jobLost(host: host, reason: "no longer has the job (its folder is gone or the host restarted)")
        case RemoteScripts.Verdict.neverStarted:
            throw .jobLost(host: host, reason: "never started the job's command")
        default: break
        }
        if run.unanswered, let recontact {
            // The host stayed silent for its host_wait_minutes while the job may run on there.
            var outcome = JobOutcome(status: .error, startedAt: started, finishedAt: Date(),
                                     stdout: run.stdout, stderr: run.stderr)
            let minutes = (recontact.hostWait.timeInterval / 60).formatted()
            outcome.error = "host \(job.hostName ?? host) did not answer for \(minutes) minutes (host_wait_minutes); the job's command may still run there, and is killed once the host answers again"
            outcome.leftOnHost = true
            outcome.outputCut = budget.cut
            return outcome
        }
        if run.abandoned {
            // The host stopped answering: nothing can be collected from it now.
            var outcome = outcome(of: run, collected: Collected(phase: "running", exitStatus: nil, resources: nil, result: nil, artifacts: CollectedArtifacts()),
                                  started: started, timeout: project.timeoutMinutes)
            outcome.error = "the job ran past its timeout of \(Self.format(minutes: project.timeoutMinutes)) and its host stopped answering; the server stopped waiting, and kills the job's processes once the host answers again"
            outcome.leftOnHost = true
            outcome.outputCut = budget.cut
            return outcome
        }
        guard case .connected(var session) = reach else { preconditionFailure("followed to the end over a connection") }
        // Collected in the same exec as a rule; on its own only when that stream was cut short
        // or could not be unpacked here.
        var collected = run.collected.map { self.collected(from: $0, files: files, said: run.collectSaid) }
        var unwritable = 0
        while collected == nil {
            do throws(RunnerError) {
                collected = try await collect(job, into: files, limits: limits, on: session)
            } catch .artifactsUnwritable(let folder, let reason) {
                // The command ran: it is not run again for want of room on the server. Its
                // folder waits on the host while the server's disk may clear (about 30 s).
                unwritable += 1
                guard unwritable < 5 else {
                    var outcome = JobOutcome(status: .error, startedAt: started, finishedAt: Date(), stdout: run.stdout, stderr: run.stderr)
                    outcome.error = "the job's command ended, but its files could not be stored in \(folder) on the server: \(reason)"
                    outcome.outputCut = budget.cut
                    return outcome
                }
                try? await Task.sleep(for: .seconds(1 << unwritable))
                if Task.isCancelled { throw .cancelled }
            } catch .ssh where recontact != nil {
                // The job's folder stays on the host until its end is stored: collect again.
                guard let fresh = await reconnecting(.broken(session), until: ContinuousClock.now + recontact!.hostWait, with: recontact!) else {
                    if Task.isCancelled { throw .cancelled }
                    var outcome = JobOutcome(status: .error, startedAt: started, finishedAt: Date(), stdout: run.stdout, stderr: run.stderr)
                    outcome.error = "the job's command ended, but host \(job.hostName ?? host) stopped answering before its files were collected"
                    outcome.outputCut = budget.cut
                    return outcome
                }
                session = fresh
            }
        }
        var outcome = outcome(of: run, collected: collected!, started: started, timeout: project.timeoutMinutes)
        outcome.outputCut = budget.cut
        if let by = cancel?.raisedBy {
            // Killed on request: its output and artifacts so far are in the outcome.
            outcome.status = .cancelled
            outcome.cancelledBy = by
            outcome.error = nil
        }
        return outcome
    }

    /// A connection to the job's host, tried with backoff until `end`; nil when `end` came
    /// first. The first refusal and the return are told to `recontact.onContact`.
    private func reconnecting(_ reach: Reach, until end: ContinuousClock.Instant, with recontact: Recontact) async -> SSHSession? {
        let backoff = RetryPolicy(maxAttempts: .max, base: .milliseconds(250), cap: .seconds(15))
        var broken: SSHSession?
        if case .broken(let session) = reach { broken = session }
        var retry = 0, told = false
        repeat {
            do throws(SSHError) {
                let fresh = try await recontact.reconnect(broken)
                if told { await recontact.onContact(nil) }
                return fresh
            } catch {
                if !told { await recontact.onContact(error); told = true }
                try? await Task.sleep(for: min(backoff.delay(beforeRetry: retry), max(end - ContinuousClock.now, .zero)))
                retry += 1
            }
        } while ContinuousClock.now < end && !Task.isCancelled
        return nil
    }

    /// Ends the job's process group on its host: SIGTERM, then SIGKILL after the grace.
    public func kill(_ id: JobID, on session: SSHSession) async throws(RunnerError) {
        do {
            _ = try await session.run(killCommand(id))
        } catch {
            throw .ssh(error as? SSHError ?? .connectionLost(host: session.endpoint.host, reason: "\(error)"))
        }
    }

    /// Removes jobs' folders on their host, once their ends are stored.
    public func forget(_ ids: [JobID], on session: SSHSession) async {
        _ = try? await session.run(JobCommands.forget(ids))
    }

    private func killCommand(_ id: JobID) -> String {
        JobCommands.kill(id, grace: killGrace)
    }

    /// Runs a fleet's set-up script on a new host, once per host and script version.
    /// Returns its output; throws `.bootstrapFailed` with it when the script fails.
    public func bootstrap(_ script: String, on session: SSHSession) async throws(RunnerError) -> String {
        let command = JobCommands.bootstrap(script)
        let result: (stdout: [UInt8], stderr: [UInt8], exit: SSHExit)
        do {
            result = try await session.run(command, stdin: Array(script.utf8))
        } catch {
            throw .ssh(error as? SSHError ?? .connectionLost(host: session.endpoint.host, reason: "\(error)"))
        }
        let output = String(decoding: result.stdout + result.stderr, as: UTF8.self)
        guard result.exit.status == 0 else { throw .bootstrapFailed(status: result.exit.status, output: String(output.suffix(4000))) }
        return output
    }

    // MARK: Steps

    private struct Execution: Sendable {
        /// The start or reattach command's own status (`RemoteScripts.Verdict`), not the job's.
        var exit: SSHExit
        var stdout = OutputTail()
        var stderr = OutputTail()
        var timedOut = false
        /// The host stopped answering after the timeout: the server stopped waiting.
        var abandoned = false
        /// The host did not answer for its host_wait_minutes (before the job's timeout).
        var unanswered = false
        /// The collect stream sent after the command's end in the same exec, as unpacked.
        var collected: CollectStream.Read?
        /// What the host's stderr said while it collected.
        var collectSaid: [UInt8] = []

        /// The end of the last exec of the job (the one that followed it to its end).
        mutating func finish(_ last: Execution) {
            exit = last.exit
            timedOut = timedOut || last.timedOut
            abandoned = last.abandoned
            collected = last.collected
            collectSaid = last.collectSaid
        }
    }

    /// Bytes of each stream received from the host so far (where a reattach goes on from),
    /// and the tails results.json keeps.
    private struct ReceivedBytes: Sendable {
        var stdout: Int64
        var stderr: Int64
        var stdoutTail: OutputTail
        var stderrTail: OutputTail

        /// `counted`: the bytes are of the job's output files (not the start script's own stderr).
        mutating func take(_ event: SSHExecEvent, counted: Bool) {
            switch event {
            case .stdout(let bytes): stdout += counted ? Int64(bytes.count) : 0; stdoutTail.append(bytes)
            case .stderr(let bytes): stderr += counted ? Int64(bytes.count) : 0; stderrTail.append(bytes)
            case .exit: break
            }
        }
    }

    /// What ends first: the command's stream, or the wait for a timed-out job on a silent host.
    private enum Race: Sendable {
        case ended(Result<Execution, RunnerError>)
        case gaveUpOnHost
        case timerStopped
    }

    /// Runs the command under its timeout. At the timeout the job's process group is killed
    /// over a second channel of the same session; a host that then stays silent past the
    /// kill grace and `stallGrace` is given up on, and the job counts as timed out. A cancel
    /// kills it the same way, and the command is followed to its end.
    private func execute(
        _ command: String, stdin: [UInt8], job: Job, deadline: ContinuousClock.Instant, cancel: CancelSignal?, on session: SSHSession,
        artifacts: (folder: String, limits: ArtifactUnpacker.Limits), onOutput: @escaping @Sendable (SSHExecEvent, Bool) -> Void
    ) async throws(RunnerError) -> Execution {
        let killCommand = killCommand(job.id), giveUpAfter = .seconds(killGrace) + stallGrace
        let timeout = max(deadline - ContinuousClock.now, .zero)
        let fired = TimeoutFlag()
        // A kill runs to its end (SIGKILL after the grace) even when the command's stream ends
        // first (a job that traps SIGTERM may end its wrapper but not itself): it is a task of
        // its own, not cancelled with the race, and waited for before the job is collected.
        let kills = Mutex<[Task<Void, Never>]>([])
        let kill: @Sendable () -> Void = {
            let task = Task { _ = try? await session.run(killCommand) }
            kills.withLock { $0.append(task) }
        }
        let race = await withTaskGroup(of: Race.self) { group -> Race in
            group.addTask { .ended(await Self.follow(command, stdin: stdin, on: session, artifacts: artifacts, onOutput: onOutput)) }
            group.addTask {
                do { try await Task.sleep(for: timeout) } catch { return .timerStopped }
                fired.raise()
                kill()
                do { try await Task.sleep(for: giveUpAfter) } catch { return .timerStopped }
                return .gaveUpOnHost
            }
            if let cancel {
                group.addTask {
                    await cancel.raised()
                    if !Task.isCancelled { kill() }
                    return .timerStopped
                }
            }
            while let first = await group.next() {
                if case .timerStopped = first { continue }
                group.cancelAll()
                return first
            }
            return .timerStopped
        }
        // The host answered to the end of the stream: its kill ends too (a silent host's is left).
        if case .ended = race { for task in kills.withLock({ $0 }) { await task.value } }
        let timedOut = fired.isRaised
        switch race {
        case .ended(.success(var result)):
            result.timedOut = timedOut
            return result
        case .ended(.failure(let error)):
            // A stream lost while a timed-out job was being killed: the job is over for us.
            if timedOut, case .ssh = error { return Execution(exit: SSHExit(status: nil, signal: nil), timedOut: true, abandoned: true) }
            // A lost connection, or the server stopping, leaves the command running on its
            // host, to be followed again (after the restart, for a stopping server).
            throw error
        case .gaveUpOnHost, .timerStopped:
            return Execution(exit: SSHExit(status: nil, signal: nil), timedOut: true, abandoned: true)
        }
    }

    /// Reads the start or reattach command's stream to its end (`ExecReader`): the output goes
    /// on as it comes, the collect stream after the command's end into the artifacts folder.
    private static func follow(_ command: String, stdin: [UInt8], on session: SSHSession,
                               artifacts: (folder: String, limits: ArtifactUnpacker.Limits),
                               onOutput: @escaping @Sendable (SSHExecEvent, Bool) -> Void) async -> Result<Execution, RunnerError> {
        let reader = Mutex(ExecReader(artifacts: artifacts.folder, limits: artifacts.limits))
        var result = Execution(exit: SSHExit(status: nil, signal: nil))
        do {
            try await session.stream(command, stdin: stdin) { slice in
                reader.withLock { $0.take(slice, output: onOutput) }
            }
        } catch {
            if error is CancellationError || Task.isCancelled { return .failure(.cancelled) }
            return .failure(.ssh(error as? SSHError ?? .connectionLost(host: session.endpoint.host, reason: "\(error)")))
        }
        reader.withLock { reader in
            result.exit.status = reader.verdict
            result.collected = reader.finish()
            result.collectSaid = reader.collectSaid
        }
        return .success(result)
    }

    private struct Collected {
        var phase: String
        /// The command's status, as the host wrote it when the command ended.
        var exitStatus: Int?
        var resources: JobResources?
        var result: JSONValue?
        var artifacts: CollectedArtifacts
    }

    /// One exec of its own (when the start's or reattach's collect stream was cut or could not be
    /// unpacked): the phase the job reached and its status, then the artifacts folder as a tar
    /// stream, unpacked as it arrives.
    private func collect(_ job: Job, into files: JobFiles, limits: ArtifactUnpacker.Limits,
                         on session: SSHSession) async throws(RunnerError) -> Collected {
        let command = JobCommands.collect(job.id)
        let reader: Mutex<CollectStream>
        do {
            reader = Mutex(try CollectStream.fresh(in: files.artifacts, limits: limits))
        } catch {
            throw .artifactsUnwritable(folder: files.artifacts, reason: "\(error)")
        }
        let stderr: [UInt8]
        do {
            stderr = try await session.stream(command) { bytes in reader.withLock { $0.feed(bytes) } }.stderr
        } catch {
            if error is CancellationError || Task.isCancelled { throw .cancelled }
            throw .ssh(error as? SSHError ?? .connectionLost(host: session.endpoint.host, reason: "\(error)"))
        }
        return collected(from: reader.withLock { $0.finish() }, files: files, said: stderr)
    }

    /// What a read collect stream tells, with what the host's stderr said meanwhile.
    private func collected(from stream: CollectStream.Read, files: JobFiles, said stderr: [UInt8]) -> Collected {
        var artifacts = stream.artifacts
        let said = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if !said.isEmpty { artifacts.refused.append(.init(path: "…", reason: "tar on the host said: \(said.suffix(2000))")) }
        return Collected(phase: stream.phase ?? "missing", exitStatus: stream.exitStatus, resources: stream.resources,
                         result: readResult(in: files, artifacts: artifacts), artifacts: artifacts)
    }

    /// The job's own `result.json`, when it kept one no larger than the limit that is JSON.
    private func readResult(in files: JobFiles, artifacts: CollectedArtifacts) -> JSONValue? {
        guard let file = artifacts.files.first(where: { $0.path == "result.json" }), file.bytes <= resultLimit,
              let data = FileManager.default.contents(atPath: files.artifacts + "/result.json") else { return nil }
        return JSONValue.parse(data)
    }

    private func outcome(of run: Execution, collected: Collected, started: Date, timeout minutes: Double) -> JobOutcome {
        var outcome = JobOutcome(status: .succeeded, exitStatus: collected.exitStatus, signal: nil,
                                 startedAt: started, finishedAt: Date(), stdout: run.stdout, stderr: run.stderr,
                                 result: collected.result, artifacts: collected.artifacts)
        outcome.resources = collected.resources
        if run.timedOut {
            outcome.status = .timedOut
            outcome.error = "the job ran past its timeout of \(Self.format(minutes: minutes)) and was killed"
        } else if collected.phase != "finished" && collected.phase != "running" {
            // The job's command never ran: the checkout, upload or command lookup failed.
            outcome.status = .error
            outcome.exitStatus = nil
            outcome.resources = nil
            let said = run.stderr.text.split(separator: "\n").last { $0.hasPrefix("deferred: ") }
            outcome.error = said.map { String($0.dropFirst("deferred: ".count)) } ?? "the job could not start on the host (phase \(collected.phase))"
        } else if collected.exitStatus == nil {
            outcome.status = .error
            outcome.error = "the job's processes ended with no exit status: killed with SIGKILL (by hand or by the kernel's out-of-memory killer), or the host lost its status file"
        } else if collected.exitStatus != 0 {
            outcome.status = .failed
        }
        return outcome
    }

    private static func format(minutes: Double) -> String {
        minutes >= 1 && minutes.rounded() == minutes ? "\(Int(minutes)) minute\(minutes == 1 ? "" : "s")"
                                                     : "\(Int((minutes * 60).rounded())) seconds"
    }
}

/// Whether a job's timeout has passed, as its timer and its reader both see it.
private final class TimeoutFlag: Sendable {
    private let raised = Atomic<Bool>(false)
    func raise() { raised.store(true, ordering: .sequentiallyConsistent) }
    var isRaised: Bool { raised.load(ordering: .sequentiallyConsistent) }
}
