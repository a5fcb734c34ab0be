import Foundation

/// `[github]`: the webhook secret, the networks pushes may come from, the token for commit statuses.
public struct GitHubConfig: Sendable {
    /// The webhook secret; without it no push is accepted.
    public var secret: String
    public var allowedNetworks: [IPNetwork]
    /// A token allowed to write commit statuses (`token_env`); nil: none are posted.
    public var token: String?
    /// GitHub's REST API: api.github.com, or a GitHub Enterprise server's `/api/v3`.
    public var apiURL: String

    public init(secret: String, allowedNetworks: [IPNetwork] = [], token: String? = nil, apiURL: String = "https://api.github.com") {
        self.secret = secret
        self.allowedNetworks = allowedNetworks
        self.token = token
        self.apiURL = apiURL
    }
}
