import DeferredCloud
import DeferredCore
import Foundation
import Logging

/// A POST to somebody else's server (GitHub's API, a project's notify_url), tried again with
/// the cloud clients' jittered backoff on network errors, 429 and 5xx. It never throws: a
/// receiver that is down is logged, and the job it reports on is not touched.
struct OutboundPost: Sendable {
    var http = HTTPClient()
    var retry = RetryPolicy(maxAttempts: 5, base: .seconds(1), cap: .seconds(30))

    /// Answers the final status (nil when no answer came at all).
    @discardableResult
    func send(_ url: String, body: Data, headers: [(name: String, value: String)], what: String, logger: Logger) async -> Int? {
        var last: Int?
        let attempts = retry.maxAttempts
        for attempt in 1...attempts {
            let request = HTTPClientRequest(method: "POST", url: url, headers: [(name: "Content-Type", value: "application/json")] + headers,
                                            body: body, timeout: .seconds(20))
            do throws(HTTPClientError) {
                let response = try await http.send(request)
                last = response.status
                if (200..<300).contains(response.status) { return response.status }
                // The receiver says the request is wrong (a bad token, a wrong URL): trying again will not help.
                if response.status < 500 && response.status != 429 {
                    logger.warning("\(what) refused with \(response.status): \(String(decoding: response.body.prefix(300), as: UTF8.self))")
                    return response.status
                }
                logger.warning("\(what) answered \(response.status) (attempt \(attempt) of \(attempts))")
            } catch {
                logger.warning("\(what) failed (attempt \(attempt) of \(attempts)): \(error)")
            }
            if attempt < attempts { try? await Task.sleep(for: retry.delay(beforeRetry: attempt)) }
        }
        logger.error("\(what) gave up after \(attempts) attempts")
        return last
    }
}
