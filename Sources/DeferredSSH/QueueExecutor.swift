import Dispatch

/// A serial executor backed by one dispatch queue. libssh sessions are not thread-safe and
/// block: an actor on this executor makes every call of one session on its own thread,
/// never on the HTTP event loop or the cooperative pool.
final class QueueExecutor: SerialExecutor, @unchecked Sendable {
    // Invariant: the queue is serial, so jobs run one at a time in order.
    /// Also the target of the session's socket watch, so its handler runs isolated too.
    let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: UnownedJob) {
        queue.async {
            job.runSynchronously(on: self.asUnownedSerialExecutor())
        }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }
}
