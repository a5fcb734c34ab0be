import ArgumentParser

@main
struct Deferred: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deferred",
        abstract: "Runs GitHub pushes and signed scripts on build hosts that sleep when idle.",
        subcommands: [Serve.self, Demo.self, IdleSleep.self, Hosts.self, Submit.self, Sign.self, CheckConfig.self, StoreCommand.self]
    )
}
