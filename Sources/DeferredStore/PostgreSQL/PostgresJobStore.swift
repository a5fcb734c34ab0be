import DeferredCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// The store in a PostgreSQL database, through postgres-nio: what several servers share.
///
/// The same protocol and conformance suite as `SQLiteJobStore`. Each method is one
/// transaction on a pooled connection (a push's intake: one statement that commits alone).
/// What SQLite gets from its single writer, this gets from row locks: a lease locks the job it
/// takes (`FOR UPDATE SKIP LOCKED`, so another server passes it by) and the host it gives it
/// to; a fleet's growth is counted under an advisory lock and a project's queue limit on its
/// count row (`project_waiting`); deliveries and idempotency keys are unique in the database,
/// so a copy that races its original finds it.
public final class PostgresJobStore: JobStore {
    /// The connections, in a pool that is started afresh if it stops handing them out.
    let pool: ConnectionPool
    let logger: Logger

    /// Wakes listeners of a job's feed after its events or output change.
    public let changes = JobChanges()

    /// Feed reads shared by listeners at the same cursor and version.
    let feedReads = SharedFeedReads()

    /// How long an intake write may wait for a connection, and for its whole work, before the
    /// sender is told to come back (503): GitHub waits 10 s at most. As with SQLite's group
    /// commit, what counts most is getting started: a database that is down or swamped answers
    /// no lease of a connection.
    public static let intakeDeadline = Deadline(start: .seconds(3), total: .seconds(8))

    public struct Deadline: Sendable {
        public var start: Duration
        public var total: Duration

        public init(start: Duration, total: Duration) {
            self.start = start
            self.total = total
        }
    }

    /// `deferred serve`'s place among the servers sharing the database; nil for the command
    /// line's stores (`hosts`, `idle-sleep`), which lease nothing.
    let membership: ServerMembership?

    /// Other servers' changes, heard (for a serving store).
    let listener = ChangeListener()

    /// How long intake waits for the database (`intakeDeadline` unless a test of correctness
    /// under load, not of time, gives more).
    let deadline: Deadline

    /// Connects, checks the server answers as `settings` say, and brings the schema up to date
    /// (once, whichever server starts first). A wrong URL, bad credentials or an unreachable
    /// database fail here, with what to fix, before anything is served.
    /// `serving`: for `deferred serve`, which joins the servers sharing the database, keeps a
    /// heartbeat, and takes over the jobs of a server silent for `takeoverSeconds`.
    /// `whenTakenForDead`: another server took this one for dead and took its jobs over.
    public init(settings: PostgresSettings, serving: Bool = false, takeoverSeconds: Int = 30,
                intakeDeadline: Deadline = PostgresJobStore.intakeDeadline, logger: Logger = Logger(label: "deferred.store"),
                whenTakenForDead: @escaping @Sendable () -> Void = {}) async throws(StoreError) {
        self.logger = logger
        deadline = intakeDeadline
        let membership = serving ? ServerMembership(takeoverSeconds: takeoverSeconds) : nil
        self.membership = membership
        let configuration: PostgresClient.Configuration
        let first: PostgresConnection.Configuration
        do {
            // Each connection names its server: the changes it announces say whose they are.
            (configuration, first) = try Self.configurations(settings, applicationName: membership?.id ?? "deferred",
                                                             idleTransactionLimit: serving ? takeoverSeconds : nil)
        } catch {
            throw .cannotConnect(setting: "[store] url", reason: "sslrootcert: \(error)")
        }
        // One connection first, so a refusal at the start is an error with its reason, not a
        // pool that waits for the database for ever.
        do {
            let connection = try await PostgresConnection.connect(configuration: first, id: 0, logger: logger)
            do {
                try await PostgresSchema.migrate(connection, logger: logger)
                try await connection.close()
            } catch {
                try? await connection.close()
                throw error
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(connecting: error, settings: settings)
        }
        let pool = ConnectionPool(configuration: configuration, logger: logger)
        self.pool = pool
        // The pool's first connection before the first delivery, not during it.
        do {
            try await pool.withConnection { connection in try await connection.sql("SELECT 1") }
            try await membership?.join(pool, logger: logger, lost: whenTakenForDead)
            if let membership { listener.start(configuration: first, server: membership.id, changes: changes, logger: logger) }
        } catch {
            pool.shutdown()
            throw StoreError(connecting: error, settings: settings)
        }
    }

    deinit { pool.shutdown() }

    /// A server looks for dead servers' jobs three times within `takeover_seconds`.
    public var takeoverInterval: Duration? { membership?.heartbeatInterval }

    /// The server stops: its row goes, and with it any claim on the jobs it leaves running.
    public func resign() async {
        await membership?.leave(pool)
    }

    /// The turn is a row: taken when free, expired, or this server's already; renewed by each
    /// claim. The command line's stores (cron's idle-sleep) always do their pass, safe beside it.
    public func claimHousekeeping(for duration: Duration) async -> Bool {
        guard let me = membership?.id else { return true }
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        do {
            return try await transaction { c in
                try await Self.value(c, """
                    INSERT INTO housekeeper (name, server_id, until) VALUES ('deferred', \(me), \(unescaped: ServerMembership.now) + \(seconds))
                    ON CONFLICT (name) DO UPDATE SET server_id = excluded.server_id, until = excluded.until
                    WHERE housekeeper.until < \(unescaped: ServerMembership.now) OR housekeeper.server_id = excluded.server_id
                    RETURNING server_id
                    """, as: String.self) != nil
            }
        } catch {
            logger.warning("cannot claim the housekeeper's turn: \(error)")
            return false
        }
    }

    public func whenQueueChanges(_ wake: @escaping @Sendable () -> Void) {
        listener.whenQueueChanges(wake)
    }

    /// The pool's settings, and the same for the single connection made first.
    /// `idleTransactionLimit`: a serving store's sessions end when idle inside a transaction this
    /// many seconds (`takeover_seconds`): a server stalled mid-transaction (stopped, swapped out)
    /// would otherwise hold its job's row lock, and no live server could take the job over.
    static func configurations(_ settings: PostgresSettings, applicationName: String,
                               idleTransactionLimit: Int? = nil) throws -> (PostgresClient.Configuration, PostgresConnection.Configuration) {
        var parameters = [("application_name", applicationName)]
        if let idleTransactionLimit { parameters.append(("idle_in_transaction_session_timeout", String(idleTransactionLimit * 1000))) }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let root = settings.rootCertificate { tls.trustRoots = .file(root) }
        // libpq's sslmode as postgres-nio can do it: `require` encrypts without checking the
        // certificate, as libpq does; `allow` tries TLS first, as `prefer` does.
        switch settings.sslMode {
        case .disable, .allow, .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        let context = try NIOSSLContext(configuration: tls)
        let poolTLS: PostgresClient.Configuration.TLS
        let connectionTLS: PostgresConnection.Configuration.TLS
        switch settings.sslMode {
        case .disable: (poolTLS, connectionTLS) = (.disable, .disable)
        case .allow, .prefer: (poolTLS, connectionTLS) = (.prefer(tls), .prefer(context))
        case .require, .verifyCA, .verifyFull: (poolTLS, connectionTLS) = (.require(tls), .require(context))
        }
        var pool = PostgresClient.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                password: settings.password, database: settings.database, tls: poolTLS)
        pool.options.connectTimeout = .seconds(5)
        pool.options.additionalStartupParameters = parameters
        pool.options.maximumConnections = 16
        // Kept open while idle: intake does not wait for a connection's start and its password exchange.
        pool.options.minimumConnections = 2
        var connection = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                          password: settings.password, database: settings.database, tls: connectionTLS)
        connection.options.connectTimeout = .seconds(5)
        connection.options.additionalStartupParameters = parameters
        return (pool, connection)
    }

    // MARK: Transactions

    /// `body` in one transaction on a pooled connection; rolled back if it throws. With `begin`
    /// nil there is no transaction: each of the body's statements commits alone. With a
    /// `deadline` (intake), `busy` when no connection came by its start or the work did not
    /// end by its total: a sender waits no longer for a database that is down or swamped. A
    /// `busy` never follows a commit known to have failed, but may follow one that went through
    /// at the last moment: the sender tries again and its delivery id finds the job. A 202
    /// always follows a commit.
    func transaction<T: Sendable>(deadline: Deadline? = nil, begin: PostgresQuery? = "BEGIN",
                                  _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(StoreError) -> T {
        let logger = self.logger
        let work: @Sendable (PostgresConnection) async throws -> T = { connection in
            // Without `begin`, each of the body's statements commits on its own.
            guard let begin else { return try await body(connection) }
            try await connection.query(begin, logger: logger)
            do {
                let value = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return value
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
        do {
            guard let deadline else { return try await pool.withConnection(work) }
            return try await pool.withConnection(total: deadline.total, start: deadline.start, work)
        } catch {
            throw StoreError(postgres: error)
        }
    }

    /// Reads that must agree with each other: one snapshot for all of them.
    func snapshot<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(StoreError) -> T {
        try await transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    /// A read outside any transaction of ours: one statement, one snapshot.
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(StoreError) -> T {
        do {
            return try await pool.withConnection { connection in try await body(connection) }
        } catch {
            throw StoreError(postgres: error)
        }
    }

    /// How an intake write reaches the database: a push is one statement that commits alone; a
    /// script's key lookup and its statement share a transaction.
    enum IntakeWrite {
        case autocommit, transaction
    }

    /// Intake's write: within `intakeDeadline`, and tried again when a copy of the same delivery
    /// or key committed first (its unique key then finds the earlier job).
    func intakeWrite<T: Sendable>(_ mode: IntakeWrite, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(StoreError) -> T {
        var attempt = 0
        while true {
            do {
                return try await transaction(deadline: deadline, begin: mode == .transaction ? "BEGIN" : nil, body)
            } catch .conflict where attempt < 3 {
                attempt += 1
            }
        }
    }
}

extension StoreError {
    /// postgres-nio's errors as `StoreError`: a database that cannot be reached, a deadlock or a
    /// serialization failure is `busy` (nothing stored, try again); a transaction that lost a
    /// race for a unique key is `conflict` (intake tries it again and finds the winner's job).
    init(postgres error: any Error) {
        switch error {
        case let error as StoreError:
            self = error
        case is CancellationError:
            self = .busy("the write was given up while it waited")
        case let error as PSQLError:
            switch error.code {
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                let message = error.serverInfo?[.message] ?? "\(error.code)"
                // unique_violation, serialization_failure, deadlock_detected, lock_not_available
                if state == "23505" { self = .conflict(message) }
                else if ["40001", "40P01", "55P03", "57P01", "57P02", "57P03"].contains(state) { self = .busy(message) }
                else { self = .database("\(message) (SQLSTATE \(state))") }
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
                self = .busy("the PostgreSQL server cannot be reached (\(error.code))")
            default:
                self = .database(String(reflecting: error))
            }
        default:
            self = .database("\(error)")
        }
    }

    /// Why the first connection failed, naming the setting to look at.
    init(connecting error: any Error, settings: PostgresSettings) {
        let target = settings.description
        guard let error = error as? PSQLError else {
            self = .cannotConnect(setting: "[store] url", reason: "\(target): \(error)")
            return
        }
        let state = error.serverInfo?[.sqlState] ?? ""
        let message = error.serverInfo?[.message] ?? ""
        switch (error.code, state) {
        case (.server, "28P01"), (.server, "28000"), (.authMechanismRequiresPassword, _), (.saslError, _):
            self = .cannotConnect(setting: "[store] password_env", reason: "\(target) refused user \(settings.user): \(message.isEmpty ? "\(error.code)" : message)")
        case (.server, "3D000"):
            self = .cannotConnect(setting: "[store] url", reason: "\(target): \(message); create it first (createdb \(settings.database))")
        case (.sslUnsupported, _):
            self = .cannotConnect(setting: "[store] url", reason: "\(target): the server offers no TLS; use sslmode=prefer or disable")
        case (.connectionError, _):
            self = .cannotConnect(setting: "[store] url", reason: "\(target) cannot be reached: \(error.underlying.map { "\($0)" } ?? "connection failed")")
        default:
            self = .cannotConnect(setting: "[store] url", reason: "\(target): \(message.isEmpty ? String(reflecting: error) : message)")
        }
    }
}
