import DeferredCore
import Metrics

/// `/metrics`' count of cloud API requests: every attempt, by service and action, its outcome,
/// and whether it was a retry, so an operator sees throttling and outages the retries hid.
enum CloudCallCount {
    /// `attempt` run under `retry`, each try counted as it ends.
    static func retrying<T>(_ retry: RetryPolicy, service: String, action: String,
                            _ attempt: () async throws(CloudError) -> T) async throws(CloudError) -> T {
        var tries = 0
        return try await retry.run(retryingWhen: \.isRetryable) { () async throws(CloudError) -> T in
            let isRetry = tries > 0
            tries += 1
            do throws(CloudError) {
                let value = try await attempt()
                count(service: service, action: action, outcome: "ok", isRetry: isRetry)
                return value
            } catch {
                count(service: service, action: action, outcome: outcome(of: error), isRetry: isRetry)
                throw error
            }
        }
    }

    /// ok, throttled, server_error (5xx), refused (any other answer) or unreachable.
    static func outcome(of error: CloudError) -> String {
        switch error {
        case .transport: "unreachable"
        case .api(let error) where error.isThrottling: "throttled"
        case .api(let error): error.status >= 500 ? "server_error" : "refused"
        case .rest(let error) where error.isThrottling: "throttled"
        case .rest(let error): error.status >= 500 ? "server_error" : "refused"
        case .unreadable(_, let status, _): status >= 500 ? "server_error" : "refused"
        }
    }

    private static func count(service: String, action: String, outcome: String, isRetry: Bool) {
        Counter(label: MetricName.cloudCalls,
                dimensions: [("service", service), ("action", action), ("outcome", outcome), ("retry", isRetry ? "true" : "false")]).increment()
    }
}
