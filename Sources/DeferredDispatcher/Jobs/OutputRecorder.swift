import DeferredCore
import DeferredRunner
import DeferredStore
import Foundation
import Synchronization

/// Stores a running job's output for its event stream, in batches: whatever arrived in the
/// last quarter second, each stream cut at its last newline (a line's rest waits for its end,
/// up to a second or 16 KiB), so listeners get lines, never one event per byte. stdout and
/// stderr stay in the order they arrived, within a batch too, and each chunk is stored with
/// the time it arrived, which lies between the job's start and its end however late the
/// batch is written. Each batch is stored with how far into the host's output files the stored
/// output then goes, so a server that takes the job up again reads on from there.
final class OutputRecorder: Sendable {
    /// What arrived and is not stored yet: runs of one stream, in arrival order, each with the
    /// time its first byte came.
    private struct Run {
        var stream: OutputChunk.Stream
        var bytes: [UInt8]
        var arrived: Date
        /// How many of `bytes`, from the start, came from the host (the rest is the output
        /// limit's notice, always last).
        var fromHost: Int
    }

    private struct Pending {
        var runs: [Run] = []
        var since: ContinuousClock.Instant?
        /// Bytes of each stream's file on the host that are stored, and that the limit dropped.
        var stored: [OutputChunk.Stream: Int64]
        var dropped: [OutputChunk.Stream: Int64] = [.stdout: 0, .stderr: 0]
        var cut: Bool
        /// Whether the position moved since it was last stored.
        var moved = false

        func bytes(of stream: OutputChunk.Stream) -> [UInt8] {
            runs.filter { $0.stream == stream }.flatMap(\.bytes)
        }

        /// How far the stored output goes into each file. Dropped bytes all follow the kept
        /// ones: they count once no kept byte of their stream waits.
        var position: OutputPosition {
            func through(_ stream: OutputChunk.Stream) -> Int64 {
                let waiting = runs.contains { $0.stream == stream && $0.fromHost > 0 }
                return stored[stream]! + (waiting ? 0 : dropped[stream]!)
            }
            return OutputPosition(stdout: through(.stdout), stderr: through(.stderr), cut: cut)
        }
    }

    private let job: JobID
    private let store: any JobStore
    private let pending: Mutex<Pending>
    private let flusher = Mutex<Task<Void, Never>?>(nil)
    static let interval = Duration.milliseconds(250)

    /// `position`: how far a server that followed the job before had stored its output.
    init(job: JobID, store: any JobStore, from position: OutputPosition = .start) {
        self.job = job
        self.store = store
        pending = Mutex(Pending(stored: [.stdout: position.stdout, .stderr: position.stderr], cut: position.cut))
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.interval)
                await self?.flush(force: false)
            }
        }
        flusher.withLock { $0 = task }
    }

    /// Called for each read the runner hands on; cheap, never waits on the store.
    func take(_ slice: OutputSlice) {
        let stream: OutputChunk.Stream = slice.stream == .stdout ? .stdout : .stderr
        pending.withLock { p in
            func add(_ bytes: [UInt8], to stream: OutputChunk.Stream, fromHost: Bool) {
                guard !bytes.isEmpty else { return }
                let count = fromHost ? bytes.count : 0
                // A run whose notice is in goes on with nothing: the notice comes last.
                if let last = p.runs.last, last.stream == stream, last.fromHost == last.bytes.count {
                    p.runs[p.runs.count - 1].bytes += bytes
                    p.runs[p.runs.count - 1].fromHost += count
                } else {
                    p.runs.append(Run(stream: stream, bytes: bytes, arrived: Date(), fromHost: count))
                }
                if p.since == nil { p.since = .now }
            }
            add(slice.kept, to: stream, fromHost: true)
            if let notice = slice.cutNotice { add(notice, to: .stderr, fromHost: false) }
            if slice.dropped > 0 || slice.cutNotice != nil {
                p.dropped[stream]! += Int64(slice.dropped)
                p.cut = true
                p.moved = true
            }
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
        let (chunks, position) = pending.withLock { p -> ([(stream: OutputChunk.Stream, text: String, at: Date)], OutputPosition?) in
            let stale = force || p.since.map { ContinuousClock.now - $0 > .seconds(1) } ?? false
            // How much of each stream may go now: its whole lines (or all of it, when stale).
            var ready: [OutputChunk.Stream: Int] = [:]
            for stream in [OutputChunk.Stream.stdout, .stderr] {
                let bytes = p.bytes(of: stream)
                ready[stream] = Self.cut(bytes, all: stale || bytes.count > 16 << 10)
            }
            // Runs in arrival order, each up to what its stream may send; the rest waits.
            var chunks: [(stream: OutputChunk.Stream, text: String, at: Date)] = []
            var waiting: [Run] = []
            for run in p.runs {
                let take = min(ready[run.stream] ?? 0, run.bytes.count)
                ready[run.stream] = (ready[run.stream] ?? 0) - take
                if take > 0 {
                    // Rows of at most `rowLimit`: a listener or a page reads them a few at a time.
                    for piece in Self.pieces(run.bytes[..<take], upTo: Self.rowLimit) {
                        let text = String(decoding: piece, as: UTF8.self)
                        if chunks.last?.stream == run.stream, chunks[chunks.count - 1].text.utf8.count + piece.count <= Self.rowLimit {
                            chunks[chunks.count - 1].text += text
                        } else {
                            chunks.append((run.stream, text, run.arrived))
                        }
                    }
                }
                let fromHost = min(take, run.fromHost)
                p.stored[run.stream]! += Int64(fromHost)
                if take < run.bytes.count {
                    let rest = Run(stream: run.stream, bytes: Array(run.bytes[take...]), arrived: run.arrived, fromHost: run.fromHost - fromHost)
                    if let last = waiting.last, last.stream == run.stream, last.fromHost == last.bytes.count {
                        waiting[waiting.count - 1].bytes += rest.bytes
                        waiting[waiting.count - 1].fromHost += rest.fromHost
                    } else {
                        waiting.append(rest)
                    }
                }
            }
            p.runs = waiting
            if waiting.isEmpty { p.since = nil } else if !chunks.isEmpty { p.since = .now }
            let moved = p.moved || !chunks.isEmpty
            p.moved = false
            return (chunks, moved ? p.position : nil)
        }
        guard !chunks.isEmpty || position != nil else { return }
        // The bytes have left the buffer: their write must not be cancelled with the timer (GRDB
        // stops a cancelled task's write), so it runs in a task of its own and is waited for.
        // If the store fails, output.log on disk still has them.
        let store = self.store, job = self.job
        await Task { try? await store.appendOutput(job, chunks, through: position) }.value
    }

    /// The most one stored chunk holds.
    static let rowLimit = 64 << 10

    /// `bytes` in pieces of at most `limit`, each cut between UTF-8 characters.
    static func pieces(_ bytes: ArraySlice<UInt8>, upTo limit: Int) -> [ArraySlice<UInt8>] {
        var pieces: [ArraySlice<UInt8>] = [], rest = bytes
        while rest.count > limit {
            var end = rest.startIndex + limit
            // Back over continuation bytes, so that no character is split (at most 3 steps).
            while end > rest.startIndex + limit - 4, rest[end] & 0xC0 == 0x80 { end -= 1 }
            pieces.append(rest[..<end])
            rest = rest[end...]
        }
        if !rest.isEmpty { pieces.append(rest) }
        return pieces
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
