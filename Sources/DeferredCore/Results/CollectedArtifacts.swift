/// What came back from a job's `artifacts/` folder: the files kept, with what results.json
/// says of each, and what was refused, with the reason.
public struct CollectedArtifacts: Sendable, Equatable {
    public struct File: Sendable, Equatable {
        /// Relative to the artifacts folder, `/`-separated, never `..` or absolute.
        public var path: String
        public var bytes: Int64
        public var sha256: String
        public var contentType: String

        public init(path: String, bytes: Int64, sha256: String, contentType: String? = nil) {
            self.path = path
            self.bytes = bytes
            self.sha256 = sha256
            self.contentType = contentType ?? ContentType.forPath(path)
        }
    }

    public struct Refusal: Sendable, Equatable, Encodable {
        public var path: String
        public var reason: String
        public init(path: String, reason: String) { self.path = path; self.reason = reason }
    }

    public var files: [File]
    public var refused: [Refusal]

    public init(files: [File] = [], refused: [Refusal] = []) {
        self.files = files
        self.refused = refused
    }
}
