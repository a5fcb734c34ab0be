import DeferredCloud
import DeferredCore
import Foundation

/// The provider for each kind of host, made once per process.
public struct HostProviders: Sendable {
    let ec2: (any HostProvider)?
    let command: any HostProvider
    let wol: any HostProvider
    let hetzner: any HostProvider
    let digitalocean: any HostProvider
    let fixed = StaticHostProvider()

    /// EC2 credentials are looked up only when some host or fleet needs them.
    public init(config: DeferredConfig, environment: [String: String] = ProcessInfo.processInfo.environment) throws(AWSCredentials.LookupError) {
        ec2 = config.hosts.contains { $0.provider == .ec2 } || config.fleets.contains { $0.provider == .ec2 }
            ? EC2HostProvider(credentials: try AWSCredentials.lookUp(environment: environment)) : nil
        command = CommandHostProvider()
        wol = WakeOnLANHostProvider()
        hetzner = ServerHostProvider(.hetzner)
        digitalocean = ServerHostProvider(.digitalocean)
    }

    public init(ec2: (any HostProvider)?, command: any HostProvider = CommandHostProvider(),
                wol: any HostProvider = WakeOnLANHostProvider(), hetzner: any HostProvider = ServerHostProvider(.hetzner),
                digitalocean: any HostProvider = ServerHostProvider(.digitalocean)) {
        self.ec2 = ec2
        self.command = command
        self.wol = wol
        self.hetzner = hetzner
        self.digitalocean = digitalocean
    }

    /// The provider that launches `fleet`'s machines.
    public func provider(for fleet: FleetConfig) -> any HostProvider { provider(for: fleet.login) }

    public func provider(for host: HostConfig) -> any HostProvider { provider(of: host.provider) }

    public func provider(of kind: ProviderKind) -> any HostProvider {
        switch kind {
        case .static: fixed
        case .ec2: ec2 ?? fixed
        case .command: command
        case .wol: wol
        case .hetzner: hetzner
        case .digitalocean: digitalocean
        }
    }
}
