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

    /// The value of `payload=` in an `application/x-www-form-urlencoded` body.
    static func formField(_ name: String, in body: Data) -> Data? {
        for pair in body.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, String(decoding: parts[0], as: UTF8.self) == name else { continue }
            let plus = parts[1].map { $0 == UInt8(ascii: "+") ? UInt8(ascii: " ") : $0 }
            return String(decoding: plus, as: UTF8.self).removingPercentEncoding.map { Data($0.utf8) }
        }
        return nil
    }
}
