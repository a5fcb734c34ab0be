import Foundation

/// The whole of `deferred.toml`, checked. Secrets are already read from the environment
/// variables the `*_env` keys name.
public struct DeferredConfig: Sendable {
    public var server: ServerConfig
    public var store: StoreConfig
    public var github: GitHubConfig
    public var artifacts: ArtifactsConfig
    public var idle: IdleConfig
    public var scripts: ScriptLimits
    public var hosts: [HostConfig]
    public var fleets: [FleetConfig]
    public var projects: [ProjectConfig]
    /// What works but should change (a setting that moved): said at every start and by check-config.
    public var warnings: [String] = []
    public var metrics = MetricsConfig()
    /// Where each table starts in the file (`hosts["builder"]`, `artifacts`): the lines of what
    /// `check-config` finds beyond the file.
    public var lines: [String: Int] = [:]

    public init(
        server: ServerConfig, store: StoreConfig, github: GitHubConfig, artifacts: ArtifactsConfig, idle: IdleConfig,
        scripts: ScriptLimits = ScriptLimits(), hosts: [HostConfig], fleets: [FleetConfig] = [], projects: [ProjectConfig]
    ) {
        self.fleets = fleets
        self.server = server
        self.store = store
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
