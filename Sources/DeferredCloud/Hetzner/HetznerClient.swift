import DeferredCore
import Foundation

/// Hetzner Cloud's API (docs.hetzner.cloud): a server, its power actions and their progress,
/// with a bearer token. Calls are retried with jittered backoff on throttling (429: after the
/// `Retry-After` or `RateLimit-Reset` it gives, up to a minute), on 5xx, and while the server
/// is locked by another action. The token is never part of a message.
public struct HetznerClient: Sendable {
    public let endpoint: String
    let token: String
    let http: HTTPClient
    public var retry: RetryPolicy
    /// The longest a rate limit's reset is waited for before the next try.
    public var longestRateLimitWait: Duration = .seconds(60)

    public init(token: String, endpoint: String? = nil, http: HTTPClient = HTTPClient(), retry: RetryPolicy = RetryPolicy()) {
        var base = endpoint ?? "https://api.hetzner.cloud/v1"
        while base.hasSuffix("/") { base.removeLast() }
        self.endpoint = base
        self.token = token
        self.http = http
        self.retry = retry
    }

    /// A server as the API shows it: `status` is running, off, starting, stopping,
    /// initializing, migrating, rebuilding, deleting or unknown.
    public struct Server: Sendable, Equatable {
        public var id: Int
        public var name: String
        public var status: String
        public var publicIPv4: String?
    }

    /// An action the API runs: `status` is running, success or error.
    public struct Action: Sendable, Equatable {
        public var id: Int
        public var command: String
        public var status: String
        public var error: String?
    }

    public func server(_ id: Int) async throws(CloudError) -> Server {
        let shape = try await call("GET", "/servers/\(id)", as: ServerAnswer.self)
        return Server(id: shape.server.id, name: shape.server.name, status: shape.server.status, publicIPv4: shape.server.public_net?.ipv4?.ip)
    }

    /// `poweron`, `shutdown` (ACPI) or `poweroff` on a server: the action it started.
    public func power(_ command: String, server id: Int) async throws(CloudError) -> Action {
        try await call("POST", "/servers/\(id)/actions/\(command)", as: ActionAnswer.self).action.value
    }

    public func action(_ id: Int) async throws(CloudError) -> Action {
        try await call("GET", "/actions/\(id)", as: ActionAnswer.self).action.value
    }

    // MARK: The wire

    private struct ServerAnswer: Decodable {
        struct Shape: Decodable {
            struct Net: Decodable {
                struct IPv4: Decodable { var ip: String }
                var ipv4: IPv4?
            }
            var id: Int
            var name: String
            var status: String
            var public_net: Net?
        }
        var server: Shape
    }

    private struct ActionAnswer: Decodable {
        struct Shape: Decodable {
            struct Failure: Decodable { var code: String; var message: String }
            var id: Int
            var command: String
            var status: String
            var error: Failure?
            var value: Action { Action(id: id, command: command, status: status, error: error.map { "\($0.code): \($0.message)" }) }
        }
        var action: Shape
    }

    private struct ErrorAnswer: Decodable {
        struct Shape: Decodable { var code: String; var message: String }
        var error: Shape
    }

    private func call<Answer: Decodable>(_ method: String, _ path: String, as: Answer.Type) async throws(CloudError) -> Answer {
        let name = "\(method) \(path)"
        // The metric's action: the path's shape, not each server's id.
        let action = method + " " + path.split(separator: "/").map { $0.allSatisfy(\.isNumber) ? "{id}" : String($0) }.joined(separator: "/")
        return try await CloudCallCount.retrying(retry, service: "hetzner", action: action) { () async throws(CloudError) -> Answer in
            let request = HTTPClientRequest(method: method, url: endpoint + path, headers: [
                (name: "Authorization", value: "Bearer \(token)"), (name: "Accept", value: "application/json"),
            ])
            let response: HTTPClientResponse
            do throws(HTTPClientError) { response = try await http.send(request) } catch { throw .transport(error) }
            guard (200..<300).contains(response.status) else {
                let said = try? JSONDecoder().decode(ErrorAnswer.self, from: response.body)
                let error = RESTAPIError(status: response.status, code: said?.error.code ?? "http_\(response.status)",
                                         message: said?.error.message ?? String(decoding: response.body.prefix(300), as: UTF8.self),
                                         call: name, retryAfter: Self.retryAfter(response))
                if error.isThrottling, let wait = error.retryAfter { try? await Task.sleep(for: min(wait, longestRateLimitWait)) }
                throw .rest(error)
            }
            do {
                return try JSONDecoder().decode(Answer.self, from: response.body)
            } catch {
                throw .unreadable(action: name, status: response.status, body: String(decoding: response.body.prefix(300), as: UTF8.self))
            }
        }
    }

    /// How long a 429 says to wait: `Retry-After` seconds, or until `RateLimit-Reset` (a Unix time).
    static func retryAfter(_ response: HTTPClientResponse, now: Date = Date()) -> Duration? {
        if let seconds = response.header("Retry-After").flatMap(Double.init), seconds >= 0 { return .milliseconds(Int64(seconds * 1000)) }
        if let reset = response.header("RateLimit-Reset").flatMap(Double.init) {
            return .milliseconds(Int64(max(reset - now.timeIntervalSince1970, 0) * 1000))
        }
        return nil
    }
}
