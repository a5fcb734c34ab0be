/// An account at a cloud with a JSON API (Hetzner Cloud, DigitalOcean): the token that acts
/// for it, and where its API answers.
public struct CloudAccount: Sendable, Equatable, CustomStringConvertible {
    /// Read from the environment variable `tokenEnv` names: never printed.
    public var token: String
    public var tokenEnv: String
    /// Another compatible API; nil means the cloud's own.
    public var endpoint: String?

    public init(token: String, tokenEnv: String, endpoint: String? = nil) {
        self.token = token
        self.tokenEnv = tokenEnv
        self.endpoint = endpoint
    }

    /// Without the token: this may reach a log.
    public var description: String { "token from \(tokenEnv)" }
}

/// The server (Hetzner Cloud) or droplet (DigitalOcean) behind a host, by its id in the
/// cloud's API.
public struct CloudServer: Sendable, Equatable, CustomStringConvertible {
    public var id: String
    public var account: CloudAccount

    public init(id: String, account: CloudAccount) {
        self.id = id
        self.account = account
    }

    public var description: String { "server \(id) (\(account))" }
}
