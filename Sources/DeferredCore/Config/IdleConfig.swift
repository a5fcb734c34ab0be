/// `[idle]`: how long a cloud host may idle before it is put to sleep, and how often `serve`'s
/// own timer looks (for idle hosts, and for results and uploads still to be stored).
public struct IdleConfig: Sendable {
    public var timeoutMinutes: Double
    public var checkIntervalSeconds: Double

    public init(timeoutMinutes: Double = 30, checkIntervalSeconds: Double = 60) {
        self.timeoutMinutes = timeoutMinutes
        self.checkIntervalSeconds = checkIntervalSeconds
    }
}
