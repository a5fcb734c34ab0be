import Foundation

/// Blocking work (a libcurl transfer, a DNS lookup, a child process's pipes) on a thread of
/// its own: a long wait must not hold one of the few threads of Swift's concurrency pool (two
/// on a 2-core machine), or everything else in the server stalls behind it.
public enum OffPool {
    public static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: work()) }
        }
    }
}
