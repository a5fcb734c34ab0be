import DeferredCloud
import DeferredCore
import Foundation

/// Hosts that are servers of a cloud with a JSON API (Hetzner Cloud, DigitalOcean): powered
/// on when work comes, shut down when idle (ACPI, then the power cut after `shutdownGrace`
/// for a system that ignores it); fleets made from an image with deferred's labels, deleted
/// when idle, and strays found by label. Both clouds bill a server that is off: fleets that
/// delete idle servers are the way to pay nothing.
public struct ServerHostProvider: HostProvider {
    public enum Cloud: Sendable {
        case hetzner, digitalocean

        var kind: ProviderKind { self == .hetzner ? .hetzner : .digitalocean }
        var name: String { self == .hetzner ? "Hetzner" : "DigitalOcean" }
        var idKey: String { self == .hetzner ? "server_id" : "droplet_id" }
    }

    public let cloud: Cloud
    /// Between reads of a server or an action while it changes.
    public var pollInterval: Duration
    /// How long a server may take to shut down by itself before its power is cut.
    public var shutdownGrace: Duration
    let http: HTTPClient
    let retry: RetryPolicy

    public init(_ cloud: Cloud, pollInterval: Duration = .seconds(2), shutdownGrace: Duration = .seconds(120), http: HTTPClient = HTTPClient(),
                retry: RetryPolicy = RetryPolicy()) {
        self.cloud = cloud
        self.pollInterval = pollInterval
        self.shutdownGrace = shutdownGrace
        self.http = http
        self.retry = retry
    }

    func api(_ account: CloudAccount) -> any ServerAPI {
        switch cloud {
        case .hetzner: HetznerClient(token: account.token, endpoint: account.endpoint, http: http, retry: retry)
        case .digitalocean: DigitalOceanClient(token: account.token, endpoint: account.endpoint, http: http, retry: retry)
        }
    }

    /// The API of a provider that has one, for `check-config --probe`.
    public static func api(_ kind: ProviderKind, _ account: CloudAccount) -> (any ServerAPI)? {
        switch kind {
        case .hetzner: ServerHostProvider(.hetzner).api(account)
        case .digitalocean: ServerHostProvider(.digitalocean).api(account)
        default: nil
        }
    }

    public func wake(_ host: HostConfig, progress: @escaping @Sendable (String) async -> Void) async throws(ProviderError) -> HostWake {
        let (server, api) = try client(for: host)
        let steps = Steps(api: api, account: server.account, host: host.name, cloud: cloud, pollInterval: pollInterval, retry: retry)
        var woke = false, last = ""
        while true {
            let current = try await steps.read(server.id)
            if current.status != last { await progress("server \(server.id) is \(current.status)") }
            last = current.status
            switch current.power {
            case .running:
                guard let address = host.address.isEmpty ? current.publicIPv4 : host.address else {
                    throw ProviderError(host: host.name, reason: "server \(server.id) runs but has no public IPv4; set address in deferred.toml", isTransient: false)
                }
                return HostWake(address: address, woke: woke)
            case .off:
                await progress("powering on server \(server.id)")
                try await steps.settle(try await steps.power(.on, server.id))
                woke = true
            case .starting:
                woke = true
            case .settling:
                // A stopping server is powered on once it is off.
                break
            case .unusable:
                throw ProviderError(host: host.name, reason: "server \(server.id) is \(current.status) and cannot be powered on", isTransient: false)
            }
            try? await Task.sleep(for: pollInterval)
            if Task.isCancelled { throw ProviderError(host: host.name, reason: "the wake was cancelled", isTransient: true) }
        }
    }

    /// `terminate` deletes the server (a fleet's with `when_idle = "delete"`).
    public func sleep(_ host: HostConfig, terminate: Bool) async throws(ProviderError) {
        let (server, api) = try client(for: host)
        let steps = Steps(api: api, account: server.account, host: host.name, cloud: cloud, pollInterval: pollInterval, retry: retry)
        if terminate { return try await steps.delete(server.id) }
        if try await steps.read(server.id).power == .off { return }
        try await steps.settle(try await steps.power(.shutdown, server.id))
        if try await steps.becomesOff(server.id, within: shutdownGrace) { return }
        // The system did not react to ACPI: the power is cut.
        try await steps.settle(try await steps.power(.off, server.id))
        guard try await steps.becomesOff(server.id, within: .seconds(120)) else {
            throw ProviderError(host: host.name, reason: "server \(server.id) is still not off after a power-off", isTransient: true)
        }
    }

    /// A new server from the fleet's image, with deferred's labels; it starts by itself, and
    /// the wake that follows waits for it to run.
    public func launch(_ fleet: FleetConfig, tags: [String: String]) async throws(ProviderError) -> FleetLaunch {
        guard fleet.provider == cloud.kind, let account = fleet.account else {
            throw ProviderError(host: fleet.name, reason: "is not a \(cloud.name) fleet with a token_env", isTransient: false)
        }
        let steps = Steps(api: api(account), account: account, host: fleet.name, cloud: cloud, pollInterval: pollInterval, retry: retry)
        let order = ServerOrder(name: Self.serverName(tags["deferred-host"] ?? fleet.name), image: fleet.imageID, type: fleet.instanceType,
                                location: fleet.region.isEmpty ? nil : fleet.region, sshKeys: fleet.sshKeys, userData: fleet.userData,
                                labels: tags.filter { $0.key != "Name" })
        return FleetLaunch(instanceID: try await steps.create(order).id)
    }

    /// Servers labelled as deferred's in every account the configuration uses for this cloud
    /// that the store does not know, or knows as stopped although they run. A stray of a
    /// fleet that deletes its idle servers is deleted; any other is powered off. A server
    /// younger than its fleet's boot timeout is left alone: its launch may not be recorded yet.
    public func reconcile(_ config: DeferredConfig, tracked: [String: Bool], dryRun: Bool, now: Date) async -> [String] {
        var accounts: [String: CloudAccount] = [:]
        for host in config.hosts where host.provider == cloud.kind { if let account = host.server?.account { accounts[account.key] = account } }
        for fleet in config.fleets where fleet.provider == cloud.kind { if let account = fleet.account { accounts[account.key] = account } }
        var reports: [String] = []
        for key in accounts.keys.sorted() {
            let account = accounts[key]!
            let steps = Steps(api: api(account), account: account, host: cloud.name, cloud: cloud, pollInterval: pollInterval, retry: retry)
            let servers: [CloudServerState]
            do { servers = try await steps.api.managedServers() } catch {
                reports.append("could not list deferred's \(cloud.name) servers (\(account)): \(error)")
                continue
            }
            for server in servers where server.power != .unusable && tracked[server.id] != true {
                let fleet = server.labels["deferred-fleet"].flatMap { label in config.fleets.first { $0.provider == cloud.kind && steps.api.kept(label: $0.name) == label } }
                let young = (server.created.map { now.timeIntervalSince($0) } ?? .infinity) < (fleet?.login.wakeTimeoutMinutes ?? 10) * 60
                let unknown = tracked[server.id] == nil
                let delete = unknown && fleet?.whenIdle == .terminate
                guard !young, delete || server.power != .off else { continue }
                let why = unknown ? "not known to deferred's store" : "running although the store has it stopped"
                let what = "\(cloud.name) server \(server.id)\(server.labels["deferred-fleet"].map { " (fleet \($0))" } ?? "") is \(why)"
                if dryRun {
                    reports.append("would \(delete ? "delete" : "stop") \(what)")
                    continue
                }
                do throws(ProviderError) {
                    if delete { try await steps.delete(server.id) } else { try await steps.settle(try await steps.power(.off, server.id)) }
                    reports.append("\(delete ? "deleted" : "stopped") \(what)")
                } catch {
                    reports.append("could not \(delete ? "delete" : "stop") \(what): \(error.reason)")
                }
            }
        }
        return reports
    }

    /// A host name the clouds take: lower-case letters, digits and dashes, at most 63.
    static func serverName(_ name: String) -> String {
        var text = String(name.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "-" }.prefix(63))
        while text.hasSuffix("-") { text.removeLast() }
        while text.hasPrefix("-") { text.removeFirst() }
        return text.isEmpty ? "deferred" : text
    }

    private func client(for host: HostConfig) throws(ProviderError) -> (CloudServer, any ServerAPI) {
        guard let server = host.server else {
            throw ProviderError(host: host.name, reason: "has provider \"\(cloud.kind.rawValue)\" but no \(cloud.idKey)", isTransient: false)
        }
        return (server, api(server.account))
    }
}

extension CloudAccount {
    /// One listing per token and API, whichever hosts and fleets share them.
    var key: String { "\(endpoint ?? "") \(tokenEnv)" }
}
