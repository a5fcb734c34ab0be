import DeferredCore
import DeferredProviders
import DeferredStore
import Foundation
import Logging

/// What `deferred hosts` does: the hosts as the store sees them, and waking or stopping one
/// by hand, with the same store transactions the dispatcher and the idle sleeper use.
public struct HostControl: HostCommands {
    /// The idle sleeper knows the same config, store and providers, and how to find a host.
    let sleeper: IdleSleeper
    var config: DeferredConfig { sleeper.config }
    var store: any JobStore { sleeper.store }
    var providers: HostProviders { sleeper.providers }

    /// The serving dispatcher's waker, so a wake from the dashboard joins the one a job started.
    let waker: HostWaker

    public init(config: DeferredConfig, store: any JobStore, providers: HostProviders, waker: HostWaker? = nil) {
        sleeper = IdleSleeper(config: config, store: store, providers: providers)
        self.waker = waker ?? HostWaker(store: store, providers: providers)
    }

    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
    }

    /// One line per host: name, provider, state, jobs, idle time, last job.
    public func table(now: Date = Date()) async throws -> [[String]] {
        try await store.register(hosts: config.hosts)
        var rows = [["NAME", "PROVIDER", "STATE", "JOBS", "IDLE FOR", "LAST JOB"]]
        for host in try await store.hosts() where config.host(named: host.name) != nil || host.fleet != nil {
            let idle = host.activeJobs == 0 ? host.idleSince.map { DurationText.minutes(now.timeIntervalSince($0)) } ?? "-" : "-"
            rows.append([host.name, host.fleet.map { "\(host.provider) (\($0))" } ?? host.provider, host.state.rawValue,
                         String(host.activeJobs), idle, host.lastJobID?.rawValue ?? "-"])
        }
        return rows
    }

    /// The hosts as `GET /api/hosts` lists them.
    public func listing() async throws -> HostListing {
        try await store.register(hosts: config.hosts)
        return try await store.listing(for: config)
    }

    /// Fleets whose new instances keep failing to answer, and when they launch again.
    public func fleetNotes() async throws -> [String] {
        try await store.fleetBootFailures().map(\.summary)
    }

    /// Starts the host's machine and waits until SSH answers, within its wake timeout, the way
    /// a job's wake does; its idle clock starts then.
    public func wake(_ name: String, progress: @escaping @Sendable (String) async -> Void) async throws -> HostWake {
        let host = try await resolve(name)
        try await store.register(hosts: config.hosts)
        return try await waker.wake(host, log: Logger(label: "deferred.hosts"), progress: { step, _ in await progress(step) })
    }

    /// The dashboard's wake: the same, with no one to tell the progress to.
    public func wake(_ name: String) async throws {
        _ = try await wake(name) { _ in }
    }

    /// Stops the host's machine now, unless a job is on it.
    public func sleep(_ name: String) async throws {
        let host = try await resolve(name)
        guard host.provider != .static else { throw Refusal(description: "\(name) is a static host; deferred does not stop it") }
        try await store.register(hosts: config.hosts)
        // The claim idle-sleep makes, without the idle time: only a host with no job.
        guard try await !store.idleHosts(among: [name], idleSince: .distantFuture, claim: true).isEmpty else {
            let state = try await store.host(named: name)
            throw Refusal(description: state?.activeJobs ?? 0 > 0 ? "\(name) has a job; it was left running"
                                                                  : "\(name) is \(state?.state.rawValue ?? "unknown") already")
        }
        do {
            try await providers.provider(for: host).sleep(host, terminate: false)
            try await store.markHost(name, .stopped)
        } catch {
            try? await store.markHost(name, .unknown)
            throw error
        }
    }

    private func resolve(_ name: String) async throws -> HostConfig {
        guard let host = sleeper.host(named: name, status: try await store.host(named: name)) else {
            throw Refusal(description: "no host is named '\(name)'")
        }
        return host
    }
}
