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
            return try SQLiteJobStore(path: path, serving: serving)
        case .postgres(let settings):
            return try await PostgresJobStore(settings: settings, serving: serving, takeoverSeconds: config.takeoverSeconds, logger: logger,
                                              whenTakenForDead: whenTakenForDead)
        }
    }
}
