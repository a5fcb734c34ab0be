@testable import DeferredStore
import Foundation
import GRDB
import Testing

/// The intake's pages reach the database file by checkpoints off the writer, long before the
/// writer's own threshold, and what the intake stored reads back whole after them.
@Suite struct WALCheckpointerTests {
    @Test func intakeWritesAreCopiedIntoTheDatabaseFileOffTheWriter() async throws {
        try await TemporaryFolder.with("checkpoint") { folder in
            let path = folder + "/state.sqlite"
            let store = try SQLiteJobStore(path: path, checkpointEvery: 20)
            // Bytes LZ4 cannot shorten: the store keeps them whole, 8 KiB of pages each.
            var generator = SystemRandomNumberGenerator()
            let payload = Data((0..<(8 << 10)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let deliveries = 200
            // 1.6 MiB of payloads, some 400-600 pages: well under what makes the writer checkpoint.
            #expect(deliveries * payload.count / 4096 * 4 < SQLiteJobStore.walPagesBeforeWriterCheckpoints)
            for start in stride(from: 0, to: deliveries, by: 10) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in start..<start + 10 {
                        group.addTask {
                            let job = Sample.push()
                            let stored = try await store.enqueue(job, delivery: "d-\(index)", payload: payload, bodySHA256: "body-\(index)",
                                                                 maxQueued: .max, detail: nil)
                            #expect(stored == .created(job))
                        }
                    }
                    try await group.waitForAll()
                }
            }
            // Wait for the checkpoints started to end (each bounded by the disk; no timing asserted).
            try await store.checkpointer.settled()
            #expect(store.checkpointer.checkpointsRun >= deliveries / 20 / 2, "checkpoints run: \(store.checkpointer.checkpointsRun)")
            let fileSize = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            // Only a checkpoint writes pages into the file; most payloads must be there already.
            #expect(fileSize > deliveries / 2 * payload.count, "database file: \(fileSize) bytes")
            let stored = try await store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM job_payload WHERE length(body) = ?", arguments: [payload.count]) }
            #expect(stored == deliveries)
        }
    }

    /// The store `deferred serve` opens (no count given) copies after its few intake writes,
    /// not after hundreds: one copy once that many deliveries are stored, none before.
    @Test func aStoreOpenedAsServeOpensItCopiesAfterItsFewWrites() async throws {
        try await TemporaryFolder.with("checkpoint-default") { folder in
            let store = try SQLiteJobStore(path: folder + "/state.sqlite")
            let count = SQLiteJobStore.intakeWritesBetweenCheckpoints
            // At 250 the copies were large enough to double the intake bench's p99 (README).
            #expect(count <= 64)
            let enqueue = { (index: Int) in
                let job = Sample.push()
                let stored = try await store.enqueue(job, delivery: "d-\(index)", payload: Data("{}".utf8), bodySHA256: "body-\(index)",
                                                     maxQueued: .max, detail: nil)
                #expect(stored == .created(job))
            }
            // A write is answered before its batch tells the checkpointer, on the writer's queue:
            // an empty turn behind it there, then the checkpoints started, before each count.
            let settled = {
                try await store.pool.writeWithoutTransaction { _ in }
                try await store.checkpointer.settled()
            }
            // One at a time: each is a batch of its own, so the count passes the threshold exactly.
            for index in 0..<count - 1 { try await enqueue(index) }
            try await settled()
            #expect(store.checkpointer.checkpointsRun == 0, "a copy before \(count) writes")
            try await enqueue(count - 1)
            try await settled()
            #expect(store.checkpointer.checkpointsRun == 1)
        }
    }
}
