import Crypto
import DeferredCore
import DeferredStore
import Foundation
import Hummingbird
import Prometheus

/// `GET /metrics`: Prometheus' text format, behind `[metrics] token_env` when it is set.
struct MetricsController: Sendable {
    let config: DeferredConfig
    let store: any JobStore
    let registry: PrometheusCollectorRegistry
    let clocks = ServerMetrics.HostClocks()

    func addRoutes(to router: Router<DeferredRequestContext>) {
        router.get("/metrics") { request, _ in try await scrape(request) }
    }

    func scrape(_ request: Request) async throws -> Response {
        if let token = config.metrics.token {
            let presented = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
            // Compared as digests: the time taken says nothing about how much of a guess was right.
            guard let presented, SHA256.hash(data: Data(presented.utf8)) == SHA256.hash(data: Data(token.utf8)) else {
                var refusal = APIError(.unauthorized, "/metrics needs the token of [metrics] token_env: send Authorization: Bearer <token>")
                refusal.headers[.wwwAuthenticate] = #"Bearer realm="deferred metrics""#
                throw refusal
            }
        }
        try await ServerMetrics.refresh(registry, store: store, config: config, clocks: clocks)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }
}
