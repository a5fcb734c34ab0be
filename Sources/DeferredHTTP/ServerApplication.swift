import DeferredArtifacts
import DeferredCore
import DeferredStore
import Hummingbird
import Logging
import Prometheus

/// The HTTP side of `deferred serve`: routes, and the application that serves them.
public enum ServerApplication {
    /// `heartbeat`: how long an event stream may be quiet before a keepalive comment.
    /// `hostCommands`: what the dashboard's wake and sleep buttons call.
    public static func router(config: DeferredConfig, store: any JobStore, artifacts: any ArtifactStore,
                              heartbeat: Duration = .seconds(15), hostCommands: (any HostCommands)? = nil,
                              onQueued: @escaping @Sendable () -> Void,
                              onCancel: @escaping @Sendable (JobID) -> Void = { _ in },
                              metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) -> Router<DeferredRequestContext> {
        let router = Router(context: DeferredRequestContext.self)
        let known = KnownRoutes()
        router.add(middleware: JSONErrorMiddleware(routes: known))
        router.get("/healthz") { _, _ in JSONBody.response(.ok, ["status": "ok"]) }
        WebhookController(config: config, store: store, onQueued: onQueued).addRoutes(to: router)
        let limiter = RateLimiter(ratePerMinute: config.scripts.ratePerMinute, burst: config.scripts.burst)
        ScriptController(config: config, store: store, limiter: limiter, onQueued: onQueued).addRoutes(to: router)
        ResultsController(config: config, store: store, artifacts: artifacts, heartbeat: heartbeat).addRoutes(to: router)
        let dashboard = DashboardController(config: config, store: store, artifacts: artifacts, hostCommands: hostCommands,
                                            onQueued: onQueued, onCancel: onCancel)
        dashboard.addRoutes(to: router)
        APIController(config: config, store: store, artifacts: artifacts, dashboard: dashboard).addRoutes(to: router)
        MetricsController(config: config, store: store, registry: metrics).addRoutes(to: router)
        known.learn(router.routes)
        return router
    }

    /// `maxConnections`: the open connections the file limit leaves room for.
    public static func make(config: DeferredConfig, store: any JobStore, artifacts: any ArtifactStore, hostCommands: any HostCommands,
                            maxConnections: Int, logger: Logger, onQueued: @escaping @Sendable () -> Void,
                            onCancel: @escaping @Sendable (JobID) -> Void,
                            metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) -> some ApplicationProtocol {
        Application(
            router: router(config: config, store: store, artifacts: artifacts, hostCommands: hostCommands,
                           onQueued: onQueued, onCancel: onCancel, metrics: metrics),
            server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(config.server.idleTimeoutSeconds * 1000)))),
            configuration: .init(address: .hostname(config.server.listenHost, port: config.server.listenPort),
                                 serverName: "deferred", availableConnectionsDelegate: .maximum(maxConnections, logger: logger)),
            logger: logger
        )
    }
}
