@testable import DeferredStore
import Foundation
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
}
