import DeferredCore
import Logging
import PostgresNIO

/// One `deferred serve` to a PostgreSQL database, for now: until servers keep heartbeats and
/// take over each other's jobs, a second server would take the first one's running jobs for
/// interrupted and follow them too. So a server holds a session advisory lock on a connection
/// of its own while it runs, and a second one is refused at its start. The lock goes with the
/// connection: a killed server's is let go by PostgreSQL when its connection closes.
final class PostgresServerLock: Sendable {
    private let connection: PostgresConnection

    static let key: Int64 = 0x6465_6665_7272_6573 // "deferres": apart from the migration lock

    init(configuration: PostgresConnection.Configuration, settings: PostgresSettings, logger: Logger) async throws(StoreError) {
        let connection: PostgresConnection
        let taken: Bool
        do {
            connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
            taken = try await PostgresJobStore.value(connection, "SELECT pg_try_advisory_lock(\(Self.key))", as: Bool.self) ?? false
        } catch {
            throw StoreError(connecting: error, settings: settings)
        }
        guard taken else {
            try? await connection.close()
            throw .anotherServerOnDatabase(settings.description)
        }
        self.connection = connection
    }

    deinit {
        let connection = connection
        Task { try? await connection.close() }
    }
}
