import DeferredCore
import Foundation

/// A real OpenSSH `sshd` on loopback with a config, host key, client key and known_hosts made
/// for it in a folder of its own: the build host of `deferred demo` and of the tests.
public final class ThrowawaySSHD: @unchecked Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case notInstalled(String)
        case didNotStart(log: String)

        public var description: String {
            switch self {
            case .notInstalled(let path): "no sshd at \(path): run scripts/setup (it installs openssh-server)"
            case .didNotStart(let log): "sshd did not start: \(log)"
            }
        }
    }

    public let directory: String
    public let port: Int
    public let user: String
    /// Private key that the sshd accepts for `user`.
    public let clientKey: String
    /// known_hosts with this sshd's host key for `[127.0.0.1]:port`.
    public let knownHosts: String
    public let hostPublicKey: String
    /// The HOME sessions get, when not the user's own (`isolatedHome`).
    public let home: String?
    private var current: SpawnedProcess
    private let lock = NSLock()
    private var process: SpawnedProcess { lock.withLock { current } }
    /// The listening sshd; each connection is served by processes it forks.
    public var pid: pid_t { process.pid }

    private init(directory: String, port: Int, user: String, clientKey: String, knownHosts: String, hostPublicKey: String,
                 home: String?, process: SpawnedProcess) {
        self.home = home
        self.directory = directory
        self.port = port
        self.user = user
        self.clientKey = clientKey
        self.knownHosts = knownHosts
        self.hostPublicKey = hostPublicKey
        self.current = process
    }

    public static let sshdPath = "/usr/sbin/sshd"

    /// Makes keys and config in `directory` (a new temporary folder when nil) and starts sshd
    /// on a free loopback port, returning once it answers with its banner. With
    /// `isolatedHome`, sessions get `directory/home` as HOME: the user's rc files do not run
    /// (a machine's own, such as pyenv's rehash, print into every job's stderr when many
    /// shells start at once) and `~/.deferred` is this sshd's alone.
    public static func start(in directory: String? = nil, isolatedHome: Bool = false) async throws -> ThrowawaySSHD {
        guard FileManager.default.isExecutableFile(atPath: sshdPath) else { throw Failure.notInstalled(sshdPath) }
        let dir = directory ?? NSTemporaryDirectory() + "deferred-sshd-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let hostKey = dir + "/host_ed25519", clientKey = dir + "/client_ed25519"
        for key in [hostKey, clientKey] where !FileManager.default.fileExists(atPath: key) {
            try await LocalKey.makeEd25519(at: key, comment: "deferred-throwaway")
        }
        try FileManager.default.copyItem(atPath: clientKey + ".pub", toPath: dir + "/authorized_keys.tmp")
        _ = try? FileManager.default.removeItem(atPath: dir + "/authorized_keys")
        try FileManager.default.moveItem(atPath: dir + "/authorized_keys.tmp", toPath: dir + "/authorized_keys")
        // sshd wants its privilege-separation folder; Debian makes it only when the service starts.
        try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        let hostPublicKey = try LocalKey.publicKey(of: hostKey)
        let home = isolatedHome ? dir + "/home" : nil
        if let home { try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true) }

        var lastLog = ""
        for _ in 0..<5 {
            let port = try FreePort.find()
            let config = dir + "/sshd_config"
            try sshdConfig(directory: dir, port: port, hostKey: hostKey, home: home).write(toFile: config, atomically: true, encoding: .utf8)
            let log = dir + "/sshd.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let process = try SpawnedProcess(executable: sshdPath, arguments: ["-D", "-e", "-f", config], stderrPath: log)
            if await answers(port: port, while: process) {
                let knownHosts = dir + "/known_hosts"
                try "[127.0.0.1]:\(port) \(hostPublicKey)\n".write(toFile: knownHosts, atomically: true, encoding: .utf8)
                return ThrowawaySSHD(directory: dir, port: port, user: currentUser(), clientKey: clientKey,
                                     knownHosts: knownHosts, hostPublicKey: hostPublicKey, home: home, process: process)
            }
            process.terminate()
            lastLog = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        }
        throw Failure.didNotStart(log: lastLog)
    }

    /// Stops sshd. Sessions it forked end with it; call `removeFiles()` to delete the folder too.
    /// The `[[hosts]]` table of a deferred.toml that reaches this sshd, with `extra` lines.
    public func hostTable(name: String, extra: [String] = []) -> String {
        ([
            "[[hosts]]", #"name = "\#(name)""#, #"address = "127.0.0.1""#, "port = \(port)", #"user = "\#(user)""#,
            #"identity = "\#(clientKey)""#, #"known_hosts = "\#(knownHosts)""#,
        ] + extra).joined(separator: "\n")
    }

    public func stop() {
        process.terminate()
    }

    /// Starts sshd again after `stop()`, on the same port with the same keys, as a restart of
    /// the service does; returns once it answers.
    public func startAgain() async throws {
        let log = directory + "/sshd.log"
        let process = try SpawnedProcess(executable: Self.sshdPath, arguments: ["-D", "-e", "-f", directory + "/sshd_config"], stderrPath: log)
        guard await Self.answers(port: port, while: process) else {
            process.terminate()
            throw Failure.didNotStart(log: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        lock.withLock { current = process }
    }

    public func removeFiles() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }

    private static func sshdConfig(directory: String, port: Int, hostKey: String, home: String?) -> String {
        """
        # Made by deferred for a throwaway build host; removed with its folder.
        Port \(port)
        ListenAddress 127.0.0.1
        HostKey \(hostKey)
        PidFile \(directory)/sshd.pid
        AuthorizedKeysFile \(directory)/authorized_keys
        PubkeyAuthentication yes
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PermitRootLogin prohibit-password
        UsePAM no
        StrictModes no
        MaxSessions 64
        MaxStartups 64
        Subsystem sftp /usr/lib/openssh/sftp-server
        LogLevel ERROR
        \(home.map { "SetEnv HOME=\($0)" } ?? "")

        """
    }

    private static func answers(port: Int, while process: SpawnedProcess) async -> Bool {
        for _ in 0..<100 {
            guard process.isRunning else { return false }
            // Its read waits up to a second for a slow sshd: not on the concurrency pool.
            if await OffPool.run({ FreePort.banner(port: port) })?.hasPrefix("SSH-") == true { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    public static func currentUser() -> String {
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return ProcessInfo.processInfo.environment["USER"] ?? "root"
    }
}
