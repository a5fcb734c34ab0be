import DeferredCore
import Foundation

/// One change in a job's life, with its time: the job's event log.
public struct JobEvent: Sendable, Equatable {
    public var sequence: Int64
    public var at: Date
    public var status: JobStatus
    public var detail: String?
}

/// What a lease gives the dispatcher: the job and the host it may run on.
public struct Lease: Sendable, Equatable {
    public var job: Job
    public var hostName: String
    /// The host was known to be up (ready or busy); otherwise it must be woken first.
    public var hostWasUp: Bool
}

/// What became of a posted script: queued, the same job again for a repeated
/// `Idempotency-Key`, or refused.
public enum ScriptEnqueueResult: Sendable, Equatable {
    case created(Job)
    case replayed(Job)
    /// The key was used before with another body.
    case conflict(Job)
    /// This many jobs already wait for a host.
    case queueFull(queued: Int)
}

/// The `Idempotency-Key` of a request, with a digest of the body it came with.
public struct IdempotencyClaim: Sendable, Equatable {
    public var key: String
    public var bodySHA256: String
    public init(key: String, bodySHA256: String) {
        self.key = key
        self.bodySHA256 = bodySHA256
    }
}

/// The answer to storing a delivery: a new job, or the job an earlier copy made.
public enum EnqueueResult: Sendable, Equatable {
    case created(Job)
    case duplicate(Job)

    public var job: Job {
        switch self {
        case .created(let j), .duplicate(let j): j
        }
    }
}

/// A host as the dispatcher and sleeper see it.
public struct HostStatus: Sendable, Equatable {
    public var name: String
    public var provider: String
    public var state: HostState
    public var idleSince: Date?
    public var lastJobID: JobID?
    public var activeJobs: Int
    /// For a host a fleet made: the fleet, and the instance once launched.
    public var fleet: String? = nil
    public var instanceID: String? = nil
}

/// Where a project's jobs may go, in the project's order: a configured host, or a fleet that
/// may make another host while it has fewer than `maxHosts`.
public enum LeaseTarget: Sendable {
    case host(name: String, maxJobs: Int)
    case fleet(name: String, maxHosts: Int, maxJobs: Int)
}
