import DeferredSSH

/// Why the runner could not bring a job to an end of its own: the machinery failed, so the
/// dispatcher sends the job back to the queue rather than blaming the job.
public enum RunnerError: Error, Sendable, CustomStringConvertible {
    case ssh(SSHError)
    case cancelled
    /// A fleet's set-up script failed on a new host: its exit status and the end of its output.
    case bootstrapFailed(status: Int?, output: String)
    /// The server could not write the job's output log or artifacts (disk full, permissions).
    case artifactsUnwritable(folder: String, reason: String)
    /// The host does not have the job any more (its folder is gone, the host rebooted) or
    /// its command never started: the one case where a job may run again.
    case jobLost(host: String, reason: String)

    public var description: String {
        switch self {
        case .ssh(let e): e.description
        case .cancelled: "the server stopped the job to shut down"
        case .jobLost(let host, let reason): "host \(host) \(reason)"
        case .artifactsUnwritable(let folder, let reason):
            "the server cannot write the job's files to \(folder): \(reason); check the [artifacts] store's disk and permissions"
        case .bootstrapFailed(let status, let output):
            "the host's bootstrap script failed (exit status \(status.map(String.init) ?? "none")): \(output.trimmingCharacters(in: .whitespacesAndNewlines).suffix(2000))"
        }
    }
}
