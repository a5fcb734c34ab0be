import Foundation

/// `[artifacts]`: where results.json and artifacts are kept, and for how long.
public struct ArtifactsConfig: Sendable {
    /// An `s3://bucket/prefix` store, with its region and optional endpoint.
    public struct S3Location: Sendable, Equatable {
        public var bucket: String
        /// Without a trailing `/`; empty for the bucket's root.
        public var prefix: String
        public var region: String
        public var endpoint: String?
        public init(bucket: String, prefix: String = "", region: String, endpoint: String? = nil) {
            self.bucket = bucket
            self.prefix = prefix
            self.region = region
            self.endpoint = endpoint
        }
    }

    /// The `file:` store's folder; with S3, the local folder where a job's files gather
    /// before they go up (`staging`, default `.deferred/staging`).
    public var directory: String
    public var s3: S3Location?
    public var retentionDays: Int

    public init(directory: String, s3: S3Location? = nil, retentionDays: Int = 14) {
        self.directory = directory
        self.s3 = s3
        self.retentionDays = retentionDays
    }
}
