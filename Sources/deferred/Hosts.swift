import ArgumentParser
import DeferredCore
import DeferredProviders
import DeferredSSH
import DeferredStore
import Foundation

struct Hosts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lists the build hosts, or wakes or puts one to sleep by hand.",
        subcommands: [List.self, Wake.self, Sleep.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Name, provider, state, idle time and last job of every host.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let config = try options.load()
            let store = try JobStore(path: config.server.statePath)
            try await store.register(hosts: config.hosts)
            let now = Date()
            var rows = [["NAME", "PROVIDER", "STATE", "JOBS", "IDLE FOR", "LAST JOB"]]
            for host in try await store.hosts() where config.host(named: host.name) != nil {
                let idle = host.activeJobs == 0 ? host.idleSince.map { Self.duration(now.timeIntervalSince($0)) } ?? "-" : "-"
                rows.append([host.name, host.provider, host.state.rawValue, String(host.activeJobs), idle, host.lastJobID?.rawValue ?? "-"])
            }
            let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                    .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
            }
        }

        static func duration(_ seconds: TimeInterval) -> String {
            let minutes = Int(seconds / 60)
            return minutes < 60 ? "\(minutes)m" : "\(minutes / 60)h\(String(format: "%02d", minutes % 60))m"
        }
    }

    struct Wake: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Starts a host's machine and waits until SSH answers.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The host's name in deferred.toml.") var name: String

        func run() async throws {
            let config = try options.load()
            guard var host = config.host(named: name) else { throw ValidationError("no host is named '\(name)'") }
            let store = try JobStore(path: config.server.statePath)
            try await store.register(hosts: config.hosts)
            let provider = try Server.providers(config).provider(for: host)
            let wake: HostWake
            do throws(ProviderError) {
                wake = try await provider.wake(host) { print($0) }
            } catch {
                throw refuse(error.description)
            }
            if host.address.isEmpty { host.address = wake.address }
            print("waiting for SSH on \(host.address):\(host.port)…")
            let session = try await SSHSession.connect(to: SSHEndpoint(
                host: host.address, port: host.port, user: host.user, identityFile: host.identity, knownHostsFile: host.knownHosts))
            await session.disconnect()
            try await store.markWoken(host.name)
            print("\(host.name) is up\(wake.woke ? " (woken)" : ", it was running already")")
        }
    }

    struct Sleep: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stops a host's machine now, unless a job is on it.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The host's name in deferred.toml.") var name: String

        func run() async throws {
            let config = try options.load()
            guard let host = config.host(named: name) else { throw ValidationError("no host is named '\(name)'") }
            guard host.provider != .static else { throw ValidationError("\(name) is a static host; deferred does not stop it") }
            let store = try JobStore(path: config.server.statePath)
            try await store.register(hosts: config.hosts)
            // The same claim idle-sleep makes, without the idle time: only a host with no job.
            guard try await !store.idleHosts(among: [name], idleSince: .distantFuture, claim: true).isEmpty else {
                let state = try await store.hosts().first { $0.name == name }
                throw refuse(state?.activeJobs ?? 0 > 0 ? "\(name) has a job; it was left running"
                                                         : "\(name) is \(state?.state.rawValue ?? "unknown") already")
            }
            do {
                try await Server.providers(config).provider(for: host).sleep(host, terminate: false)
                try await store.markHost(name, .stopped)
                print("stopped \(name)")
            } catch {
                try? await store.markHost(name, .unknown)
                throw refuse("\(error)")
            }
        }
    }
}
