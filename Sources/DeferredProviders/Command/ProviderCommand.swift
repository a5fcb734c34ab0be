import DeferredCore
import Foundation

/// One run of an operator's command for a host (`provider = "command"`): its argv exactly as
/// written (no shell), with `DEFERRED_HOST` and `DEFERRED_HOST_ADDRESS` in its environment,
/// off the concurrency pool. What it prints is kept to its last 8 KiB a stream, whatever it
/// prints; past its time limit it gets SIGTERM, then SIGKILL.
struct ProviderCommand: Sendable {
    let argv: [String]
    let host: HostConfig
    /// What `key` the command was given in, for messages (`wake`, `sleep`, `status`).
    let key: String

    struct Ran: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String

        /// The last lines of what it printed, for a host's events: short and on one line.
        var said: String {
            let text = (stdout + (stderr.isEmpty ? "" : "\n" + stderr)).trimmingCharacters(in: .whitespacesAndNewlines)
            let lines = text.split(separator: "\n").suffix(3).joined(separator: " / ")
            return lines.count > 500 ? "…" + String(lines.suffix(500)) : lines
        }
    }

    static let keptBytes = 8 << 10

    /// Runs the command to its end (or its time limit). Throws only when it cannot be started.
    func run(limit: Duration) async throws(ProviderError) -> Ran {
        guard let program = Self.locate(argv[0]) else {
            throw ProviderError(host: host.name, reason: "\(key): no program '\(argv[0])' (not executable, or not in PATH)", isTransient: false)
        }
        var environment = ProcessInfo.processInfo.environment
        environment["DEFERRED_HOST"] = host.name
        environment["DEFERRED_HOST_ADDRESS"] = host.address
        let process: SpawnedProcess
        do {
            // A group of its own: its time limit stops what it started too (a shell's commands).
            process = try SpawnedProcess(executable: program, arguments: Array(argv.dropFirst()),
                                         standardOutput: .pipe, standardError: .pipe, environment: environment, ownGroup: true)
        } catch {
            throw ProviderError(host: host.name, reason: "\(key): cannot start \(program): \(error)", isTransient: false)
        }
        let stopper = Task {
            try? await Task.sleep(for: limit)
            guard !Task.isCancelled, process.isRunning else { return }
            process.signal(SIGTERM)
            try? await Task.sleep(for: .seconds(5))
            if process.isRunning { process.signal(SIGKILL) }
        }
        defer { stopper.cancel() }
        return await withTaskCancellationHandler {
            // What it leaves running in the background (a daemon it starts) may hold its pipes:
            // its end, not theirs, ends the command.
            let (printed, complained) = await OffPool.run { process.readOutputs(keepingLast: Self.keptBytes, grace: .seconds(1)) }
            let status = await OffPool.run { process.waitForExit() }
            return Ran(status: status, stdout: String(decoding: printed, as: UTF8.self), stderr: String(decoding: complained, as: UTF8.self))
        } onCancel: {
            process.signal(SIGTERM)
        }
    }

    /// A path as it is; a bare name through PATH.
    static func locate(_ program: String) -> String? {
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
