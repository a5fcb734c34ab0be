import ArgumentParser
import Foundation

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Checks deferred.toml and what it needs from this machine, and reports every problem at once, each with its line, key and fix.",
        discussion: """
            Beyond the file: cloud credentials where a provider or the artifact store needs them (a problem), and static \
            hosts whose SSH port takes no connection (a warning). --probe logs in to each static host and asks the cloud \
            API for each EC2 instance, and connects to a PostgreSQL store and reads its version and schema (changing nothing). `serve` runs the same checks before it binds its port. Exits 1 on any problem.
            """
    )

    @OptionGroup var options: ConfigOption
    @Flag(help: "Log in to each static host over SSH, look each EC2 instance up through the API, and connect to a PostgreSQL store.") var probe = false

    func run() async throws {
        let config = try options.load()
        let name = options.config == "-" ? "standard input" : options.config
        let readiness = Readiness(config: config)
        var problems = readiness.problems()
        let store = await readiness.store(probe: probe)
        if let problem = store.problem { problems.append(problem) }
        if let found = store.found { print("store: \(found)") }
        for warning in config.warnings { print("warning: \(warning)") }
        for warning in await readiness.warnings(probe: probe) { print("warning: \(warning)") }
        guard problems.isEmpty else {
            throw refuse("\(name) has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n"
                         + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        print("\(name) is fine: \(config.hosts.count) host\(config.hosts.count == 1 ? "" : "s"), "
              + "\(config.projects.count) project\(config.projects.count == 1 ? "" : "s"), serving on "
              + "\(config.server.listenHost):\(config.server.listenPort)")
    }
}
