import DeferredCore
import Foundation

/// AWS's Query APIs (EC2, IAM, STS): form-encoded POSTs with `Action` and `Version`, XML
/// answers, signed with SigV4, retried with jittered backoff on throttling and 5xx.
public struct AWSQueryClient: Sendable {
    public let endpoint: String
    public let version: String
    let signer: SigV4
    let http: HTTPClient
    public var retry: RetryPolicy

    public init(service: String, version: String, region: String, credentials: AWSCredentials, endpoint: String,
                http: HTTPClient = HTTPClient(), retry: RetryPolicy = RetryPolicy()) {
        var base = endpoint
        while base.hasSuffix("/") { base.removeLast() }
        self.endpoint = base + "/"
        self.version = version
        self.signer = SigV4(credentials: credentials, region: region, service: service)
        self.http = http
        self.retry = retry
    }

    /// One signed call, retried while it fails in a retryable way.
    public func call(_ action: String, _ parameters: [(String, String)]) async throws(CloudError) -> XMLTree {
        let body = ([("Action", action), ("Version", version)] + parameters)
            .map { "\(SigV4.uriEncode($0.0))=\(SigV4.uriEncode($0.1))" }.joined(separator: "&")
        return try await CloudCallCount.retrying(retry, service: signer.service, action: action) { () async throws(CloudError) -> XMLTree in
            var request = HTTPClientRequest(method: "POST", url: endpoint, headers: [
                (name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8"),
            ], body: Data(body.utf8))
            // Signed at each attempt: the time is part of the signature.
            signer.authorize(&request)
            let response: HTTPClientResponse
            do throws(HTTPClientError) { response = try await http.send(request) } catch { throw .transport(error) }
            return try Self.answer(response, action: action)
        }
    }

    /// The XML of a 2xx answer, or the typed error of any other.
    static func answer(_ response: HTTPClientResponse, action: String) throws(CloudError) -> XMLTree {
        let tree = XMLTree.parse(response.body)
        let text = { String(decoding: response.body.prefix(500), as: UTF8.self) }
        guard (200..<300).contains(response.status) else {
            // EC2: Response/Errors/Error; IAM, STS: ErrorResponse/Error; S3: an Error root.
            if let error = tree?.at("Errors/Error") ?? tree?["Error"] ?? (tree?.name == "Error" ? tree : nil) {
                throw .api(AWSError(code: .init(error.value("Code") ?? "Unknown"), message: error.value("Message") ?? "",
                                    status: response.status, action: action))
            }
            if response.status >= 500 || response.status == 429 {
                throw .api(AWSError(code: response.status == 429 ? .throttling : .serviceUnavailable,
                                    message: text(), status: response.status, action: action))
            }
            throw .unreadable(action: action, status: response.status, body: text())
        }
        guard let tree else { throw .unreadable(action: action, status: response.status, body: text()) }
        return tree
    }
}
