import ArgumentParser
import DeferredHTTP
import Foundation

struct Deferred: AsyncParsableCommand {
    /// This release's number; the commit comes from the build (Plugins/BuildStamp).
    static let version = "0.18.0"

    static let configuration = CommandConfiguration(
        commandName: "deferred",
        abstract: "Runs GitHub pushes and signed scripts on build hosts that sleep when idle.",
        version: "deferred \(version) (commit \(BuildStamp.commit))",
        subcommands: [Serve.self, Demo.self, Init.self, IdleSleep.self, Hosts.self, Jobs.self, Submit.self, Sign.self, CheckConfig.self,
                      StoreCommand.self]
    )
}

/// The exit statuses scripts rely on: 64 only for a command line that cannot be read (with the
/// usage, before anything runs); a command that fails at its work says why in one line on
/// standard error and exits 1 (or the status it chose, such as a job's exit status), without
/// the usage text.
@main
enum Main {
    static func main() async {
        EventLoopThreads.choose()
        var command: any ParsableCommand
        do {
            command = try Deferred.parseAsRoot()
        } catch {
            Deferred.exit(withError: error)
        }
        do {
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let error as ValidationError {
            // Thrown while working, not while reading the command line: a failure, not a usage error.
            fail(error.message)
        } catch {
            // The parser's own outcomes (an exit status chosen, help asked for) stay its to say.
            guard Deferred.exitCode(for: error) == .failure, !(error is ExitCode) else { Deferred.exit(withError: error) }
            fail("\(error)")
        }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("deferred: \(message)\n".utf8))
        exit(1)
    }
}
