import DeferredCore
import Foundation

/// A token bucket per client address: `burst` posts at once, then `ratePerMinute`.
public actor RateLimiter {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let perSecond: Double
    private let burst: Double
    private var buckets: [String: Bucket] = [:]

    public init(ratePerMinute: Double, burst: Int) {
        perSecond = ratePerMinute / 60
        self.burst = Double(burst)
    }

    /// Takes a token for `client`. Nil when it may go on; otherwise how long until it may.
    public func take(for client: String, now: ContinuousClock.Instant = .now) -> Duration? {
        var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
        let elapsed = now - bucket.updated
        let seconds = elapsed.timeInterval
        bucket.tokens = min(burst, bucket.tokens + seconds * perSecond)
        bucket.updated = now
        defer {
            buckets[client] = bucket
            if buckets.count > 10_000 { forgetFull(now: now) }
        }
        guard bucket.tokens >= 1 else {
            return .milliseconds(Int64(((1 - bucket.tokens) / perSecond * 1000).rounded(.up)))
        }
        bucket.tokens -= 1
        return nil
    }

    /// Clients whose bucket has filled up again are as good as new: drop them.
    private func forgetFull(now: ContinuousClock.Instant) {
        let refill = Duration.milliseconds(Int64(burst / perSecond * 1000))
        buckets = buckets.filter { now - $0.value.updated < refill }
    }
}
