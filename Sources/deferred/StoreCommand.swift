import ArgumentParser
import DeferredCore
import DeferredStore
import Foundation

/// `deferred store`: what moves a server's state from one store to another.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Moves the state between stores: from the embedded SQLite file to a PostgreSQL database.",
        subcommands: [Copy.self]
    )

    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copies every job, event, output, delivery, key and host of a SQLite store into an empty PostgreSQL database.",
            discussion: """
                Stop `deferred serve` first: the copy takes the SQLite file's one-server lock. The database's tables are \
                made as a server's start makes them, and the rows go in one transaction: a copy that fails leaves the \
                database empty. Then set [store] url to the database and start the server.
                """
        )

        @Option(help: "The SQLite store: sqlite:PATH.") var from: String
        @Option(help: "The PostgreSQL database: postgres://user@host:5432/db?sslmode=….") var to: String
        @Option(help: "The environment variable holding the database user's password.") var passwordEnv = "DEFERRED_DB_PASSWORD"

        func run() async throws {
            guard from.hasPrefix("sqlite:"), from.count > "sqlite:".count else {
                throw refuse("--from must be sqlite:PATH, not '\(from)'")
            }
            let settings: PostgresSettings
            do {
                settings = try PostgresSettings(url: to, password: ProcessInfo.processInfo.environment[passwordEnv])
            } catch {
                throw refuse("--to '\(PostgresSettings.redacted(to))' \(error)")
            }
            do {
                let copied = try await StoreCopy.copy(from: String(from.dropFirst("sqlite:".count)), to: settings)
                for (table, rows) in copied { print("\(table): \(rows) row\(rows == 1 ? "" : "s")") }
                print("copied into \(settings); set [store] url to it and start deferred serve")
            } catch {
                throw refuse("\(error)")
            }
        }
    }
}
