import DeferredCore
import Logging
import PostgresNIO

/// `check-config --probe`'s look at a PostgreSQL store: one connection with the server's own
/// settings (TLS, password), the server's version and how far its schema is. Nothing is
/// created or migrated: that is the first `serve`'s to do.
public enum PostgresProbe {
    /// What the database is, in a line; a `StoreError` that says what to fix when it cannot be
    /// reached, refuses the login, or holds a schema newer than this deferred.
    public static func describe(_ settings: PostgresSettings, logger: Logger = Logger(label: "deferred.store")) async throws(StoreError) -> String {
        do {
            let (_, configuration) = try PostgresJobStore.configurations(settings, applicationName: "deferred check-config")
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            defer { Task { try? await connection.close() } }
            let version = try await PostgresJobStore.value(connection, "SHOW server_version", as: String.self) ?? "?"
            let known = PostgresSchema.newestKnown
            let hasSchema = try await PostgresJobStore.value(connection, "SELECT to_regclass('deferred_migration') IS NOT NULL", as: Bool.self) ?? false
            let newest = hasSchema ? try await PostgresJobStore.value(connection, "SELECT max(version) FROM deferred_migration", as: Int.self) : nil
            let schema: String
            switch newest {
            case nil: schema = "no schema yet (the first serve creates it)"
            case let found? where found > known: throw PostgresSchema.tooNew(found)
            case let found? where found < known: schema = "schema v\(found) (the next serve migrates it to v\(known))"
            case let found?: schema = "schema v\(found), up to date"
            }
            return "PostgreSQL \(version.split(separator: " ").first ?? "?") at \(settings), \(schema)"
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(connecting: error, settings: settings)
        }
    }
}
