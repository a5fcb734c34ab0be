import DeferredCloud
import DeferredCore
import Foundation

/// The store `[artifacts]` names.
public enum ArtifactStores {
    /// A `file:` store, or an S3 store with credentials found the usual way (environment,
    /// then the shared credentials file): failing that, an error that says where it looked.
    public static func make(_ config: ArtifactsConfig, environment: [String: String] = ProcessInfo.processInfo.environment,
                            http: HTTPClient = HTTPClient()) throws(ArtifactStoreError) -> any ArtifactStore {
        guard let s3 = config.s3 else { return FileArtifactStore(directory: config.directory) }
        let credentials: AWSCredentials
        do {
            credentials = try AWSCredentials.lookUp(environment: environment)
        } catch {
            throw ArtifactStoreError("use s3://\(s3.bucket)", "no AWS credentials: \(error)")
        }
        let client = S3Client(bucket: s3.bucket, region: s3.region, endpoint: s3.endpoint, credentials: credentials, http: http)
        return S3ArtifactStore(client: client, prefix: s3.prefix, staging: config.directory, retentionDays: config.retentionDays)
    }
}
