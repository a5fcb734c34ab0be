import DeferredArtifacts
import DeferredCore
import DeferredStore
import Foundation

/// Deletes the stored files of jobs that ended more than `retention_days` ago and marks them
/// expired, so their URLs answer 410. Runs on `serve`'s timer and in `deferred idle-sleep`.
public struct Retention: Sendable {
    public struct Report: Sendable, CustomStringConvertible {
        public var expired: [JobID] = []
        /// Jobs whose files could not be deleted this time (tried again at the next pass).
        public var problems: [(job: JobID, reason: String)] = []

        public var description: String {
            var lines = expired.isEmpty ? [] : ["expired \(expired.count) job\(expired.count == 1 ? "" : "s")' files"]
            lines += problems.map { "cannot expire \($0.job): \($0.reason)" }
            return lines.joined(separator: "\n")
        }
    }

    let store: any JobStore
    let artifacts: any ArtifactStore
    let retentionDays: Int

    public init(store: any JobStore, artifacts: any ArtifactStore, retentionDays: Int) {
        self.store = store
        self.artifacts = artifacts
        self.retentionDays = retentionDays
    }

    /// One pass over every job past its retention, as of `now`.
    public func pass(now: Date = Date()) async -> Report {
        var report = Report()
        let cutoff = now.addingTimeInterval(-Double(retentionDays) * 86_400)
        while true {
            let due: [Job]
            do { due = try await store.jobsPastRetention(finishedBefore: cutoff) } catch {
                report.problems.append((JobID(rawValue: "-"), "cannot read the store: \(error)"))
                return report
            }
            let pending = due.filter { job in !report.problems.contains { $0.job == job.id } }
            if pending.isEmpty { return report }
            for job in pending {
                do {
                    try await artifacts.remove(token: job.token)
                    try await store.markExpired(job.id, at: now)
                    report.expired.append(job.id)
                } catch {
                    report.problems.append((job.id, "\(error)"))
                }
            }
        }
    }
}
