/// `[metrics]`: who may read `/metrics`. Without a token anyone who reaches the server may;
/// the figures hold no secret, but name projects and hosts.
public struct MetricsConfig: Sendable {
    /// The bearer token a scraper must send, from `token_env`.
    public var token: String?

    public init(token: String? = nil) {
        self.token = token
    }
}

extension MetricsConfig: CustomReflectable {
    public var customMirror: Mirror { Mirror(self, children: ["token": token == nil ? "unset" : "<secret>"], displayStyle: .struct) }
}
