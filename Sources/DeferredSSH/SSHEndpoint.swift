/// Where and as whom to connect, and how to know the host is the right one.
public struct SSHEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    /// Private key file; nil authenticates through ssh-agent.
    public var identityFile: String?
    /// OpenSSH known_hosts file the host key must be in.
    public var knownHostsFile: String
    public var connectTimeoutSeconds: Int
    /// The ssh-agent's socket when there is no identity file; nil means `SSH_AUTH_SOCK`'s.
    public var agentSocket: String?

    public init(host: String, port: Int = 22, user: String, identityFile: String?, knownHostsFile: String, connectTimeoutSeconds: Int = 10) {
        self.host = host
        self.port = port
        self.user = user
        self.identityFile = identityFile
        self.knownHostsFile = knownHostsFile
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    public var description: String { "\(user)@\(host):\(port)" }
}

/// How a remote command ended.
public struct SSHExit: Sendable, Equatable {
    /// The exit status, when the command exited.
    public var status: Int?
    /// The signal that killed it, without `SIG`, when one did.
    public var signal: String?

    public init(status: Int?, signal: String?) {
        self.status = status
        self.signal = signal
    }
}

/// What a running remote command produces, in order.
public enum SSHExecEvent: Sendable, Equatable {
    case stdout([UInt8])
    case stderr([UInt8])
    case exit(SSHExit)
}
