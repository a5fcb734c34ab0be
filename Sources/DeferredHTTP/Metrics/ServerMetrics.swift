import DeferredCore
import DeferredStore
import Foundation
import Metrics
import Prometheus
import Synchronization

/// The figures `/metrics` serves, as Prometheus reads them. Events are counted where they
/// happen, through swift-metrics (intake in `IntakeLog`, job ends in the dispatcher); what is a
/// state rather than an event (the queue, the hosts) is read from the store at each scrape.
public enum ServerMetrics {
    /// Sends swift-metrics' figures to `registry` (once per process: `serve` does it), with
    /// buckets that fit jobs, which wait and run for seconds to hours.
    public static func bootstrap(_ registry: PrometheusCollectorRegistry) {
        var factory = PrometheusMetricsFactory(registry: registry)
        let minutes: [Duration] = [.seconds(1), .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
                                   .seconds(600), .seconds(1200), .seconds(1800), .seconds(3600), .seconds(7200)]
        factory.durationHistogramBuckets = [MetricName.jobWait: minutes, MetricName.jobRun: minutes]
        MetricsSystem.bootstrap(factory)
    }

    /// A request to the intake, by what was decided: `accepted`, `ignored` or `refused` (with the
    /// HTTP status as its reason). Nothing a sender wrote becomes a label.
    static func received(_ kind: String, outcome: String, reason: String = "") {
        Counter(label: kind == "script" ? MetricName.scriptsReceived : MetricName.webhooksReceived, dimensions: [("outcome", outcome), ("reason", reason)]).increment()
    }

    /// Where the host clocks of the last scrape stopped.
    final class HostClocks: Sendable {
        let last = Mutex<Date?>(nil)
    }

    /// Reads the queue and the hosts into gauges of `registry`, just before a scrape, and moves
    /// each host's clocks on by the time since the last scrape: awake (what a cloud bills: any
    /// state but stopped, unknown or unreachable) and busy (running a job). Sampled at scrapes,
    /// so exact to a scrape interval; with several servers each one's counts the same hosts.
    static func refresh(_ registry: PrometheusCollectorRegistry, store: any JobStore, config: DeferredConfig,
                        clocks: HostClocks, now: Date = Date()) async throws {
        let waiting = try await store.jobs(matching: JobQuery(statuses: [.queued], limit: 100_000))
        for project in config.projects {
            let mine = waiting.filter { $0.project == project.name }
            registry.makeGauge(name: MetricName.queueDepth, labels: [("project", project.name)]).set(Double(mine.count))
            let oldest = mine.map(\.queuedAt).min().map { now.timeIntervalSince($0) } ?? 0
            registry.makeGauge(name: MetricName.queueOldestAge, labels: [("project", project.name)]).set(oldest)
        }
        let hosts = try await store.hosts()
        let elapsed = clocks.last.withLock { last in
            defer { last = now }
            return last.map { max(0, now.timeIntervalSince($0)) } ?? 0
        }
        for host in hosts {
            let awake = registry.makeCounter(name: MetricName.hostAwake, labels: [("host", host.name)])
            let busy = registry.makeCounter(name: MetricName.hostBusy, labels: [("host", host.name)])
            if ![.stopped, .unknown, .unreachable].contains(host.state) { awake.increment(by: elapsed) }
            if host.activeJobs > 0 { busy.increment(by: elapsed) }
        }
        for state in HostState.allCases {
            registry.makeGauge(name: MetricName.hosts, labels: [("state", state.rawValue)])
                .set(Double(hosts.filter { $0.state == state }.count))
        }
    }
}
