import DeferredCore
@testable import DeferredStore
import Foundation
import Testing

/// Listeners woken by one change share one read of the job's feed: a thousand listeners on a
/// job cost one database read per change, not a thousand.
@Suite struct FeedReadTests {
    @Test func listenersWokenByOneChangeShareOneRead() async throws {
        let scratch = try await ScratchStore()
        defer { scratch.remove() }
        let (store, job) = (scratch.store, scratch.job)
        try await store.appendOutput(job.id, [(.stdout, "first\n", Date())])

        let readsBefore = store.feedReadsMade.load(ordering: .relaxed)
        // One listener goes away while the read is under way: the others still get the feed.
        let leaver = Task { try await store.feed(of: job.id, after: FeedCursor()) }
        leaver.cancel()
        let feeds = try await withThrowingTaskGroup(of: Feed.self) { group in
            for _ in 0..<200 { group.addTask { try await store.feed(of: job.id, after: FeedCursor()) } }
            return try await group.reduce(into: [Feed]()) { $0.append($1) }
        }
        _ = try? await leaver.value
        #expect(feeds.count == 200)
        #expect(Set(feeds.map(\.items.count)).count == 1)
        #expect(feeds.allSatisfy { $0 == feeds[0] })
        #expect(Self.output(of: feeds[0]) == ["first\n"])
        #expect(store.feedReadsMade.load(ordering: .relaxed) - readsBefore == 1)

        // A new change is a new read, and only one.
        try await store.appendOutput(job.id, [(.stdout, "second\n", Date())])
        let later = try await withThrowingTaskGroup(of: Feed.self) { group in
            for _ in 0..<50 { group.addTask { try await store.feed(of: job.id, after: FeedCursor()) } }
            return try await group.reduce(into: [Feed]()) { $0.append($1) }
        }
        #expect(later.allSatisfy { Self.output(of: $0) == ["first\n", "second\n"] })
        #expect(store.feedReadsMade.load(ordering: .relaxed) - readsBefore == 2)
    }

    private static func output(of feed: Feed) -> [String] {
        feed.items.compactMap { item in
            if case .output(let chunk) = item.kind { chunk.text } else { nil }
        }
    }
}
