import DeferredCore
import DeferredStore
import Foundation
import Hummingbird

/// `GET /r/{token}/results.json`: 202 with the status while the job runs, 200 with the file
/// once it ended. Open to every origin (CORS), so a page anywhere can poll it; the token is
/// the secret.
public struct ResultsController: Sendable {
    let store: JobStore
    let artifacts: FileArtifactStore

    public init(store: JobStore, artifacts: FileArtifactStore) {
        self.store = store
        self.artifacts = artifacts
    }

    public static func resultURL(_ config: DeferredConfig, _ token: ResultToken) -> String {
        "\(config.server.publicURL)/r/\(token.rawValue)/results.json"
    }

    public func addRoutes(to router: Router<DeferredRequestContext>) {
        let group = router.group("r")
            .add(middleware: CORSMiddleware(allowOrigin: .all, allowHeaders: [.accept, .contentType, .origin],
                                            allowMethods: [.get, .head, .options], maxAge: .seconds(3600)))
        group.get("{token}/results.json") { _, context in try await results(context) }
        // Middleware runs only for matched routes: the preflight needs a route to reach CORS.
        group.on("{token}/results.json", method: .options) { _, _ in Response(status: .noContent) }
    }

    func results(_ context: DeferredRequestContext) async throws -> Response {
        guard let text = context.parameters.get("token"), let token = ResultToken(validating: text),
              let job = try await store.job(token: token) else {
            throw APIError(.notFound, "no job has this result URL")
        }
        guard job.status.isFinal else {
            return JSONBody.response(.accepted, ["status": job.status.rawValue])
        }
        guard let data = artifacts.results(token: token) else {
            throw APIError(.internalServerError, "the job ended but its results.json is missing from the artifact store")
        }
        return JSONBody.raw(.ok, data)
    }
}
