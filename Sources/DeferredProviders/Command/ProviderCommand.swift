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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = Array(argv.dropFirst())
        var environment = ProcessInfo.processInfo.environment
        environment["DEFERRED_HOST"] = host.name
        environment["DEFERRED_HOST_ADDRESS"] = host.address
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ProviderError(host: host.name, reason: "\(key): cannot start \(program): \(error)", isTransient: false)
        }
        let running = RunningProcess(process)
        let stopper = Task {
            let process = running.process
            try? await Task.sleep(for: limit)
            guard !Task.isCancelled, process.isRunning else { return }
            process.terminate()
            try? await Task.sleep(for: .seconds(5))
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        defer { stopper.cancel() }
        return await withTaskCancellationHandler {
            let process = running.process
            // Both pipes drained at once: a command that fills one while we read the other
            // would never end.
            async let stdout = OffPool.run { Self.tail(of: out.fileHandleForReading) }
            async let stderr = OffPool.run { Self.tail(of: err.fileHandleForReading) }
            let (printed, complained) = await (stdout, stderr)
            let status = await OffPool.run { () -> Int32 in
                process.waitUntilExit()
                return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
            }
            return Ran(status: status, stdout: String(decoding: printed, as: UTF8.self), stderr: String(decoding: complained, as: UTF8.self))
        } onCancel: {
            if running.process.isRunning { running.process.terminate() }
        }
    }

    /// Reads `handle` to its end, keeping the last `keptBytes`.
    private static func tail(of handle: FileHandle) -> Data {
        var kept = Data()
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { return kept }
            kept.append(chunk)
            if kept.count > keptBytes { kept = kept.suffix(keptBytes) }
        }
    }

    /// A path as it is; a bare name through PATH.
    static func locate(_ program: String) -> String? {
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// Foundation's Process, shared with the tasks that wait for it and stop it: its terminate,
/// isRunning and waitUntilExit may be called from any thread.
private final class RunningProcess: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }
}
