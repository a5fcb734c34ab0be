import ArgumentParser
import DeferredConfigFile
import DeferredCore
import Foundation

/// `--config`, shared by the commands that read deferred.toml.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The configuration file; - reads it from standard input (relative paths then from the current folder).")
    var config = "deferred.toml"

    /// Loads the file, or prints every problem with its line, key and fix and exits 1.
    func load() throws -> DeferredConfig {
        do {
            if config == "-" {
                let bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
                return try ConfigLoader().load(bytes: bytes, path: "standard input", baseDirectory: FileManager.default.currentDirectoryPath)
            }
            return try ConfigLoader().load(path: config)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// Ends a command that could not do its work: the reason on standard error, exit status 1
/// (ArgumentParser's ValidationError would add the usage text, which is no help here).
func refuse(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("deferred: \(message)\n".utf8))
    return ExitCode(1)
}
