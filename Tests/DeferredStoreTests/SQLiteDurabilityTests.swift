@testable import DeferredStore
import Foundation
import GRDB
import Testing

/// A 202 promises the job is on disk: the connection that commits syncs the WAL at every commit
/// (FULL), not only at checkpoints (NORMAL, GRDB's own choice for WAL, which loses the last
/// commits to a power cut though not to kill -9).
@Suite struct SQLiteDurabilityTests {
    @Test func theWriterSyncsEveryCommit() async throws {
        try await TemporaryFolder.with("durable") { folder in
            let store = try SQLiteJobStore(path: folder + "/state.sqlite")
            let level = try await store.pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
            #expect(level == 2, "PRAGMA synchronous is \(String(describing: level)); 2 is FULL")
            #expect(try await store.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        }
    }
}
