import DeferredCore
import Foundation
import Hummingbird

/// Reads a request body up to a limit. A body announced or found larger is refused with 413
/// as soon as that is known, never read whole.
enum RequestBody {
    static func collect(_ request: Request, limit: Int) async throws -> Data {
        let tooLarge = APIError(.contentTooLarge, "the body is larger than \(ByteCount.text(limit))")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw tooLarge
        }
        var data = Data()
        for try await chunk in request.body {
            guard data.count + chunk.readableBytes <= limit else { throw tooLarge }
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
