import Foundation
import Synchronization

/// Someone asked to cancel a job: shared by the dispatcher, which raises it, and the job's
/// attempt and runner, which act on it. Before the command starts the attempt simply stops;
/// once it may run, the runner kills its process group and collects what it left.
public final class CancelSignal: Sendable {
    private struct State {
        var by: String?
        var commandMayRun = false
        var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    }

    private let state: Mutex<State>

    /// `commandMayRun`: the job's command was started before (a job taken up again).
    public init(raisedBy by: String? = nil, commandMayRun: Bool = false) {
        state = Mutex(State(by: by, commandMayRun: commandMayRun))
    }

    /// Who asked, once someone has.
    public var raisedBy: String? { state.withLock { $0.by } }

    /// Raises it; true when the job's command may already run (it must be killed, not just
    /// left unstarted). A second raise keeps the first asker.
    @discardableResult
    public func raise(by: String) -> Bool {
        let (waiters, mayRun) = state.withLock { state in
            if state.by == nil { state.by = by }
            defer { state.waiters = [:] }
            return (Array(state.waiters.values), state.commandMayRun)
        }
        for waiter in waiters { waiter.resume() }
        return mayRun
    }

    /// The command is about to start: false when the job was cancelled first, and then it
    /// must not start.
    public func commandStarts() -> Bool {
        state.withLock { state in
            guard state.by == nil else { return false }
            state.commandMayRun = true
            return true
        }
    }

    /// Returns once the signal is raised, or when the waiting task is cancelled.
    public func raised() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.by != nil || Task.isCancelled { return true }
                    state.waiters[id] = waiter
                    return false
                }
                if now { waiter.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
