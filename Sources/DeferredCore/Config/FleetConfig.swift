import Foundation

/// Hosts made on demand from an image, up to `maxHosts`, and stopped or terminated when idle:
/// EC2 instances, Hetzner Cloud servers or DigitalOcean droplets.
public struct FleetConfig: Sendable {
    /// `terminate` is EC2's word; Hetzner and DigitalOcean say `delete`, which means the same.
    public enum WhenIdle: String, Sendable {
        case stop, terminate

        public init?(text: String) {
            self.init(rawValue: text == "delete" ? "terminate" : text)
        }
    }

    public var name: String
    public var provider: ProviderKind
    /// EC2's region; Hetzner's location (empty: Hetzner picks); DigitalOcean's region.
    public var region: String
    public var endpoint: String?
    /// EC2's AMI; Hetzner's image or snapshot (name or id); DigitalOcean's snapshot id or image slug.
    public var imageID: String
    /// EC2's instance type; Hetzner's server type; DigitalOcean's size.
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
    /// Hetzner and DigitalOcean: the token that makes and deletes the fleet's servers.
    public var account: CloudAccount?
    /// Hetzner and DigitalOcean: the SSH keys (names, ids or fingerprints) a new server gets.
    public var sshKeys: [String] = []
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
        provider = .ec2
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
        login.wakeTimeoutKey = "boot_timeout_minutes"
    }

    /// A fleet of Hetzner servers or DigitalOcean droplets, made by `account`'s token.
    public init(name: String, provider: ProviderKind, account: CloudAccount, region: String, image: String, serverType: String,
                sshKeys: [String] = [], maxHosts: Int = 1, whenIdle: WhenIdle = .terminate, bootstrap: String, userData: String? = nil,
                address: String? = nil, port: Int = 22, user: String, identity: String?, knownHosts: String, maxJobs: Int = 1,
                bootTimeoutMinutes: Double = 10) {
        self.init(name: name, region: region, endpoint: account.endpoint, imageID: image, instanceType: serverType, maxHosts: maxHosts,
                  whenIdle: whenIdle, bootstrap: bootstrap, userData: userData, address: address, port: port, user: user,
                  identity: identity, knownHosts: knownHosts, maxJobs: maxJobs, bootTimeoutMinutes: bootTimeoutMinutes)
        self.provider = provider
        self.account = account
        self.sshKeys = sshKeys
        login.provider = provider
    }

    /// The host one of this fleet's machines is, once it has an id.
    public func host(named name: String, instanceID: String) -> HostConfig {
        var host = login
        host.name = name
        if let account, provider.hasServerAPI {
            host.server = CloudServer(id: instanceID, account: account)
        } else {
            host.instance = CloudInstance(instanceID: instanceID, region: region, endpoint: endpoint)
        }
        return host
    }

    /// What a message calls one of its machines.
    public var machineNoun: String {
        switch provider {
        case .hetzner: "server"
        case .digitalocean: "droplet"
        default: "instance"
        }
    }
}
