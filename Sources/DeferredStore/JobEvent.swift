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
}
