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

    @discardableResult
    public static func run(_ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both pipes before waiting, so a chatty program cannot fill one and stall.
        let errData = Locked<Data>(Data())
        let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        let stderr = String(decoding: errData.get(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Failure(command: arguments, status: process.terminationStatus, stderr: stderr)
        }
        return String(decoding: outData, as: UTF8.self)
    }
}

extension LocalCommand {
    /// `run` on a thread of its own: a long wait must not hold one of the few threads that
    /// Swift's concurrency pool has (two on a 2-core machine), or servers in the same
    /// process stall behind it.
    @discardableResult
    public static func runOffPool(_ arguments: [String], in directory: String? = nil,
                                  environment: [String: String]? = nil) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try run(arguments, in: directory, environment: environment) })
            }
        }
    }
}

/// A value behind a lock, for handing results between a helper thread and its starter.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
}
