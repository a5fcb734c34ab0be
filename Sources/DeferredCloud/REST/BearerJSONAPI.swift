import DeferredCore
import Foundation

/// A cloud's JSON REST API reached with a bearer token (Hetzner Cloud, DigitalOcean). Calls
/// are retried with jittered backoff on throttling (a 429 is retried after the
/// `Retry-After` or `RateLimit-Reset` it gives, waiting a minute at most), on 5xx, and while
/// the resource is busy with another action. Each try is counted by service. Error bodies
/// are read in the cloud's own shape. The token is never part of a message.
struct BearerJSONAPI: Sendable {
    let service: String
    let endpoint: String
    let token: String
    let http: HTTPClient
    var retry: RetryPolicy
    /// The longest a rate limit's reset is waited for before the next try.
    var longestRateLimitWait: Duration = .seconds(60)
    /// The cloud's error body as a code and a message, or nil when it is not one.
    let readError: @Sendable (Data) -> (code: String, message: String)?

    init(service: String, endpoint: String, token: String, http: HTTPClient, retry: RetryPolicy,
         readError: @escaping @Sendable (Data) -> (code: String, message: String)?) {
        var base = endpoint
        while base.hasSuffix("/") { base.removeLast() }
        self.service = service
        self.endpoint = base
        self.token = token
        self.http = http
        self.retry = retry
        self.readError = readError
    }

    /// The answer to `method path` (with `body` as JSON), decoded as `Answer`.
    /// `once`: a single try, for a call whose retry is the caller's (one that makes something).
    func call<Answer: Decodable>(_ method: String, _ path: String, body: Data? = nil, once: Bool = false, as: Answer.Type) async throws(CloudError) -> Answer {
        let data = try await send(method, path, body: body, once: once)
        do {
            return try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw .unreadable(action: "\(method) \(Self.shape(of: path))", status: 200, body: String(decoding: data.prefix(300), as: UTF8.self))
        }
    }

    /// The answer's body to `method path`, once it is a 2xx.
    @discardableResult
    func send(_ method: String, _ path: String, body: Data? = nil, once: Bool = false) async throws(CloudError) -> Data {
        let name = "\(method) \(path)"
        let action = method + " " + Self.shape(of: path)
        var headers = [(name: "Authorization", value: "Bearer \(token)"), (name: "Accept", value: "application/json")]
        if body != nil { headers.append((name: "Content-Type", value: "application/json")) }
        let request = HTTPClientRequest(method: method, url: endpoint + path, headers: headers, body: body ?? Data())
        var policy = retry
        if once { policy.maxAttempts = 1 }
        let gate = RateLimitGate.gate("\(service) \(endpoint) \(token.hashValue)")
        return try await CloudCallCount.retrying(policy, service: service, action: action) { () async throws(CloudError) -> Data in
            await gate.wait(longest: longestRateLimitWait)
            let response: HTTPClientResponse
            do throws(HTTPClientError) { response = try await http.send(request) } catch { throw .transport(error) }
            await gate.note(remaining: response.header("RateLimit-Remaining").flatMap(Int.init),
                            reset: response.header("RateLimit-Reset").flatMap(Double.init).flatMap { $0.isFinite ? Date(timeIntervalSince1970: $0) : nil })
            guard (200..<300).contains(response.status) else {
                let said = readError(response.body)
                let error = RESTAPIError(status: response.status, code: said?.code ?? "http_\(response.status)",
                                         message: said?.message ?? String(decoding: response.body.prefix(300), as: UTF8.self),
                                         call: name, retryAfter: Self.retryAfter(response))
                if error.isThrottling, let wait = error.retryAfter { try? await Task.sleep(for: min(wait, longestRateLimitWait)) }
                throw .rest(error)
            }
            return response.body
        }
    }

    /// A path as the metric names it: ids and the query left out, so servers do not each
    /// make a series.
    static func shape(of path: String) -> String {
        let bare = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        return bare.split(separator: "/", omittingEmptySubsequences: false)
            .map { !$0.isEmpty && $0.allSatisfy(\.isNumber) ? "{id}" : String($0) }.joined(separator: "/")
    }

    /// How long a 429 says to wait: `Retry-After` seconds, or until `RateLimit-Reset` (a Unix time).
    static func retryAfter(_ response: HTTPClientResponse, now: Date = Date()) -> Duration? {
        if let seconds = response.header("Retry-After").flatMap(Double.init), seconds >= 0, seconds.isFinite {
            return .milliseconds(Int64(min(seconds, 86_400) * 1000))
        }
        if let reset = response.header("RateLimit-Reset").flatMap(Double.init), reset.isFinite {
            return .milliseconds(Int64(min(max(reset - now.timeIntervalSince1970, 0), 86_400) * 1000))
        }
        return nil
    }

    /// `text` as a query value.
    static func query(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}
