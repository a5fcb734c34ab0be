import Foundation
import Hummingbird

/// openapi.json, the description of every route (`/api/openapi.json`), read once from the
/// resources beside the executable or from this folder in a checkout, as the dashboard's
/// files are. APIDocumentTests holds it against the router, and schemathesis the server
/// against it.
enum OpenAPIDocument {
    static let data: Data? = {
        let installed = Bundle.main.bundleURL.appendingPathComponent("deferred_DeferredHTTP.resources/openapi.json").path
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("openapi.json").path
        return [installed, source].lazy.compactMap { FileManager.default.contents(atPath: $0) }.first
    }()

    static func response() throws -> Response {
        guard let data else { throw APIError(.internalServerError, "this install has no openapi.json beside the executable") }
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "max-age=300"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
