import Synchronization

/// Lets the intake tell the dispatcher that work arrived, without knowing it.
/// `wait(upTo:)` returns at the first `signal()`, when the time is up, or when the waiting
/// task is cancelled (a shutdown must not wait out a long poll).
///
/// A lock rather than an actor: every accepted delivery signals, and a signal is a flag set or
/// a continuation resumed where the caller is, not a task made to reach an actor (in the intake
/// bench that task was most of the cost of telling the dispatcher).
final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// For one waiter at a time (the dispatcher's loop).
    func wait(upTo duration: Duration) async {
        if takePending() || Task.isCancelled { return }
        let timer = Task {
            // Cancelled once the wait ended otherwise: then it has nothing to say.
            guard (try? await Task.sleep(for: duration)) != nil else { return }
            self.signal()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                // A signal that came since the check above (the cancellation's own among them)
                // left the flag set: the wait ends at once rather than missing it.
                let signalled = state.withLock { state -> Bool in
                    if state.pending { return true }
                    state.waiter = waiter
                    return false
                }
                if signalled { waiter.resume() }
            }
        } onCancel: {
            self.signal()
        }
        _ = takePending()
        timer.cancel()
    }

    private func takePending() -> Bool {
        state.withLock { state in
            defer { state.pending = false }
            return state.pending
        }
    }
}
