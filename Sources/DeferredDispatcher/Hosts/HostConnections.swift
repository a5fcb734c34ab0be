import DeferredCore
import DeferredSSH

/// One SSH connection per host, kept open while the host stays up and reused by its jobs.
actor HostConnections {
    private var sessions: [String: SSHSession] = [:]
    private var connecting: [String: Task<SSHSession, any Error>] = [:]

    func session(for host: HostConfig) async throws(SSHError) -> SSHSession {
        if let session = sessions[host.name], await session.isConnected { return session }
        sessions[host.name] = nil
        // Jobs starting together on one host share one connect.
        let task = connecting[host.name] ?? Task {
            try await SSHSession.connect(to: SSHEndpoint(
                host: host.address, port: host.port, user: host.user,
                identityFile: host.identity, knownHostsFile: host.knownHosts))
        }
        connecting[host.name] = task
        defer { connecting[host.name] = nil }
        do {
            let session = try await task.value
            sessions[host.name] = session
            return session
        } catch let error as SSHError {
            throw error
        } catch {
            throw .connectFailed(host: host.address, port: host.port, reason: "\(error)")
        }
    }

    /// Forgets a connection that failed, so the next job connects afresh.
    func drop(_ hostName: String) async {
        await sessions.removeValue(forKey: hostName)?.disconnect()
    }

    /// Forgets `broken` if it is still the host's connection: another job may have made a
    /// new one meanwhile, which stays.
    func drop(_ hostName: String, ifStill broken: SSHSession) async {
        guard sessions[hostName] === broken else { return }
        await drop(hostName)
    }

    func closeAll() async {
        for session in sessions.values { await session.disconnect() }
        sessions.removeAll()
    }
}
