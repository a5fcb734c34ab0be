import ArgumentParser
import DeferredArtifacts
import DeferredDispatcher
import DeferredStore
import Foundation
import Logging

struct IdleSleep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle-sleep",
        abstract: "One pass for cron: stops every cloud host idle longer than [idle] timeout_minutes that has no job, and deletes the files of jobs past [artifacts] retention_days.",
        discussion: """
            Shares the store with `deferred serve`; a host is marked stopping in the same store transaction \
            that checks it has no job, so a busy host is never stopped. Prints what it stopped and expired; exits 0 \
            when done, 1 when a host could not be stopped or a job's files could not be deleted.
            """
    )

    @OptionGroup var options: ConfigOption
    @Flag(help: "Only print what would be stopped.") var dryRun = false

    func run() async throws {
        let config = try options.load()
        let store = try await StoreOpener.open(config.store, serving: false, logger: Logger(label: "deferred"))
        try await store.register(hosts: config.hosts)
        let sleeper = IdleSleeper(config: config, store: store, providers: try Server.providers(config))
        let reports = await sleeper.pass(dryRun: dryRun)
        for report in reports { print(report) }
        if reports.isEmpty { print("nothing to stop: no cloud host is up and idle for \(config.idle.timeoutMinutes.formatted()) minutes without a job") }
        var failed = reports.contains { $0.problem != nil }
        if !dryRun {
            let retention = Retention(store: store, artifacts: try ArtifactStores.make(config.artifacts),
                                      retentionDays: config.artifacts.retentionDays)
            let expired = await retention.pass()
            if !expired.description.isEmpty { print(expired) }
            failed = failed || !expired.problems.isEmpty
        }
        if failed { throw ExitCode(1) }
    }
}
