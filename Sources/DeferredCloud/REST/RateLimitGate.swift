import Foundation
import Synchronization

/// A token's rate limit as the API last told it: once an answer says none is left
/// (`RateLimit-Remaining: 0`), calls with that token wait for `RateLimit-Reset` instead of
/// spending a request on a 429. Shared by every client of the token in the process.
actor RateLimitGate {
    private static let gates = Mutex<[String: RateLimitGate]>([:])

    /// The gate of one token at one API; `key` never holds the token itself.
    static func gate(_ key: String) -> RateLimitGate {
        gates.withLock { gates in
            if let gate = gates[key] { return gate }
            let gate = RateLimitGate()
            gates[key] = gate
            return gate
        }
    }

    private var closedUntil: Date?

    /// Waits until the limit is full again, `longest` at most.
    func wait(longest: Duration) async {
        guard let until = closedUntil else { return }
        let seconds = min(until.timeIntervalSinceNow, 86_400)
        guard seconds > 0 else { closedUntil = nil; return }
        try? await Task.sleep(for: min(.milliseconds(Int64(seconds * 1000)), longest))
    }

    /// What an answer said about the limit: none left closes the gate until the reset.
    func note(remaining: Int?, reset: Date?) {
        if remaining == 0, let reset, reset > Date() { closedUntil = reset }
        else if let remaining, remaining > 0 { closedUntil = nil }
    }
}
