@testable import DeferredStore
import Foundation
import GRDB
import GRDBSQLite
import Testing

/// Intake writes committed together: each in a savepoint of its own, so one that fails after
/// it wrote undoes its own rows and keeps none of the others from being stored.
@Suite struct GroupCommitTests {
    struct Refused: Error {}

    @Test func aWriteThatFailsAfterWritingUndoesOnlyItsOwnRows() async throws {
        try await TemporaryFolder.with("group") { folder in
            let store = try SQLiteJobStore(path: folder + "/state.sqlite")
            // Sent at once, so most share a batch: every third fails after its insert.
            let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
                for index in 0..<120 {
                    group.addTask {
                        do throws(StoreError) {
                            try await store.intakeWrite { db in
                                try db.execute(sql: "INSERT INTO host (name, provider, state) VALUES (?, 'static', 'ready')", arguments: ["h-\(index)"])
                                if index % 3 == 0 { throw Refused() }
                            }
                            return (index, true)
                        } catch {
                            return (index, false)
                        }
                    }
                }
                return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
            }
            #expect(outcomes.count == 120)
            #expect(outcomes.allSatisfy { $0.value == ($0.key % 3 != 0) }, "\(outcomes.filter { $0.value == ($0.key % 3 == 0) })")
            let stored = try await store.pool.read { try String.fetchSet($0, sql: "SELECT name FROM host") }
            let expected = Set((0..<120).filter { $0 % 3 != 0 }.map { "h-\($0)" })
            #expect(stored == expected, "kept from failed writes: \(stored.subtracting(expected).sorted()); lost: \(expected.subtracting(stored).sorted())")
            // The connection is left outside any transaction or savepoint: a write after them works.
            try await store.intakeWrite { db in try db.execute(sql: "INSERT INTO host (name, provider, state) VALUES ('after', 'static', 'ready')") }
            #expect(try await store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM host") } == 81)
        }
    }

    /// How a write ends the whole transaction, as a full disk's error can: through GRDB, or in a
    /// statement GRDB does not see run (as `PreparedInsert` steps SQLite itself).
    enum TransactionEnd: CaseIterable, Sendable {
        case throughGRDB, behindGRDB

        func end(_ db: Database) throws {
            switch self {
            case .throughGRDB: try db.execute(sql: "ROLLBACK")
            case .behindGRDB: _ = sqlite3_exec(db.sqliteConnection, "ROLLBACK", nil, nil, nil)
            }
        }
    }

    /// A write that ends the whole transaction fails its batch, and the writes after it in that
    /// batch are not committed on their own by their savepoints: each write is stored exactly
    /// when it was answered stored.
    @Test(arguments: TransactionEnd.allCases)
    func writesAfterOneThatEndedTheTransactionAreNotCommittedAlone(_ end: TransactionEnd) async throws {
        try await TemporaryFolder.with("group") { folder in
            let store = try SQLiteJobStore(path: folder + "/state.sqlite")
            let insert = "INSERT INTO host (name, provider, state) VALUES (?, 'static', 'ready')"
            let outcomes = await withTaskGroup(of: (String, Bool).self) { group in
                // Holds the writer, so the writes below wait and go in the next batch together.
                group.addTask {
                    let held = try? await store.intakeWrite { db in
                        try db.execute(sql: insert, arguments: ["holder"])
                        Thread.sleep(forTimeInterval: 0.3)
                    }
                    return ("holder", held != nil)
                }
                try? await Task.sleep(for: .milliseconds(100))
                group.addTask {
                    let ended = try? await store.intakeWrite { db in
                        try db.execute(sql: insert, arguments: ["ender"])
                        try end.end(db)
                    }
                    return ("ender", ended != nil)
                }
                try? await Task.sleep(for: .milliseconds(50))
                for index in 0..<10 {
                    group.addTask {
                        let stored = try? await store.intakeWrite { db in try db.execute(sql: insert, arguments: ["after-\(index)"]) }
                        return ("after-\(index)", stored != nil)
                    }
                }
                return await group.reduce(into: [String: Bool]()) { $0[$1.0] = $1.1 }
            }
            let stored = try await store.pool.read { try String.fetchSet($0, sql: "SELECT name FROM host") }
            let answeredStored = Set(outcomes.filter(\.value).keys)
            #expect(outcomes.count == 12)
            #expect(stored == answeredStored, "stored but answered failed: \(stored.subtracting(answeredStored).sorted()); answered stored but absent: \(answeredStored.subtracting(stored).sorted())")
            #expect(outcomes["ender"] == false)
            // The store goes on: the next write is stored.
            try await store.intakeWrite { db in try db.execute(sql: insert, arguments: ["later"]) }
            #expect(try await store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM host WHERE name = 'later'") } == 1)
        }
    }
}
