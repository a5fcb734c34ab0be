import Foundation
import Logging
import PostgresNIO
import Synchronization

/// This server among the servers sharing one PostgreSQL database: a row in `server` whose
/// heartbeat it keeps fresh, and whose id marks the jobs it leases. A server whose heartbeat is
/// older than `takeover_seconds` is taken for dead: a live one takes its leased jobs over
/// (`recoverInterrupted`), following those that run and queueing again those that waited.
/// Times are the database's clock, so servers whose clocks disagree still agree on who is dead.
final class ServerMembership: Sendable {
    let id: String
    let takeoverSeconds: Int
    private let beating = Mutex<Task<Void, Never>?>(nil)

    /// The database's clock in seconds since 1970, for SQL.
    static let now = "extract(epoch from clock_timestamp())::double precision"

    init(takeoverSeconds: Int) {
        id = UUID().uuidString.lowercased()
        self.takeoverSeconds = takeoverSeconds
    }

    /// How often the heartbeat is written: three times within `takeover_seconds`, so one late
    /// write does not make a live server look dead.
    var heartbeatInterval: Duration { .milliseconds(max(1, takeoverSeconds) * 1000 / 3) }

    /// Joins: the row, then the heartbeat. `lost` is called if another server took this one
    /// for dead and removed its row: its jobs are followed elsewhere now.
    func join(_ pool: ConnectionPool, logger: Logger, lost: @escaping @Sendable () -> Void) async throws {
        let name = "\(ProcessInfo.processInfo.hostName) pid \(getpid())"
        try await pool.withConnection { c in
            try await c.sql("""
                INSERT INTO server (id, name, started_at, heartbeat_at)
                VALUES (\(self.id), \(name), \(unescaped: Self.now), \(unescaped: Self.now))
                """)
        }
        let id = id, interval = heartbeatInterval
        let task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard !Task.isCancelled else { return }
                do {
                    let alive = try await pool.withConnection { c in
                        try await PostgresJobStore.value(c, """
                            UPDATE server SET heartbeat_at = \(unescaped: Self.now) WHERE id = \(id) RETURNING id
                            """, as: String.self) != nil
                    }
                    if !alive {
                        logger.critical("another server took this one for dead (no heartbeat for takeover_seconds) and took its jobs over")
                        lost()
                        return
                    }
                } catch {
                    // The database is away: the heartbeat waits with everything else.
                    logger.warning("cannot write this server's heartbeat: \(StoreError(postgres: error))")
                }
            }
        }
        beating.withLock { $0 = task }
    }

    /// Leaves: no heartbeat, no row, no housekeeper's turn. Its jobs are free to be taken
    /// over at once, and its chores to be done by another.
    func leave(_ pool: ConnectionPool) async {
        beating.withLock { $0 }?.cancel()
        _ = try? await pool.withConnection { c in
            try await c.sql("DELETE FROM server WHERE id = \(self.id)")
            try await c.sql("DELETE FROM housekeeper WHERE server_id = \(self.id)")
        }
    }

    deinit { beating.withLock { $0 }?.cancel() }
}
