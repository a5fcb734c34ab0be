import DeferredCore
import Foundation

/// Where a job's results.json, output.log and artifacts are kept and served from:
/// a local folder (`file:`) or an S3-compatible bucket (`s3://`).
///
/// The job's files gather in `files(for:)` while it runs; `publish` moves them to the store
/// and writes results.json last, so whoever sees results.json sees everything.
public protocol ArtifactStore: Sendable {
    /// Where the job's output log and artifacts gather while it runs.
    func files(for token: ResultToken) -> JobFiles

    /// Stores the gathered files and then `results`.
    func publish(_ files: JobFiles, artifacts: [CollectedArtifacts.File], results: Data, token: ResultToken) async throws(ArtifactStoreError)

    /// Stores again what a job gathered (found where it gathered) and then `results`: for a
    /// job whose first publish failed before its results.json could be kept anywhere.
    func republish(results: Data, token: ResultToken) async throws(ArtifactStoreError)

    /// How to answer a request for one of the job's objects, or nil when the store has none.
    func locate(_ object: StoredObject, token: ResultToken) async throws(ArtifactStoreError) -> ObjectLocation?

    /// A small stored object's bytes (results.json for the event stream's summary), or nil.
    func read(_ object: StoredObject, token: ResultToken) async -> Data?

    /// Deletes everything stored for the job (retention).
    func remove(token: ResultToken) async throws(ArtifactStoreError)

    /// Tries again to store the files of jobs whose publishing failed (a remote store that was
    /// down); answers what went up and what still fails. Called on the housekeeping timer.
    func publishPending() async -> (published: [ResultToken], failures: [String])
}

/// One object of a job in the store, under `<token>/`.
public enum StoredObject: Sendable, Equatable {
    case results
    case outputLog
    /// A path as ArtifactPath checked it: relative, no `..`, no empty parts.
    case artifact(ArtifactPath)

    /// The object's key under the job's folder or prefix.
    public var key: String {
        switch self {
        case .results: "results.json"
        case .outputLog: "output.log"
        case .artifact(let path): "artifacts/" + path.rawValue
        }
    }

    public var contentType: String {
        switch self {
        case .results: "application/json"
        case .outputLog: "text/plain; charset=utf-8"
        case .artifact(let path): ContentType.forPath(path.rawValue)
        }
    }
}

/// An artifact path from a request: relative, `/`-separated, with no `.`, `..` or empty part.
public struct ArtifactPath: Sendable, Equatable {
    public let rawValue: String

    public init?(validating text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard !text.isEmpty, text.utf8.count <= 4096, !text.contains("\0"),
              parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return nil }
        rawValue = text
    }
}

/// How a stored object is answered: a local file streamed, or a redirect to a presigned URL.
public enum ObjectLocation: Sendable, Equatable {
    case file(path: String, contentType: String)
    case redirect(url: String)
}
