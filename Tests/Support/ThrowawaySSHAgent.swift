import DeferredCore
import DeferredDemo
import Foundation

/// An ssh-agent of our own on a socket in a temporary folder, holding one key: for testing
/// agent authentication without touching the user's agent.
public final class ThrowawaySSHAgent: @unchecked Sendable {
    public let socket: String
    private let process: SpawnedProcess

    /// Starts `ssh-agent -D` (in the foreground, so we own and reap it) and adds `key`.
    public static func start(socketIn directory: String, holding key: String) async throws -> ThrowawaySSHAgent {
        let socket = directory + "/agent.sock"
        let process = try SpawnedProcess(executable: "/usr/bin/ssh-agent", arguments: ["-D", "-a", socket],
                                         stderrPath: directory + "/agent.log")
        let agent = ThrowawaySSHAgent(socket: socket, process: process)
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) {
            try await Task.sleep(for: .milliseconds(20))
        }
        try LocalCommand.run(["ssh-add", "-q", key], environment: ["SSH_AUTH_SOCK": socket, "PATH": "/usr/bin:/bin"])
        return agent
    }

    private init(socket: String, process: SpawnedProcess) {
        self.socket = socket
        self.process = process
    }

    public func stop() { process.terminate() }

    deinit { stop() }
}
