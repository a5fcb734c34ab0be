import DeferredArtifacts
import DeferredCore
import DeferredStore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
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

    public static let serverName = "deferred"

    /// HTTP/1 as Hummingbird serves it, except connections that open with a job's event
    /// stream: those are served below the router (`EventStreamChannel`), for their memory.
    public static func server(config: DeferredConfig, store: any JobStore, artifacts: any ArtifactStore,
                              heartbeat: Duration = .seconds(15), serverName: String? = ServerApplication.serverName,
                              caughtUp: CaughtUpListeners = CaughtUpListeners()) -> HTTPServerBuilder {
        let results = ResultsController(config: config, store: store, artifacts: artifacts, heartbeat: heartbeat, caughtUp: caughtUp)
        let idleTimeout = TimeAmount.milliseconds(Int64(config.server.idleTimeoutSeconds * 1000))
        return HTTPServerBuilder { responder in
            EventStreamChannel(http1: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: idleTimeout)),
                               results: results, serverName: serverName)
        }
    }

    /// `maxConnections`: the open connections the file limit leaves room for.
    public static func make(config: DeferredConfig, store: any JobStore, artifacts: any ArtifactStore, hostCommands: any HostCommands,
                            maxConnections: Int, logger: Logger, onQueued: @escaping @Sendable () -> Void,
                            onCancel: @escaping @Sendable (JobID) -> Void,
                            metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) -> some ApplicationProtocol {
        Application(
            router: router(config: config, store: store, artifacts: artifacts, hostCommands: hostCommands,
                           onQueued: onQueued, onCancel: onCancel, metrics: metrics),
            server: server(config: config, store: store, artifacts: artifacts, serverName: serverName),
            configuration: .init(address: .hostname(config.server.listenHost, port: config.server.listenPort),
                                 serverName: serverName, availableConnectionsDelegate: .maximum(maxConnections, logger: logger)),
            logger: logger
        )
    }
}
