import DeferredProviders
import DeferredRunner
import DeferredSSH
import DeferredCore

/// Why the machinery, not the job, failed: the runner (SSH), or waking the host. These
/// send the job back to the queue with backoff while they are transient.
enum MachineryFailure: Error, Sendable, CustomStringConvertible {
    case runner(RunnerError)
    case wake(ProviderError)
    case wakeTimedOut(host: String, minutes: Double, key: String)
    /// The host's SSH does not answer (refused, timed out): its jobs wait for it, not failing.
    case unreachable(host: HostConfig, SSHError)

    var isTransient: Bool {
        switch self {
        case .runner(.ssh(let error)): error.isTransient
        case .runner(.cancelled): true
        case .runner(.bootstrapFailed): false
        // A full disk may clear; the job waits and tries again like after a dropped connection.
        case .runner(.artifactsUnwritable): true
        // The host lost the job or never started it: the one case where it runs again.
        case .runner(.jobLost): true
        case .wake(let error): error.isTransient
        case .wakeTimedOut: true
        case .unreachable: true
        }
    }

    var isWakeFailure: Bool {
        switch self {
        case .runner, .unreachable: false
        case .wake, .wakeTimedOut: true
        }
    }

    var description: String {
        switch self {
        case .runner(let error): error.description
        case .unreachable(let host, let error): "host \(host.name) does not answer: \(error)"
        case .wake(let error): "cannot wake \(error)"
        case .wakeTimedOut(let host, let minutes, let key):
            "host \(host) did not come up within its wake timeout of \(minutes.formatted()) minute\(minutes == 1 ? "" : "s") (\(key))"
        }
    }
}
