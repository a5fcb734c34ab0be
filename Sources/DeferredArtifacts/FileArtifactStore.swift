import DeferredCore
import DeferredFiles
import Foundation

/// The `file:` artifact store: `<directory>/<token>/results.json`, `output.log` and
/// `artifacts/`. The job's files gather in place; publishing writes results.json through a
/// temporary file and a rename, so a reader sees a whole file or none.
public struct FileArtifactStore: ArtifactStore {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public func files(for token: ResultToken) -> JobFiles {
        JobFiles(folder: folder(token))
    }

    public func publish(_ files: JobFiles, artifacts: [CollectedArtifacts.File], results: Data,
                        token: ResultToken) async throws(ArtifactStoreError) {
        do {
            try writeResults(results, token: token)
        } catch {
            throw ArtifactStoreError("write \(folder(token))/results.json", "\(error)", isTransient: true)
        }
    }

    /// The files are in place already: only results.json was missing.
    public func republish(results: Data, token: ResultToken) async throws(ArtifactStoreError) {
        try await publish(files(for: token), artifacts: [], results: results, token: token)
    }

    public func locate(_ object: StoredObject, token: ResultToken) async throws(ArtifactStoreError) -> ObjectLocation? {
        let path = folder(token) + "/" + object.key
        // Only regular files: the unpacker never makes links, and nothing else is served.
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return .file(path: path, contentType: object.contentType)
    }

    public func read(_ object: StoredObject, token: ResultToken) async -> Data? {
        FileManager.default.contents(atPath: folder(token) + "/" + object.key)
    }

    public func remove(token: ResultToken) async throws(ArtifactStoreError) {
        let path = folder(token)
        guard FileManager.default.fileExists(atPath: path) else { return }
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw ArtifactStoreError("delete \(path)", "\(error)", isTransient: true)
        }
    }

    /// Everything is local: nothing is ever pending.
    public func publishPending() async -> (published: [ResultToken], failures: [String]) { ([], []) }

    private func folder(_ token: ResultToken) -> String {
        "\(directory)/\(token.rawValue)"
    }

    func writeResults(_ data: Data, token: ResultToken) throws {
        try Self.writeAtomically(data, to: folder(token) + "/results.json")
    }

    /// Through a temporary file and a rename: a reader sees the whole file or none.
    static func writeAtomically(_ data: Data, to path: String) throws {
        let target = URL(fileURLWithPath: path)
        let folder = target.deletingLastPathComponent()
        if !FileManager.default.fileExists(atPath: folder.path) { try PrivateFiles.makeFolder(folder.path) }
        let temporary = folder.appendingPathComponent(".results.json.\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil, attributes: [.posixPermissions: PrivateFiles.fileMode]) else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        // rename(2) replaces the target atomically, whether or not it exists.
        guard rename(temporary.path, target.path) == 0 else {
            let code = POSIXErrorCode(rawValue: errno) ?? .EIO
            try? FileManager.default.removeItem(at: temporary)
            throw POSIXError(code)
        }
    }
}
