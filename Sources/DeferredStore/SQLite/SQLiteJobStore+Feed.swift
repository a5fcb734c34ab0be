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
                try JobOutputRecord(id: nil, jobID: id.rawValue, at: chunk.at.timeIntervalSince1970, stream: chunk.stream.rawValue, text: StoredText.kept(chunk.text)).insertPrepared(db)
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
        try await feedReads.feed(of: id, after: cursor, version: changes.version(of: id)) { () async throws(StoreError) -> Feed in
            try await self.readFeed(of: id, after: cursor)
        }
    }

    func readFeed(of id: JobID, after cursor: FeedCursor) async throws(StoreError) -> Feed {
        try await read { db in
            FeedRows.page(
                events: try JobEventRecord.filter(Column("job_id") == id.rawValue && Column("id") > cursor.event).order(Column("id")).fetchAll(db),
                output: try JobOutputRecord.filter(Column("job_id") == id.rawValue && Column("id") > cursor.output).order(Column("id"))
                    .limit(StorePolicy.feedPageRows).fetchAll(db),
                status: try String.fetchOne(db, sql: "SELECT status FROM job WHERE id = ?", arguments: [id.rawValue]),
                after: cursor)
        }
    }

    /// The job's events and its latest output, at most about `outputBytes` of it, for a page
    /// that shows the end of a long log; `cut` when earlier output was left out. The cursor
    /// of its last item is where a live view goes on from.
    public func recentFeed(of id: JobID, outputBytes: Int) async throws(StoreError) -> (feed: Feed, cut: Bool) {
        try await read { db in
            var latest = LatestOutput(budget: outputBytes)
            while latest.wantsMore {
                latest.take(try JobOutputRecord.filter(Column("job_id") == id.rawValue && Column("id") < latest.before)
                    .order(Column("id").desc).limit(StorePolicy.feedPageRows).fetchAll(db))
            }
            let feed = FeedRows.recent(events: try JobEventRecord.filter(Column("job_id") == id.rawValue).order(Column("id")).fetchAll(db),
                                       output: latest.rows,
                                       status: try String.fetchOne(db, sql: "SELECT status FROM job WHERE id = ?", arguments: [id.rawValue]))
            return (feed, latest.cut)
        }
    }
}
