import DeferredCore
import DeferredProviders
import DeferredStore
import Foundation

/// Puts hosts that can sleep once they have been idle longer than `[idle] timeout_minutes`.
/// The choice of hosts and their `stopping` mark are one store transaction, the same kind
/// the dispatcher leases in, so a host that has a job is never stopped. Run by `serve` on
/// a timer and by `deferred idle-sleep` from cron; both share the store.
public struct IdleSleeper: Sendable {
    let config: DeferredConfig
    let store: any JobStore
    let providers: HostProviders

    public init(config: DeferredConfig, store: any JobStore, providers: HostProviders) {
        self.config = config
        self.store = store
        self.providers = providers
    }

    public struct Report: Sendable, CustomStringConvertible {
        public var host: String
        public var idleMinutes: Int
        /// False for a dry run, or when the provider refused.
        public var slept: Bool
        public var problem: String?
        /// A fleet's host with `when_idle = "terminate"`: its instance is gone.
        public var terminated = false
        /// What reconciliation did about an instance outside the store's knowledge.
        public var note: String? = nil

        public var description: String {
            if let note { return note }
            if let problem { return "could not stop \(host) (idle \(idleMinutes) min): \(problem)" }
            return slept ? "\(terminated ? "terminated" : "stopped") \(host), idle \(idleMinutes) min"
                         : "would stop \(host), idle \(idleMinutes) min"
        }
    }

    /// One pass: every idle cloud host is stopped (or only listed, with `dryRun`).
    public func pass(now: Date = Date(), dryRun: Bool = false) async -> [Report] {
        let cloudHosts = Set(config.hosts.filter { $0.provider != .static }.map(\.name))
        guard !cloudHosts.isEmpty || !config.fleets.isEmpty else { return [] }
        let cutoff = now.addingTimeInterval(-config.idle.timeoutMinutes * 60)
        let idle: [HostStatus]
        do {
            idle = try await store.idleHosts(among: cloudHosts, idleSince: cutoff, claim: !dryRun)
        } catch {
            return [Report(host: "*", idleMinutes: 0, slept: false, problem: "cannot read the store: \(error)")]
        }
        var reports: [Report] = []
        for status in idle {
            let minutes = Int(now.timeIntervalSince(status.idleSince ?? now) / 60)
            let fleet = status.fleet.flatMap(config.fleet(named:))
            guard !dryRun, let host = host(named: status.name, status: status) else {
                reports.append(Report(host: status.name, idleMinutes: minutes, slept: false))
                continue
            }
            let terminate = fleet?.whenIdle == .terminate
            do {
                try await providers.provider(for: host).sleep(host, terminate: terminate)
                if terminate { try? await store.removeHost(host.name) } else { try? await store.markHost(host.name, .stopped) }
                reports.append(Report(host: host.name, idleMinutes: minutes, slept: true, terminated: terminate))
            } catch {
                // Its state is now the cloud's to say; the next wake asks it.
                try? await store.markHost(host.name, .unknown)
                reports.append(Report(host: host.name, idleMinutes: minutes, slept: false, problem: error.description, terminated: false))
            }
        }
        return reports + (await reconcile(dryRun: dryRun, now: now)).map {
            Report(host: "-", idleMinutes: 0, slept: !dryRun && ($0.hasPrefix("stopped") || $0.hasPrefix("deleted")), problem: nil,
                   terminated: $0.hasPrefix("deleted"), note: $0)
        }
    }

    /// A configured host, or one a fleet made (known by its store row).
    func host(named name: String, status: HostStatus?) -> HostConfig? {
        if let host = config.host(named: name) { return host }
        guard let status, let fleet = status.fleet.flatMap(config.fleet(named:)), let id = status.instanceID else { return nil }
        return fleet.host(named: name, instanceID: id)
    }

    /// Machines labelled as deferred's that run although the store does not know them, or
    /// has them stopped, asked of each provider the configuration uses.
    func reconcile(dryRun: Bool, now: Date) async -> [String] {
        let kinds = Set(config.hosts.map(\.provider) + config.fleets.map(\.provider))
        guard !kinds.isEmpty, let statuses = try? await store.hosts() else { return [] }
        var tracked: [ProviderKind: [String: Bool]] = [:]
        for status in statuses {
            let host = config.host(named: status.name) ?? status.fleet.flatMap(config.fleet(named:))?.login
            guard let host, let id = status.instanceID ?? host.machineID else { continue }
            tracked[host.provider, default: [:]][id] = status.state != .stopped
        }
        var reports: [String] = []
        for kind in ProviderKind.allCases where kinds.contains(kind) {
            reports += await providers.provider(of: kind).reconcile(config, tracked: tracked[kind] ?? [:], dryRun: dryRun, now: now)
        }
        return reports
    }
}
