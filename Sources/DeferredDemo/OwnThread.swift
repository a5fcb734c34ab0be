import Foundation

/// Blocking work (a child's wait, a read from a socket) on a thread of its own. Swift's
/// concurrency pool has a thread a core (two on a 2-core machine): one held by a blocking call
/// stalls every server and test in the same process behind it.
enum OwnThread {
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
        }
    }

    static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: work()) }
        }
    }
}
