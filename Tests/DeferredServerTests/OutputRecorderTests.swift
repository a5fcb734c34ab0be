import DeferredCore
import DeferredDemo
import DeferredRunner
@testable import DeferredDispatcher
import DeferredSSH
import DeferredStore
import Foundation
import Testing

/// The recorder stores a job's output before the job's end is stored: a listener that sees
/// the end has every line.
@Suite struct OutputRecorderTests {
    /// Another process holds SQLite's write lock, so the recorder's timer takes the last line
    /// and waits on the store with it; closing must neither cancel that write (the line would be
    /// lost) nor return before it (the job's end would be stored first). Had the timer not fired
    /// yet, close stores the line itself: either way it is stored when close returns.
    @Test func closingWaitsForTheTimersFlushThatHoldsTheLastLine() async throws {
        let scratch = try await ScratchStore()
        defer { scratch.remove() }
        let (store, job, path, folder) = (scratch.store, scratch.job, scratch.path, scratch.folder)

        let locked = folder + "/locked"
        let holder = Task {
            try await LocalCommand.runOffPool(["python3", "-c", """
                import sqlite3, time, pathlib
                db = sqlite3.connect('\(path)', isolation_level=None)
                db.execute('BEGIN IMMEDIATE')
                pathlib.Path('\(locked)').touch()
                time.sleep(1.5)
                db.execute('COMMIT')
                """])
        }
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: locked) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(FileManager.default.fileExists(atPath: locked))

        let recorder = OutputRecorder(job: job.id, store: store)
        recorder.take(.stdout(Array("last line\n".utf8)))
        // Past a few timer ticks: the timer has taken the line and waits for the lock.
        try await Task.sleep(for: .milliseconds(700))
        await recorder.close()
        let output = try await store.feed(of: job.id, after: FeedCursor()).items.compactMap { item -> String? in
            if case .output(let chunk) = item.kind { chunk.text } else { nil }
        }
        #expect(output == ["last line\n"])
        _ = try await holder.value
    }

    /// A job's output is the host's, so any bytes at all: a NUL (which SQLite's text binding
    /// ends a string at, and PostgreSQL refuses in text) is stored as U+FFFD (`StoredText`), as
    /// bytes that are not UTF-8 are, and nothing after it is lost.
    @Test func outputWithNULBytesIsStoredWhole() async throws {
        let scratch = try await ScratchStore()
        defer { scratch.remove() }
        let (store, job) = (scratch.store, scratch.job)
        let recorder = OutputRecorder(job: job.id, store: store)
        recorder.take(.stdout([0x61, 0x00, 0x62, 0x0A, 0x00, 0x00, 0x0A]))
        recorder.take(.stderr([0x63, 0xFF, 0x00, 0x64, 0x0A]))
        await recorder.close()
        let output = try await store.feed(of: job.id, after: FeedCursor()).items.compactMap { item -> String? in
            if case .output(let chunk) = item.kind { chunk.text } else { nil }
        }
        #expect(output == ["a\u{FFFD}b\n\u{FFFD}\u{FFFD}\n", "c\u{FFFD}\u{FFFD}d\n"])
    }

    /// Lines keep the order they came in across stdout and stderr, even when one batch holds
    /// them all (as when the timer is starved on a loaded machine).
    @Test func linesKeepTheirOrderAcrossStreamsWithinOneBatch() async throws {
        let scratch = try await ScratchStore()
        defer { scratch.remove() }
        let (store, job) = (scratch.store, scratch.job)
        let recorder = OutputRecorder(job: job.id, store: store)
        for slice: OutputSlice in [.stdout(Array("one\n".utf8)), .stderr(Array("two\n".utf8)), .stdout(Array("three\nfo".utf8)),
                                   .stdout(Array("ur\n".utf8)), .stderr(Array("five\n".utf8))] {
            recorder.take(slice)
        }
        await recorder.close()
        let output = try await store.feed(of: job.id, after: FeedCursor()).items.compactMap { item -> String? in
            if case .output(let chunk) = item.kind { "\(chunk.stream.rawValue): \(chunk.text)" } else { nil }
        }
        #expect(output == ["stdout: one\n", "stderr: two\n", "stdout: three\nfour\n", "stderr: five\n"])
    }

    /// Each stored batch says how far into the host's files the stored output goes: bytes
    /// stored, and bytes the output limit dropped (never its own notice), where a restarted
    /// server reads on from.
    @Test func theStoredPositionCountsEveryByteTakenFromTheHost() async throws {
        let scratch = try await ScratchStore()
        defer { scratch.remove() }
        let (store, job) = (scratch.store, scratch.job)
        let recorder = OutputRecorder(job: job.id, store: store, from: OutputPosition(stdout: 100, stderr: 7, cut: false))
        recorder.take(.stdout(Array("abc\n".utf8)))
        recorder.take(.stderr(Array("x\n".utf8)))
        recorder.take(OutputSlice(stream: .stdout, kept: Array("de".utf8), dropped: 10, cutNotice: Array("\n[cut]\n".utf8)))
        recorder.take(OutputSlice(stream: .stderr, kept: [], dropped: 5))
        await recorder.close()
        #expect(try await store.outputPosition(of: job.id) == OutputPosition(stdout: 100 + 4 + 2 + 10, stderr: 7 + 2 + 5, cut: true))
        // Each stream's text in its order. Across the streams, a timer's flush between the takes
        // and the close (a loaded machine) lets stderr's whole lines go before stdout's "de",
        // which waits for its line's end.
        let chunks = try await store.feed(of: job.id, after: FeedCursor()).items.compactMap { item -> OutputChunk? in
            if case .output(let chunk) = item.kind { chunk } else { nil }
        }
        #expect(chunks.filter { $0.stream == .stdout }.map(\.text).joined() == "abc\nde")
        #expect(chunks.filter { $0.stream == .stderr }.map(\.text).joined() == "x\n\n[cut]\n")
    }
}
