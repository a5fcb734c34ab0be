import DeferredStore
import Hummingbird

/// Errors that do not come from our handlers (no such route, a body the framework refused)
/// answer JSON too, with the same status: every error is `{"error": "…"}`. A store that
/// fails answers 503, saying how.
/// A path served with other methods answers 405 and says which (`Allow`).
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = DeferredRequestContext
    let routes: KnownRoutes

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && !routes.methods(at: request.uri.path).isEmpty {
            let allowed = routes.methods(at: request.uri.path)
            var json = APIError(.methodNotAllowed, "\(request.uri.path) is served with \(allowed.joined(separator: ", ")), not \(request.method)")
            json.headers[.allow] = allowed.joined(separator: ", ")
            throw json
        } catch let error as HTTPError {
            let message = error.status == .notFound ? "nothing is served at \(request.method) \(request.uri.path)"
                                                    : error.body ?? error.status.reasonPhrase
            var json = APIError(error.status, message)
            json.headers = error.headers
            throw json
        } catch let error as StoreError {
            throw APIError.storeFailed(error)
        }
    }
}
