import Foundation

/// What running a job on a host produced: the end state and what goes into results.json.
public struct JobOutcome: Sendable, Equatable {
    public var status: JobStatus
    public var exitStatus: Int?
    /// The signal that ended the job's process, without `SIG` (`"TERM"`).
    public var signal: String?
    /// What went wrong in the machinery, for `status: error`.
    public var error: String?
    public var startedAt: Date
    public var finishedAt: Date
    public var stdout: OutputTail
    public var stderr: OutputTail
    /// The JSON the job wrote to `$DEFERRED_ARTIFACTS/result.json`, if valid.
    public var result: JSONValue?
    /// The artifacts collected from the host (none when the job never ran).
    public var artifacts: CollectedArtifacts
    /// Output past the project's `max_output_bytes` was not kept.
    public var outputCut = false
    /// The job's processes may still run on its host: the host stopped answering after the
    /// timeout, and the server stopped waiting. They are killed once it answers again.
    public var leftOnHost = false
    /// What the command used; nil when it never ran or nothing could be collected.
    public var resources: JobResources?
    /// Who cancelled the job, for `status: cancelled` (`admin`, or `poster`).
    public var cancelledBy: String?

    public init(
        status: JobStatus, exitStatus: Int? = nil, signal: String? = nil, error: String? = nil,
        startedAt: Date, finishedAt: Date, stdout: OutputTail = OutputTail(), stderr: OutputTail = OutputTail(),
        result: JSONValue? = nil, artifacts: CollectedArtifacts = CollectedArtifacts()
    ) {
        self.artifacts = artifacts
        self.status = status
        self.exitStatus = exitStatus
        self.signal = signal
        self.error = error
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.stdout = stdout
        self.stderr = stderr
        self.result = result
    }
}

/// The last bytes of an output stream: results.json keeps 64 KiB of each.
public struct OutputTail: Sendable, Equatable {
    public static let defaultLimit = 64 * 1024

    public private(set) var bytes: [UInt8] = []
    public private(set) var truncated = false
    public let limit: Int

    public init(limit: Int = OutputTail.defaultLimit) { self.limit = limit }

    public mutating func append<C: Collection>(_ chunk: C) where C.Element == UInt8 {
        bytes.append(contentsOf: chunk)
        if bytes.count > limit {
            bytes.removeFirst(bytes.count - limit)
            truncated = true
        }
    }

    /// The tail as text. A cut through a UTF-8 sequence at the start is dropped, not mangled.
    public var text: String {
        var start = 0
        if truncated {
            while start < bytes.count, start < 4, bytes[start] & 0xC0 == 0x80 { start += 1 }
        }
        return String(decoding: bytes[start...], as: UTF8.self)
    }
}
