import DeferredSSH

/// Why the runner could not bring a job to an end of its own: the machinery failed, so the
/// dispatcher sends the job back to the queue rather than blaming the job.
public enum RunnerError: Error, Sendable, CustomStringConvertible {
    case ssh(SSHError)
    case cancelled

    public var description: String {
        switch self {
        case .ssh(let e): e.description
        case .cancelled: "the server stopped the job to shut down"
        }
    }
}
