import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredDispatcher
import DeferredProviders
import DeferredTestSupport
import Foundation
import Testing

/// Timers of minutes and days read a clock the test moves by hand: a 14-day retention (with
/// housekeeping's production interval of a minute) and a 10-minute wake timeout, each in
/// milliseconds. The 30-minute idle timeout is `CloudHostTests.serveStopsAnIdleHostByItself`.
@Suite struct ClockSeamTests {
    @Test func fourteenDaysOfRetentionPassOnAClockMovedByHand() async throws {
        let harness = try await ServerHarness()
        harness.config.artifacts.retentionDays = 14
        let job = try await RetentionWiringTests.oldJob(in: harness, daysAgo: 0)
        let folder = harness.config.artifacts.directory + "/" + job.token.rawValue
        let time = ManualTime()
        let housekeeping = harness.makeDispatcher().housekeeping(every: .seconds(60), time: time)
        let running = Task { try await housekeeping.run() }
        defer { running.cancel() }
        try await time.waitUntilSleeping()

        time.advance(by: .seconds(13 * 86_400))
        try await time.waitUntilSleeping()
        #expect(try await harness.store.job(id: job.id)?.expiredAt == nil)
        #expect(FileManager.default.fileExists(atPath: folder))

        time.advance(by: .seconds(86_400 + 60))
        try await time.waitUntilSleeping()
        #expect(try await harness.store.job(id: job.id)?.expiredAt != nil)
        #expect(!FileManager.default.fileExists(atPath: folder))
    }

    @Test func aTenMinuteWakeTimeoutPassesOnAClockMovedByHand() async throws {
        let harness = try await ServerHarness()
        // Nothing listens there: SSH never answers, and the wake keeps trying.
        harness.config.hosts[0].port = try FreePort.find()
        let time = ManualTime()
        let control = HostControl(config: harness.config, store: harness.store, providers: harness.providers,
                                  waker: HostWaker(store: harness.store, providers: harness.providers, time: time))
        let waking = Task { try await control.wake("loopback") { _ in } }
        defer { waking.cancel() }
        try await time.waitUntilSleeping()
        time.advance(by: .seconds(9 * 60 + 59))
        // Still waiting: the wake's timer is the one sleeper on the clock.
        #expect(time.sleeping == 1)
        time.advance(by: .seconds(2))
        do {
            _ = try await waking.value
            Issue.record("the wake of a host that never answers succeeded")
        } catch {
            #expect("\(error)".contains("did not come up within its wake timeout of 10 minutes"), "\(error)")
        }
    }
}
