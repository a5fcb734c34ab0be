import DeferredCore
import Foundation

/// The hosts as `GET /api/hosts` and `deferred hosts --json` show them: every host the store
/// knows that the configuration still names (or a fleet made), and the fleets whose launches
/// are held back. Times are RFC 3339; a field without a value is left out.
public struct HostListing: Encodable, Sendable {
    public struct Host: Encodable, Sendable {
        let name: String, provider: String, state: String, activeJobs: Int, idleSince: String?, lastJob: String?
        let fleet: String?, instanceID: String?

        enum CodingKeys: String, CodingKey {
            case name, provider, state, fleet
            case activeJobs = "active_jobs", idleSince = "idle_since", lastJob = "last_job", instanceID = "instance_id"
        }

        init(_ host: HostStatus) {
            name = host.name
            provider = host.provider
            state = host.state.rawValue
            activeJobs = host.activeJobs
            idleSince = host.activeJobs == 0 ? host.idleSince.map(RFC3339.string) : nil
            lastJob = host.lastJobID?.rawValue
            fleet = host.fleet
            instanceID = host.instanceID
        }
    }

    public struct FleetHold: Encodable, Sendable {
        let fleet: String, failures: Int, lastReason: String, nextLaunch: String
        enum CodingKeys: String, CodingKey { case fleet, failures, lastReason = "last_reason", nextLaunch = "next_launch" }

        init(_ failures: FleetBootFailures) {
            fleet = failures.fleet
            self.failures = failures.count
            lastReason = failures.lastReason
            nextLaunch = RFC3339.string(failures.nextLaunch)
        }
    }

    public let hosts: [Host]
    public let fleetHolds: [FleetHold]

    enum CodingKeys: String, CodingKey { case hosts, fleetHolds = "fleet_holds" }

    /// Compact, keys sorted, as every JSON deferred writes.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

public extension HostRegistry {
    /// The listing of the hosts `config` still has: its own, and those its fleets made.
    func listing(for config: DeferredConfig) async throws(StoreError) -> HostListing {
        let hosts = try await self.hosts().filter { config.host(named: $0.name) != nil || $0.fleet != nil }
        return HostListing(hosts: hosts.map(HostListing.Host.init), fleetHolds: try await fleetBootFailures().map(HostListing.FleetHold.init))
    }
}
