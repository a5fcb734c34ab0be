import DeferredCore
import Foundation
import Hummingbird

/// Reads a request body up to a limit. A body announced or found larger is refused with 413
/// as soon as that is known, never read whole.
enum RequestBody {
    /// A body still arriving after `deadline` is refused with 408: a trickle of a byte now and
    /// then would otherwise hold a connection and its buffer for ever (a stall with no byte at
    /// all is the idle timeout's to close).
    static func collect(_ request: Request, limit: Int, deadline: Duration) async throws -> Data {
        let tooLarge = APIError(.contentTooLarge, "the body is larger than \(ByteCount.text(limit))")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw tooLarge
        }
        let started = ContinuousClock.now
        var data = Data()
        for try await chunk in request.body {
            guard data.count + chunk.readableBytes <= limit else { throw tooLarge }
            guard ContinuousClock.now - started <= deadline else {
                throw APIError(.requestTimeout, "the body took longer than \(deadline) to arrive ([server] body_timeout_seconds)")
            }
            data.append(contentsOf: chunk.readableBytesView)
        }
        return data
    }

    /// The fields of an `application/x-www-form-urlencoded` body, by Hummingbird's decoder;
    /// a body it cannot read is a 400.
    static func form<Fields: Decodable>(_ fields: Fields.Type, from body: Data) throws -> Fields {
        do {
            return try URLEncodedFormDecoder().decode(Fields.self, from: String(decoding: body, as: UTF8.self))
        } catch {
            throw APIError(.badRequest, "the form body cannot be read: \(error)")
        }
    }

    /// The request's media type (`Content-Type` without its parameters), by Hummingbird's parser.
    static func mediaType(of request: Request) -> MediaType? {
        request.headers[.contentType].flatMap(MediaType.init(from:))
    }

    /// How an error names the media type a request came with.
    static func mediaTypeName(of request: Request) -> String {
        mediaType(of: request).map { "\($0.type)/\($0.subType)" } ?? "missing"
    }
}
