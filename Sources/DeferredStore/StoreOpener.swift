import DeferredCore
import Logging

/// Opens the store `[store]` names: the one place that knows which kinds there are.
public enum StoreOpener {
    /// `serving`: the store of `deferred serve`: a SQLite file takes the one-server lock
    /// (`SQLiteServerLock`); a PostgreSQL database is joined (`ServerMembership`). Cron's
    /// `idle-sleep` and `hosts` open the store without either, beside the servers.
    /// `whenTakenForDead`: a server sharing a PostgreSQL database took this one for dead (its
    /// heartbeat stalled past `takeover_seconds`) and follows its jobs now.
    public static func open(_ config: StoreConfig, serving: Bool, logger: Logger,
                            whenTakenForDead: @escaping @Sendable () -> Void = {}) async throws(StoreError) -> any JobStore {
        switch config.location {
        case .sqlite(let path):
            guard serving else { return try SQLiteJobStore(path: path, serving: false) }
            // A server started while another process holds the file's lock (a backup, cron's
            // `idle-sleep`) waits for it instead of ending at once: a supervisor would only
            // start it again into the same lock. Cron's and people's commands answer at once.
            return try await StoreError.waitingOut(for: lockDeadline, "open the state database", logger: logger) { () throws(StoreError) in
                try SQLiteJobStore(path: path, serving: true)
            }
        case .postgres(let settings):
            return try await PostgresJobStore(settings: settings, serving: serving, takeoverSeconds: config.takeoverSeconds, logger: logger,
                                              whenTakenForDead: whenTakenForDead)
        }
    }

    /// How long a server's open waits for another process's lock, as the dispatcher's writes
    /// wait for theirs.
    static let lockDeadline: Duration = .seconds(15 * 60)
}
