import DeferredCloud
import Foundation

/// The JSON API as `deferred jobs` uses it: the server's base URL and the admin token, sent as
/// a bearer token and never printed. Every failure says what to fix.
public struct AdminClient: Sendable {
    public let server: String
    let token: String
    let client = HTTPClient()

    public init(server: String, token: String) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.token = token
    }

    public enum Failure: Error, CustomStringConvertible {
        case unreachable(String)
        /// The server's answer and its JSON error.
        case refused(status: Int, message: String)
        case unreadable(String)

        public var description: String {
            switch self {
            case .unreachable(let why): why
            case .refused(401, let message): "the server refused the admin token (DEFERRED_ADMIN_TOKEN): \(message)"
            case .refused(404, let message) where message.contains("admin_token_env"): "the server's API is off: \(message)"
            case .refused(let status, let message): "\(status): \(message)"
            case .unreadable(let what): "the server's answer cannot be read: \(what)"
            }
        }
    }

    /// The raw JSON of a GET, for `--json`.
    public func body(_ path: String) async throws(Failure) -> Data {
        try await send("GET", path).body
    }

    public func get(_ path: String) async throws(Failure) -> [String: Any] {
        try Self.object(try await send("GET", path).body)
    }

    public func post(_ path: String) async throws(Failure) -> [String: Any] {
        try Self.object(try await send("POST", path).body)
    }

    /// A file behind a result URL (output.log): followed once to where a 302 sends it (S3).
    public func file(at url: String) async throws(Failure) -> Data {
        var response = try await request(HTTPClientRequest(url: url, timeout: .seconds(300)))
        if response.status == 302, let location = response.header("location") {
            response = try await request(HTTPClientRequest(url: location, timeout: .seconds(300)))
        }
        guard response.status == 200 else { throw Self.refusal(response) }
        return response.body
    }

    private func send(_ method: String, _ path: String) async throws(Failure) -> HTTPClientResponse {
        let response = try await request(HTTPClientRequest(
            method: method, url: server + path, headers: [("Authorization", "Bearer \(token)"), ("Accept", "application/json")],
            timeout: .seconds(60)))
        guard (200..<300).contains(response.status) else { throw Self.refusal(response) }
        return response
    }

    private func request(_ request: HTTPClientRequest) async throws(Failure) -> HTTPClientResponse {
        do {
            return try await client.send(request)
        } catch {
            throw .unreachable("\(error) (is --server or DEFERRED_SERVER right?)")
        }
    }

    static func refusal(_ response: HTTPClientResponse) -> Failure {
        let json = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
        return .refused(status: response.status, message: json?["error"] as? String ?? "HTTP \(response.status)")
    }

    static func object(_ data: Data) throws(Failure) -> [String: Any] {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .unreadable(String(decoding: data.prefix(200), as: UTF8.self))
        }
        return object
    }
}
