import DeferredCore
import Foundation
import Synchronization

/// The last feed read of each job, by cursor and version, under way or done: a thousand
/// listeners that are all caught up cost one read per change, not a thousand, and those woken
/// by the same change join the read the first of them started. Every store keeps one.
final class SharedFeedReads: Sendable {
    private struct Entry {
        var cursor: FeedCursor
        var version: UInt64
        var result: Task<Result<Feed, StoreError>, Never>
    }

    private let entries = Mutex<[JobID: Entry]>([:])

    /// Reads that went to the database, for the tests of sharing them.
    let made = Atomic<Int>(0)

    /// The feed after `cursor` at the job's `version`: the read under way or done for both, or
    /// a new one through `read`.
    func feed(of id: JobID, after cursor: FeedCursor, version: UInt64,
              read: @escaping @Sendable () async throws(StoreError) -> Feed) async throws(StoreError) -> Feed {
        let shared = entries.withLock { entries in
            if let last = entries[id], last.cursor == cursor, last.version == version { return last.result }
            if entries.count > 256 { entries.removeAll() }
            // A task of its own: a listener that goes away cancels its wait, not the read others share.
            made.add(1, ordering: .relaxed)
            let result = Task { () -> Result<Feed, StoreError> in
                do throws(StoreError) { return .success(try await read()) } catch { return .failure(error) }
            }
            entries[id] = Entry(cursor: cursor, version: version, result: result)
            return result
        }
        switch await shared.value {
        case .success(let feed):
            return feed
        case .failure(let error):
            // A failed read is not kept: the next listener tries again.
            entries.withLock { entries in if entries[id]?.result == shared { entries[id] = nil } }
            throw error
        }
    }
}

/// A job's feed from its rows, the same for every store.
enum FeedRows {
    /// Events and output rows in time order, each with the cursor past it. A state change and
    /// output at the same instant: the state first.
    static func merge(_ events: [JobEventRecord], _ output: [JobOutputRecord], from cursor: FeedCursor,
                      jobEnded: Bool, hasMore: Bool) -> Feed {
        var items: [FeedItem] = []
        var position = cursor
        var e = events.startIndex, o = output.startIndex
        while e < events.endIndex || o < output.endIndex {
            if o == output.endIndex || (e < events.endIndex && events[e].at <= output[o].at) {
                let r = events[e]
                e += 1
                guard let status = JobStatus(rawValue: r.status) else { continue }
                position.event = r.id ?? position.event
                items.append(FeedItem(kind: .state(JobEvent(sequence: r.id ?? 0, at: Date(timeIntervalSince1970: r.at), status: status,
                                                             detail: r.detail, hostState: r.hostState.flatMap(HostProgress.init))),
                                      cursor: position))
            } else {
                let r = output[o]
                o += 1
                position.output = r.id ?? position.output
                items.append(FeedItem(kind: .output(OutputChunk(sequence: r.id ?? 0, at: Date(timeIntervalSince1970: r.at),
                                                                stream: OutputChunk.Stream(rawValue: r.stream) ?? .stdout, text: r.text)),
                                      cursor: position))
            }
        }
        return Feed(items: items, jobEnded: jobEnded, hasMore: hasMore)
    }

    /// A page read after a cursor: a full page may have more output after it, so events later
    /// than its last row wait for the next page and the feed stays in time order.
    static func page(events: [JobEventRecord], output: [JobOutputRecord], status: String?, after cursor: FeedCursor) -> Feed {
        var events = events
        let hasMore = output.count == StorePolicy.feedPageRows
        if hasMore, let last = output.last { events.removeAll { $0.at > last.at } }
        return merge(events, output, from: cursor, jobEnded: !hasMore && (status.flatMap(JobStatus.init(rawValue:))?.isFinal ?? true),
                     hasMore: hasMore)
    }

    /// The recent feed of a job from its events and latest output: output left out is skipped
    /// by the cursor too, so a live view continues after what is shown.
    static func recent(events: [JobEventRecord], output: [JobOutputRecord], status: String?) -> Feed {
        let start = FeedCursor(event: 0, output: max(0, (output.first?.id ?? 1) - 1))
        return merge(events, output, from: start, jobEnded: status.flatMap(JobStatus.init(rawValue:))?.isFinal ?? true, hasMore: false)
    }
}

/// The newest output rows of a job within a byte budget, taken newest first a page at a time:
/// a store reads pages `before` the last id until `wantsMore` is false.
struct LatestOutput {
    let budget: Int
    private var newestFirst: [JobOutputRecord] = []
    private var bytes = 0
    /// Output older than what was taken was left out.
    private(set) var cut = false
    private(set) var wantsMore = true
    /// Ids below this make the next page.
    private(set) var before = Int64.max

    init(budget: Int) { self.budget = budget }

    mutating func take(_ page: [JobOutputRecord]) {
        for row in page {
            bytes += row.text.utf8.count
            if bytes > budget { cut = true; wantsMore = false; return }
            newestFirst.append(row)
        }
        if page.count == StorePolicy.feedPageRows, let oldest = page.last?.id { before = oldest } else { wantsMore = false }
    }

    /// Oldest first.
    var rows: [JobOutputRecord] { newestFirst.reversed() }
}
