import Foundation
import Logging
import PostgresNIO
import Synchronization

/// postgres-nio's pool, replaced by a fresh one when it stops handing out connections. A
/// request waits for a connection as long as the pool hands connections to someone (a queue
/// behind busy connections is no fault); once it has handed out none for `stallLimit` while
/// this request waited, the request fails as busy and the pool is started afresh (at most once
/// per `stallLimit`), so the callers' retries reach a working pool once the database is back.
///
/// No request waits for ever: work on a connection fails as busy as soon as the database cuts
/// it (`untilClosed`: seen at a database restart, a transaction under way then waited for good),
/// and ends by `total` whatever it waits on; a request not served within three `stallLimit`s
/// while others were fails as busy too (its caller asks again), a guard only.
final class ConnectionPool: Sendable {
    private struct Current {
        var client: PostgresClient
        var running: Task<Void, Never>
        var generation: Int
        var replacedAt: ContinuousClock.Instant
    }

    private let configuration: PostgresClient.Configuration
    private let logger: Logger
    private let current: Mutex<Current>
    /// When a request of this pool last got its connection.
    private let lastLease = LeaseClock()

    private final class LeaseClock: Sendable {
        private let instant = Mutex<ContinuousClock.Instant>(.now)
        func leased() { instant.withLock { $0 = .now } }
        var last: ContinuousClock.Instant { instant.withLock { $0 } }
        func within(_ limit: Duration) -> Bool { ContinuousClock.now - last < limit }
    }

    /// How long a request without a deadline of its own waits for its connection: while the
    /// pool hands connections to others (a queue behind busy ones), up to three stall limits.
    struct LeaseWait {
        let asked: ContinuousClock.Instant
        let stallLimit: Duration

        func goesOn(now: ContinuousClock.Instant, lastLease: ContinuousClock.Instant) -> Bool {
            now - lastLease < stallLimit && now - asked < stallLimit * 3
        }
    }
    /// How long a request may wait for a connection before the pool is taken for stuck.
    let stallLimit: Duration

    init(configuration: PostgresClient.Configuration, logger: Logger, stallLimit: Duration = .seconds(20)) {
        self.configuration = configuration
        self.logger = logger
        self.stallLimit = stallLimit
        let (client, running) = Self.start(configuration, logger: logger)
        current = Mutex(Current(client: client, running: running, generation: 0, replacedAt: .now))
    }

    /// The pool's warnings of leases asked for before `run()` got going are this type's own order
    /// of things; its errors still reach each caller.
    private static func start(_ configuration: PostgresClient.Configuration, logger: Logger) -> (PostgresClient, Task<Void, Never>) {
        var background = logger
        background.logLevel = .error
        let client = PostgresClient(configuration: configuration, backgroundLogger: background)
        return (client, Task { await client.run() })
    }

    /// `body` on a connection of the pool, or `busy`: when none came by the caller's `start`, or
    /// (without one) when the pool handed out none for `stallLimit` (it is then replaced), or
    /// when the work took longer than `total`. The caller is answered at the deadline even if
    /// the pool ignores the cancellation of the request it waits on.
    func withConnection<T: Sendable>(total: Duration = .seconds(120), start: Duration? = nil,
                                      _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let (client, generation) = current.withLock { ($0.client, $0.generation) }
        // A caller's own deadline (intake's 3 s) is kept as it is, and its end says nothing of
        // the pool: only a wait without one judges the pool stuck.
        let startLimit = start ?? stallLimit
        let lastLease = self.lastLease
        // Without a deadline of the caller's own, waiting goes on while the pool hands out
        // connections to others, up to three stall limits.
        let progressing: (@Sendable () -> Bool)?
        let asked = ContinuousClock.now
        if start == nil {
            let wait = LeaseWait(asked: asked, stallLimit: stallLimit)
            progressing = { @Sendable in wait.goesOn(now: .now, lastLease: lastLease.last) }
        } else {
            progressing = nil
        }
        do {
            return try await Self.race(start: startLimit, total: total, stillWaiting: progressing) { started in
                try await client.withConnection { connection in
                    lastLease.leased()
                    started()
                    return try await Self.untilClosed(connection, body)
                }
            }
        } catch let stall as Stall {
            let waited = ContinuousClock.now - asked
            if stall.beforeStart, start == nil {
                if lastLease.within(stallLimit) {
                    logger.warning("a store request was not given a connection in \(waited) while others were; it fails as busy and is asked again")
                } else {
                    replace(ifStill: generation)
                }
            } else if !stall.beforeStart {
                logger.warning("store work on a connection did not end within \(total); it fails as busy")
            }
            throw StoreError.busy(stall.beforeStart ? "no connection to the database within \(waited)"
                                                    : "the database did not answer within \(total)")
        }
    }

    /// Starts a new pool in place of generation `generation`, unless that was done already.
    private func replace(ifStill generation: Int) {
        let old: Current? = current.withLock { now in
            guard now.generation == generation, ContinuousClock.now - now.replacedAt >= stallLimit else { return nil }
            let previous = now
            let (client, running) = Self.start(configuration, logger: logger)
            now = Current(client: client, running: running, generation: generation + 1, replacedAt: .now)
            return previous
        }
        guard let old else { return }
        logger.warning("the database's connection pool handed out no connection for \(stallLimit): started a new one")
        old.running.cancel()
    }

    func shutdown() {
        current.withLock { $0.running }.cancel()
    }

    struct Stall: Error {
        let beforeStart: Bool
    }

    /// `work`, or `Stall` when it has not said it started within `start`, or not ended within
    /// `total`. The work runs in a task of its own: a wait that ignores cancellation holds only
    /// that task, never the caller.
    /// `stillWaiting`: asked when `start` has passed without a start; while it says yes, the
    /// wait goes on for another `start`.
    static func race<T: Sendable>(start: Duration, total: Duration, stillWaiting: (@Sendable () -> Bool)? = nil,
                                  _ work: @escaping @Sendable (_ started: @escaping @Sendable () -> Void) async throws -> T) async throws -> T {
        let started = Flag()
        return try await watched({ try await work { started.set() } }) { fail in
            try? await Task.sleep(for: start)
            guard !Task.isCancelled else { return }
            while !started.isSet, stillWaiting?() == true {
                try? await Task.sleep(for: start)
                guard !Task.isCancelled else { return }
            }
            if !started.isSet {
                fail(Stall(beforeStart: true))
            } else {
                try? await Task.sleep(for: total - start)
                guard !Task.isCancelled else { return }
                fail(Stall(beforeStart: false))
            }
        }
    }

    /// `body` on `connection`, or a `busy` error as soon as the connection closes. A statement
    /// sent on a connection the database has just cut (a restart's "terminating connection")
    /// is never answered by postgres-nio (seen with 1.33: a ROLLBACK after the cut waited for
    /// good); the caller is answered at the close instead, and that statement is left behind.
    static func untilClosed<T: Sendable>(_ connection: PostgresConnection,
                                         _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        // Looked at every tenth of a second, not awaited: a wait on the close future would
        // outlive the work on a connection the pool keeps for hours, one wait per transaction.
        try await watched({ try await body(connection) }) { fail in
            while !Task.isCancelled, !connection.isClosed {
                try? await Task.sleep(for: .milliseconds(100))
            }
            guard !Task.isCancelled else { return }
            fail(StoreError.busy("the database closed the connection"))
        }
    }

    /// `work` in a task of its own, answered by whichever comes first: its end, or `watch`
    /// failing it. The caller never waits on a work that ignores cancellation; the watch is
    /// cancelled once the answer is in.
    private static func watched<T: Sendable>(_ work: @escaping @Sendable () async throws -> T,
                                             by watch: @escaping @Sendable (_ fail: @escaping @Sendable (any Error) -> Void) async -> Void) async throws -> T {
        let outcome = Outcome<T>()
        let worker = Task {
            do { outcome.finish(.success(try await work())) } catch { outcome.finish(.failure(error)) }
        }
        let watcher = Task {
            await watch { error in
                outcome.finish(.failure(error))
                worker.cancel()
            }
        }
        return try await withTaskCancellationHandler {
            defer { watcher.cancel() }
            return try await outcome.value()
        } onCancel: {
            worker.cancel()
        }
    }

    private final class Flag: Sendable {
        private let flag = Atomic<Bool>(false)
        func set() { flag.store(true, ordering: .releasing) }
        var isSet: Bool { flag.load(ordering: .acquiring) }
    }

    /// The first result wins; whoever waits gets it.
    private final class Outcome<T: Sendable>: Sendable {
        private let state = Mutex<(result: Result<T, any Error>?, waiting: CheckedContinuation<T, any Error>?)>((nil, nil))

        func finish(_ result: Result<T, any Error>) {
            let waiting: CheckedContinuation<T, any Error>? = state.withLock { s in
                if case .some = s.result { return nil }
                s.result = result
                defer { s.waiting = nil }
                return s.waiting
            }
            waiting?.resume(with: result)
        }

        func value() async throws -> T {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<T, any Error>? = state.withLock { s in
                    if let result = s.result { return result }
                    s.waiting = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
    }
}
