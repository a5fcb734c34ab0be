import Foundation

/// A unit of work: one push or one script, from its 202 to its results.json.
public struct Job: Sendable, Equatable, Identifiable {
    public var id: JobID
    public var token: ResultToken
    public var project: String
    public var trigger: Trigger
    public var status: JobStatus
    /// The host leased to the job, while it has one, and after it ends the host it ran on.
    public var hostName: String?
    /// Tries that the machinery (SSH, host) spoiled; the job's own exit never counts.
    public var attempts: Int
    /// A job sent back to the queue waits until then before it is leased again.
    public var notBefore: Date
    public var queuedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// When retention deleted the job's stored files; its URLs answer 410 from then on.
    public var expiredAt: Date?
    /// The job this one runs again (`POST /jobs/{id}/rerun`), with the same trigger.
    public var rerunOf: JobID?
    /// A posted script's cancel token, given only to its poster (in `cancel_url`): the result
    /// URL is shared with browsers and must not cancel.
    public var cancelToken: String?
    /// Who asked to cancel the job (`admin`, or `poster` with the cancel token), once asked.
    public var cancelRequestedBy: String?

    public init(
        id: JobID = .make(), token: ResultToken = .make(), project: String, trigger: Trigger,
        status: JobStatus = .queued, hostName: String? = nil, attempts: Int = 0,
        queuedAt: Date = Date(), notBefore: Date? = nil, startedAt: Date? = nil, finishedAt: Date? = nil,
        expiredAt: Date? = nil, rerunOf: JobID? = nil, cancelToken: String? = nil, cancelRequestedBy: String? = nil
    ) {
        self.cancelToken = cancelToken
        self.cancelRequestedBy = cancelRequestedBy
        self.expiredAt = expiredAt
        self.rerunOf = rerunOf
        self.id = id
        self.token = token
        self.project = project
        self.trigger = trigger
        self.status = status
        self.hostName = hostName
        self.attempts = attempts
        self.queuedAt = queuedAt
        self.notBefore = notBefore ?? queuedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

public extension Job {
    /// A new cancel token: 128 random bits, as hex.
    static func makeCancelToken() -> String { RandomHex.make(bytes: 16) }
}
