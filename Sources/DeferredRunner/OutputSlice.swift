/// One read of a job's output as the runner hands it on: the bytes of it that are kept, how
/// many the output limit dropped, and the limit's one-line notice (for stderr) when this read
/// crossed it. Whoever stores the output counts from here how far into each stream it got.
public struct OutputSlice: Sendable, Equatable {
    public enum Stream: Sendable, Equatable { case stdout, stderr }

    public var stream: Stream
    public var kept: [UInt8]
    /// Bytes of this read past the limit, never kept; they all follow every kept byte.
    public var dropped: Int
    /// Written to stderr after the kept bytes: the output was cut here.
    public var cutNotice: [UInt8]?

    public init(stream: Stream, kept: [UInt8], dropped: Int = 0, cutNotice: [UInt8]? = nil) {
        self.stream = stream
        self.kept = kept
        self.dropped = dropped
        self.cutNotice = cutNotice
    }

    public static func stdout(_ bytes: [UInt8]) -> OutputSlice { OutputSlice(stream: .stdout, kept: bytes) }
    public static func stderr(_ bytes: [UInt8]) -> OutputSlice { OutputSlice(stream: .stderr, kept: bytes) }
}
