/// Every URL of a job hangs off `{public_url}/r/{token}`: results.json, events, output.log,
/// artifacts. The token is the secret.
public enum ResultURLs {
    public static func base(_ config: DeferredConfig, _ token: ResultToken) -> String {
        "\(config.server.publicURL)/r/\(token.rawValue)"
    }

    /// The result URL pollers follow.
    public static func results(_ config: DeferredConfig, _ token: ResultToken) -> String {
        base(config, token) + "/results.json"
    }

    /// The job's page on the dashboard, behind the admin token.
    public static func jobPage(_ config: DeferredConfig, _ id: JobID) -> String {
        "\(config.server.publicURL)/jobs/\(id.rawValue)"
    }

    /// Where a posted script's poster cancels it: `POST`, with the job's cancel token.
    public static func cancel(_ config: DeferredConfig, _ id: JobID, token: String) -> String {
        "\(config.server.publicURL)/jobs/\(id.rawValue)/cancel?token=\(token)"
    }

    /// Where a commit status links: the job's page when the dashboard is on (an admin token is
    /// set), else its results.json.
    public static func statusTarget(_ config: DeferredConfig, _ job: Job) -> String {
        config.server.adminToken == nil ? results(config, job.token) : jobPage(config, job.id)
    }
}
