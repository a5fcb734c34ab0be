import DeferredCloud
import DeferredCore
import DeferredFiles
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
            try await upload(files, artifacts: artifacts.map { ($0.path, $0.contentType, $0.sha256) }, results: results, token: token)
        } catch {
            // Kept beside the staged files: served from here, and sent up by publishPending.
            try? FileArtifactStore.writeAtomically(results, to: files.folder + "/" + StoredObject.results.key)
            throw ArtifactStoreError("upload the job's files to s3://\(client.bucket)/\(key(token, ""))", error.description,
                                     isTransient: error.isRetryable)
        }
        try? FileManager.default.removeItem(atPath: files.folder)
    }

    private func upload(_ files: JobFiles, artifacts: [(path: String, contentType: String, sha256: String?)],
                        results: Data, token: ResultToken) async throws(CloudError) {
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
    }

    /// Staged folders holding a results.json are jobs that ended while the bucket could not
    /// be reached: their files go up now, the same way, results.json last.
    public func publishPending() async -> (published: [ResultToken], failures: [String]) {
        var published: [ResultToken] = [], failures: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? [] {
            guard let token = ResultToken(validating: name) else { continue }
            guard let results = FileManager.default.contents(atPath: files(for: token).folder + "/" + StoredObject.results.key) else { continue }
            do throws(CloudError) {
                try await uploadStaged(token, results: results)
                published.append(token)
            } catch {
                failures.append("job files of \(token.rawValue): \(error)")
            }
        }
        return (published, failures)
    }

    public func republish(results: Data, token: ResultToken) async throws(ArtifactStoreError) {
        do throws(CloudError) {
            try await uploadStaged(token, results: results)
        } catch {
            throw ArtifactStoreError("upload the job's files to s3://\(client.bucket)/\(key(token, ""))", error.description,
                                     isTransient: error.isRetryable)
        }
    }

    /// Uploads what is staged for the job, then `results`, and removes the staged folder.
    private func uploadStaged(_ token: ResultToken, results: Data) async throws(CloudError) {
        let files = files(for: token)
        // Only kept files are ever written to the staged artifacts folder.
        let paths = (FileManager.default.subpaths(atPath: files.artifacts) ?? []).filter { path in
            var info = stat()
            return lstat(files.artifacts + "/" + path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
        }
        try await upload(files, artifacts: paths.map { ($0, ContentType.forPath($0), nil) }, results: results, token: token)
        try? FileManager.default.removeItem(atPath: files.folder)
    }

    public func locate(_ object: StoredObject, token: ResultToken) async throws(ArtifactStoreError) -> ObjectLocation? {
        // Not uploaded yet (the bucket was down when the job ended): served from staging.
        let staged = files(for: token).folder
        if FileManager.default.fileExists(atPath: staged + "/" + StoredObject.results.key) {
            return try await FileArtifactStore(directory: staging).locate(object, token: token)
        }
        let key = key(token, object.key)
        do throws(CloudError) {
            guard try await client.exists(key) else { return nil }
        } catch {
            throw ArtifactStoreError("look up s3://\(client.bucket)/\(key)", error.description, isTransient: error.isRetryable)
        }
        return .redirect(url: client.presignedGET(key, expires: presignedLifetime))
    }

    public func read(_ object: StoredObject, token: ResultToken) async -> Data? {
        if let staged = FileManager.default.contents(atPath: files(for: token).folder + "/" + object.key) { return staged }
        let temporary = staging + "/.read-" + UUID().uuidString
        try? PrivateFiles.makeFolder(staging)
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        guard (try? await client.download(key(token, object.key), to: temporary)) != nil else { return nil }
        return FileManager.default.contents(atPath: temporary)
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
