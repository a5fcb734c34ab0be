import ArgumentParser
import DeferredDispatcher
import DeferredProviders
import DeferredStore
import Foundation
import Logging

struct Hosts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lists the build hosts, or wakes or puts one to sleep by hand.",
        subcommands: [List.self, Wake.self, Sleep.self],
        defaultSubcommand: List.self
    )

    /// `cloud`: whether the command calls the cloud (wake, sleep), and so needs its credentials;
    /// the list reads the store only.
    static func control(_ options: ConfigOption, cloud: Bool) async throws -> HostControl {
        let config = try options.load()
        let store = try await StoreOpener.open(config.store, serving: false, logger: Logger(label: "deferred"))
        return HostControl(config: config, store: store, providers: cloud ? try Server.providers(config) : HostProviders(ec2: nil))
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
        static let configuration = CommandConfiguration(abstract: "Name, provider, state, jobs, idle time and last job of every host, from the store (no cloud credentials needed).")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print the hosts as JSON, as GET /api/hosts answers.") var json = false

        func run() async throws {
            let control = try await Hosts.control(options, cloud: false)
            if json {
                print(String(decoding: try await control.listing().encoded(), as: UTF8.self))
                return
            }
            Jobs.printTable(try await control.table())
            for note in try await control.fleetNotes() { print(note) }
        }
    }

    struct Wake: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Starts a host's machine and waits until SSH answers.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The host's name.") var name: String

        func run() async throws {
            try await Hosts.refusing {
                let wake = try await Hosts.control(options, cloud: true).wake(name) { print($0) }
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
                try await Hosts.control(options, cloud: true).sleep(name)
                print("stopped \(name)")
            }
        }
    }
}
