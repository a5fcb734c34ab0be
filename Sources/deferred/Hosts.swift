import ArgumentParser
import DeferredDispatcher
import DeferredStore
import Foundation
import Logging

struct Hosts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lists the build hosts, or wakes or puts one to sleep by hand.",
        subcommands: [List.self, Wake.self, Sleep.self],
        defaultSubcommand: List.self
    )

    static func control(_ options: ConfigOption) async throws -> HostControl {
        let config = try options.load()
        let store = try await StoreOpener.open(config.store, serving: false, logger: Logger(label: "deferred"))
        return HostControl(config: config, store: store, providers: try Server.providers(config))
    }

    /// Runs a host command: a failure is said on standard error with exit status 1, once.
    static func refusing(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch {
            throw refuse("\(error)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Name, provider, state, jobs, idle time and last job of every host.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let control = try await Hosts.control(options)
            let rows = try await control.table()
            let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                    .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
            }
            for note in try await control.fleetNotes() { print(note) }
        }
    }

    struct Wake: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Starts a host's machine and waits until SSH answers.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The host's name.") var name: String

        func run() async throws {
            try await Hosts.refusing {
                let wake = try await Hosts.control(options).wake(name) { print($0) }
                print("\(name) is up\(wake.woke ? " (woken)" : ", it was running already")")
            }
        }
    }

    struct Sleep: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stops a host's machine now, unless a job is on it.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The host's name.") var name: String

        func run() async throws {
            try await Hosts.refusing {
                try await Hosts.control(options).sleep(name)
                print("stopped \(name)")
            }
        }
    }
}
