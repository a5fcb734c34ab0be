import DeferredCloud
import DeferredCore
import Foundation

/// Polls a result URL until results.json is there, with backoff (200 ms growing by half to
/// 2 s, back to 200 ms at each change), telling each state change.
public struct ResultFollower: Sendable {
    let client = HTTPClient()
    /// Bound against waiting forever on a server that never finishes the job.
    var giveUpAfter: Duration

    public init(giveUpAfter: Duration = .seconds(6 * 3600)) { self.giveUpAfter = giveUpAfter }

    public func follow(_ resultURL: String, onState: (String) -> Void) async throws -> [String: Any] {
        let backoff = RetryPolicy(base: .milliseconds(200), factor: 1.5, cap: .seconds(2), jittered: false)
        var polls = 0
        var lastState = ""
        let clock = ContinuousClock(), start = clock.now
        while clock.now - start < giveUpAfter {
            let response = try await client.send(HTTPClientRequest(url: resultURL))
            let body = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
            switch response.status {
            case 200:
                return body
            case 202:
                let state = body["status"] as? String ?? "?"
                if state != lastState {
                    onState(state)
                    lastState = state
                    polls = 0
                }
            default:
                throw FollowError(url: resultURL, status: response.status, message: body["error"] as? String ?? "")
            }
            try await Task.sleep(for: backoff.delay(beforeRetry: polls))
            polls += 1
        }
        throw FollowError(url: resultURL, status: 0, message: "no results.json after \(giveUpAfter)")
    }

    public struct FollowError: Error, CustomStringConvertible {
        let url: String, status: Int, message: String
        public var description: String { "\(url) answered \(status): \(message)" }
    }

    /// The words a person reads for a job's state.
    public static func describe(_ state: String) -> String {
        switch state {
        case "queued": "queued"
        case "waiting_for_host": "waiting for host"
        case "running": "running"
        default: state.replacingOccurrences(of: "_", with: " ")
        }
    }
}
