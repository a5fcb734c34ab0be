import DeferredCore
import Foundation
import Synchronization

/// A clock a test moves by hand: `sleep` returns only when `advance` has moved the clock past
/// its end, so timers of minutes and days run in milliseconds, in the order the test says.
public final class ManualTime: TimeSource {
    private struct Sleeper {
        var id: UUID
        var deadline: Date
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Date
        var sleepers: [Sleeper] = []
        var cancelled: Set<UUID> = []
    }

    private let state: Mutex<State>

    public init(start: Date = Date()) { state = Mutex(State(now: start)) }

    public var now: Date { state.withLock { $0.now } }

    /// How many are waiting on this clock now.
    public var sleeping: Int { state.withLock { $0.sleepers.count } }

    public func sleep(for duration: Duration) async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: (any Error)?? = state.withLock { state in
                    if state.cancelled.remove(id) != nil { return .some(CancellationError()) }
                    let deadline = state.now.addingTimeInterval(duration.timeInterval)
                    if deadline <= state.now { return .some(nil) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return .none
                }
                switch resumeNow {
                case .some(let error?): continuation.resume(throwing: error)
                case .some(nil): continuation.resume()
                case .none: break
                }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock on and wakes every sleeper whose end it passed.
    public func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.addingTimeInterval(duration.timeInterval)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Waits (in real time, briefly) until `count` sleepers wait on the clock: a timer loop
    /// that is back to sleep has finished its round.
    public func waitUntilSleeping(_ count: Int = 1, within limit: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + limit
        while sleeping < count {
            guard ContinuousClock.now < deadline else { throw ManualTimeError(description: "nothing went back to sleep on the clock within \(limit)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

public struct ManualTimeError: Error, CustomStringConvertible {
    public let description: String
}
