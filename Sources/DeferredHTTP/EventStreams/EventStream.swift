import DeferredArtifacts
import DeferredCore
import DeferredStore
import Foundation
import HTTPTypes
import NIOCore

/// One listener's Server-Sent Events: the job's feed from a cursor (its backlog first), then
/// live. `state` for each state change (with the host's own state while waiting for it),
/// `output` for batches of lines, `done` with the summary of results.json, then the stream
/// ends. A comment after `heartbeat` without a change keeps proxies from closing a quiet stream.
///
/// The loop is made of turns, so that the router's response body (`run`, in its request's
/// task) and a stream served below the router (`EventStreamListener`, with no task while it
/// waits) take the same steps.
struct EventStream: Sendable {
    static let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]

    /// What a turn left to do.
    enum Turn: Equatable {
        /// More is stored past the cursor: take another turn at once.
        case readOn(FeedCursor)
        /// Caught up: wait for the job's version to pass `version`, then take another turn.
        case wait(FeedCursor, version: UInt64)
        /// The job ended and `done` was written.
        case ended
    }

    let job: JobID
    let token: ResultToken
    /// The job's status when the stream opened: `done`'s when results.json cannot be read.
    let status: JobStatus
    let start: FeedCursor
    let store: any JobStore
    let artifacts: any ArtifactStore
    let heartbeat: Duration
    let formatted: FormattedEvents
    let resultURL: String

    /// Writes what the feed holds past `cursor`, a page at most.
    func turn(from cursor: FeedCursor, _ write: (ByteBuffer) async throws -> Void) async throws -> Turn {
        let version = store.changes.version(of: job)
        let feed = try await store.feed(of: job, after: cursor)
        var cursor = cursor
        if let last = feed.items.last {
            try await write(text(of: feed, from: cursor))
            cursor = last.cursor
        }
        // A listener far behind reads on at once, a page at a time.
        if feed.hasMore { return .readOn(cursor) }
        // The read that found the job ended also holds its last events: nothing follows.
        if feed.jobEnded {
            let summary = await Self.summary(job: token, status: status, resultURL: resultURL, artifacts: artifacts)
            try await write(ByteBuffer(string: "id: \(cursor)\nevent: done\ndata: \(summary)\n\n"))
            return .ended
        }
        return .wait(cursor, version: version)
    }

    /// After a wait on `version`: a time limit that passed without a change gets a comment.
    func woke(after version: UInt64, _ write: (ByteBuffer) async throws -> Void) async throws {
        if store.changes.version(of: job) == version {
            try await write(Self.keepalive)
        }
    }

    /// What a quiet stream gets at each heartbeat: a comment keeps proxies from closing it.
    static let keepalive = ByteBuffer(string: ": keepalive\n\n")

    /// The events of a page of the feed read after `cursor`, formatted once for every listener there.
    func text(of feed: Feed, from cursor: FeedCursor) -> ByteBuffer {
        formatted.text(of: job, from: cursor, to: feed.items.last?.cursor ?? cursor) {
            feed.items.map(Self.serverSentEvent).joined()
        }
    }

    /// The whole stream in the calling task. Returns once the job ended and `done` was
    /// written, or when the task is cancelled; throws what `write` throws (the listener went).
    func run(_ write: (ByteBuffer) async throws -> Void) async throws {
        var cursor = start
        while true {
            switch try await turn(from: cursor, write) {
            case .ended:
                return
            case .readOn(let next):
                cursor = next
            case .wait(let next, let version):
                cursor = next
                await store.changes.wait(for: job, after: version, upTo: heartbeat)
                if Task.isCancelled { return }
                try await woke(after: version, write)
            }
        }
    }

    static func serverSentEvent(_ item: FeedItem) -> String {
        let at = { (date: Date) in RFC3339.string(date) }
        switch item.kind {
        case .state(let event):
            var payload = ["status": event.status.rawValue, "at": at(event.at), "detail": event.detail ?? ""]
            if let host = event.hostState { payload["host_state"] = host.rawValue }
            return "id: \(item.cursor)\nevent: state\ndata: \(json(payload))\n\n"
        case .output(let chunk):
            return "id: \(item.cursor)\nevent: output\ndata: \(json(["stream": chunk.stream.rawValue, "text": chunk.text, "at": at(chunk.at)]))\n\n"
        }
    }

    /// results.json's headline: status, exit, times, artifact count and where the rest is.
    static func summary(job token: ResultToken, status: JobStatus, resultURL: String, artifacts: any ArtifactStore) async -> String {
        var summary: [String: JSONValue] = ["result_url": .string(resultURL)]
        if let data = await artifacts.read(.results, token: token),
           case .object(let results)? = JSONValue.parse(data) {
            for key in ["status", "exit_status", "signal", "error", "wait_ms", "duration_ms", "output_truncated", "output_log"] {
                summary[key] = results[key] ?? .null
            }
            if case .array(let list)? = results["artifacts"] { summary["artifacts"] = .number(Double(list.count)) }
        } else if status.isFinal {
            summary["status"] = .string(status.rawValue)
        }
        return json(JSONValue.object(summary))
    }

    private static func json(_ value: some Encodable) -> String {
        JSONBody.encode(value).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
