import Foundation

/// How every loop that tries again waits between tries: the n-th wait grows from `base` by
/// `factor`ⁿ up to `cap`. Jittered ("full jitter", a random time up to that) where many
/// clients may fail together — cloud APIs, outbound posts, store locks — so they do not all
/// come back at once; exact where one waiter polls (SSH readiness, a result URL, a requeue).
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var base: Duration
    public var factor: Double
    public var cap: Duration
    public var jittered: Bool

    public init(maxAttempts: Int = 6, base: Duration = .milliseconds(200), factor: Double = 2,
                cap: Duration = .seconds(5), jittered: Bool = true) {
        self.maxAttempts = maxAttempts
        self.base = base
        self.factor = factor
        self.cap = cap
        self.jittered = jittered
    }

    /// The wait before retry `retry` (0 for the first wait of a loop that counts from 0).
    public func delay(beforeRetry retry: Int) -> Duration {
        let grown = base.timeInterval * pow(factor, Double(min(retry, 60)))
        let ceiling = min(cap.timeInterval, grown)
        return .milliseconds(Int64((jittered ? Double.random(in: 0...max(0.001, ceiling)) : ceiling) * 1000))
    }

    /// Runs `operation` until it succeeds, fails in a way `isRetryable` refuses, or the
    /// attempts run out; the last error is thrown.
    public func run<T, Failure: Error>(
        retryingWhen isRetryable: (Failure) -> Bool, _ operation: () async throws(Failure) -> T
    ) async throws(Failure) -> T {
        var attempt = 0
        while true {
            do {
                return try await operation()
            } catch {
                attempt += 1
                guard isRetryable(error), attempt < maxAttempts else { throw error }
                try? await Task.sleep(for: delay(beforeRetry: attempt))
            }
        }
    }
}
