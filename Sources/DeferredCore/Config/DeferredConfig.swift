import DeferredSignatures
import Foundation

/// The whole of `deferred.toml`, checked. Secrets are already read from the environment
/// variables the `*_env` keys name.
public struct DeferredConfig: Sendable {
    public var server: ServerConfig
    public var github: GitHubConfig
    public var artifacts: ArtifactsConfig
    public var idle: IdleConfig
    public var scripts: ScriptLimits
    public var hosts: [HostConfig]
    public var fleets: [FleetConfig]
    public var projects: [ProjectConfig]

    public init(
        server: ServerConfig, github: GitHubConfig, artifacts: ArtifactsConfig, idle: IdleConfig,
        scripts: ScriptLimits = ScriptLimits(), hosts: [HostConfig], fleets: [FleetConfig] = [], projects: [ProjectConfig]
    ) {
        self.fleets = fleets
        self.server = server
        self.github = github
        self.artifacts = artifacts
        self.idle = idle
        self.scripts = scripts
        self.hosts = hosts
        self.projects = projects
    }

    public func project(named name: String) -> ProjectConfig? {
        projects.first { $0.name == name }
    }

    public func project(forRepository fullName: String) -> ProjectConfig? {
        projects.first { $0.repository.lowercased() == fullName.lowercased() }
    }

    public func host(named name: String) -> HostConfig? {
        hosts.first { $0.name == name }
    }

    public func fleet(named name: String) -> FleetConfig? {
        fleets.first { $0.name == name }
    }
}

public struct ServerConfig: Sendable {
    public var listenHost: String
    public var listenPort: Int
    /// Base of every result URL, without a trailing slash.
    public var publicURL: String
    /// Path of the SQLite database.
    public var statePath: String
    public var adminToken: String?
    /// A connection that sends nothing for this long is closed: an idle keep-alive, a request
    /// whose headers or body stall (slowloris). A response being written is never cut.
    public var idleTimeoutSeconds: Double
    /// A request body must arrive whole within this time, however it trickles.
    public var bodyTimeoutSeconds: Double
    /// Open connections at most (fewer when the file limit leaves less room); past it new
    /// ones wait in the listen queue.
    public var maxConnections: Int

    public init(listenHost: String, listenPort: Int, publicURL: String, statePath: String, adminToken: String?,
                idleTimeoutSeconds: Double = 30, bodyTimeoutSeconds: Double = 60, maxConnections: Int = 4096) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.publicURL = publicURL
        self.statePath = statePath
        self.adminToken = adminToken
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.bodyTimeoutSeconds = bodyTimeoutSeconds
        self.maxConnections = maxConnections
    }

    public var bodyTimeout: Duration { .milliseconds(Int64(bodyTimeoutSeconds * 1000)) }
}

public struct GitHubConfig: Sendable {
    /// The webhook secret; without it no push is accepted.
    public var secret: String
    public var allowedNetworks: [IPNetwork]
    /// A token allowed to write commit statuses (`token_env`); nil: none are posted.
    public var token: String?
    /// GitHub's REST API: api.github.com, or a GitHub Enterprise server's `/api/v3`.
    public var apiURL: String

    public init(secret: String, allowedNetworks: [IPNetwork] = [], token: String? = nil, apiURL: String = "https://api.github.com") {
        self.secret = secret
        self.allowedNetworks = allowedNetworks
        self.token = token
        self.apiURL = apiURL
    }
}

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

public struct IdleConfig: Sendable {
    public var timeoutMinutes: Double
    public init(timeoutMinutes: Double = 30) { self.timeoutMinutes = timeoutMinutes }
}

/// `[scripts]`: how much posting of scripts one client and the queue may take.
public struct ScriptLimits: Sendable {
    /// Token bucket per client IP: refill rate and size.
    public var ratePerMinute: Double
    public var burst: Int
    /// The `max_queued` of projects that set none.
    public var maxQueued: Int

    public init(ratePerMinute: Double = 30, burst: Int = 10, maxQueued: Int = 100) {
        self.ratePerMinute = ratePerMinute
        self.burst = burst
        self.maxQueued = maxQueued
    }
}

/// Who a host belongs to: a machine that is always up, or a cloud instance that deferred
/// wakes and puts to sleep.
public enum ProviderKind: String, Sendable, CaseIterable {
    case `static`
    case ec2
}

/// The cloud instance behind a host of provider `ec2`.
public struct CloudInstance: Sendable, Equatable {
    public var instanceID: String
    public var region: String
    /// Another EC2-compatible endpoint; nil means AWS's own.
    public var endpoint: String?

    public init(instanceID: String, region: String, endpoint: String? = nil) {
        self.instanceID = instanceID
        self.region = region
        self.endpoint = endpoint
    }
}

/// A build host: where jobs run over SSH.
public struct HostConfig: Sendable {
    public var name: String
    public var provider: ProviderKind
    /// Where SSH connects. Empty for a cloud host without `address`: the instance's own
    /// address, learnt when it wakes.
    public var address: String
    public var port: Int
    public var user: String
    /// Private key file; nil means ask ssh-agent.
    public var identity: String?
    public var knownHosts: String
    public var maxJobs: Int
    public var instance: CloudInstance?
    /// How long a wake may take, instance start and SSH together, before the job goes back.
    public var wakeTimeoutMinutes: Double

    public init(
        name: String, provider: ProviderKind = .static, address: String, port: Int = 22, user: String,
        identity: String?, knownHosts: String, maxJobs: Int = 1, instance: CloudInstance? = nil, wakeTimeoutMinutes: Double = 10
    ) {
        self.instance = instance
        self.wakeTimeoutMinutes = wakeTimeoutMinutes
        self.name = name
        self.provider = provider
        self.address = address
        self.port = port
        self.user = user
        self.identity = identity
        self.knownHosts = knownHosts
        self.maxJobs = maxJobs
    }
}

/// Hosts made on demand from an image, up to `maxHosts`, and stopped or terminated when idle.
public struct FleetConfig: Sendable {
    public enum WhenIdle: String, Sendable { case stop, terminate }

    public var name: String
    public var region: String
    public var endpoint: String?
    public var imageID: String
    public var instanceType: String
    public var spot: Bool
    public var maxHosts: Int
    public var whenIdle: WhenIdle
    /// The set-up script run once per host and script version, over SSH.
    public var bootstrap: String
    /// cloud-init user data passed at launch, for images that prefer it.
    public var userData: String?
    public var keyName: String?
    public var subnetID: String?
    public var securityGroupIDs: [String]
    /// How SSH reaches every instance (the same keys as a host's); `address` empty means
    /// each instance's own, and the wake timeout is the fleet's boot timeout.
    public var login: HostConfig

    public var maxJobs: Int { login.maxJobs }

    /// `address`: SSH here instead of each instance's own address (a bastion's forward, or a test).
    public init(name: String, region: String, endpoint: String? = nil, imageID: String, instanceType: String, spot: Bool = false,
                maxHosts: Int = 1, whenIdle: WhenIdle = .stop, bootstrap: String, userData: String? = nil, keyName: String? = nil,
                subnetID: String? = nil, securityGroupIDs: [String] = [], address: String? = nil, port: Int = 22, user: String,
                identity: String?, knownHosts: String, maxJobs: Int = 1, bootTimeoutMinutes: Double = 10) {
        self.name = name
        self.region = region
        self.endpoint = endpoint
        self.imageID = imageID
        self.instanceType = instanceType
        self.spot = spot
        self.maxHosts = maxHosts
        self.whenIdle = whenIdle
        self.bootstrap = bootstrap
        self.userData = userData
        self.keyName = keyName
        self.subnetID = subnetID
        self.securityGroupIDs = securityGroupIDs
        login = HostConfig(name: name, provider: .ec2, address: address ?? "", port: port, user: user, identity: identity,
                           knownHosts: knownHosts, maxJobs: maxJobs, wakeTimeoutMinutes: bootTimeoutMinutes)
    }

    /// The host one of this fleet's instances is, once it has an id.
    public func host(named name: String, instanceID: String) -> HostConfig {
        var host = login
        host.name = name
        host.instance = CloudInstance(instanceID: instanceID, region: region, endpoint: endpoint)
        return host
    }
}

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
