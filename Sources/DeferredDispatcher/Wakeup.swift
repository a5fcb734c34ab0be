/// Lets the intake tell the dispatcher that work arrived, without knowing it.
/// `wait(upTo:)` returns at the first `signal()` or when the time is up.
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
        if pending {
            pending = false
            return
        }
        let timer = Task {
            try? await Task.sleep(for: duration)
            self.signal()
        }
        await withCheckedContinuation { waiter = $0 }
        pending = false
        timer.cancel()
    }
}
