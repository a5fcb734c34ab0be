/// The Hetzner Cloud server behind a host of provider `hetzner`.
public struct HetznerServer: Sendable, Equatable, CustomStringConvertible {
    public var id: Int
    /// The API token, read from the environment variable `tokenEnv` names: never printed.
    public var token: String
    public var tokenEnv: String
    /// Another Hetzner-compatible API; nil means Hetzner's own.
    public var endpoint: String?

    public init(id: Int, token: String, tokenEnv: String, endpoint: String? = nil) {
        self.id = id
        self.token = token
        self.tokenEnv = tokenEnv
        self.endpoint = endpoint
    }

    /// Without the token: this may reach a log.
    public var description: String { "Hetzner server \(id) (token from \(tokenEnv))" }
}
