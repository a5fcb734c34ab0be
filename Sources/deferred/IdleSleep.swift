import ArgumentParser
import DeferredDispatcher
import DeferredStore
import Foundation

struct IdleSleep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle-sleep",
        abstract: "One pass for cron: stops every cloud host idle longer than [idle] timeout_minutes that has no job.",
        discussion: """
            Shares the store with `deferred serve`; a host is marked stopping in the same store transaction \
            that checks it has no job, so a busy host is never stopped. Prints what it stopped; exits 0 when done, \
            1 when a host could not be stopped.
            """
    )

    @OptionGroup var options: ConfigOption
    @Flag(help: "Only print what would be stopped.") var dryRun = false

    func run() async throws {
        let config = try options.load()
        let store = try JobStore(path: config.server.statePath)
        try await store.register(hosts: config.hosts)
        let sleeper = IdleSleeper(config: config, store: store, providers: try Server.providers(config))
        let reports = await sleeper.pass(dryRun: dryRun)
        for report in reports { print(report) }
        if reports.isEmpty { print("nothing to stop: no cloud host is up and idle for \(config.idle.timeoutMinutes.formatted()) minutes without a job") }
        if reports.contains(where: { $0.problem != nil }) { throw ExitCode(1) }
    }
}
