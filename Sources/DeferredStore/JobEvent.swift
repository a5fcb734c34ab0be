import DeferredCore
import Foundation

/// One change in a job's life, with its time: the job's event log.
public struct JobEvent: Sendable, Equatable {
    public var sequence: Int64
    public var at: Date
    public var status: JobStatus
    public var detail: String?
    /// While the job waits for a host: what the host is doing.
    public var hostState: HostProgress? = nil
}

/// What a host is doing while a job waits for it, as the event stream tells it.
public enum HostProgress: String, Sendable, Equatable {
    case waking, booting, bootstrapping, ready
}

/// Lines a job wrote, as they arrived, a batch at a time.
public struct OutputChunk: Sendable, Equatable {
    public enum Stream: String, Sendable { case stdout, stderr }
    public var sequence: Int64
    public var at: Date
    public var stream: Stream
    public var text: String
}

/// Where a listener of a job's feed is: the last state event and the last output chunk it
/// has. Written `"<event>.<output>"` as the Server-Sent Events id.
public struct FeedCursor: Sendable, Hashable, CustomStringConvertible {
    public var event: Int64
    public var output: Int64

    public init(event: Int64 = 0, output: Int64 = 0) {
        self.event = event
        self.output = output
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let event = Int64(parts[0]), let output = Int64(parts[1]), event >= 0, output >= 0 else { return nil }
        self.init(event: event, output: output)
    }

    public var description: String { "\(event).\(output)" }
}

/// What a listener gets from a job's feed at once: the entries past its cursor, and whether
/// the job had ended when they were read.
public struct Feed: Sendable, Equatable {
    public var items: [FeedItem]
    public var jobEnded: Bool
    /// The read stopped at its page size: read again from the last cursor, at once.
    public var hasMore = false
}

/// One entry of a job's feed, with the cursor just past it.
public struct FeedItem: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case state(JobEvent)
        case output(OutputChunk)
    }
    public var kind: Kind
    public var cursor: FeedCursor
}

/// What a lease gives the dispatcher: the job and the host it may run on.
public struct Lease: Sendable, Equatable {
    public var job: Job
    public var hostName: String
    /// The host was known to be up (ready or busy); otherwise it must be woken first.
    public var hostWasUp: Bool
    /// A job whose command a server started before it stopped: followed again from here
    /// (how far its stored output goes), never started again unless its host lost it.
    public var resuming: OutputPosition?

    public init(job: Job, hostName: String, hostWasUp: Bool, resuming: OutputPosition? = nil) {
        self.job = job
        self.hostName = hostName
        self.hostWasUp = hostWasUp
        self.resuming = resuming
    }
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
    /// This many jobs of the project already wait for a host.
    case queueFull(queued: Int)

    public var job: Job? {
        switch self {
        case .created(let j), .duplicate(let j): j
        case .queueFull: nil
        }
    }
}

/// What a server start found of the jobs the last one left leased.
public struct Recovery: Sendable, Equatable {
    /// Queued again, to run from the start.
    public var requeued: [JobID]
    /// Found running at too many starts in a row: to be ended as `error`.
    public var givenUp: [Job]
    /// Running when the server stopped: taken up again on their hosts.
    public var resumed: [Lease] = []
}

/// A job's end and results.json, waiting for the artifact store to take the file.
public struct PendingResult: Sendable, Equatable {
    public var job: Job
    /// Its state and why; the rest of the outcome is in `results`.
    public var outcome: JobOutcome
    public var results: Data
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

/// A fleet whose last launches never became reachable: its next launch waits.
public struct FleetBootFailures: Sendable, Equatable {
    public var fleet: String
    /// Instances in a row that never answered.
    public var count: Int
    public var lastReason: String
    public var lastAt: Date
    /// No instance is launched for the fleet before then (`LaunchBackoff`).
    public var nextLaunch: Date { lastAt.addingTimeInterval(LaunchBackoff.hold(afterFailures: count)) }

    /// One line for the host list.
    public var summary: String {
        "fleet \(fleet): \(count) new instance\(count == 1 ? "" : "s") in a row never answered (last: \(lastReason)); next launch no sooner than \(RFC3339.string(nextLaunch))"
    }

    public init(fleet: String, count: Int, lastReason: String, lastAt: Date) {
        self.fleet = fleet
        self.count = count
        self.lastReason = lastReason
        self.lastAt = lastAt
    }
}

/// Where a project's jobs may go, in the project's order: a configured host, or a fleet that
/// may make another host while it has fewer than `maxHosts`.
public enum LeaseTarget: Sendable {
    /// `queuedBefore`, when set, takes only jobs queued before it: the host is held back after
    /// it did not answer, and gets only the jobs whose wait for it is up, to end them.
    case host(name: String, maxJobs: Int, queuedBefore: Date? = nil)
    /// `provider`: what the fleet's new hosts are recorded as (`ec2`, `hetzner`, `digitalocean`).
    case fleet(name: String, maxHosts: Int, maxJobs: Int, provider: String = "ec2")

    /// Whether the target may take a job queued at `queuedAt` (seconds since 1970): all but a
    /// held host take any. Candidates come oldest first, so a held host that one is too new
    /// for refuses every later one too.
    func takes(queuedAt: Double) -> Bool {
        guard case .host(_, _, let queuedBefore?) = self else { return true }
        return queuedAt < queuedBefore.timeIntervalSince1970
    }
}
