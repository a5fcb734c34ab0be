import ArgumentParser

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Checks deferred.toml and reports every problem at once, each with its key and fix."
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let config = try options.load()
        for warning in config.warnings { print("warning: \(warning)") }
        print("\(options.config) is fine: \(config.hosts.count) host\(config.hosts.count == 1 ? "" : "s"), "
              + "\(config.projects.count) project\(config.projects.count == 1 ? "" : "s"), serving on "
              + "\(config.server.listenHost):\(config.server.listenPort)")
    }
}
