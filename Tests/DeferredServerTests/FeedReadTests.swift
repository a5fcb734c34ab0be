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

        let readsBefore = store.feedReadsMade
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
        #expect(store.feedReadsMade - readsBefore == 1)

        // A new change is a new read, and only one.
        try await store.appendOutput(job.id, [(.stdout, "second\n", Date())])
        let later = try await withThrowingTaskGroup(of: Feed.self) { group in
            for _ in 0..<50 { group.addTask { try await store.feed(of: job.id, after: FeedCursor()) } }
            return try await group.reduce(into: [Feed]()) { $0.append($1) }
        }
        #expect(later.allSatisfy { Self.output(of: $0) == ["first\n", "second\n"] })
        #expect(store.feedReadsMade - readsBefore == 2)
    }

    /// A long log is read a page at a time, in order, and the job's end comes after its last line.
    @Test func aLongFeedComesInPagesInTimeOrder() async throws {
        let scratch = try await ScratchStore()
        defer { scratch.remove() }
        let (store, job) = (scratch.store, scratch.job)
        let start = Date()
        for n in 0..<100 {
            try await store.appendOutput(job.id, [(.stdout, "line \(n)\n", start.addingTimeInterval(Double(n) / 1000))])
        }
        try await store.register(hosts: [HostConfig(name: "h", address: "127.0.0.1", user: "u", identity: nil, knownHosts: "/dev/null")])
        _ = try await store.leaseNext { _ in [.host(name: "h", maxJobs: 1)] }
        try await store.finish(job.id, outcome: JobOutcome(status: .succeeded, exitStatus: 0, startedAt: start, finishedAt: start.addingTimeInterval(1)))

        var cursor = FeedCursor(), pages: [Feed] = []
        while pages.last?.jobEnded != true, pages.count < 20 {
            let feed = try await store.feed(of: job.id, after: cursor)
            pages.append(feed)
            cursor = feed.items.last?.cursor ?? cursor
        }
        #expect(pages.count == 4)
        #expect(pages.dropLast().allSatisfy { $0.hasMore && !$0.jobEnded })
        let lines = pages.flatMap(Self.output(of:))
        #expect(lines == (0..<100).map { "line \($0)\n" })
        // The end is the last state the feed gives, after every line.
        let last = try #require(pages.last?.items.last)
        if case .state(let event) = last.kind { #expect(event.status == .succeeded) } else { Issue.record("the feed does not end with the job's end") }

        // A page that shows the end of the log: the newest lines within the budget, and its events.
        let (recent, cut) = try await store.recentFeed(of: job.id, outputBytes: 80)
        #expect(cut)
        #expect(Self.output(of: recent) == (90..<100).map { "line \($0)\n" })
        #expect(recent.jobEnded)
        #expect(recent.items.contains { if case .state(let e) = $0.kind { e.status == .queued } else { false } })
    }

    private static func output(of feed: Feed) -> [String] {
        feed.items.compactMap { item in
            if case .output(let chunk) = item.kind { chunk.text } else { nil }
        }
    }
}
