import DeferredCore
import Synchronization

/// Wakes whoever follows a job when its events or output change, so listeners wait instead
/// of polling the store. Each job has a version; a listener waits for it to pass the one it saw.
///
/// Time limits share one timer, set for the earliest of them: a timer task per wait would make
/// each change start a task for every listener (a thousand listeners, a thousand tasks a batch).
public final class JobChanges: Sendable {
    private final class Waiter: Sendable {
        let deadline: ContinuousClock.Instant
        private let continuation: Mutex<CheckedContinuation<Void, Never>?>
        init(_ continuation: CheckedContinuation<Void, Never>, deadline: ContinuousClock.Instant) {
            self.continuation = Mutex(continuation)
            self.deadline = deadline
        }
        /// Resumes once, whoever comes first: a change, the time limit, or cancellation.
        func resume() { continuation.withLock { $0.take() }?.resume() }
    }

    private struct State {
        var versions: [JobID: UInt64] = [:]
        var waiters: [JobID: [Waiter]] = [:]
        /// When the one timer fires, if one is set, and which setting it is.
        var timer: (deadline: ContinuousClock.Instant, generation: UInt64, task: Task<Void, Never>)?
        var generations: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func version(of id: JobID) -> UInt64 {
        state.withLock { $0.versions[id] ?? 0 }
    }

    public func notify(_ id: JobID) {
        let woken = state.withLock { state -> [Waiter] in
            state.versions[id, default: 0] += 1
            return state.waiters.removeValue(forKey: id) ?? []
        }
        for waiter in woken { waiter.resume() }
    }

    /// Wakes every listener of every job: after a time in which changes may have been missed
    /// (the connection that hears other servers' changes was lost), each reads its feed again.
    public func notifyEveryone() {
        let woken = state.withLock { state -> [Waiter] in
            for id in state.waiters.keys { state.versions[id, default: 0] += 1 }
            defer { state.waiters = [:] }
            return state.waiters.values.flatMap { $0 }
        }
        for waiter in woken { waiter.resume() }
    }

    /// Returns once the job's version passed `seen`, or after `limit`, or when cancelled.
    public func wait(for id: JobID, after seen: UInt64, upTo limit: Duration) async {
        let waiter = Mutex<Waiter?>(nil)
        let deadline = ContinuousClock.now + limit
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let w = Waiter(continuation, deadline: deadline)
                waiter.withLock { $0 = w }
                let changed = state.withLock { state -> Bool in
                    if (state.versions[id] ?? 0) > seen { return true }
                    state.waiters[id, default: []].append(w)
                    setTimer(&state, for: deadline)
                    return false
                }
                if changed || Task.isCancelled { w.resume() }
            }
        } onCancel: {
            waiter.withLock { $0 }?.resume()
        }
        // A waiter resumed by cancellation leaves the list here.
        state.withLock { state in
            if let w = waiter.withLock({ $0 }) {
                state.waiters[id]?.removeAll { $0 === w }
                if state.waiters[id]?.isEmpty == true { state.waiters[id] = nil }
            }
        }
    }

    /// Sets the timer for `deadline` unless it is set for then or earlier already.
    private func setTimer(_ state: inout State, for deadline: ContinuousClock.Instant) {
        if let timer = state.timer, timer.deadline <= deadline { return }
        state.timer?.task.cancel()
        state.generations += 1
        let generation = state.generations
        let task = Task { [weak self] in
            try? await Task.sleep(until: deadline)
            guard !Task.isCancelled else { return }
            self?.expire(generation)
        }
        state.timer = (deadline, generation, task)
    }

    /// Resumes the waiters whose time is up, and sets the timer for the next.
    private func expire(_ generation: UInt64) {
        let now = ContinuousClock.now
        let expired = state.withLock { state -> [Waiter] in
            guard state.timer?.generation == generation else { return [] }
            state.timer = nil
            var expired: [Waiter] = [], next: ContinuousClock.Instant?
            for (id, waiters) in state.waiters {
                let (due, later) = (waiters.filter { $0.deadline <= now }, waiters.filter { $0.deadline > now })
                guard !due.isEmpty else { continue }
                expired += due
                state.waiters[id] = later.isEmpty ? nil : later
            }
            for waiters in state.waiters.values {
                for waiter in waiters { next = min(next ?? waiter.deadline, waiter.deadline) }
            }
            if let next { setTimer(&state, for: next) }
            return expired
        }
        for waiter in expired { waiter.resume() }
    }
}
