import DeferredCore
import Foundation
import PostgresNIO

// Hosts: state, idle clock, the idle claim.
extension PostgresJobStore {
    public func register(hosts: [HostConfig], at: Date) async throws(StoreError) {
        try await transaction { c in
            for host in hosts {
                // A static host is always up; a cloud host's state is learnt when it is first
                // woken. Either way its idle clock starts now. A row another server made stays.
                let state = (host.provider == .static ? HostState.ready : .unknown).rawValue
                try await c.sql("""
                    INSERT INTO host (name, provider, state, idle_since) VALUES (\(host.name), \(host.provider.rawValue), \(state), \(at.timeIntervalSince1970))
                    ON CONFLICT (name) DO NOTHING
                    """)
            }
        }
    }

    public func hosts() async throws(StoreError) -> [HostStatus] {
        try await read { c in try await Self.hostStatuses(c, "SELECT \(unescaped: Self.hostColumns) FROM host h ORDER BY h.name") }
    }

    public func host(named name: String) async throws(StoreError) -> HostStatus? {
        try await read { c in try await Self.hostStatuses(c, "SELECT \(unescaped: Self.hostColumns) FROM host h WHERE h.name = \(name)").first }
    }

    public func recordInstance(_ host: String, instanceID: String) async throws(StoreError) {
        try await transaction { c in
            try await c.sql("UPDATE host SET instance_id = \(instanceID), state = \(HostState.waking.rawValue) WHERE name = \(host)")
        }
    }

    public func removeHost(_ name: String) async throws(StoreError) {
        try await transaction { c in try await c.sql("DELETE FROM host WHERE name = \(name)") }
    }

    public func markHost(_ name: String, _ state: HostState) async throws(StoreError) {
        try await transaction { c in try await c.sql("UPDATE host SET state = \(state.rawValue) WHERE name = \(name)") }
    }

    public func markWoken(_ name: String, at: Date) async throws(StoreError) {
        try await transaction { c in
            try await c.sql("SELECT name FROM host WHERE name = \(name) FOR UPDATE")
            let busy = try await Self.activeJobs(c, host: name) > 0
            try await c.sql("""
                UPDATE host SET state = \((busy ? HostState.busy : .ready).rawValue), idle_since = \(busy ? nil : at.timeIntervalSince1970)
                WHERE name = \(name)
                """)
        }
    }

    /// The hosts' rows are locked while they are looked at and claimed: a lease on another
    /// server waits, then finds them `stopping`.
    public func idleHosts(among names: Set<String>, idleSince cutoff: Date, claim: Bool) async throws(StoreError) -> [HostStatus] {
        try await transaction { c in
            try await c.sql("SELECT name FROM host WHERE name = ANY(\(Array(names))) OR fleet IS NOT NULL ORDER BY name FOR UPDATE")
            var found: [HostStatus] = []
            for host in try await Self.hostStatuses(c, """
                SELECT \(unescaped: Self.hostColumns) FROM host h WHERE h.name = ANY(\(Array(names))) OR h.fleet IS NOT NULL ORDER BY h.name
                """) {
                guard host.state == .ready || host.state == .unknown, let idleSince = host.idleSince,
                      idleSince.timeIntervalSince1970 <= cutoff.timeIntervalSince1970, host.activeJobs == 0 else { continue }
                if claim {
                    try await c.sql("UPDATE host SET state = \(HostState.stopping.rawValue) WHERE name = \(host.name)")
                }
                found.append(host)
            }
            return found
        }
    }

    public func recordBootFailure(fleet: String, reason: String, at: Date) async throws(StoreError) {
        try await transaction { c in
            try await c.sql("""
                INSERT INTO fleet_boot_failure (fleet, count, last_reason, last_at) VALUES (\(fleet), 1, \(StoredText.kept(reason)), \(at.timeIntervalSince1970))
                ON CONFLICT (fleet) DO UPDATE SET count = fleet_boot_failure.count + 1, last_reason = excluded.last_reason,
                    last_at = excluded.last_at
                """)
        }
    }

    public func recordBootSuccess(fleet: String) async throws(StoreError) {
        try await transaction { c in try await c.sql("DELETE FROM fleet_boot_failure WHERE fleet = \(fleet)") }
    }

    public func fleetBootFailures() async throws(StoreError) -> [FleetBootFailures] {
        try await read { c in try await Self.bootFailures(c, fleet: nil) }
    }
}
