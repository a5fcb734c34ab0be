import Foundation

/// Where a job's files gather on the server while it runs: `artifacts/` (unpacked from the
/// host's tar stream) and `output.log` (every byte of stdout and stderr, as it arrived).
/// The artifact store publishes them from here, results.json last.
public struct JobFiles: Sendable, Equatable {
    public let folder: String

    public init(folder: String) {
        self.folder = folder
    }

    public var artifacts: String { folder + "/artifacts" }
    public var outputLog: String { folder + "/output.log" }

    /// Empties what an earlier attempt of the job left, so a retry starts clean.
    public func reset() throws {
        let files = FileManager.default
        for path in [artifacts, outputLog] where files.fileExists(atPath: path) {
            try files.removeItem(atPath: path)
        }
        try PrivateFiles.makeFolder(folder)
    }
}
