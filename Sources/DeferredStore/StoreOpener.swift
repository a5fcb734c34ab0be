import DeferredCore
import Logging

/// Opens the store `[store]` names: the one place that knows which kinds there are.
public enum StoreOpener {
    /// `serving`: the store of `deferred serve`, which takes the one-server lock
    /// (`SQLiteServerLock`, `PostgresServerLock`); cron's `idle-sleep` and `hosts` open the
    /// store without it, beside the server.
    public static func open(_ config: StoreConfig, serving: Bool, logger: Logger) async throws(StoreError) -> any JobStore {
        switch config.location {
        case .sqlite(let path):
            return try SQLiteJobStore(path: path, serving: serving)
        case .postgres(let settings):
            return try await PostgresJobStore(settings: settings, serving: serving, logger: logger)
        }
    }
}
