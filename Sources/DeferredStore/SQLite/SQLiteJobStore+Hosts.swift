import DeferredCore
import Foundation
import GRDB

// Hosts: state, idle clock, the idle claim.
extension SQLiteJobStore {
    /// Makes a row for every configured host that has none; keeps the state of the others.
    public func register(hosts: [HostConfig], at: Date) async throws(StoreError) {
        try await write { db in
            for host in hosts where try HostRecord.fetchOne(db, key: host.name) == nil {
                // A static host is always up; a cloud host's state is learnt when it is first
                // woken. Either way its idle clock starts now.
                try HostRecord(name: host.name, provider: host.provider.rawValue,
                               state: (host.provider == .static ? HostState.ready : .unknown).rawValue,
                               idleSince: at.timeIntervalSince1970, lastJobID: nil).insert(db)
            }
        }
    }

    public func hosts() async throws(StoreError) -> [HostStatus] {
        try await read { db in
            try HostRecord.order(Column("name")).fetchAll(db).map { try Self.status($0, db) }
        }
    }

    public func host(named name: String) async throws(StoreError) -> HostStatus? {
        try await read { db in try HostRecord.fetchOne(db, key: name).map { try Self.status($0, db) } }
    }

    /// The instance a fleet's host was launched as.
    public func recordInstance(_ host: String, instanceID: String) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "UPDATE host SET instance_id = ?, state = ? WHERE name = ?",
                           arguments: [instanceID, HostState.waking.rawValue, host])
        }
    }

    /// A fleet's host whose instance is gone (terminated, or never came up).
    public func removeHost(_ name: String) async throws(StoreError) {
        try await write { db in _ = try HostRecord.deleteOne(db, key: name) }
    }

    /// Sets a host's state outside a lease or a job's end: woken, stopped, or unknown after a failure.
    public func markHost(_ name: String, _ state: HostState) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: "UPDATE host SET state = ? WHERE name = ?", arguments: [state.rawValue, name])
        }
    }

    /// A host woken by hand: ready, its idle clock starting now unless a job holds it.
    public func markWoken(_ name: String, at: Date) async throws(StoreError) {
        try await write { db in
            let busy = try Self.activeJobs(db, host: name) > 0
            try db.execute(sql: "UPDATE host SET state = ?, idle_since = ? WHERE name = ?",
                           arguments: [(busy ? HostState.busy : .ready).rawValue, busy ? nil : at.timeIntervalSince1970, name])
        }
    }

    /// Hosts among `names` that are up or unknown, idle since `cutoff` or earlier, with no
    /// job. With `claim`, they are marked `stopping` in the same transaction, so no lease
    /// can give them a job while they are put to sleep.
    public func idleHosts(among names: Set<String>, idleSince cutoff: Date, claim: Bool) async throws(StoreError) -> [HostStatus] {
        try await write { db in
            var found: [HostStatus] = []
            // Hosts a fleet made are cloud hosts too, whatever their names.
            for record in try HostRecord.filter(names.contains(Column("name")) || Column("fleet") != nil).order(Column("name")).fetchAll(db) {
                guard let state = HostState(rawValue: record.state), state == .ready || state == .unknown,
                      let idleSince = record.idleSince, idleSince <= cutoff.timeIntervalSince1970,
                      try Self.activeJobs(db, host: record.name) == 0 else { continue }
                if claim {
                    try db.execute(sql: "UPDATE host SET state = ? WHERE name = ?", arguments: [HostState.stopping.rawValue, record.name])
                }
                found.append(HostStatus(name: record.name, provider: record.provider, state: state,
                                        idleSince: Date(timeIntervalSince1970: idleSince),
                                        lastJobID: record.lastJobID.map(JobID.init(rawValue:)), activeJobs: 0,
                                        fleet: record.fleet, instanceID: record.instanceID))
            }
            return found
        }
    }

    public func recordBootFailure(fleet: String, reason: String, at: Date) async throws(StoreError) {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO fleet_boot_failure (fleet, count, last_reason, last_at) VALUES (?, 1, ?, ?)
                ON CONFLICT(fleet) DO UPDATE SET count = count + 1, last_reason = excluded.last_reason, last_at = excluded.last_at
                """, arguments: [fleet, StoredText.kept(reason), at.timeIntervalSince1970])
        }
    }

    public func recordBootSuccess(fleet: String) async throws(StoreError) {
        try await write { db in try db.execute(sql: "DELETE FROM fleet_boot_failure WHERE fleet = ?", arguments: [fleet]) }
    }

    public func fleetBootFailures() async throws(StoreError) -> [FleetBootFailures] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT fleet, count, last_reason, last_at FROM fleet_boot_failure ORDER BY fleet").map(Self.bootFailures)
        }
    }

    static func bootFailures(_ row: Row) -> FleetBootFailures {
        FleetBootFailures(fleet: row["fleet"], count: row["count"], lastReason: row["last_reason"],
                          lastAt: Date(timeIntervalSince1970: row["last_at"]))
    }
}
