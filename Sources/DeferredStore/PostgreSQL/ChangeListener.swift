import DeferredCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Changes made by the other servers on one database, heard through `LISTEN`: a job's events or
/// output (channel `deferred_job`, payload `<server> <job>`) wake its listeners here, and a job
/// queued or a place freed (channel `deferred_queue`) wakes the dispatcher, so a listener on one
/// server follows a job another server runs as it happens, and a job queued anywhere is leased
/// at once. The notifications are sent in the transactions that make the changes (`NOTIFY`
/// goes at commit). Its own are passed by. A lost connection is made again; whatever was
/// missed meanwhile is made up by waking everyone once.
final class ChangeListener: Sendable {
    static let jobChannel = "deferred_job"
    static let queueChannel = "deferred_queue"

    private let task = Mutex<Task<Void, Never>?>(nil)
    private let queueWake = Mutex<(@Sendable () -> Void)?>(nil)

    func whenQueueChanges(_ wake: @escaping @Sendable () -> Void) {
        queueWake.withLock { $0 = wake }
    }

    func start(configuration: PostgresConnection.Configuration, server: String, changes: JobChanges, logger: Logger) {
        let wakeQueue: @Sendable () -> Void = { [weak self] in self?.queueWake.withLock { $0 }?() }
        let task = Task {
            var failures = 0
            while !Task.isCancelled {
                do {
                    let connection = try await PostgresConnection.connect(configuration: configuration, id: 2, logger: logger)
                    defer { Task { try? await connection.close() } }
                    // Each channel is listened to for as long as its closure runs: the streams
                    // end (and are unlistened) with the connection or this task.
                    try await connection.listen(on: Self.jobChannel) { jobs in
                        try await connection.listen(on: Self.queueChannel) { queue in
                            if failures > 0 {
                                changes.notifyEveryone()
                                wakeQueue()
                            }
                            failures = 0
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                group.addTask {
                                    for try await note in jobs {
                                        let parts = note.payload.split(separator: " ", maxSplits: 1)
                                        guard parts.count == 2, parts[0] != server else { continue }
                                        changes.notify(JobID(rawValue: String(parts[1])))
                                    }
                                }
                                group.addTask {
                                    for try await note in queue where note.payload != server { wakeQueue() }
                                }
                                try await group.next()
                                group.cancelAll()
                            }
                        }
                    }
                    // The connection ended: what happens until the next one is heard of below.
                    failures += 1
                } catch {
                    guard !Task.isCancelled else { return }
                    failures += 1
                    logger.warning("cannot hear other servers' changes (try \(failures)): \(StoreError(postgres: error)); listening again shortly")
                }
                try? await Task.sleep(for: .milliseconds(min(5000, 250 << min(failures, 5))))
            }
        }
        self.task.withLock { $0 = task }
    }

    deinit { task.withLock { $0 }?.cancel() }
}
