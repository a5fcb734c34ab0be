import DeferredSignatures
import Foundation

/// `[[projects]]`: a repository or a family of scripts, the hosts its jobs run on, and their limits.
public struct ProjectConfig: Sendable {
    public var name: String
    /// GitHub `full_name`, `owner/name`.
    public var repository: String
    /// Glob patterns; empty means the repository's default branch.
    public var branches: [String]
    /// Run at the checkout; nil means the `.deferred_server` file of the pushed commit.
    public var command: String?
    public var cloneURL: String?
    /// Host names in the order they are tried.
    public var hosts: [String]
    public var timeoutMinutes: Double
    /// Who may sign scripts; nil when the project sets no `allowed_signers`.
    public var allowedSigners: AllowedSigners?
    /// The secret of `sha256=` HMAC script signatures, from `script_secret_env`.
    public var scriptSecret: String?
    /// What a posted script may run under: paths (`/bin/sh`) or names found in PATH (`python3`).
    public var interpreters: [String]
    /// Origins whose pages may post scripts and poll results; empty means results answer any
    /// origin and scripts only clients that send no Origin.
    public var allowedOrigins: [String]
    public var maxScriptBytes: Int
    /// Where a job's results.json is POSTed when it ends, signed with `notifySecret`.
    public var notifyURL: String?
    public var notifySecret: String?
    /// The commit status's `context` on GitHub (default `deferred/<name>`).
    public var statusContext: String
    /// What a job's artifacts may hold in all: past these, entries are refused (and listed).
    public var maxArtifactBytes: Int64
    public var maxArtifactFiles: Int
    /// Pushes and scripts are refused (503) while this many of the project's jobs wait.
    public var maxQueued: Int
    /// Output past this (stdout and stderr together) is cut: output.log and the event stream
    /// end with a marker line, results.json says `output_truncated`.
    public var maxOutputBytes: Int64

    public init(
        name: String, repository: String, branches: [String] = [], command: String?, cloneURL: String? = nil,
        hosts: [String], timeoutMinutes: Double = 20, allowedSigners: AllowedSigners? = nil, scriptSecret: String? = nil,
        interpreters: [String] = ["/bin/sh"], allowedOrigins: [String] = [], maxScriptBytes: Int = 1 << 20,
        maxArtifactBytes: Int64 = 1 << 30, maxArtifactFiles: Int = 10_000, maxQueued: Int = 100,
        maxOutputBytes: Int64 = 64 << 20,
        notifyURL: String? = nil, notifySecret: String? = nil, statusContext: String? = nil
    ) {
        self.maxQueued = maxQueued
        self.maxOutputBytes = maxOutputBytes
        self.notifyURL = notifyURL
        self.notifySecret = notifySecret
        self.statusContext = statusContext ?? "deferred/\(name)"
        self.maxArtifactBytes = maxArtifactBytes
        self.maxArtifactFiles = maxArtifactFiles
        self.allowedSigners = allowedSigners
        self.scriptSecret = scriptSecret
        self.interpreters = interpreters
        self.allowedOrigins = allowedOrigins
        self.maxScriptBytes = maxScriptBytes
        self.name = name
        self.repository = repository
        self.branches = branches
        self.command = command
        self.cloneURL = cloneURL
        self.hosts = hosts
        self.timeoutMinutes = timeoutMinutes
    }

    public var timeout: Duration { .milliseconds(Int64(timeoutMinutes * 60_000)) }
}
