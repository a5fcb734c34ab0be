/// `[scripts]`: how much posting of scripts one client and the queue may take.
public struct ScriptLimits: Sendable {
    /// Token bucket per client IP: refill rate and size.
    public var ratePerMinute: Double
    public var burst: Int
    /// The `max_queued` of projects that set none.
    public var maxQueued: Int

    public init(ratePerMinute: Double = 30, burst: Int = 10, maxQueued: Int = 100) {
        self.ratePerMinute = ratePerMinute
        self.burst = burst
        self.maxQueued = maxQueued
    }
}
