import Foundation

/// Where timers that count minutes and days read the time and wait: idle timeouts,
/// retention, wake and boot timeouts, housekeeping's interval. The wall clock in production;
/// a clock a test moves by hand (`ManualTime` in the test support), so a 30-minute idle
/// timeout or a 14-day retention is tested in milliseconds.
public protocol TimeSource: Sendable {
    var now: Date { get }
    /// Returns once `duration` has passed on this clock; throws when the task is cancelled.
    func sleep(for duration: Duration) async throws
}

/// The system's clock.
public struct SystemTime: TimeSource {
    public init() {}
    public var now: Date { Date() }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

extension Duration {
    /// The duration in seconds, as `Date` arithmetic takes it.
    public var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
