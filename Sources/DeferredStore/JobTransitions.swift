import DeferredCore
import Foundation

/// A job's changes of state as both stores make them: the row changed, and the event that says
/// so. Each store wraps these in its own transaction, with its own locks.
extension JobRecord {
    /// Leased to `host`, whose state was `state`: whether the host was up, and the event's words.
    mutating func lease(to host: String, hostState state: HostState) -> (up: Bool, detail: String) {
        status = JobStatus.waitingForHost.rawValue
        hostName = host
        // An unreachable host is tried straight away: its jobs wait for SSH, not for a wake.
        let up = state == .ready || state == .busy || state == .unreachable
        let detail = up ? "host \(host)" : state == .provisioning ? "host \(host): launching a new instance"
                                                                   : "host \(host), which is \(state.rawValue): waking it"
        return (up, detail)
    }

    /// Ended with `outcome`, unless it ended before (nil then: an end is kept). The event's
    /// words are the second value.
    mutating func end(with outcome: JobOutcome) -> (ended: Bool, detail: String?) {
        guard JobStatus(rawValue: status)?.isFinal != true else { return (false, nil) }
        status = outcome.status.rawValue
        startedAt = startedAt ?? outcome.startedAt.timeIntervalSince1970
        finishedAt = outcome.finishedAt.timeIntervalSince1970
        let detail = [outcome.exitStatus.map { "exit status \($0)" }, outcome.signal.map { "signal \($0)" },
                      outcome.cancelledBy.map { "cancelled by \($0)" }, outcome.error]
            .compactMap { $0 }.joined(separator: "; ")
        return (true, detail.isEmpty ? nil : detail)
    }

    /// Back in the queue from `notBefore`; the host it held, to free.
    mutating func requeue(notBefore: Date, countAttempt: Bool) -> String? {
        let host = hostName
        status = JobStatus.queued.rawValue
        hostName = nil
        startedAt = nil
        self.notBefore = notBefore.timeIntervalSince1970
        if countAttempt { attempts += 1 }
        return host
    }

    /// What a server start does with a job it found leased.
    enum Interrupted: Equatable {
        /// Found at too many starts in a row: to be ended as `error`.
        case givenUp
        /// Its command may run on its host: followed again there.
        case resumed(host: String)
        /// It waited for its host: back to the queue.
        case stranded
    }

    mutating func interruptedAtStart(limit: Int) -> Interrupted {
        interruptedStarts += 1
        if interruptedStarts >= limit { return .givenUp }
        if status == JobStatus.running.rawValue, let hostName { return .resumed(host: hostName) }
        return .stranded
    }

    /// Someone asks to cancel: the status to record the ask under, or nil when the job has ended
    /// or was asked before.
    mutating func askCancel(by: String) -> JobStatus? {
        guard let current = JobStatus(rawValue: status), !current.isFinal, cancelRequestedBy == nil else { return nil }
        cancelRequestedBy = by
        return current
    }
}

/// Words both stores write into a job's events.
enum JobWords {
    static func resumed(on host: String) -> String { "the server started again: following the job on host \(host) from where it was" }
    static let stranded = "the server stopped while the job waited for its host; queued again"
    static func cancelAsked(by: String) -> String { "cancel asked for by \(by)" }
}
