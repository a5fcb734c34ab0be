/// The error answer of a JSON REST cloud API (Hetzner Cloud, DigitalOcean): its code and message
/// with the HTTP status, and when the API said to come back.
public struct RESTAPIError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    /// What was asked, such as `POST /servers/42/actions/poweron`.
    public var call: String
    /// From `Retry-After` or `RateLimit-Reset` on a 429.
    public var retryAfter: Duration?

    public init(status: Int, code: String, message: String, call: String, retryAfter: Duration? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.call = call
        self.retryAfter = retryAfter
    }

    public var isThrottling: Bool { status == 429 || code == "rate_limit_exceeded" }

    /// Throttling, the API's own trouble, and a resource busy with another action are worth
    /// another try; a refused token or a missing server are not.
    public var isRetryable: Bool { isThrottling || status >= 500 || code == "locked" || code == "conflict" }

    public var description: String { "\(call) answered \(status) \(code): \(message)" }
}
