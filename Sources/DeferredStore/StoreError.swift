import DeferredCore
import Logging

/// What went wrong in the store, with what to do about it.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case corrupt(String)
    case unknownJob(String)
    case database(String)
    /// Another process holds the database's lock (or our own writes queue behind one) past
    /// what a waiting sender allows: nothing was stored, and trying again later is right.
    case busy(String)
    /// Another server stored the same delivery or key at the same moment: read again, the
    /// earlier job is there now.
    case conflict(String)
    /// The job is no longer this server's to run: another server sharing the store took it
    /// over (this one was taken for dead). Its command must not be started here.
    case leaseLost(String)
    /// A SQLite file already served by another `deferred serve` (`pid` when it could be read).
    case anotherServer(path: String, pid: Int?)
    /// The database refused the server or could not be reached at its start (`setting`: the
    /// key of deferred.toml to look at).
    case cannotConnect(setting: String, reason: String)

    /// Whether waiting can mend it: a lock, a full disk or a database away for a moment, and
    /// another server's write at the same moment. A row this version cannot read, a job taken
    /// over, a file another server holds or settings that are wrong stay as they are.
    public var mayPass: Bool {
        switch self {
        case .busy, .database, .conflict: true
        case .cannotOpen, .corrupt, .unknownJob, .leaseLost, .anotherServer, .cannotConnect: false
        }
    }

    /// How a failure that may pass is tried again: after 250 ms, doubling up to half a minute,
    /// jittered. The dispatcher's writes, its start and a serving store's open all wait so.
    public static let retryBackoff = RetryPolicy(maxAttempts: .max, base: .milliseconds(250), cap: .seconds(30))

    /// Runs `work` until it goes through, waiting out the failures that may pass with
    /// `retryBackoff` for up to `deadline`: a warning at each try ("cannot \(doing) yet"), and
    /// a line once it goes through after some. What cannot pass, lasts past the deadline or
    /// comes once the task is cancelled is thrown.
    public static func waitingOut<T, Failure: Error>(for deadline: Duration, _ doing: String, logger: Logger,
                                                     _ work: () async throws(Failure) -> T) async throws(Failure) -> T {
        let end = ContinuousClock.now + deadline
        var retry = 0
        let value = try await retryBackoff.run(retryingWhen: { (error: Failure) in
            guard let error = error as? StoreError, error.mayPass, ContinuousClock.now < end, !Task.isCancelled else { return false }
            retry += 1
            logger.warning("cannot \(doing) yet (try \(retry)), trying again: \(error)")
            return true
        }, work)
        if retry > 0 { logger.info("could \(doing) after \(retry + 1) tries") }
        return value
    }

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): "cannot open the state database \(path): \(reason). Check [store] url and the folder's permissions."
        case let .corrupt(what): "the state database holds something this version cannot read: \(what)"
        case let .unknownJob(id): "no job \(id) in the store"
        case let .database(reason): "the state database failed: \(reason)"
        case let .busy(what): "the state database is locked (\(what)); nothing was stored, try again shortly"
        case let .conflict(what): "another server stored the same at the same moment (\(what)); try again"
        case let .leaseLost(what): "\(what)"
        case let .anotherServer(path, pid):
            "another deferred serve\(pid.map { " (pid \($0))" } ?? "") already uses the state database \(path): a SQLite store serves one server. "
                + "Stop that one, give this one its own [store] url, or share a PostgreSQL database between several servers ([store] url = \"postgres://…\")"
        case let .cannotConnect(setting, reason): "cannot use the PostgreSQL database (\(setting)): \(reason)"
        }
    }
}
