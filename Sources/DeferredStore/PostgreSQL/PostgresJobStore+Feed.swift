import DeferredCore
import Foundation
import PostgresNIO

// Output and the feed.
extension PostgresJobStore {
    public func appendOutput(_ id: JobID, _ chunks: [(stream: OutputChunk.Stream, text: String, at: Date)],
                             through position: OutputPosition?) async throws(StoreError) {
        guard !chunks.isEmpty || position != nil else { return }
        let rows = chunks.map { (at: $0.at.timeIntervalSince1970, stream: $0.stream.rawValue, text: StoredText.kept($0.text)) }
        let me = membership?.id
        try await transaction { c in
            try await Self.lockFollowed(c, id, by: me)
            if !rows.isEmpty {
                // One statement for the batch, in order: ids follow the arrays' order.
                try await c.sql("""
                    INSERT INTO job_output (job_id, at, stream, text)
                    SELECT \(id.rawValue), at, stream, text
                    FROM unnest(\(rows.map(\.at)), \(rows.map(\.stream)), \(rows.map(\.text))) WITH ORDINALITY AS batch(at, stream, text, n)
                    ORDER BY n
                    """)
            }
            if !rows.isEmpty {
                var binds = PostgresBindings()
                binds.append(id.rawValue)
                try await c.sql(PostgresQuery(unsafeSQL: "SELECT \(Self.announceJob("$1::text"))", binds: binds))
            }
            if let position {
                try await c.sql("""
                    INSERT INTO job_output_position (job_id, stdout, stderr, cut) VALUES (\(id.rawValue), \(position.stdout), \(position.stderr), \(position.cut))
                    ON CONFLICT (job_id) DO UPDATE SET stdout = excluded.stdout, stderr = excluded.stderr, cut = excluded.cut
                    """)
            }
        }
        if !chunks.isEmpty { changes.notify(id) }
    }

    public func outputPosition(of id: JobID) async throws(StoreError) -> OutputPosition? {
        try await read { c in try await Self.outputPosition(c, of: id.rawValue) }
    }

    public func feed(of id: JobID, after cursor: FeedCursor) async throws(StoreError) -> Feed {
        try await feedReads.feed(of: id, after: cursor, version: changes.version(of: id)) { () async throws(StoreError) -> Feed in
            try await self.readFeed(of: id, after: cursor)
        }
    }

    /// Events, a page of output and the job's status from one snapshot (REPEATABLE READ): an
    /// end read with the rows before it is an end that follows them.
    func readFeed(of id: JobID, after cursor: FeedCursor) async throws(StoreError) -> Feed {
        try await snapshot { c in
            FeedRows.page(
                events: try await Self.eventRecords(c, """
                    SELECT id, job_id, at, status, detail, host_state FROM job_event WHERE job_id = \(id.rawValue) AND id > \(cursor.event) ORDER BY id
                    """),
                output: try await Self.outputRecords(c, """
                    SELECT id, job_id, at, stream, text FROM job_output WHERE job_id = \(id.rawValue) AND id > \(cursor.output)
                    ORDER BY id LIMIT \(StorePolicy.feedPageRows)
                    """),
                status: try await Self.value(c, "SELECT status FROM job WHERE id = \(id.rawValue)", as: String.self),
                after: cursor)
        }
    }

    public func recentFeed(of id: JobID, outputBytes: Int) async throws(StoreError) -> (feed: Feed, cut: Bool) {
        try await snapshot { c in
            var latest = LatestOutput(budget: outputBytes)
            while latest.wantsMore {
                latest.take(try await Self.outputRecords(c, """
                    SELECT id, job_id, at, stream, text FROM job_output WHERE job_id = \(id.rawValue) AND id < \(latest.before)
                    ORDER BY id DESC LIMIT \(StorePolicy.feedPageRows)
                    """))
            }
            let feed = FeedRows.recent(
                events: try await Self.eventRecords(c, "SELECT id, job_id, at, status, detail, host_state FROM job_event WHERE job_id = \(id.rawValue) ORDER BY id"),
                output: latest.rows,
                status: try await Self.value(c, "SELECT status FROM job WHERE id = \(id.rawValue)", as: String.self))
            return (feed, latest.cut)
        }
    }
}
