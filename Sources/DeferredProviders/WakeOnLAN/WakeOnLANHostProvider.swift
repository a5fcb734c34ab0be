import DeferredCore
import DeferredSSH
import Foundation

/// Machines on the LAN (`provider = "wol"`), the box under the desk: woken by a magic packet,
/// sent again with backoff until its SSH port answers; put to sleep by `sleep_command` over
/// SSH, and asleep once its SSH port stops answering. The wake timeout around it is the
/// waker's, as for every provider.
public struct WakeOnLANHostProvider: HostProvider {
    /// Between magic packets while the machine does not answer: doubling from the first.
    public var resend: RetryPolicy
    /// How often the SSH port is tried while waking or falling asleep.
    public var probeInterval: Duration
    /// How long a machine may take to stop answering after its sleep command.
    public var fallAsleepLimit: Duration

    public init(resend: RetryPolicy = RetryPolicy(base: .seconds(1), cap: .seconds(15), jittered: false),
                probeInterval: Duration = .milliseconds(250), fallAsleepLimit: Duration = .seconds(120)) {
        self.resend = resend
        self.probeInterval = probeInterval
        self.fallAsleepLimit = fallAsleepLimit
    }

    public func wake(_ host: HostConfig, progress: @escaping @Sendable (String) async -> Void) async throws(ProviderError) -> HostWake {
        let wake = try settings(of: host)
        if await answers(host) { return HostWake(address: host.address, woke: false) }
        var sent = 0
        while true {
            // Off the pool: a broadcast address given as a name is a DNS lookup.
            if let failure = await OffPool.run({ MagicPacket.send(wake) }) {
                throw ProviderError(host: host.name, reason: "cannot send the Wake-on-LAN packet: \(failure)", isTransient: true)
            }
            sent += 1
            await progress("sent a Wake-on-LAN packet for \(wake.macText) to \(wake.broadcast):\(wake.port)\(sent > 1 ? " (\(sent) so far)" : "")")
            let next = ContinuousClock.now + resend.delay(beforeRetry: sent - 1)
            while ContinuousClock.now < next {
                try? await Task.sleep(for: probeInterval)
                if Task.isCancelled { throw ProviderError(host: host.name, reason: "the wake was cancelled", isTransient: true) }
                if await answers(host) { return HostWake(address: host.address, woke: true) }
            }
        }
    }

    public func sleep(_ host: HostConfig, terminate: Bool) async throws(ProviderError) {
        let wake = try settings(of: host)
        if await !answers(host) { return }
        do {
            let session = try await SSHSession.connect(to: SSHEndpoint(host: host.address, port: host.port, user: host.user,
                                                                       identityFile: host.identity, knownHostsFile: host.knownHosts))
            defer { Task { await session.disconnect() } }
            let ran = try await session.run(wake.sleepCommand)
            // A machine that suspends may cut the connection before the status comes: that is fine.
            if let status = ran.exit.status, status != 0 {
                let said = String(decoding: ran.stderr + ran.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                throw ProviderError(host: host.name, reason: "sleep_command `\(wake.sleepCommand)` exited \(status)\(said.isEmpty ? "" : ": \(said.suffix(500))")",
                                    isTransient: true)
            }
        } catch let error as ProviderError {
            throw error
        } catch SSHError.connectionLost {
            // Gone to sleep mid-command.
        } catch {
            throw ProviderError(host: host.name, reason: "cannot run sleep_command over SSH: \(error)", isTransient: true)
        }
        let limit = ContinuousClock.now + fallAsleepLimit
        while ContinuousClock.now < limit {
            if await !answers(host) { return }
            try? await Task.sleep(for: probeInterval)
        }
        throw ProviderError(host: host.name, reason: "still answers SSH \(fallAsleepLimit) after sleep_command `\(wake.sleepCommand)`", isTransient: true)
    }

    public func launch(_ fleet: FleetConfig, tags: [String: String]) async throws(ProviderError) -> FleetLaunch {
        throw .notForFleets(fleet, "a Wake-on-LAN host")
    }

    private func settings(of host: HostConfig) throws(ProviderError) -> WakeOnLAN {
        guard let wake = host.wakeOnLAN else {
            throw ProviderError(host: host.name, reason: "has provider \"wol\" but no mac", isTransient: false)
        }
        return wake
    }

    /// Whether the machine's SSH port takes a connection now.
    private func answers(_ host: HostConfig) async -> Bool {
        await TCPProbe.refusal(host: host.address, port: host.port, timeout: .seconds(1)) == nil
    }
}
