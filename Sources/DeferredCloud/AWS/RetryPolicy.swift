/// Jittered exponential backoff ("full jitter"): the n-th retry waits a random time up to
/// `base · 2ⁿ`, capped, so many clients that failed together do not retry together.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var base: Duration
    public var cap: Duration

    public init(maxAttempts: Int = 6, base: Duration = .milliseconds(200), cap: Duration = .seconds(5)) {
        self.maxAttempts = maxAttempts
        self.base = base
        self.cap = cap
    }

    public func delay(beforeRetry retry: Int) -> Duration {
        let ceiling = min(cap, base * (1 << min(retry, 20)))
        let millis = Double(ceiling.components.seconds) * 1000 + Double(ceiling.components.attoseconds) / 1e15
        return .milliseconds(Int64(Double.random(in: 0...max(1, millis))))
    }

    /// Runs `operation` until it succeeds, fails for good, or the attempts run out.
    public func run<T>(_ operation: () async throws(CloudError) -> T) async throws(CloudError) -> T {
        var attempt = 0
        while true {
            do {
                return try await operation()
            } catch {
                attempt += 1
                guard error.isRetryable, attempt < maxAttempts else { throw error }
                try? await Task.sleep(for: delay(beforeRetry: attempt))
            }
        }
    }
}
