import Foundation
import GRDB
import Synchronization

/// Intake writes that arrive while one is under way go to the disk together: one transaction
/// and one fsync for all of them, each in a savepoint of its own, so one that fails is undone
/// alone. Each caller is answered only after the commit: an answer still means stored.
///
/// A write that waited `deadline` without being taken into a transaction is given up (`busy`,
/// nothing stored): a sender such as GitHub must hear something before it gives up itself. One
/// already in a transaction waits for that transaction's end, which the lock wait bounds.
final class GroupCommit: Sendable {
    /// One caller's write, its type hidden: `attempt` runs it inside the batch's transaction and
    /// keeps its own answer; `finish` answers the caller, with `failure` if the batch failed.
    struct Entry: Sendable {
        let arrived: ContinuousClock.Instant
        let attempt: @Sendable (Database) -> Void
        let finish: @Sendable (StoreError?) -> Void
    }

    private struct State {
        var waiting: [Entry] = []
        var writing = false
    }

    /// The most writes one transaction takes: a batch's writers wait for all of it.
    static let largestBatch = 256

    private let pool: DatabasePool
    private let deadline: Duration
    /// Told how many writes each committed batch held.
    private let onCommit: @Sendable (Int) -> Void
    private let state = Mutex(State())

    init(pool: DatabasePool, deadline: Duration, onCommit: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.pool = pool
        self.deadline = deadline
        self.onCommit = onCommit
    }

    /// Runs `body` in the next batch; its answer once that batch is committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        let answer = Mutex<Result<T, StoreError>?>(nil)
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, StoreError>, Never>) in
            let entry = Entry(
                arrived: .now,
                attempt: { db in
                    do {
                        let value = try Self.inSavepoint(db) { try body(db) }
                        answer.withLock { $0 = .success(value) }
                    } catch {
                        answer.withLock { $0 = .failure(StoreError(sqlite: error)) }
                    }
                },
                finish: { failure in
                    let result = failure.map { Result<T, StoreError>.failure($0) }
                        ?? answer.withLock { $0 } ?? .failure(.database("the write gave no answer"))
                    continuation.resume(returning: result)
                })
            let start = state.withLock { state in
                state.waiting.append(entry)
                defer { state.writing = true }
                return !state.writing
            }
            if start { commitNextBatch() }
        }
        return try result.get()
    }

    /// Runs `body` in a savepoint of the batch's transaction, undone alone if it throws. Its
    /// statements are prepared once per connection: GRDB's `inSavepoint` parses its SAVEPOINT
    /// and RELEASE again for every write (about 1 % of the server's CPU in the intake bench).
    private static func inSavepoint<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        try db.cachedStatement(sql: "SAVEPOINT intake").execute()
        let value: T
        do {
            value = try body()
        } catch {
            // An error that ended the whole transaction (a full disk, say) leaves no savepoint
            // to go back to: GRDB refuses every later statement of the batch as aborted, so no
            // write after it is committed on its own, and the commit fails for every writer.
            try? db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT intake").execute()
            try? db.cachedStatement(sql: "RELEASE SAVEPOINT intake").execute()
            throw error
        }
        try db.cachedStatement(sql: "RELEASE SAVEPOINT intake").execute()
        return value
    }

    /// Commits the writes waiting now, on the database's own writer queue, behind the other
    /// writes already queued there (no task of the concurrency pool has to be scheduled for it,
    /// and the dispatcher's writes take their turns between batches).
    private func commitNextBatch() {
        pool.asyncWriteWithoutTransaction { db in
            let (batch, late) = self.state.withLock { state -> ([Entry], [Entry]) in
                let cutoff = ContinuousClock.now - self.deadline
                var batch: [Entry] = [], late: [Entry] = [], taken = 0
                while taken < state.waiting.count, batch.count < Self.largestBatch {
                    let entry = state.waiting[taken]
                    if entry.arrived < cutoff { late.append(entry) } else { batch.append(entry) }
                    taken += 1
                }
                state.waiting.removeFirst(taken)
                return (batch, late)
            }
            for entry in late { entry.finish(.busy("a write waited \(self.deadline)")) }
            if !batch.isEmpty {
                do {
                    try db.inTransaction(.immediate) {
                        for entry in batch { entry.attempt(db) }
                        return .commit
                    }
                    for entry in batch { entry.finish(nil) }
                    self.onCommit(batch.count)
                } catch {
                    let failure = StoreError(sqlite: error)
                    for entry in batch { entry.finish(failure) }
                }
            }
            let more = self.state.withLock { state in
                if state.waiting.isEmpty { state.writing = false }
                return state.writing
            }
            if more { self.commitNextBatch() }
        }
    }
}
