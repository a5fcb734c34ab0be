import DeferredCore
import Foundation

/// Hosts started and stopped by the operator's own commands (`provider = "command"`): any
/// machine with a CLI. A wake asks `status` first (when there is one): `running` is up,
/// `pending` is waited for, `stopped` runs `wake` and then waits for `running`. Without
/// `status`, `wake` runs every time and SSH tells when the machine is up. Each command's exit
/// status and last lines go to the job's events; a failed one fails the wake (the job goes back
/// to the queue) with what it printed.
public struct CommandHostProvider: HostProvider {
    /// Between `status` runs while the machine comes up.
    public var pollInterval: Duration
    /// How long one command may run.
    public var commandLimit: Duration

    public init(pollInterval: Duration = .seconds(2), commandLimit: Duration = .seconds(300)) {
        self.pollInterval = pollInterval
        self.commandLimit = commandLimit
    }

    /// What `status` may print (its first word, in any case).
    enum MachineState: String {
        case running, stopped, pending
    }

    public func wake(_ host: HostConfig, progress: @escaping @Sendable (String) async -> Void) async throws(ProviderError) -> HostWake {
        let commands = try lines(of: host)
        guard commands.status != nil else {
            try await run(commands.wake, "wake", host, progress: progress)
            return HostWake(address: host.address, woke: true)
        }
        var woke = false, last: MachineState?
        while true {
            let state = try await status(host, commands)
            if state != last { await progress("status: the machine is \(state.rawValue)") }
            last = state
            switch state {
            case .running:
                return HostWake(address: host.address, woke: woke)
            case .stopped where !woke:
                try await run(commands.wake, "wake", host, progress: progress)
                woke = true
            case .stopped, .pending:
                break
            }
            try? await Task.sleep(for: pollInterval)
            if Task.isCancelled { throw ProviderError(host: host.name, reason: "the wake was cancelled", isTransient: true) }
        }
    }

    public func sleep(_ host: HostConfig, terminate: Bool) async throws(ProviderError) {
        try await run(try lines(of: host).sleep, "sleep", host, progress: { _ in })
    }

    public func launch(_ fleet: FleetConfig, tags: [String: String]) async throws(ProviderError) -> FleetLaunch {
        throw .notForFleets(fleet, "a command host")
    }

    private func lines(of host: HostConfig) throws(ProviderError) -> HostCommandLines {
        guard let commands = host.commands else {
            throw ProviderError(host: host.name, reason: "has provider \"command\" but no wake and sleep commands", isTransient: false)
        }
        return commands
    }

    /// Runs `argv` as `key`; its exit status and last lines go to `progress`. A non-zero exit
    /// fails, with what it printed: worth trying again later (the machine may come back).
    @discardableResult
    private func run(_ argv: [String], _ key: String, _ host: HostConfig,
                     progress: @Sendable (String) async -> Void) async throws(ProviderError) -> ProviderCommand.Ran {
        let ran = try await ProviderCommand(argv: argv, host: host, key: key).run(limit: commandLimit)
        let said = ran.said.isEmpty ? "" : ": \(ran.said)"
        await progress("\(key) command exited \(ran.status)\(said)")
        guard ran.status == 0 else {
            throw ProviderError(host: host.name, reason: "the \(key) command `\(argv.joined(separator: " "))` exited \(ran.status)\(said)",
                                isTransient: true)
        }
        return ran
    }

    /// What the host's status command says now (`running`, `stopped` or `pending`).
    public func state(of host: HostConfig) async throws(ProviderError) -> String {
        try await status(host, try lines(of: host)).rawValue
    }

    private func status(_ host: HostConfig, _ commands: HostCommandLines) async throws(ProviderError) -> MachineState {
        guard let argv = commands.status else { return .running }
        let ran = try await ProviderCommand(argv: argv, host: host, key: "status").run(limit: commandLimit)
        let word = ran.stdout.split(whereSeparator: \.isWhitespace).first.map { $0.lowercased() } ?? ""
        guard ran.status == 0, let state = MachineState(rawValue: word) else {
            let why = ran.status != 0 ? "exited \(ran.status)" : "printed '\(word.prefix(40))', not running, stopped or pending"
            throw ProviderError(host: host.name, reason: "the status command `\(argv.joined(separator: " "))` \(why)\(ran.said.isEmpty ? "" : ": \(ran.said)")",
                                isTransient: true)
        }
        return state
    }
}
