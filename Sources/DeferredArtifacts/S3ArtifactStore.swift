import DeferredCloud
import DeferredCore
import Foundation

/// The `s3://bucket/prefix` artifact store: a job's files gather in a local staging folder,
/// go up streamed from disk when it ends (`<prefix>/<token>/artifacts/<path>`, `output.log`,
/// then `results.json`), and are served by redirects to presigned GETs.
public struct S3ArtifactStore: ArtifactStore {
    public let client: S3Client
    public let prefix: String
    public let staging: String
    /// How long a presigned URL answers: short, because each request makes a fresh one.
    public let presignedLifetime: Int

    public init(client: S3Client, prefix: String, staging: String, retentionDays: Int) {
        self.client = client
        self.prefix = prefix
        self.staging = staging
        presignedLifetime = min(3600, retentionDays * 86_400)
    }

    public func files(for token: ResultToken) -> JobFiles {
        JobFiles(folder: "\(staging)/\(token.rawValue)")
    }

    public func key(_ token: ResultToken, _ object: String) -> String {
        (prefix.isEmpty ? "" : prefix + "/") + token.rawValue + "/" + object
    }

    public func publish(_ files: JobFiles, artifacts: [CollectedArtifacts.File], results: Data,
                        token: ResultToken) async throws(ArtifactStoreError) {
        do throws(CloudError) {
            for artifact in artifacts {
                try await client.upload(file: files.artifacts + "/" + artifact.path, to: key(token, "artifacts/" + artifact.path),
                                        contentType: artifact.contentType, sha256: artifact.sha256)
            }
            if FileManager.default.fileExists(atPath: files.outputLog) {
                try await client.upload(file: files.outputLog, to: key(token, StoredObject.outputLog.key),
                                        contentType: StoredObject.outputLog.contentType)
            }
            // Last: whoever sees results.json sees everything it lists.
            try await client.upload(results, to: key(token, StoredObject.results.key), contentType: StoredObject.results.contentType)
        } catch {
            throw ArtifactStoreError("upload the job's files to s3://\(client.bucket)/\(key(token, ""))", error.description,
                                     isTransient: error.isRetryable)
        }
        try? FileManager.default.removeItem(atPath: files.folder)
    }

    public func locate(_ object: StoredObject, token: ResultToken) async throws(ArtifactStoreError) -> ObjectLocation? {
        let key = key(token, object.key)
        do throws(CloudError) {
            guard try await client.exists(key) else { return nil }
        } catch {
            throw ArtifactStoreError("look up s3://\(client.bucket)/\(key)", error.description, isTransient: error.isRetryable)
        }
        return .redirect(url: client.presignedGET(key, expires: presignedLifetime))
    }

    public func remove(token: ResultToken) async throws(ArtifactStoreError) {
        let folder = key(token, "")
        do throws(CloudError) {
            try await client.delete(try await client.keys(under: folder))
        } catch {
            throw ArtifactStoreError("delete s3://\(client.bucket)/\(folder)", error.description, isTransient: error.isRetryable)
        }
        try? FileManager.default.removeItem(atPath: files(for: token).folder)
    }
}
