import DeferredCore
import Foundation

/// Which jobs a list shows, newest first (by the time they were queued, then id): of one
/// project, in some states, on one host, queued in a time range, after a cursor.
public struct JobQuery: Sendable, Equatable {
    public var project: String?
    /// Any of these states; all when empty.
    public var statuses: [JobStatus]
    public var host: String?
    /// Queued at or after.
    public var since: Date?
    /// Queued before.
    public var before: Date?
    /// Jobs that come after this one in the list (older): where the last page ended.
    public var after: JobCursor?
    public var limit: Int

    public init(project: String? = nil, statuses: [JobStatus] = [], host: String? = nil, since: Date? = nil, before: Date? = nil,
                after: JobCursor? = nil, limit: Int = 50) {
        self.project = project
        self.statuses = statuses
        self.host = host
        self.since = since
        self.before = before
        self.after = after
        self.limit = limit
    }
}
