import DeferredCore
import DeferredRunner
import Foundation

/// Job folders to remove from their hosts, their jobs' ends stored. Each exec starts the remote
/// user's shell (rc files and all), so the folders go with the next exec the host gets anyway,
/// the next job's start; when none comes within `flushAfter`, with one exec of their own.
///
/// A folder left behind by a stop in between is harmless: it is marked `collected`, nothing
/// reads it again, and a later forget on that host removes it after a week.
actor FolderForgets {
    private var waiting: [String: [JobID]] = [:]
    /// Hosts with a flush on its way.
    private var flushing: Set<String> = []
    private let runner: JobRunner
    private let waker: HostWaker
    private let flushAfter: Duration

    init(runner: JobRunner, waker: HostWaker, flushAfter: Duration = .seconds(1)) {
        self.runner = runner
        self.waker = waker
        self.flushAfter = flushAfter
    }

    /// The job's end is stored: its folder on `host` is no longer needed.
    func add(_ id: JobID, host: String) {
        waiting[host, default: []].append(id)
    }

    /// The folders waiting to go from `host`, for an exec that goes there now to remove.
    func take(host: String) -> [JobID] {
        waiting.removeValue(forKey: host) ?? []
    }

    /// Removes what still waits on `host` after `flushAfter`, unless a start took it by then.
    func flushSoon(on host: HostConfig) {
        guard waiting[host.name] != nil, flushing.insert(host.name).inserted else { return }
        Task {
            try? await Task.sleep(for: flushAfter)
            let ids = take(host: host.name)
            flushing.remove(host.name)
            guard !ids.isEmpty, let session = try? await waker.session(for: host) else { return }
            await runner.forget(ids, on: session)
        }
    }
}
