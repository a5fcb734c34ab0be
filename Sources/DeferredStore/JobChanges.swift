import DeferredCore
import Synchronization

/// Wakes whoever follows a job when its events or output change, so listeners wait instead
/// of polling the store. Each job has a version; a listener waits for it to pass the one it saw.
public final class JobChanges: Sendable {
    private final class Waiter: Sendable {
        private let continuation: Mutex<CheckedContinuation<Void, Never>?>
        init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = Mutex(continuation) }
        /// Resumes once, whoever comes first: a change, the time limit, or cancellation.
        func resume() { continuation.withLock { $0.take() }?.resume() }
    }

    private struct State {
        var versions: [JobID: UInt64] = [:]
        var waiters: [JobID: [Waiter]] = [:]
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
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let w = Waiter(continuation)
                waiter.withLock { $0 = w }
                let changed = state.withLock { state -> Bool in
                    if (state.versions[id] ?? 0) > seen { return true }
                    state.waiters[id, default: []].append(w)
                    return false
                }
                if changed || Task.isCancelled { w.resume(); return }
                Task {
                    try? await Task.sleep(for: limit)
                    w.resume()
                }
            }
        } onCancel: {
            waiter.withLock { $0 }?.resume()
        }
        // A waiter resumed by its time limit leaves the list here.
        state.withLock { state in
            if let w = waiter.withLock({ $0 }) {
                state.waiters[id]?.removeAll { $0 === w }
                if state.waiters[id]?.isEmpty == true { state.waiters[id] = nil }
            }
        }
    }
}
