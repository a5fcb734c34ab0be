/// Why a cloud API call failed: the API said no, it could not be reached, or its answer
/// made no sense.
public enum CloudError: Error, Sendable, CustomStringConvertible {
    case api(AWSError)
    /// A JSON REST API's error answer (Hetzner Cloud, DigitalOcean).
    case rest(RESTAPIError)
    case transport(HTTPClientError)
    case unreadable(action: String, status: Int, body: String)

    public var isRetryable: Bool {
        switch self {
        case .api(let error): error.isRetryable
        case .rest(let error): error.isRetryable
        case .transport: true
        case .unreadable(_, let status, _): status >= 500
        }
    }

    /// The API said no to what was asked (4xx other than throttling), rather than failing.
    public var isRefusal: Bool {
        if case .rest(let refusal) = self { return (400..<500).contains(refusal.status) && !refusal.isThrottling }
        return false
    }

    public var description: String {
        switch self {
        case .api(let error): error.description
        case .rest(let error): error.description
        case .transport(let error): error.description
        case .unreadable(let action, let status, let body): "\(action) answered \(status) with something that is not the API's answer: \(body.prefix(300))"
        }
    }
}
