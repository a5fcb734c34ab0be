import Foundation
import GRDB
import Synchronization

/// Copies the WAL's pages into the database file on a connection of its own, so the intake's
/// writer does not stop for it. SQLite's own checkpoint runs inside the commit that passes its
/// threshold, and every waiting webhook waited for it (p99 50 ms with a 10,000-page threshold
/// in the intake bench). A passive checkpoint needs no write lock: batches go on committing while
/// it copies. It copies few writes at a time (`SQLiteJobStore.intakeWritesBetweenCheckpoints`):
/// a large copy, and its sync of the database file, share the disk and the cores with the
/// commits, which waited. Copying more at once writes less, since a page the writes share (an
/// index's tail) is copied once for all of them, but the intake bench's p99 was 17–22 ms at 250
/// writes against 10–12 ms at 32 (for ~10 % more CPU a request; README, Performance).
///
/// The writer's own checkpoint stays, at `SQLiteJobStore.walPagesBeforeWriterCheckpoints`: it
/// lets the WAL begin again from its start, and it covers writes other than the intake's.
final class WALCheckpointer: Sendable {
    private struct State {
        var writesSinceCheckpoint = 0
        var running = false
    }

    private let connection: DatabaseQueue
    private let everyWrites: Int
    private let state = Mutex(State())
    private let checkpoints = Atomic<Int>(0)

    /// How many checkpoints this connection has run, for the tests.
    var checkpointsRun: Int { checkpoints.load(ordering: .relaxed) }

    /// Returns once the checkpoints started so far have ended: they run in turn on this
    /// connection's queue, so an empty turn behind them is enough.
    func settled() async throws {
        try await connection.writeWithoutTransaction { _ in }
    }

    /// `everyWrites`: how many intake writes may pile up in the WAL before a checkpoint.
    init(path: String, everyWrites: Int, lockWait: TimeInterval) throws {
        var config = Configuration()
        config.busyMode = .timeout(lockWait)
        connection = try DatabaseQueue(path: path, configuration: config)
        self.everyWrites = everyWrites
    }

    /// Told after each committed batch of `count` intake writes; starts a checkpoint once
    /// `everyWrites` have piled up and none is running.
    func committed(_ count: Int) {
        let start = state.withLock { state in
            state.writesSinceCheckpoint += count
            guard !state.running, state.writesSinceCheckpoint >= everyWrites else { return false }
            state.running = true
            state.writesSinceCheckpoint = 0
            return true
        }
        guard start else { return }
        connection.asyncWriteWithoutTransaction { db in
            // A checkpoint that fails (the disk is full, say) leaves the pages in the WAL, where
            // they stay durable; the next one, or the writer's, copies them.
            _ = try? db.checkpoint(.passive)
            self.checkpoints.add(1, ordering: .relaxed)
            self.state.withLock { $0.running = false }
        }
    }
}
