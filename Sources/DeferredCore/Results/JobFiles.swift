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
}
