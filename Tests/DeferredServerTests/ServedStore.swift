import DeferredCore
import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// Where a built `deferred serve` under test keeps its state: the SQLite file in the harness's
/// folder, or a database of its own on the test run's PostgreSQL server.
enum ServedStore: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// The environment variable the `[store]` table names for the database's password.
    static let passwordVariable = "DEFERRED_TEST_DB_PASSWORD"

    /// A new store for `harness`: its `[store]` lines, and how the test opens the same store.
    func make(for harness: ServerHarness) async throws -> Made {
        switch self {
        case .sqlite:
            let path = harness.folder + "/serve.sqlite"
            return Made(lines: [#"url = "sqlite:\#(path)""#], open: { try SQLiteJobStore(path: path) })
        case .postgres:
            let server = try await ThrowawayPostgres.shared()
            let url = server.url(database: try await server.makeDatabase())
            // Servers silent for 5 s are taken for dead: a restart after `kill -9` is followed
            // up within seconds.
            return Made(lines: [#"url = "\#(url)""#, #"password_env = "\#(Self.passwordVariable)""#, "takeover_seconds = 5"],
                        open: { try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password)) })
        }
    }

    struct Made: Sendable {
        let lines: [String]
        let open: @Sendable () async throws -> any JobStore
    }
}
