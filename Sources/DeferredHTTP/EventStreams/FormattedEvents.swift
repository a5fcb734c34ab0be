import DeferredCore
import DeferredStore
import NIOCore
import Synchronization

/// The Server-Sent Events text of a stretch of a job's feed, made once and sent to every
/// listener at the same place. The feed between two cursors never changes (ids only grow),
/// so a thousand caught-up listeners share one formatting and one buffer.
final class FormattedEvents: Sendable {
    private struct Stretch: Hashable {
        var job: JobID
        var from: FeedCursor
        var to: FeedCursor
    }

    private let cache = Mutex<[Stretch: ByteBuffer]>([:])

    func text(of job: JobID, from: FeedCursor, to: FeedCursor, format: () -> String) -> ByteBuffer {
        let stretch = Stretch(job: job, from: from, to: to)
        if let made = cache.withLock({ $0[stretch] }) { return made }
        let buffer = ByteBuffer(string: format())
        cache.withLock { cache in
            // Only the latest stretches are asked for again; a full cache starts over.
            if cache.count > 256 { cache.removeAll() }
            cache[stretch] = buffer
        }
        return buffer
    }
}
