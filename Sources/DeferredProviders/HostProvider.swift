import DeferredCore
import Foundation

/// What a cloud (or the lack of one) does for deferred: bring a host up and say where SSH
/// finds it, and put it to sleep. The static provider does neither; EC2 starts and stops
/// instances; Hetzner and DigitalOcean power servers through their APIs; `command` and `wol`
/// start machines of the operator's.
public protocol HostProvider: Sendable {
    /// Brings `host` up if it is not, telling each step to `progress`, and returns the
    /// address SSH connects to. Returns once the machine runs; SSH may still be starting.
    func wake(_ host: HostConfig, progress: @escaping @Sendable (String) async -> Void) async throws(ProviderError) -> HostWake

    /// Stops (or, with `terminate`, removes) `host`'s machine.
    func sleep(_ host: HostConfig, terminate: Bool) async throws(ProviderError)

    /// Makes a new machine for `fleet`, tagged with `tags`.
    func launch(_ fleet: FleetConfig, tags: [String: String]) async throws(ProviderError) -> FleetLaunch

    /// Machines tagged `managed-by=deferred`, wherever `config`'s hosts and fleets of this
    /// provider live, that run although the store does not know them, or knows them as
    /// stopped: stopped (unless `dryRun`) and reported. `tracked`: machine id → whether the
    /// store has it up.
    func reconcile(_ config: DeferredConfig, tracked: [String: Bool], dryRun: Bool, now: Date) async -> [String]
}

extension HostProvider {
    public func reconcile(_ config: DeferredConfig, tracked: [String: Bool], dryRun: Bool, now: Date) async -> [String] { [] }
}

/// How a wake went: where SSH goes, and whether the machine had to be started.
public struct HostWake: Sendable, Equatable {
    public var address: String
    public var woke: Bool

    public init(address: String, woke: Bool) {
        self.address = address
        self.woke = woke
    }
}

/// A new machine: its instance id, and what the launch did otherwise than asked (a spot
/// request that fell back to on-demand), for the job's events.
public struct FleetLaunch: Sendable, Equatable {
    public var instanceID: String
    public var note: String?

    public init(instanceID: String, note: String? = nil) {
        self.instanceID = instanceID
        self.note = note
    }
}

/// Why a provider could not wake or sleep a host.
public struct ProviderError: Error, Sendable, CustomStringConvertible {
    public let host: String
    public let reason: String
    /// Worth trying again later (throttling, a timeout, a host still stopping).
    public let isTransient: Bool

    public init(host: String, reason: String, isTransient: Bool) {
        self.host = host
        self.reason = reason
        self.isTransient = isTransient
    }

    public var description: String { "host \(host): \(reason)" }

    /// A fleet asked a provider of single machines (`what`) to launch one.
    static func notForFleets(_ fleet: FleetConfig, _ what: String) -> ProviderError {
        ProviderError(host: fleet.name, reason: "fleets launch EC2 instances, Hetzner servers or DigitalOcean droplets; \(what) is one machine, made by hand", isTransient: false)
    }
}

/// A machine that is always up at its configured address.
public struct StaticHostProvider: HostProvider {
    public init() {}

    public func wake(_ host: HostConfig, progress: @escaping @Sendable (String) async -> Void) async throws(ProviderError) -> HostWake {
        HostWake(address: host.address, woke: false)
    }

    public func sleep(_ host: HostConfig, terminate: Bool) async throws(ProviderError) {}

    public func launch(_ fleet: FleetConfig, tags: [String: String]) async throws(ProviderError) -> FleetLaunch {
        throw .notForFleets(fleet, "a static host")
    }
}
