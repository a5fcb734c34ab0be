import ArgumentParser
import DeferredArtifacts
import DeferredCore
import DeferredDispatcher
import DeferredHTTP
import DeferredProviders
import DeferredStore
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle

/// Intake, dispatcher and housekeeping in one process, stopped gracefully on SIGTERM or SIGINT.
enum Server {
    static func run(config: DeferredConfig, logger: Logger, afterStart: (@Sendable () async -> Void)? = nil) async throws {
        for warning in config.warnings { logger.warning("deferred.toml: \(warning)") }
        let store = try await StoreOpener.open(config.store, serving: true, logger: logger, whenTakenForDead: {
            // Its jobs are another server's now: following them too would run their ends twice.
            // A supervisor starts it again, as a new member.
            logger.critical("stopping: another server took this one for dead and follows its jobs now")
            exit(75)
        })
        let artifacts = try ArtifactStores.make(config.artifacts)
        // swift-metrics' figures of this process, served at /metrics.
        let metrics = PrometheusCollectorRegistry()
        ServerMetrics.bootstrap(metrics)
        let providers = try Server.providers(config)
        let dispatcher = Dispatcher(config: config, store: store, artifacts: artifacts, providers: providers, logger: logger)
        let files = FileLimit.raised()
        let connections = files.connectionCap(configured: config.server.maxConnections)
        logger.info("open files: \(files); HTTP connections at most \(connections), idle ones closed after \(config.server.idleTimeoutSeconds) s")
        let application = ServerApplication.make(config: config, store: store, artifacts: artifacts,
                                                 hostCommands: HostControl(config: config, store: store, providers: providers,
                                                                           waker: dispatcher.waker),
                                                 maxConnections: connections, logger: logger, onQueued: { dispatcher.jobQueued() },
                                                 onCancel: { dispatcher.cancelRequested($0) }, metrics: metrics)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: application), .init(service: dispatcher),
                                            .init(service: dispatcher.housekeeping(every: .seconds(config.idle.checkIntervalSeconds)))],
                                 gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        if let afterStart {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                tasks.addTask { await afterStart() }
                try await tasks.next()
                try await tasks.next()
            }
        } else {
            try await group.run()
        }
    }

    /// The providers the configured hosts need; AWS credentials only when an EC2 host is there.
    static func providers(_ config: DeferredConfig) throws -> HostProviders {
        do {
            return try HostProviders(config: config)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

import ArgumentParser

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serves the HTTP intake and result URLs and runs jobs on the configured hosts."
    )

    @OptionGroup var options: ConfigOption
    @OptionGroup var logging: LogOptions

    func run() async throws {
        let config = try options.load()
        // What check-config finds wrong stops the start before the port is bound.
        let problems = Readiness(config: config).problems()
        guard problems.isEmpty else {
            throw refuse("\(options.config) cannot be served:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        let logger = logging.bootstrap()
        logger.info("serving on \(config.server.listenHost):\(config.server.listenPort), results at \(config.server.publicURL)")
        try await Server.run(config: config, logger: logger)
    }
}
