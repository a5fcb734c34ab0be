import DeferredCore
import DeferredDemo
@testable import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// A server whose `[store]` names a PostgreSQL database it cannot use stops at its start with
/// the setting to fix, and leaves the database as it was.
@Suite struct PostgresStartTests {
    static let tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"

    @Test func aServeThatCannotUseItsDatabaseNamesTheSettingAndExits() async throws {
        let harness = try await ServerHarness()
        let server = try await ThrowawayPostgres.shared()
        let database = try await server.makeDatabase()
        let cases: [(store: [String], environment: [String: String], says: [String])] = [
            ([#"url = "\#(server.url(database: database))""#, #"password_env = "WRONG_DB_PASSWORD""#],
             ["WRONG_DB_PASSWORD": "not-the-password"], ["[store] password_env", "refused user deferred"]),
            ([#"url = "\#(server.url(database: database))""#], [:], ["[store] password_env"]),
            ([#"url = "postgres://deferred@127.0.0.1:\#(try FreePort.find())/\#(database)?sslmode=disable""#,
              #"password_env = "\#(ServedStore.passwordVariable)""#], [:], ["[store] url", "cannot be reached"]),
            ([#"url = "\#(server.url(database: "no_such_database"))""#, #"password_env = "\#(ServedStore.passwordVariable)""#], [:],
             ["[store] url", "no_such_database", "createdb"]),
        ]
        for c in cases {
            let config = try harness.writeConfig(server: [#"listen = "127.0.0.1:\#(try FreePort.find())""#], store: c.store,
                                                 artifacts: [#"store = "file:\#(harness.folder)/artifacts""#, "shared = true"])
            var environment = BuiltServer.environment()
            environment.merge(c.environment) { $1 }
            let refusal = await #expect(throws: LocalCommand.Failure.self) {
                _ = try await LocalCommand.runOffPool(["timeout", "60", try BuiltServer.executable(), "serve", "--config", config],
                                                      environment: environment)
            }
            let said = refusal?.stderr ?? ""
            #expect(refusal?.status == 1, "\(c.store): \(said)")
            for words in c.says { #expect(said.contains(words), "\(c.store): \(said)") }
            #expect(!said.contains("not-the-password") && !said.contains(ThrowawayPostgres.password), "a password in: \(said)")
        }
        #expect(try await server.sql(Self.tables, database: database) == "0")
    }

    /// Migrations run in one transaction: one that fails half way leaves none of its tables.
    @Test func aMigrationThatFailsLeavesNothingOfItBehind() async throws {
        let server = try await ThrowawayPostgres.shared()
        let database = try await server.makeDatabase()
        let settings = try PostgresSettings(url: server.url(database: database), password: ThrowawayPostgres.password)
        // A table of the same name as one of ours, made by someone else: the migration stops there.
        _ = try await server.sql("CREATE TABLE job_output (unrelated INTEGER)", database: database)
        await #expect(throws: StoreError.self) { _ = try await PostgresJobStore(settings: settings) }
        #expect(try await server.sql(Self.tables, database: database) == "1")
        #expect(try await server.sql("SELECT to_regclass('job') IS NULL AND to_regclass('deferred_migration') IS NULL", database: database) == "t")

        _ = try await server.sql("DROP TABLE job_output", database: database)
        let store = try await PostgresJobStore(settings: settings)
        #expect(try await store.jobCount() == 0)
        #expect(try await server.sql("SELECT count(*) FROM deferred_migration", database: database) == "\(PostgresSchema.migrations.count)")
        // A second start finds the schema current and changes nothing.
        _ = try await PostgresJobStore(settings: settings)
        #expect(try await server.sql("SELECT count(*) FROM deferred_migration", database: database) == "\(PostgresSchema.migrations.count)")
    }
}
