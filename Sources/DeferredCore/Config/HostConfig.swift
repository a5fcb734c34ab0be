import Foundation

/// Who a host belongs to: a machine that is always up, a cloud instance that deferred wakes
/// and puts to sleep, or a machine started and stopped by commands of the operator's.
public enum ProviderKind: String, Sendable, CaseIterable {
    case `static`
    case ec2
    case command
    /// A machine on the LAN woken by a magic packet and put to sleep by a command over SSH.
    case wol
    /// A Hetzner Cloud server, powered on and shut down through its API.
    case hetzner
    /// A DigitalOcean droplet, powered on and shut down through its API.
    case digitalocean

    /// The clouds whose servers are powered through a JSON API with a token.
    public var hasServerAPI: Bool { self == .hetzner || self == .digitalocean }
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
    /// The wake, sleep and status commands of a host of provider `command`.
    public var commands: HostCommandLines?
    /// The magic packet and sleep command of a host of provider `wol`.
    public var wakeOnLAN: WakeOnLAN?
    /// The server of a host of provider `hetzner`, or the droplet of one of `digitalocean`.
    public var server: CloudServer?
    /// How long a wake may take, instance start and SSH together, before the job goes back.
    public var wakeTimeoutMinutes: Double
    /// The deferred.toml key that sets it: a fleet's instances take the fleet's
    /// `boot_timeout_minutes`, so errors name the key the operator can change.
    public var wakeTimeoutKey = "wake_timeout_minutes"
    /// How long jobs wait for a host whose SSH does not answer before they end as `error`.
    public var hostWaitMinutes: Double = 30

    /// The cloud's id of the machine, for messages: an instance, server or droplet id.
    public var machineID: String? { instance?.instanceID ?? server?.id }

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
