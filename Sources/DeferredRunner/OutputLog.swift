import DeferredCore
import DeferredFiles
import DeferredSSH
import Foundation
import Synchronization

/// `output.log`: every byte the job wrote to stdout and stderr, in the order it arrived,
/// a whole line at a time: the two streams arrive in slices cut anywhere, and a line of one is
/// never split by the other (a line's start waits for its end, up to 64 KiB).
/// results.json keeps only the last 64 KiB of each stream; this keeps everything.
final class OutputLog: Sendable {
    private let handle: FileHandle
    let path: String
    /// Each stream's unfinished last line.
    private let partial = Mutex<[[UInt8]]>([[], []])
    static let longestHeldLine = 64 << 10

    /// `appending`: the job is taken up again, and the log so far is kept (the server rebuilt
    /// it from the stored output).
    init(path: String, appending: Bool = false) throws(RunnerError) {
        self.path = path
        let manager = FileManager.default
        guard appending && manager.fileExists(atPath: path)
                || manager.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: PrivateFiles.fileMode]),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw .artifactsUnwritable(folder: path, reason: "cannot create the output log")
        }
        if appending { _ = try? handle.seekToEnd() }
        self.handle = handle
    }

    /// The kept bytes, then the output limit's notice after every unfinished line.
    func append(_ slice: OutputSlice) {
        append(slice.kept, to: slice.stream == .stdout ? 0 : 1)
        if let notice = slice.cutNotice {
            flushHeld()
            write(notice)
        }
    }

    private func append(_ bytes: [UInt8], to stream: Int) {
        guard !bytes.isEmpty else { return }
        let whole = partial.withLock { held -> [UInt8] in
            held[stream] += bytes
            guard held[stream].count < Self.longestHeldLine else { defer { held[stream] = [] }; return held[stream] }
            guard let newline = held[stream].lastIndex(of: UInt8(ascii: "\n")) else { return [] }
            defer { held[stream].removeFirst(newline + 1) }
            return Array(held[stream][...newline])
        }
        write(whole)
    }

    /// Writes the unfinished lines now: what follows (the cut's marker, the end) comes after them.
    func flushHeld() {
        write(partial.withLock { held in defer { held = [[], []] }; return held[0] + held[1] })
    }

    func close() {
        flushHeld()
        try? handle.close()
    }

    private func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        // A write that fails (full disk) loses log lines, not the job: results.json still has the tail.
        try? handle.write(contentsOf: bytes)
    }
}
