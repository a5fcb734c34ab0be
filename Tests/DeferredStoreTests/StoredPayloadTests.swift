import DeferredCore
@testable import DeferredStore
import DeferredTestSupport
import Foundation
import GRDB
import Testing

/// Webhook payloads as the stores keep them: a push's JSON as an LZ4 block, anything LZ4 would
/// not make smaller as it came, both read back byte for byte; and stored bytes that are cut,
/// corrupt or claim more than they could hold give an error, not a trap or a large allocation.
@Suite struct StoredPayloadTests {
    static func push() throws -> Data { try Fixtures.data("github/push-new-branch.json") }

    @Test func aPushIsKeptCompressedAndReadsBackAsItCame() throws {
        let push = try Self.push()
        let stored = StoredPayload(keeping: push)
        #expect(stored.compressed)
        #expect(stored.body.count < push.count * 2 / 3, "\(push.count) bytes kept in \(stored.body.count)")
        #expect(try stored.payload() == push)

        // Bytes LZ4 cannot shorten, and nothing at all, are kept as they are.
        var generator = SystemRandomNumberGenerator()
        let noise = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) })
        for payload in [noise, Data(), Data("{}".utf8)] {
            let kept = StoredPayload(keeping: payload)
            #expect(!kept.compressed && kept.body == payload)
            #expect(try kept.payload() == payload)
        }
    }

    @Test func storedBytesThatAreCutCorruptOrTooLargeAreErrors() throws {
        let block = try #require(LZ4Block.compress(try Self.push()))
        let length = { (value: UInt32) in withUnsafeBytes(of: value.littleEndian) { Data($0) } }
        let cases: [(String, Data, LZ4Block.Failure)] = [
            ("shorter than its length field", Data([1, 0]), .corrupt),
            ("cut", block.prefix(block.count / 2), .corrupt),
            ("a length the block does not reach", length(UInt32(try Self.push().count + 1)) + block.dropFirst(4), .corrupt),
            ("a length past what its bytes could hold", length(1 << 20) + Data([0xF0, 0xFF]), .corrupt),
            ("a length past the limit", length(UInt32(StoredPayload.limit + 1)) + block.dropFirst(4), .tooLarge(limit: StoredPayload.limit)),
            ("garbage", length(64) + Data(repeating: 0xFF, count: 32), .corrupt),
        ]
        for (name, bytes, failure) in cases {
            #expect(throws: failure, "\(name)") { try LZ4Block.decompress(bytes, limit: StoredPayload.limit) }
            #expect(throws: StoreError.self, "\(name)") { try StoredPayload(body: bytes, compressed: true).payload() }
        }
    }

    /// Through each store: the push reads back as it came. SQLite keeps it compressed, and reads
    /// a row an earlier release wrote (the body whole, no `compressed` set) as it is.
    @Test(arguments: StoreUnderTest.all)
    func eachStoreGivesBackThePayloadItWasGiven(_ kind: StoreUnderTest) async throws {
        let push = try Self.push()
        try await TemporaryFolder.with("payloads") { folder in
            let store = try await kind.make(folder)
            let job = Sample.push(), earlier = Sample.push()
            for (job, delivery) in [(job, "d-1"), (earlier, "d-2")] {
                _ = try await store.enqueue(job, delivery: delivery, payload: push, bodySHA256: delivery, maxQueued: .max, detail: nil)
            }
            #expect(try await store.payload(of: job.id) == push)
            guard kind.name == "sqlite" else { return }
            let database = try DatabaseQueue(path: folder + "/state.sqlite")
            let size = try await database.read { db in
                try Int.fetchOne(db, sql: "SELECT length(body) FROM job_payload WHERE job_id = ? AND compressed", arguments: [job.id.rawValue])
            }
            #expect(try #require(size) < push.count)
            try await database.write { db in
                try db.execute(sql: "UPDATE job_payload SET body = ?, compressed = 0 WHERE job_id = ?", arguments: [push, earlier.id.rawValue])
            }
            #expect(try await store.payload(of: earlier.id) == push)
        }
    }
}
