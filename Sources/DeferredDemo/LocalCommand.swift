import DeferredCore
import Foundation

/// Runs a program on this machine and collects its output. For setting up demo and test
/// peers (ssh-keygen, git), never for anything a payload names.
public enum LocalCommand {
    public struct Failure: Error, CustomStringConvertible {
        public let command: [String]
        public let status: Int32
        public let stderr: String
        public var description: String {
            "`\(command.joined(separator: " "))` exited \(status): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }

    /// Through posix_spawn, with output to files read afterwards: Foundation's `Process` on
    /// Linux is not safe to start from several threads at once, and its pipe reads trap when
    /// another child's SIGCHLD interrupts them.
    @discardableResult
    public static func run(_ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil) throws -> String {
        let base = NSTemporaryDirectory() + "deferred-command-" + UUID().uuidString.prefix(8)
        let out = base + ".out", err = base + ".err"
        defer { for path in [out, err] { try? FileManager.default.removeItem(atPath: path) } }
        // `env -C` changes folder in the child: nothing in this process moves.
        // No inherited ssh-agent: these commands name their keys, and an agent another test
        // started and stopped would only end them with SIGPIPE. A caller may still pass one.
        var inherited = ProcessInfo.processInfo.environment
        inherited["SSH_AUTH_SOCK"] = nil
        let environment = environment ?? inherited
        let process = try SpawnedProcess(executable: "/usr/bin/env", arguments: (directory.map { ["-C", $0] } ?? []) + arguments,
                                         stdoutPath: out, stderrPath: err, environment: environment)
        let status = process.waitForExit()
        let stdout = String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self)
        let stderr = String(decoding: FileManager.default.contents(atPath: err) ?? Data(), as: UTF8.self)
        guard status == 0 else { throw Failure(command: arguments, status: status, stderr: stderr) }
        return stdout
    }
}

extension LocalCommand {
    /// `run` on a thread of its own: a long wait must not hold one of the few threads that
    /// Swift's concurrency pool has (two on a 2-core machine), or servers in the same
    /// process stall behind it.
    @discardableResult
    public static func runOffPool(_ arguments: [String], in directory: String? = nil,
                                  environment: [String: String]? = nil) async throws -> String {
        try await OffPool.run { Result { try run(arguments, in: directory, environment: environment) } }.get()
    }
}

