import DeferredCloud
import DeferredCore
import Foundation

/// Hosts that are Hetzner Cloud servers: powered on when work comes, shut down when idle (an
/// ACPI shutdown, then a power-off after `shutdownGrace` for a system that ignores it). Hetzner
/// bills a server that is off: fleets that delete idle servers are the way to pay nothing.
public struct HetznerHostProvider: HostProvider {
    /// Between reads of a server or an action while it changes.
    public var pollInterval: Duration
    /// How long a server may take to shut down by itself before its power is cut.
    public var shutdownGrace: Duration
    let http: HTTPClient
    let retry: RetryPolicy

    public init(pollInterval: Duration = .seconds(2), shutdownGrace: Duration = .seconds(120), http: HTTPClient = HTTPClient(),
                retry: RetryPolicy = RetryPolicy()) {
        self.pollInterval = pollInterval
        self.shutdownGrace = shutdownGrace
        self.http = http
        self.retry = retry
    }

    public func wake(_ host: HostConfig, progress: @escaping @Sendable (String) async -> Void) async throws(ProviderError) -> HostWake {
        let (server, api) = try client(for: host)
        var woke = false, last = ""
        while true {
            let current = try await read(server, host, api)
            if current.status != last { await progress("server \(server.id) is \(current.status)") }
            last = current.status
            switch current.status {
            case "running":
                guard let address = host.address.isEmpty ? current.publicIPv4 : host.address else {
                    throw ProviderError(host: host.name, reason: "server \(server.id) runs but has no public IPv4; set address in deferred.toml", isTransient: false)
                }
                return HostWake(address: address, woke: woke)
            case "off":
                await progress("powering on server \(server.id)")
                try await settle(try await act("poweron", server, host, api), server, host, api)
                woke = true
            case "starting", "initializing", "stopping", "migrating", "rebuilding":
                // Settling: a stopping server is powered on once it is off.
                woke = woke || current.status == "starting"
            default:
                throw ProviderError(host: host.name, reason: "server \(server.id) is \(current.status) and cannot be powered on", isTransient: false)
            }
            try? await Task.sleep(for: pollInterval)
            if Task.isCancelled { throw ProviderError(host: host.name, reason: "the wake was cancelled", isTransient: true) }
        }
    }

    public func sleep(_ host: HostConfig, terminate: Bool) async throws(ProviderError) {
        let (server, api) = try client(for: host)
        if try await read(server, host, api).status == "off" { return }
        try await settle(try await act("shutdown", server, host, api), server, host, api)
        if try await becomesOff(server, host, api, within: shutdownGrace) { return }
        // The system did not react to ACPI: the power is cut.
        try await settle(try await act("poweroff", server, host, api), server, host, api)
        guard try await becomesOff(server, host, api, within: .seconds(120)) else {
            throw ProviderError(host: host.name, reason: "server \(server.id) is still not off after a power-off", isTransient: true)
        }
    }

    public func launch(_ fleet: FleetConfig, tags: [String: String]) async throws(ProviderError) -> FleetLaunch {
        throw .notForFleets(fleet, "a Hetzner host (Hetzner fleets are still to come)")
    }

    // MARK: Steps

    private func client(for host: HostConfig) throws(ProviderError) -> (HetznerServer, HetznerClient) {
        guard let server = host.hetzner else {
            throw ProviderError(host: host.name, reason: "has provider \"hetzner\" but no server_id", isTransient: false)
        }
        return (server, HetznerClient(token: server.token, endpoint: server.endpoint, http: http, retry: retry))
    }

    private func read(_ server: HetznerServer, _ host: HostConfig, _ api: HetznerClient) async throws(ProviderError) -> HetznerClient.Server {
        do { return try await api.server(server.id) } catch { throw failure(error, server, host, doing: "cannot read server \(server.id)") }
    }

    private func act(_ command: String, _ server: HetznerServer, _ host: HostConfig, _ api: HetznerClient) async throws(ProviderError) -> HetznerClient.Action {
        do { return try await api.power(command, server: server.id) } catch { throw failure(error, server, host, doing: "cannot \(command) server \(server.id)") }
    }

    /// Waits for the action to end; an action that ends in error is the wake's or sleep's.
    private func settle(_ started: HetznerClient.Action, _ server: HetznerServer, _ host: HostConfig, _ api: HetznerClient) async throws(ProviderError) {
        var action = started
        while action.status == "running" {
            try? await Task.sleep(for: pollInterval)
            if Task.isCancelled { throw ProviderError(host: host.name, reason: "cancelled waiting for \(action.command)", isTransient: true) }
            do { action = try await api.action(action.id) } catch { throw failure(error, server, host, doing: "cannot follow action \(action.id)") }
        }
        if action.status == "error" {
            throw ProviderError(host: host.name, reason: "\(action.command) of server \(server.id) failed: \(action.error ?? "no reason given")", isTransient: true)
        }
    }

    private func becomesOff(_ server: HetznerServer, _ host: HostConfig, _ api: HetznerClient, within limit: Duration) async throws(ProviderError) -> Bool {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            if try await read(server, host, api).status == "off" { return true }
            try? await Task.sleep(for: pollInterval)
        }
        return false
    }

    /// A refused token names the variable it came from (never the token); everything but a
    /// missing server is worth another try later, so the job waits in the queue.
    private func failure(_ error: CloudError, _ server: HetznerServer, _ host: HostConfig, doing what: String) -> ProviderError {
        if case .rest(let refusal) = error, refusal.status == 401 || refusal.status == 403 {
            return ProviderError(host: host.name, reason: "\(what): Hetzner refused the API token in \(server.tokenEnv) (\(refusal.status) \(refusal.code)); set \(server.tokenEnv) to a read & write token of the server's project",
                                 isTransient: true)
        }
        if case .rest(let refusal) = error, refusal.status == 404 {
            return ProviderError(host: host.name, reason: "\(what): Hetzner has no server \(server.id) in the token's project", isTransient: false)
        }
        return ProviderError(host: host.name, reason: "\(what): \(error)", isTransient: true)
    }
}
