import DeferredCore
import Testing

struct RetryPolicyTests {
    @Test func exactWaitsGrowByTheFactorUpToTheCap() {
        let requeue = RetryPolicy(base: .seconds(1), cap: .seconds(60), jittered: false)
        #expect((1...7).map { requeue.delay(beforeRetry: $0) } == [2, 4, 8, 16, 32, 60, 60].map { Duration.seconds($0) })
        let polling = RetryPolicy(base: .milliseconds(200), factor: 1.5, cap: .seconds(2), jittered: false)
        #expect((0...6).map { polling.delay(beforeRetry: $0) } == [200, 300, 450, 675, 1012, 1518, 2000].map { Duration.milliseconds($0) })
    }

    @Test func jitteredWaitsStayUnderTheirCeiling() {
        let policy = RetryPolicy(base: .milliseconds(100), cap: .seconds(1))
        let waits = (0..<200).map { _ in policy.delay(beforeRetry: 3) }
        #expect(waits.allSatisfy { $0 >= .zero && $0 <= .milliseconds(800) })
        #expect(Set(waits).count > 20, "the waits are spread, not one value")
    }

    struct Refusal: Error { let retryable: Bool }

    @Test func runStopsAtTheFirstErrorItMayNotRetryAndAfterMaxAttempts() async {
        let policy = RetryPolicy(maxAttempts: 4, base: .milliseconds(1), cap: .milliseconds(2))
        var calls = 0
        await #expect(throws: Refusal.self) {
            try await policy.run(retryingWhen: { (e: Refusal) in e.retryable }) { () async throws(Refusal) -> Int in
                calls += 1
                throw Refusal(retryable: true)
            }
        }
        #expect(calls == 4)
        calls = 0
        await #expect(throws: Refusal.self) {
            try await policy.run(retryingWhen: { (e: Refusal) in e.retryable }) { () async throws(Refusal) -> Int in
                calls += 1
                throw Refusal(retryable: calls < 2)
            }
        }
        #expect(calls == 2)
        let value = try? await policy.run(retryingWhen: { (_: Refusal) in true }) { () async throws(Refusal) -> Int in 7 }
        #expect(value == 7)
    }
}
