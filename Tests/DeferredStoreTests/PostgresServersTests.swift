import DeferredCore
@testable import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// What only a store several servers share does: the housekeeper's turn.
@Suite struct PostgresServersTests {
    static func serving(_ url: String) async throws -> PostgresJobStore {
        try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password), serving: true)
    }

    @Test func oneServerAtATimeHasTheHousekeepersTurnAndAnotherTakesItWhenItEnds() async throws {
        let server = try await ThrowawayPostgres.shared()
        let url = server.url(database: try server.makeDatabase())
        let first = try await Self.serving(url), second = try await Self.serving(url)
        #expect(await first.claimHousekeeping(for: .seconds(60)))
        #expect(await !second.claimHousekeeping(for: .seconds(60)))
        // The holder renews its turn; the other still waits.
        #expect(await first.claimHousekeeping(for: .seconds(60)))
        #expect(await !second.claimHousekeeping(for: .seconds(60)))
        // A holder that stops lets go at once.
        await first.resign()
        #expect(await second.claimHousekeeping(for: .milliseconds(500)))
        #expect(await !first.claimHousekeeping(for: .seconds(60)))
        // One that goes silent lets go when its turn runs out.
        try await Task.sleep(for: .seconds(1))
        #expect(await first.claimHousekeeping(for: .seconds(60)))
        // The command line's store (cron's idle-sleep) does its pass whoever's turn it is.
        let cron = try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password))
        #expect(await cron.claimHousekeeping(for: .seconds(60)))
    }
}
