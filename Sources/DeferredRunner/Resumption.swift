import DeferredCore
import Foundation

/// Where a job that a server started before is taken up again: how far its stored output
/// goes, the tails of it results.json keeps, and when the job started (its timeout counts
/// from there, not from the restart).
public struct Resumption: Sendable {
    public var position: OutputPosition
    public var startedAt: Date
    public var stdoutTail: OutputTail
    public var stderrTail: OutputTail

    public init(position: OutputPosition = .start, startedAt: Date,
                stdoutTail: OutputTail = OutputTail(), stderrTail: OutputTail = OutputTail()) {
        self.position = position
        self.startedAt = startedAt
        self.stdoutTail = stdoutTail
        self.stderrTail = stderrTail
    }
}
