/// Why storing, finding or deleting a job's files failed, with what to check.
public struct ArtifactStoreError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var reason: String
    /// Whether trying again later may work (network, throttling, a 5xx).
    public var isTransient: Bool

    public init(_ operation: String, _ reason: String, isTransient: Bool = false) {
        self.operation = operation
        self.reason = reason
        self.isTransient = isTransient
    }

    public var description: String { "cannot \(operation): \(reason)" }
}
