import DeferredCloud
import DeferredCore
import Foundation

/// The provider for each kind of host, made once per process.
public struct HostProviders: Sendable {
    let ec2: (any HostProvider)?
    let command: any HostProvider
    let wol: any HostProvider
    let hetzner: any HostProvider
    let fixed = StaticHostProvider()

    /// EC2 credentials are looked up only when some host needs them.
    public init(config: DeferredConfig, environment: [String: String] = ProcessInfo.processInfo.environment) throws(AWSCredentials.LookupError) {
        ec2 = config.hosts.contains { $0.provider == .ec2 } || !config.fleets.isEmpty
            ? EC2HostProvider(credentials: try AWSCredentials.lookUp(environment: environment)) : nil
        command = CommandHostProvider()
        wol = WakeOnLANHostProvider()
        hetzner = HetznerHostProvider()
    }

    public init(ec2: (any HostProvider)?, command: any HostProvider = CommandHostProvider(),
                wol: any HostProvider = WakeOnLANHostProvider(), hetzner: any HostProvider = HetznerHostProvider()) {
        self.ec2 = ec2
        self.command = command
        self.wol = wol
        self.hetzner = hetzner
    }

    /// The provider that launches fleets' instances.
    public var fleets: any HostProvider { ec2 ?? fixed }

    public func provider(for host: HostConfig) -> any HostProvider {
        switch host.provider {
        case .static: fixed
        case .ec2: ec2 ?? fixed
        case .command: command
        case .wol: wol
        case .hetzner: hetzner
        }
    }
}
