import Foundation
import NIOCore

/// How many threads NIO's event loops get in this process: half the cores, at least one.
/// NIO's default is one a core, but in deferred the loops only move bytes and read HTTP: a
/// request's work (HMAC, parsing, the store's encoding) runs on Swift's cooperative pool, which
/// has a thread a core already, and the store's writer has a thread of its own. On the 2-core
/// bench machine the second loop's thread only competed with them for the cores: with one loop,
/// `deferred-bench intake 10 32 1` took 242 µs of CPU a request instead of 277 (medians of 4
/// rounds each, alternated) and ran 1.60× the peer's rate instead of 1.37×.
/// `NIO_SINGLETON_GROUP_LOOP_COUNT` in the environment, NIO's own setting, still decides.
public enum EventLoopThreads {
    /// Called first thing in `main` (of `deferred`, and of `deferred-bench`, which serves the
    /// listeners bench in its own process): NIO stops the process if this is set after its
    /// loops start.
    public static func choose(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil else { return }
        NIOSingletons.groupLoopCountSuggestion = max(1, System.coreCount / 2)
    }
}
