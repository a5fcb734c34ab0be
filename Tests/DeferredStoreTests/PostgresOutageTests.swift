import DeferredCore
@testable import DeferredStore
import DeferredTestSupport
import Foundation
import Synchronization
import Testing

/// A database that stops (an operator's restart, `pg_ctl stop -m fast`) while transactions are
/// under way: every caller is answered promptly, with an error, none waits on a connection the
/// database cut. (Seen before this test: a lease mid-transaction when the database stopped waited
/// until its 120 s bound, and the dispatcher with it.)
@Suite struct PostgresOutageTests {
    @Test func everyTransactionUnderWayWhenTheDatabaseStopsIsAnsweredPromptly() async throws {
        let postgres = try await ThrowawayPostgres.own()
        let url = postgres.url(database: try await postgres.makeDatabase())
        let store = try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password), serving: true)
        final class Stopping: Sendable { let now = Atomic<Bool>(false) }
        let stopping = Stopping()
        // Eight callers in a loop of transactions that idle between their statements, as a
        // lease does between its reads and writes; each records how long its calls took.
        let slowest = try await withThrowingTaskGroup(of: Duration.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var slowest = Duration.zero
                    var afterStop = 0
                    while afterStop < 1 {
                        if stopping.now.load(ordering: .acquiring) { afterStop += 1 }
                        let began = ContinuousClock.now
                        _ = try? await store.transaction { c in
                            _ = try await PostgresJobStore.value(c, "SELECT count(*) FROM job", as: Int.self)
                            try await Task.sleep(for: .milliseconds(Int.random(in: 0...20)))
                            _ = try await PostgresJobStore.value(c, "SELECT count(*) FROM host", as: Int.self)
                            try await Task.sleep(for: .milliseconds(Int.random(in: 0...20)))
                            _ = try await PostgresJobStore.value(c, "SELECT 1", as: Int.self)
                        }
                        slowest = max(slowest, ContinuousClock.now - began)
                    }
                    return slowest
                }
            }
            try await Task.sleep(for: .milliseconds(500))
            stopping.now.store(true, ordering: .releasing)
            try await postgres.stop()
            var slowest = Duration.zero
            for try await one in group { slowest = max(slowest, one) }
            return slowest
        }
        // Calls made while the database is down wait up to the pool's stall limit (20 s) for a
        // connection; none may wait on a cut one until the work bound (120 s).
        #expect(slowest < .seconds(60), "the slowest call took \(slowest)")
    }
}
