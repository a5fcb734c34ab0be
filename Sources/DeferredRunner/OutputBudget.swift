import DeferredCore
import DeferredSSH
import Synchronization

/// How much of a job's output is kept (output.log, the store, the event stream): the project's
/// `max_output_bytes`, stdout and stderr together. Past it the rest is dropped and one line on
/// stderr says so; the job runs on, and results.json still gets the tails of both streams.
final class OutputBudget: Sendable {
    private let left: Mutex<Int64>
    let limit: Int64

    /// `used`: bytes kept before (by a server that followed the job earlier); `cut`: it was
    /// cut then, and nothing more is kept.
    init(limit: Int64, used: Int64 = 0, cut: Bool = false) {
        self.limit = limit
        left = Mutex(cut ? -1 : max(limit - used, 0))
    }

    /// What of `event` is kept: all of it, its head and the notice, or nothing; nil for the exit.
    func admit(_ event: SSHExecEvent) -> OutputSlice? {
        let bytes: [UInt8], stream: OutputSlice.Stream
        switch event {
        case .stdout(let b): (bytes, stream) = (b, .stdout)
        case .stderr(let b): (bytes, stream) = (b, .stderr)
        case .exit: return nil
        }
        return left.withLock { left -> OutputSlice in
            guard left >= 0 else { return OutputSlice(stream: stream, kept: [], dropped: bytes.count) }
            if Int64(bytes.count) <= left {
                left -= Int64(bytes.count)
                return OutputSlice(stream: stream, kept: bytes)
            }
            let head = Array(bytes.prefix(Int(left)))
            left = -1
            let notice = "\n[deferred: output cut at \(ByteCount.text(limit)) (max_output_bytes); the job runs on, and results.json keeps the last 64 KiB of each stream]\n"
            return OutputSlice(stream: stream, kept: head, dropped: bytes.count - head.count, cutNotice: Array(notice.utf8))
        }
    }

    /// Whether anything was dropped.
    var cut: Bool { left.withLock { $0 < 0 } }
}
