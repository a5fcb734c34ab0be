import DeferredCore
import Foundation

/// Each job's reports to others (commit statuses, notify_url), sent in the order they were
/// made and off the job's path: a slow receiver never holds a job or a host.
actor JobReports {
    private var reports: [JobID: (token: UUID, task: Task<Void, Never>)] = [:]

    /// Runs `body` after the job's earlier reports.
    func send(for id: JobID, _ body: @escaping @Sendable () async -> Void) {
        let previous = reports[id]?.task
        let token = UUID()
        reports[id] = (token, Task {
            await previous?.value
            await body()
            self.forget(id, token: token)
        })
    }

    private func forget(_ id: JobID, token: UUID) {
        if reports[id]?.token == token { reports[id] = nil }
    }
}
