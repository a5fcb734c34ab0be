import Foundation

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
        login.wakeTimeoutKey = "boot_timeout_minutes"
    }

    /// The host one of this fleet's instances is, once it has an id.
    public func host(named name: String, instanceID: String) -> HostConfig {
        var host = login
        host.name = name
        host.instance = CloudInstance(instanceID: instanceID, region: region, endpoint: endpoint)
        return host
    }
}
