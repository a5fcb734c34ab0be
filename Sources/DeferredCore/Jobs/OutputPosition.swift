/// How far the server has taken a job's output from the files on its host, in bytes of each
/// stream: stored for the job's feed, or dropped past `max_output_bytes` (`cut`). A server
/// that takes the job up again after a restart reads on from here, so the stored output has
/// no gap and no byte twice.
public struct OutputPosition: Sendable, Equatable {
    public var stdout: Int64
    public var stderr: Int64
    /// The output limit was reached: nothing more is kept.
    public var cut: Bool

    public init(stdout: Int64, stderr: Int64, cut: Bool) {
        self.stdout = stdout
        self.stderr = stderr
        self.cut = cut
    }

    public static let start = OutputPosition(stdout: 0, stderr: 0, cut: false)
}
