import DeferredTestSupport
import Foundation
import NIOCore
import Testing

/// `deferred serve` runs NIO's event loops on half the cores (at least one), unless NIO's own
/// environment variable says how many.
struct EventLoopThreadsTests {
    @Test func serveRunsEventLoopsOnHalfTheCoresUnlessTheEnvironmentSaysOtherwise() async throws {
        let harness = try await ServerHarness()
        let chosen = try await BuiltServer.start(harness)
        defer { chosen.stop() }
        #expect(Self.eventLoops(of: chosen.process.pid) == max(1, System.coreCount / 2))

        var environment = BuiltServer.environment()
        environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] = "3"
        let told = try await BuiltServer.start(harness, store: [#"url = "sqlite:\#(harness.folder)/told.sqlite""#],
                                               instance: "told", environment: environment)
        defer { told.stop() }
        #expect(Self.eventLoops(of: told.process.pid) == 3)
    }

    /// The process's threads that NIO named as its singleton group's loops (`NIO-SGLTN-1-#0`…).
    static func eventLoops(of pid: pid_t) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.filter { task in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)) ?? "").hasPrefix("NIO-SGLTN-")
        }.count
    }
}
