import DeferredCore
import DeferredStore
import Foundation
import Hummingbird

/// Every error the API answers: the right status and `{"error": "…"}` saying what was wrong.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.code) \(message)" }

    /// A project's backlog is full: the sender should come back, not give up.
    static func queueFull(project: ProjectConfig, waiting: Int) -> APIError {
        var error = APIError(.serviceUnavailable, "\(waiting) jobs of project '\(project.name)' are waiting for a host (max_queued = \(project.maxQueued)); try again later")
        error.headers[.retryAfter] = "30"
        return error
    }

    /// A store that fails (a lock, a full disk, a database that is down) passes: the sender
    /// should try again, not give up.
    static func storeFailed(_ error: StoreError) -> APIError {
        var json = APIError(.serviceUnavailable, error.description)
        json.headers[.retryAfter] = "10"
        return json
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONBody.response(status, ["error": message])
        response.headers.append(contentsOf: headers)
        return response
    }
}

/// JSON answers, built once here.
enum JSONBody {
    static func response(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        raw(status, encode(value) ?? Data(#"{"error":"the answer could not be encoded"}"#.utf8))
    }

    /// Compact, keys sorted: every JSON the server writes, event stream data included.
    static func encode(_ value: some Encodable) -> Data? {
        try? encoder.encode(value)
    }

    /// One, configured once and shared: a JSONEncoder is safe to use from several threads, and
    /// making one for every answer cost more than encoding the intake's small ones.
    private static let encoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func raw(_ status: HTTPResponse.Status, _ data: Data) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
