/// Lets the intake tell the dispatcher that work arrived, without knowing it.
/// `wait(upTo:)` returns at the first `signal()`, when the time is up, or when the waiting
/// task is cancelled (a shutdown must not wait out a long poll).
actor Wakeup {
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?

    func signal() {
        if let waiter {
            self.waiter = nil
            waiter.resume()
        } else {
            pending = true
        }
    }

    func wait(upTo duration: Duration) async {
        if pending || Task.isCancelled {
            pending = false
            return
        }
        let timer = Task {
            try? await Task.sleep(for: duration)
            self.signal()
        }
        // The handler's signal reaches the actor only once this wait has suspended with its
        // waiter set, so it is never lost.
        await withTaskCancellationHandler {
            await withCheckedContinuation { waiter = $0 }
        } onCancel: {
            Task { await self.signal() }
        }
        pending = false
        timer.cancel()
    }
}
