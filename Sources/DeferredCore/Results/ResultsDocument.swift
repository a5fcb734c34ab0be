import Foundation

/// `results.json`, exactly as DESIGN.md lays it out. Written for every job that ends.
public struct ResultsDocument: Sendable, Equatable, Encodable {
    public struct HostInfo: Sendable, Equatable, Encodable {
        public var name: String
        public var woke: Bool
        public init(name: String, woke: Bool) { self.name = name; self.woke = woke }
    }

    public struct Artifact: Sendable, Equatable, Encodable {
        public var path: String
        public var bytes: Int64
        public var sha256: String
        public var contentType: String
        public var url: String

        private enum CodingKeys: String, CodingKey {
            case path, bytes, sha256, url
            case contentType = "content_type"
        }
    }

    public var schema = 1
    public var id: String
    public var project: String
    public var trigger: JSONValue
    public var status: JobStatus
    public var exitStatus: Int?
    public var signal: String?
    public var error: String?
    public var queuedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date
    public var host: HostInfo?
    public var stdout: String
    public var stderr: String
    public var outputTruncated: Bool
    public var artifacts: [Artifact]
    public var artifactsRefused: [CollectedArtifacts.Refusal]
    /// Where the whole output is: results.json keeps only its last 64 KiB.
    public var outputLog: String?
    public var result: JSONValue?
    public var resources: JobResources?
    public var rerunOf: String?
    /// Which try at the job this was: 1, or more when the machinery spoiled earlier ones (a
    /// host that lost the job, a connection that never came); the reasons are its events.
    public var attempts: Int
    /// Who cancelled a `cancelled` job: `admin` (the admin token or the dashboard) or `poster`
    /// (a script's cancel token).
    public var cancelledBy: String?

    /// `resultBase` is the job's `…/r/{token}`: artifact URLs and the output log hang off it.
    /// `hasOutputLog`: whether the job ran far enough to leave an output.log.
    public init(job: Job, outcome: JobOutcome, host: HostInfo?, resultBase: String, hasOutputLog: Bool) {
        id = job.id.rawValue
        project = job.project
        trigger = job.trigger.resultsJSON
        status = outcome.status
        exitStatus = outcome.exitStatus
        signal = outcome.signal
        error = outcome.error
        queuedAt = job.queuedAt
        startedAt = outcome.startedAt
        finishedAt = outcome.finishedAt
        self.host = host
        stdout = outcome.stdout.text
        stderr = outcome.stderr.text
        outputTruncated = outcome.stdout.truncated || outcome.stderr.truncated || outcome.outputCut
        artifacts = outcome.artifacts.files.map {
            Artifact(path: $0.path, bytes: $0.bytes, sha256: $0.sha256, contentType: $0.contentType,
                     url: resultBase + "/artifacts/" + Self.urlPath($0.path))
        }
        artifactsRefused = outcome.artifacts.refused
        outputLog = hasOutputLog ? resultBase + "/output.log" : nil
        result = outcome.result
        resources = outcome.resources
        rerunOf = job.rerunOf?.rawValue
        attempts = job.attempts + 1
        cancelledBy = outcome.cancelledBy
    }

    /// Each segment percent-encoded: a name with spaces, `#` or `?` still makes one URL.
    public static func urlPath(_ path: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#;%")
        return path.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.addingPercentEncoding(withAllowedCharacters: allowed) ?? String($0) }
            .joined(separator: "/")
    }

    /// Milliseconds from the job's 202 to its start on a host.
    public var waitMilliseconds: Int {
        Self.milliseconds(from: queuedAt, to: startedAt ?? finishedAt)
    }

    public var durationMilliseconds: Int {
        startedAt.map { Self.milliseconds(from: $0, to: finishedAt) } ?? 0
    }

    private static func milliseconds(from a: Date, to b: Date) -> Int {
        max(0, Int((b.timeIntervalSince(a) * 1000).rounded()))
    }

    private enum CodingKeys: String, CodingKey {
        case schema, id, project, trigger, status
        case exitStatus = "exit_status", signal, error
        case queuedAt = "queued_at", startedAt = "started_at", finishedAt = "finished_at"
        case waitMS = "wait_ms", durationMS = "duration_ms"
        case host, stdout, stderr
        case outputTruncated = "output_truncated"
        case artifacts, result
        case artifactsRefused = "artifacts_refused", outputLog = "output_log", resources
        case rerunOf = "rerun_of", attempts, cancelledBy = "cancelled_by"
    }

    // Written by hand so that absent values are explicit nulls, as the contract shows them.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schema, forKey: .schema)
        try c.encode(id, forKey: .id)
        try c.encode(project, forKey: .project)
        try c.encode(trigger, forKey: .trigger)
        try c.encode(status, forKey: .status)
        try c.encode(exitStatus, forKey: .exitStatus)
        try c.encode(signal, forKey: .signal)
        try c.encode(error, forKey: .error)
        try c.encode(RFC3339.string(queuedAt), forKey: .queuedAt)
        try c.encode(startedAt.map(RFC3339.string), forKey: .startedAt)
        try c.encode(RFC3339.string(finishedAt), forKey: .finishedAt)
        try c.encode(waitMilliseconds, forKey: .waitMS)
        try c.encode(durationMilliseconds, forKey: .durationMS)
        try c.encode(host, forKey: .host)
        try c.encode(stdout, forKey: .stdout)
        try c.encode(stderr, forKey: .stderr)
        try c.encode(outputTruncated, forKey: .outputTruncated)
        try c.encode(artifacts, forKey: .artifacts)
        try c.encode(artifactsRefused, forKey: .artifactsRefused)
        try c.encode(outputLog, forKey: .outputLog)
        try c.encode(result ?? .null, forKey: .result)
        try c.encode(resources, forKey: .resources)
        try c.encode(rerunOf, forKey: .rerunOf)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(cancelledBy, forKey: .cancelledBy)
    }

    /// The bytes of the file: pretty, keys sorted so two runs diff cleanly.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// RFC 3339 times with milliseconds, in UTC, as results.json writes them.
public enum RFC3339 {
    public static func string(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }

    /// A time as others write it: with or without fractions of a second, `Z` or an offset.
    public static func date(_ text: String) -> Date? {
        for style in [Date.ISO8601FormatStyle(includingFractionalSeconds: true), Date.ISO8601FormatStyle()] {
            if let date = try? style.parse(text) { return date }
        }
        return nil
    }
}
