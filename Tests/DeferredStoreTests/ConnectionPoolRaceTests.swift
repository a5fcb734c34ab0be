@testable import DeferredStore
import Foundation
import Synchronization
import Testing

/// The deadline every PostgreSQL request has: answered in time even when the wait it is in
/// ignores cancellation (as a stuck connection pool's did), never held past its limit.
@Suite struct ConnectionPoolRaceTests {
    /// Waits for ever, whatever cancels it (a pool request that never gets a connection).
    static func forever() async {
        await withCheckedContinuation { (_: CheckedContinuation<Void, Never>) in }
    }

    @Test func aWorkThatNeverStartsIsAnsweredAtTheStartLimitThoughItIgnoresCancellation() async throws {
        let began = ContinuousClock.now
        do {
            let _: Int = try await ConnectionPool.race(start: .milliseconds(300), total: .seconds(60)) { _ in
                await Self.forever()
                return 1
            }
            Issue.record("a work that never started gave a value")
        } catch let stall as ConnectionPool.Stall {
            #expect(stall.beforeStart)
        }
        // Bounded from above only loosely: what is checked is that it returns at all.
        #expect(ContinuousClock.now - began < .seconds(30))
    }

    @Test func aWorkThatStartedButRunsPastItsTotalIsAnsweredAtTheTotal() async throws {
        do {
            let _: Int = try await ConnectionPool.race(start: .milliseconds(200), total: .milliseconds(500)) { started in
                started()
                await Self.forever()
                return 1
            }
            Issue.record("a work that never ended gave a value")
        } catch let stall as ConnectionPool.Stall {
            #expect(!stall.beforeStart)
        }
    }

    @Test func aWorkThatEndsInTimeGivesItsValueOrItsError() async throws {
        let value: Int = try await ConnectionPool.race(start: .seconds(30), total: .seconds(60)) { started in
            started()
            return 42
        }
        #expect(value == 42)
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            let _: Int = try await ConnectionPool.race(start: .seconds(30), total: .seconds(60)) { _ in throw Refused() }
        }
    }

    /// A request queued behind busy connections waits on while the pool hands out connections
    /// to others, and gives up once it has handed out none for the limit.
    @Test func aWaitGoesOnWhileThePoolServesOthersAndEndsWhenItStops() async throws {
        final class Checks: Sendable {
            let count = Mutex(0)
        }
        let checks = Checks()
        let began = ContinuousClock.now
        do {
            let _: Int = try await ConnectionPool.race(start: .milliseconds(200), total: .seconds(60),
                                                       stillWaiting: { checks.count.withLock { $0 += 1; return $0 <= 3 } }) { _ in
                await Self.forever()
                return 1
            }
            Issue.record("a work that never started gave a value")
        } catch let stall as ConnectionPool.Stall {
            #expect(stall.beforeStart)
        }
        // Asked four times, a start limit apart: three said "the pool serves others", the fourth did not.
        #expect(checks.count.withLock { $0 } == 4)
        #expect(ContinuousClock.now - began >= .milliseconds(800))
    }

    /// A request the pool never serves while it serves others (seen after a database restart)
    /// is not waited on for ever: three stall limits at most.
    @Test func aWaitWhileOthersAreServedEndsAfterThreeStallLimits() async throws {
        let asked = ContinuousClock.now
        let wait = ConnectionPool.LeaseWait(asked: asked, stallLimit: .seconds(20))
        // Others served a moment ago: waiting goes on, up to the third stall limit.
        #expect(wait.goesOn(now: asked + .seconds(21), lastLease: asked + .seconds(20)))
        #expect(wait.goesOn(now: asked + .seconds(59), lastLease: asked + .seconds(58)))
        #expect(!wait.goesOn(now: asked + .seconds(60), lastLease: asked + .seconds(59)))
        // No one served for a stall limit: the pool is stuck, whatever the wait so far.
        #expect(!wait.goesOn(now: asked + .seconds(25), lastLease: asked + .seconds(5)))

        // Through the race: others are always being served, this request never is.
        let short = ConnectionPool.LeaseWait(asked: .now, stallLimit: .milliseconds(100))
        do {
            let _: Int = try await ConnectionPool.race(start: .milliseconds(100), total: .seconds(60),
                                                       stillWaiting: { short.goesOn(now: .now, lastLease: .now) }) { _ in
                await Self.forever()
                return 1
            }
            Issue.record("a request never served gave a value")
        } catch let stall as ConnectionPool.Stall {
            #expect(stall.beforeStart)
        }
    }
}
