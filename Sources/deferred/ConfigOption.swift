import ArgumentParser
import DeferredCore
import Foundation

/// `--config`, shared by the commands that read deferred.toml.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The configuration file.")
    var config = "deferred.toml"

    /// Loads the file, or prints every problem with its key and fix and exits 1.
    func load() throws -> DeferredConfig {
        do {
            return try ConfigLoader().load(path: config)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
