import DeferredCore
@testable import DeferredDispatcher
import DeferredStore
import Logging
import Testing

/// A store write that a cancelled task starts still runs whole: SQLite gives up a write that
/// waits on a lock when its task is cancelled, and a job whose attempt was cancelled mid-write
/// (queued again, or ended) was left half moved, never reaching an end.
@Suite struct StoreWriteTests {
    @Test func aWriteStartedByACancelledTaskIsNotCutOff() async throws {
        let harness = try await ServerHarness()
        let results = await harness.makeDispatcher().results
        let attempt = Task { () async -> Bool in
            withUnsafeCurrentTask { $0?.cancel() }
            // As SQLite answers a write cancelled while it waited.
            return await results.outlastingLocks("write in a cancelled task", log: Logger(label: "test")) { () async throws(StoreError) in
                if Task.isCancelled { throw StoreError.busy("the write was given up while it waited") }
            }
        }
        #expect(await attempt.value, "the write was cut off by its caller's cancellation")
    }
}
