import DeferredCore
import DeferredProviders
import DeferredSSH
import DeferredStore
import Foundation
import Logging
import Metrics

/// The one way a host comes up, for the dispatcher, `deferred hosts wake` and the dashboard's
/// Wake button alike: its provider wakes it (or launches a fleet's instance), then SSH is
/// tried until it answers, all within the host's wake (or boot) timeout. Callers waking the
/// same host share one wake. It keeps one SSH connection per host, and the address a cloud
/// host's wake found.
public actor HostWaker {
    let store: any JobStore
    let providers: HostProviders
    let time: any TimeSource
    private let connections = HostConnections()
    /// Wakes in progress, one per host, shared by everyone waiting for it.
    private var wakes: [String: Task<HostWake, any Error>] = [:]
    /// Where SSH finds a cloud host that has no configured address, learnt at its wake.
    private var addresses: [String: String] = [:]

    /// What a wake tells as it goes: the step, and the phase of the host it is in.
    public typealias Progress = @Sendable (_ step: String, _ phase: HostProgress) async -> Void

    public init(store: any JobStore, providers: HostProviders, time: any TimeSource = SystemTime()) {
        self.store = store
        self.providers = providers
        self.time = time
    }

    /// Brings the host up and waits until SSH answers; its idle clock starts unless a job
    /// holds it.
    func wake(_ host: HostConfig, log: Logger, progress: @escaping Progress) async throws(MachineryFailure) -> HostWake {
        let task = wakes[host.name] ?? Task { try await self.performWake(host, log: log, progress: progress) }
        wakes[host.name] = task
        defer { wakes[host.name] = nil }
        do {
            return try await task.value
        } catch let failure as MachineryFailure {
            throw failure
        } catch {
            throw .wake(ProviderError(host: host.name, reason: "\(error)", isTransient: true))
        }
    }

    /// Whether a job leased to `host` must wait for a wake before it connects.
    func mustWake(_ host: HostConfig, wasUp: Bool) -> Bool {
        !wasUp || (host.address.isEmpty && addresses[host.name] == nil)
    }

    /// Launches a new instance for a fleet's host, tagged so reconciliation knows it as ours.
    func launch(_ fleet: FleetConfig, hostName: String, project: String, progress: Progress) async throws(MachineryFailure) -> HostConfig {
        let tags = ["managed-by": "deferred", "deferred-fleet": fleet.name, "deferred-project": project,
                    "deferred-host": hostName, "Name": "deferred \(hostName)"]
        await progress("launching \(fleet.instanceType) from \(fleet.imageID)\(fleet.spot ? " (spot)" : "")", .booting)
        let launch: FleetLaunch
        do throws(ProviderError) {
            launch = try await providers.provider(for: fleet).launch(fleet, tags: tags)
        } catch {
            try? await store.removeHost(hostName)
            throw .wake(error)
        }
        try? await store.recordInstance(hostName, instanceID: launch.instanceID)
        if let note = launch.note { await progress(note, .booting) }
        await progress("launched \(fleet.machineNoun) \(launch.instanceID)", .booting)
        return fleet.host(named: hostName, instanceID: launch.instanceID)
    }

    /// An instance that never came up is of no use: it goes, with its host, and counts as a
    /// boot failure of its fleet, which holds the fleet's next launch back.
    func discard(_ host: HostConfig, of fleet: String, reason: String) async {
        try? await providers.provider(for: host).sleep(host, terminate: true)
        try? await store.removeHost(host.name)
        try? await store.recordBootFailure(fleet: fleet, reason: reason, at: time.now)
    }

    /// The host's SSH connection, opened (or shared with the jobs opening it now) when needed.
    func session(for host: HostConfig) async throws(SSHError) -> SSHSession {
        try await connections.session(for: reachable(host))
    }

    /// Forgets a connection that failed, so the next job connects afresh.
    func drop(_ name: String) async { await connections.drop(name) }

    /// A working connection instead of `broken`, which failed mid-job.
    func reconnect(_ host: HostConfig, replacing broken: SSHSession) async throws(SSHError) -> SSHSession {
        await connections.drop(host.name, ifStill: broken)
        return try await session(for: host)
    }

    /// A host put to sleep: its connection and its address go.
    func forget(_ name: String) async {
        await connections.drop(name)
        addresses[name] = nil
    }

    func closeAll() async { await connections.closeAll() }

    /// The host as SSH reaches it: its configured address, or the one its wake found.
    func reachable(_ host: HostConfig) -> HostConfig {
        var reachable = host
        if host.address.isEmpty { reachable.address = addresses[host.name] ?? "" }
        return reachable
    }

    private func performWake(_ host: HostConfig, log: Logger, progress: @escaping Progress) async throws -> HostWake {
        let provider = providers.provider(for: host)
        log.info("waking host")
        let began = ContinuousClock.now
        do {
            let wake = try await wakeAndWait(host, provider: provider, progress: progress)
            Counter(label: MetricName.hostWakes, dimensions: [("host", host.name), ("outcome", wake.woke ? "woken" : "was_up")]).increment()
            let took = (ContinuousClock.now - began).components
            Metrics.Timer(label: MetricName.hostWake, dimensions: [("host", host.name)])
                .recordNanoseconds(took.seconds * 1_000_000_000 + took.attoseconds / 1_000_000_000)
            return wake
        } catch {
            Counter(label: MetricName.hostWakes, dimensions: [("host", host.name), ("outcome", "failed")]).increment()
            throw error
        }
    }

    private func wakeAndWait(_ host: HostConfig, provider: any HostProvider, progress: @escaping Progress) async throws -> HostWake {
        let wake = try await within(.milliseconds(Int64(host.wakeTimeoutMinutes * 60_000)), host: host) {
            let wake: HostWake
            do throws(ProviderError) {
                wake = try await provider.wake(host) { step in await progress(step, .waking) }
            } catch {
                throw MachineryFailure.wake(error)
            }
            await self.learn(host.name, address: wake.address)
            await progress("waiting for SSH on \(host.address.isEmpty ? wake.address : host.address):\(host.port)", .booting)
            try await self.waitForSSH(host)
            return wake
        }
        try? await store.markWoken(host.name, at: time.now)
        return wake
    }

    private func learn(_ name: String, address: String) { addresses[name] = address }

    /// TCP, banner and authentication, tried with backoff capped at a second.
    private func waitForSSH(_ host: HostConfig) async throws {
        let backoff = RetryPolicy(base: .milliseconds(100), cap: .seconds(1), jittered: false)
        var tries = 0
        while true {
            do {
                _ = try await session(for: host)
                return
            } catch {
                guard error.isTransient else { throw MachineryFailure.runner(.ssh(error)) }
                try await Task.sleep(for: backoff.delay(beforeRetry: tries))
                tries += 1
            }
        }
    }

    /// Runs `body`, or fails with a wake timeout once `limit` has passed on the clock.
    private func within<T: Sendable>(_ limit: Duration, host: HostConfig,
                                     _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let time = self.time
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await time.sleep(for: limit)
                throw MachineryFailure.wakeTimedOut(host: host.name, minutes: host.wakeTimeoutMinutes, key: host.wakeTimeoutKey)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }
}
