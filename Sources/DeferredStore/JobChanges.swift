import DeferredCore
import Synchronization

/// Wakes whoever follows a job when its events or output change, so listeners wait instead
/// of polling the store. Each job has a version; a listener waits for it to pass the one it saw.
///
/// Time limits share one timer, set for the earliest of them: a timer task per wait would make
/// each change start a task for every listener (a thousand listeners, a thousand tasks a batch).
public final class JobChanges: Sendable {
    /// A listener's interest in a job's next change: its `wake` is called once, at the change,
    /// at the time limit, or when it is ended early. Listeners with no task of their own (event
    /// streams served below the router) wait as a group with one observation.
    public final class Observation: Sendable {
        let id: JobID
        let deadline: ContinuousClock.Instant
        private let wake: Mutex<(@Sendable () -> Void)?>

        init(id: JobID, deadline: ContinuousClock.Instant, wake: @escaping @Sendable () -> Void) {
            self.id = id
            self.deadline = deadline
            self.wake = Mutex(wake)
        }

        /// Calls `wake` unless it was called or disarmed before.
        func fire() { wake.withLock { $0.take() }?() }

        /// `wake` will not be called.
        func disarm() { _ = wake.withLock { $0.take() } }
    }

    private struct State {
        var versions: [JobID: UInt64] = [:]
        var waiters: [JobID: [Observation]] = [:]
        /// When the one timer fires, if one is set, and which setting it is.
        var timer: (deadline: ContinuousClock.Instant, generation: UInt64, task: Task<Void, Never>)?
        var generations: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// How many listeners wait on the job's next change now.
    public func observations(of id: JobID) -> Int {
        state.withLock { $0.waiters[id]?.count ?? 0 }
    }

    public func version(of id: JobID) -> UInt64 {
        state.withLock { $0.versions[id] ?? 0 }
    }

    public func notify(_ id: JobID) {
        let woken = state.withLock { state -> [Observation] in
            state.versions[id, default: 0] += 1
            return state.waiters.removeValue(forKey: id) ?? []
        }
        for waiter in woken { waiter.fire() }
    }

    /// Wakes every listener of every job: after a time in which changes may have been missed
    /// (the connection that hears other servers' changes was lost), each reads its feed again.
    public func notifyEveryone() {
        let woken = state.withLock { state -> [Observation] in
            for id in state.waiters.keys { state.versions[id, default: 0] += 1 }
            defer { state.waiters = [:] }
            return state.waiters.values.flatMap { $0 }
        }
        for waiter in woken { waiter.fire() }
    }

    /// Calls `wake` once the job's version passed `seen` (at once if it did already), or after
    /// `limit`, unless the observation is cancelled first.
    @discardableResult
    public func observe(_ id: JobID, after seen: UInt64, upTo limit: Duration,
                        _ wake: @escaping @Sendable () -> Void) -> Observation {
        let observation = Observation(id: id, deadline: ContinuousClock.now + limit, wake: wake)
        let changed = state.withLock { state -> Bool in
            if (state.versions[id] ?? 0) > seen { return true }
            state.waiters[id, default: []].append(observation)
            setTimer(&state, for: observation.deadline)
            return false
        }
        if changed { observation.fire() }
        return observation
    }

    /// Ends an observation without calling its `wake`: its listener went.
    public func cancel(_ observation: Observation) {
        observation.disarm()
        remove(observation)
    }

    /// Returns once the job's version passed `seen`, or after `limit`, or when cancelled.
    public func wait(for id: JobID, after seen: UInt64, upTo limit: Duration) async {
        let registered = Mutex<Observation?>(nil)
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let observation = observe(id, after: seen, upTo: limit) { continuation.resume() }
                registered.withLock { $0 = observation }
                if Task.isCancelled { observation.fire() }
            }
        } onCancel: {
            registered.withLock { $0 }?.fire()
        }
        // One woken by cancellation leaves the list here.
        if let observation = registered.withLock({ $0 }) { remove(observation) }
    }

    private func remove(_ observation: Observation) {
        state.withLock { state in
            state.waiters[observation.id]?.removeAll { $0 === observation }
            if state.waiters[observation.id]?.isEmpty == true { state.waiters[observation.id] = nil }
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
        let expired = state.withLock { state -> [Observation] in
            guard state.timer?.generation == generation else { return [] }
            state.timer = nil
            var expired: [Observation] = [], next: ContinuousClock.Instant?
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
        for waiter in expired { waiter.fire() }
    }
}
