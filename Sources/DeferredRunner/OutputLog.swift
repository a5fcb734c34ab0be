import DeferredCore
import DeferredFiles
import DeferredSSH
import Foundation

/// `output.log`: every byte the job wrote to stdout and stderr, in the order it arrived.
/// results.json keeps only the last 64 KiB of each stream; this keeps everything.
final class OutputLog: Sendable {
    private let handle: FileHandle
    let path: String

    init(path: String) throws(RunnerError) {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: PrivateFiles.fileMode]),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw .artifactsUnwritable(folder: path, reason: "cannot create the output log")
        }
        self.handle = handle
    }

    func append(_ event: SSHExecEvent) {
        switch event {
        case .stdout(let bytes), .stderr(let bytes):
            // A write that fails (full disk) loses log lines, not the job: results.json still has the tail.
            try? handle.write(contentsOf: bytes)
        case .exit:
            break
        }
    }

    func close() {
        try? handle.close()
    }
}
