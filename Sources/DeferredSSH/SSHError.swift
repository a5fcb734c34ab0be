/// What went wrong talking to a build host, with what the user needs to fix it.
public enum SSHError: Error, Sendable, Equatable, CustomStringConvertible {
    case connectFailed(host: String, port: Int, reason: String)
    case hostKeyUnknown(host: String, port: Int, fingerprint: String, knownHosts: String)
    case hostKeyMismatch(host: String, port: Int, fingerprint: String, knownHosts: String)
    case knownHostsUnreadable(path: String, reason: String)
    case identityUnreadable(path: String)
    case authenticationFailed(user: String, host: String, method: String)
    case channelFailed(host: String, reason: String)
    case connectionLost(host: String, reason: String)

    public var description: String {
        switch self {
        case let .connectFailed(host, port, reason):
            "cannot connect to \(host):\(port): \(reason). Check the host's address and port and that sshd runs there."
        case let .hostKeyUnknown(host, port, fingerprint, knownHosts):
            "the host key of \(host):\(port) (\(fingerprint)) is not in \(knownHosts). Check the fingerprint on the host, then add it with `ssh-keyscan -p \(port) \(host) >> \(knownHosts)`."
        case let .hostKeyMismatch(host, port, fingerprint, knownHosts):
            "the host key of \(host):\(port) (\(fingerprint)) does not match the one in \(knownHosts): the host was rebuilt or someone is in the middle. Refusing to connect; if the change is expected, replace its line in \(knownHosts)."
        case let .knownHostsUnreadable(path, reason):
            "cannot read known_hosts file \(path): \(reason). Point known_hosts at a readable file."
        case let .identityUnreadable(path):
            "cannot read the private key \(path) (missing, unreadable, or protected by a passphrase). Use an unencrypted key file or ssh-agent."
        case let .authenticationFailed(user, host, method):
            "\(host) refused \(user) with \(method). Add the public key to ~\(user)/.ssh/authorized_keys on the host."
        case let .channelFailed(host, reason):
            "\(host) refused to run a command: \(reason)"
        case let .connectionLost(host, reason):
            "the SSH connection to \(host) broke: \(reason)"
        }
    }

    /// Whether trying again later could help (the host may come back), as opposed to a
    /// setting that must change first.
    public var isTransient: Bool {
        switch self {
        case .connectFailed, .channelFailed, .connectionLost: true
        case .hostKeyUnknown, .hostKeyMismatch, .knownHostsUnreadable, .identityUnreadable, .authenticationFailed: false
        }
    }
}
