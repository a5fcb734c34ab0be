import DeferredCore
import DeferredSSH
import Synchronization

/// How much of a job's output is kept (output.log, the store, the event stream): the project's
/// `max_output_bytes`, stdout and stderr together. Past it the rest is dropped and one line on
/// stderr says so; the job runs on, and results.json still gets the tails of both streams.
final class OutputBudget: Sendable {
    private let left: Mutex<Int64>
    let limit: Int64

    init(limit: Int64) {
        self.limit = limit
        left = Mutex(limit)
    }

    /// What of `event` is kept: all of it, its head and the marker, or nothing.
    func admit(_ event: SSHExecEvent) -> [SSHExecEvent] {
        let bytes: [UInt8]
        let wrap: ([UInt8]) -> SSHExecEvent
        switch event {
        case .stdout(let b): (bytes, wrap) = (b, { .stdout($0) })
        case .stderr(let b): (bytes, wrap) = (b, { .stderr($0) })
        case .exit: return [event]
        }
        return left.withLock { left -> [SSHExecEvent] in
            guard left >= 0 else { return [] }
            if Int64(bytes.count) <= left {
                left -= Int64(bytes.count)
                return [event]
            }
            let head = Array(bytes.prefix(Int(left)))
            left = -1
            let marker = "\n[deferred: output cut at \(ByteCount.text(limit)) (max_output_bytes); the job runs on, and results.json keeps the last 64 KiB of each stream]\n"
            return (head.isEmpty ? [] : [wrap(head)]) + [.stderr(Array(marker.utf8))]
        }
    }

    /// Whether anything was dropped.
    var cut: Bool { left.withLock { $0 < 0 } }
}
