import DeferredCore
import Foundation
import GRDB

// Output and the feed.
extension SQLiteJobStore {
    /// Stores a batch of a job's output as it streams, for late listeners and the job page.
    /// Each chunk carries the time its first byte arrived: a batch stored after the job's exit
    /// still sorts before the job's end in the feed.
    public func appendOutput(_ id: JobID, _ chunks: [(stream: OutputChunk.Stream, text: String, at: Date)],
                             through position: OutputPosition?) async throws(StoreError) {
        guard !chunks.isEmpty || position != nil else { return }
        try await write { db in
            for chunk in chunks {
                try JobOutputRecord(id: nil, jobID: id.rawValue, at: chunk.at.timeIntervalSince1970, stream: chunk.stream.rawValue, text: chunk.text).insert(db)
            }
            if let position {
                try db.execute(sql: "INSERT OR REPLACE INTO job_output_position (job_id, stdout, stderr, cut) VALUES (?, ?, ?, ?)",
                               arguments: [id.rawValue, position.stdout, position.stderr, position.cut])
            }
        }
        if !chunks.isEmpty { changes.notify(id) }
    }

    public func outputPosition(of id: JobID) async throws(StoreError) -> OutputPosition? {
        try await read { db in try Self.outputPosition(db, of: id.rawValue) }
    }

    static func outputPosition(_ db: Database, of id: String) throws -> OutputPosition? {
        try Row.fetchOne(db, sql: "SELECT stdout, stderr, cut FROM job_output_position WHERE job_id = ?", arguments: [id])
            .map { OutputPosition(stdout: $0["stdout"], stderr: $0["stderr"], cut: $0["cut"]) }
    }

    /// State events and output after `cursor`, merged in time order, each with the cursor past
    /// it, and whether the job has ended, from the same read: a listener that finds nothing new
    /// and the job ended has seen everything.
    public func feed(of id: JobID, after cursor: FeedCursor) async throws(StoreError) -> Feed {
        let version = changes.version(of: id)
        let read = feedReads.withLock { reads in
            if let last = reads[id], last.cursor == cursor, last.version == version { return last.result }
            if reads.count > 256 { reads.removeAll() }
            // A task of its own: a listener that goes away cancels its wait, not the read others share.
            let result = Task { () -> Result<Feed, StoreError> in
                do throws(StoreError) { return .success(try await self.readFeed(of: id, after: cursor)) } catch { return .failure(error) }
            }
            reads[id] = FeedRead(cursor: cursor, version: version, result: result)
            return result
        }
        switch await read.value {
        case .success(let feed):
            return feed
        case .failure(let error):
            // A failed read is not kept: the next listener tries again.
            feedReads.withLock { reads in if reads[id]?.result == read { reads[id] = nil } }
            throw error
        }
    }

    func readFeed(of id: JobID, after cursor: FeedCursor) async throws(StoreError) -> Feed {
        feedReadsMade.add(1, ordering: .relaxed)
        var (events, output, status) = try await read { db in
            (try JobEventRecord.filter(Column("job_id") == id.rawValue && Column("id") > cursor.event).order(Column("id")).fetchAll(db),
             try JobOutputRecord.filter(Column("job_id") == id.rawValue && Column("id") > cursor.output).order(Column("id"))
                .limit(StorePolicy.feedPageRows).fetchAll(db),
             try String.fetchOne(db, sql: "SELECT status FROM job WHERE id = ?", arguments: [id.rawValue]))
        }
        // A full page may have more output after it: events later than its last row wait for
        // the next page, so that the feed stays in time order.
        let hasMore = output.count == StorePolicy.feedPageRows
        if hasMore, let last = output.last { events.removeAll { $0.at > last.at } }
        return Self.merge(events, output, from: cursor, jobEnded: !hasMore && (status.flatMap(JobStatus.init(rawValue:))?.isFinal ?? true),
                          hasMore: hasMore)
    }

    /// The job's events and its latest output, at most about `outputBytes` of it, for a page
    /// that shows the end of a long log; `cut` when earlier output was left out. The cursor
    /// of its last item is where a live view goes on from.
    public func recentFeed(of id: JobID, outputBytes: Int) async throws(StoreError) -> (feed: Feed, cut: Bool) {
        let (events, output, cut, status) = try await read { db in
            var rows: [JobOutputRecord] = [], bytes = 0, before = Int64.max, cut = false
            // Newest first, a page at a time, until the budget is spent.
            page: while true {
                let batch = try JobOutputRecord.filter(Column("job_id") == id.rawValue && Column("id") < before)
                    .order(Column("id").desc).limit(StorePolicy.feedPageRows).fetchAll(db)
                for row in batch {
                    bytes += row.text.utf8.count
                    if bytes > outputBytes { cut = true; break page }
                    rows.append(row)
                }
                guard batch.count == StorePolicy.feedPageRows, let oldest = batch.last?.id else { break }
                before = oldest
            }
            return (try JobEventRecord.filter(Column("job_id") == id.rawValue).order(Column("id")).fetchAll(db),
                    Array(rows.reversed()), cut,
                    try String.fetchOne(db, sql: "SELECT status FROM job WHERE id = ?", arguments: [id.rawValue]))
        }
        // Output left out is skipped by the cursor too: a live view continues after what is shown.
        let start = FeedCursor(event: 0, output: max(0, (output.first?.id ?? 1) - 1))
        let feed = Self.merge(events, output, from: start, jobEnded: status.flatMap(JobStatus.init(rawValue:))?.isFinal ?? true, hasMore: false)
        return (feed, cut)
    }

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
}
