import DeferredCore
import DeferredSSH
import DeferredStore
import Foundation
import Synchronization

/// Stores a running job's output for its event stream, in batches: whatever arrived in the
/// last quarter second, cut at the last newline (a line's rest waits for its end, up to a
/// second or 16 KiB), so listeners get lines, never one event per byte.
final class OutputRecorder: Sendable {
    private struct Pending {
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var since: ContinuousClock.Instant?
    }

    private let job: JobID
    private let store: JobStore
    private let pending = Mutex(Pending())
    private let flusher = Mutex<Task<Void, Never>?>(nil)
    static let interval = Duration.milliseconds(250)

    init(job: JobID, store: JobStore) {
        self.job = job
        self.store = store
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.interval)
                await self?.flush(force: false)
            }
        }
        flusher.withLock { $0 = task }
    }

    /// Called for each chunk the runner reads; cheap, never waits on the store.
    func take(_ event: SSHExecEvent) {
        pending.withLock { p in
            switch event {
            case .stdout(let bytes): p.stdout += bytes
            case .stderr(let bytes): p.stderr += bytes
            case .exit: return
            }
            if p.since == nil { p.since = .now }
        }
    }

    /// Stops the timer and stores what is left. The timer's flush may be holding the last
    /// bytes on their way to the store: it is waited for, so all output is stored before the
    /// job's end is, and a listener that sees the end has seen every line.
    func close() async {
        let timer = flusher.withLock { task in
            defer { task = nil }
            task?.cancel()
            return task
        }
        await timer?.value
        await flush(force: true)
    }

    private func flush(force: Bool) async {
        let chunks = pending.withLock { p -> [(stream: OutputChunk.Stream, text: String)] in
            let stale = force || p.since.map { ContinuousClock.now - $0 > .seconds(1) } ?? false
            var chunks: [(stream: OutputChunk.Stream, text: String)] = []
            for stream in [OutputChunk.Stream.stdout, .stderr] {
                var bytes = stream == .stdout ? p.stdout : p.stderr
                let cut = Self.cut(bytes, all: stale || bytes.count > 16 << 10)
                guard cut > 0 else { continue }
                chunks.append((stream, String(decoding: bytes[..<cut], as: UTF8.self)))
                bytes.removeFirst(cut)
                if stream == .stdout { p.stdout = bytes } else { p.stderr = bytes }
            }
            if p.stdout.isEmpty && p.stderr.isEmpty { p.since = nil } else if !chunks.isEmpty { p.since = .now }
            return chunks
        }
        // The bytes have left the buffer: their write must not be cancelled with the timer (GRDB
        // stops a cancelled task's write), so it runs in a task of its own and is waited for.
        // If the store fails, output.log on disk still has them.
        let store = self.store, job = self.job
        await Task { try? await store.appendOutput(job, chunks) }.value
    }

    /// Where to cut: after the last newline, or (`all`) everything but a UTF-8 sequence cut short.
    static func cut(_ bytes: [UInt8], all: Bool) -> Int {
        if !all { return bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0 }
        var end = bytes.count
        // Step back over a multi-byte character whose last bytes have not arrived yet.
        var back = 0
        while back < 3, end - back - 1 >= 0, bytes[end - back - 1] & 0xC0 == 0x80 { back += 1 }
        if end - back - 1 >= 0 {
            let lead = bytes[end - back - 1]
            let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
            if length > back + 1 { end -= back + 1 }
        }
        return end
    }
}
