import DeferredCore
import Foundation
import Synchronization

/// Static hosts whose SSH did not answer, each held back from new jobs for a while: 2, 4, 8 …
/// seconds after each miss in a row, at most a minute. While held, a host is tried by no job
/// that can still wait; one whose `host_wait_minutes` are up is given to it, to be tried once
/// more and ended if it still does not answer. Without the hold, every queued job took its
/// own turn at a host that was down: a connection attempt, a warning and an event each, as
/// many as there were jobs behind it.
///
/// Per server and in memory: another server sharing the store keeps its own, and a restart
/// starts with none (the next miss holds the host again).
final class HostHolds: Sendable {
    private struct Hold {
        var misses: Int
        var until: Date
    }

    private let holds = Mutex<[String: Hold]>([:])
    private let backoff: RetryPolicy

    init(backoff: RetryPolicy = JobAttempt.requeueBackoff) {
        self.backoff = backoff
    }

    /// `host` did not answer: held from now for one more step of the backoff. The steps grow
    /// until a connection to it succeeds.
    func missed(_ host: String) {
        let now = Date()
        holds.withLock { holds in
            let misses = (holds[host]?.misses ?? 0) + 1
            holds[host] = Hold(misses: misses, until: now.addingTimeInterval(backoff.delay(beforeRetry: misses).timeInterval))
        }
    }

    /// `host` answered: no longer held.
    func answered(_ host: String) {
        _ = holds.withLock { $0.removeValue(forKey: host) }
    }

    /// While `host` is held: it takes only jobs queued before the returned date, those whose
    /// `host_wait_minutes` are up. Nil when it is not held and takes any job.
    func takesOnlyQueuedBefore(_ host: HostConfig) -> Date? {
        let now = Date()
        let held = holds.withLock { holds in holds[host.name].map { $0.until > now } ?? false }
        return held ? now.addingTimeInterval(-host.hostWaitMinutes * 60) : nil
    }
}
