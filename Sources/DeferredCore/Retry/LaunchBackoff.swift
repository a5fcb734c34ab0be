import Foundation

/// How long a fleet holds back its next launch after instances in a row that never became
/// reachable: 30 s after the first, doubling, at most 15 minutes. A job's retries share the
/// fleet's launches instead of making a new instance each.
public enum LaunchBackoff {
    static let policy = RetryPolicy(base: .seconds(15), cap: .seconds(15 * 60), jittered: false)

    public static func hold(afterFailures failures: Int) -> TimeInterval {
        failures <= 0 ? 0 : policy.delay(beforeRetry: failures).timeInterval
    }
}
