/// `[idle]`: how long a cloud host may idle before it is put to sleep.
public struct IdleConfig: Sendable {
    public var timeoutMinutes: Double
    public init(timeoutMinutes: Double = 30) { self.timeoutMinutes = timeoutMinutes }
}
