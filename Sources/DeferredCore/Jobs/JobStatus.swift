/// Where a job is in its life (DESIGN.md): `queued → waiting_for_host → running →` an end.
public enum JobStatus: String, Sendable, Codable, CaseIterable {
    case queued
    case waitingForHost = "waiting_for_host"
    case running
    case succeeded
    case failed
    case timedOut = "timed_out"
    case cancelled
    case error

    /// An end state: the job has its results.json.
    public var isFinal: Bool {
        switch self {
        case .queued, .waitingForHost, .running: false
        case .succeeded, .failed, .timedOut, .cancelled, .error: true
        }
    }

    /// States in which the job holds a lease on a host.
    public static let leased: [JobStatus] = [.waitingForHost, .running]
}

/// Where a host is in its life (DESIGN.md).
public enum HostState: String, Sendable, Codable, CaseIterable {
    case stopped
    case waking
    case ready
    case busy
    case stopping
    case provisioning
    /// SSH does not answer (a static host down, sshd restarting): its jobs wait for it.
    case unreachable
    case unknown
}
