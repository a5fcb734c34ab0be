/// Every URL of a job hangs off `{public_url}/r/{token}`: results.json, events, output.log,
/// artifacts. The token is the secret.
public enum ResultURLs {
    public static func base(_ config: DeferredConfig, _ token: ResultToken) -> String {
        "\(config.server.publicURL)/r/\(token.rawValue)"
    }
}
