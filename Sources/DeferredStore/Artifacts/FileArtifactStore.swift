import DeferredCore
import Foundation

/// The `file:` artifact store: `<directory>/<token>/results.json` and the job's other files.
/// Writes go through a temporary file and a rename, so a reader sees a whole file or none.
public struct FileArtifactStore: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public func writeResults(_ data: Data, token: ResultToken) throws {
        let folder = URL(fileURLWithPath: directory).appendingPathComponent(token.rawValue)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let target = folder.appendingPathComponent("results.json")
        let temporary = folder.appendingPathComponent(".results.json.\(UUID().uuidString)")
        try data.write(to: temporary)
        // rename(2) replaces the target atomically, whether or not it exists.
        guard rename(temporary.path, target.path) == 0 else {
            let code = POSIXErrorCode(rawValue: errno) ?? .EIO
            try? FileManager.default.removeItem(at: temporary)
            throw POSIXError(code)
        }
    }

    /// The stored results.json, or nil when the job has none yet.
    public func results(token: ResultToken) -> Data? {
        FileManager.default.contents(atPath: "\(directory)/\(token.rawValue)/results.json")
    }
}
