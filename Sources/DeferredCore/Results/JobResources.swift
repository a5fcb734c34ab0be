/// What the job's command used on its host, as far as the host could tell: CPU time of the
/// command and everything it waited for (the shell's `times`), and the peak memory of its
/// cgroup (`memory.peak`, where the job has a cgroup v2 scope with memory accounting).
/// A value the host could not give is nil, with the reason in `unavailable`.
public struct JobResources: Sendable, Equatable, Encodable {
    public var cpuUserSeconds: Double?
    public var cpuSystemSeconds: Double?
    public var memoryPeakBytes: Int64?
    /// Why a value is missing, by its key in results.json.
    public var unavailable: [String: String] = [:]

    public init(cpuUserSeconds: Double?, cpuSystemSeconds: Double?, memoryPeakBytes: Int64?) {
        self.cpuUserSeconds = cpuUserSeconds
        self.cpuSystemSeconds = cpuSystemSeconds
        self.memoryPeakBytes = memoryPeakBytes
        if cpuUserSeconds == nil || cpuSystemSeconds == nil {
            unavailable["cpu_seconds"] = "the command ended without reporting its CPU time (killed with SIGKILL, or its host lost the file)"
        }
        if memoryPeakBytes == nil {
            unavailable["memory_peak_bytes"] = "the host gave the job no cgroup v2 scope with memory accounting (memory.peak, Linux 5.19)"
        }
    }

    /// From the host's words: the children's line of `times` ("0m1.250s 0m0.031s", either
    /// shell's spelling) and memory.peak's number. Anything else counts as not given.
    public init(times: [Substring], memoryPeak: Substring?) {
        let seconds = times.map(Self.seconds)
        self.init(cpuUserSeconds: seconds.count == 2 ? seconds[0] : nil, cpuSystemSeconds: seconds.count == 2 ? seconds[1] : nil,
                  memoryPeakBytes: memoryPeak.flatMap { Int64($0) }.flatMap { $0 >= 0 ? $0 : nil })
    }

    /// "1m2.500s" as 62.5; nil for anything that is not minutes and seconds.
    static func seconds(_ text: Substring) -> Double? {
        // Digits and one point only: Double(_:) would also take "0x10", "1e3" and "nan".
        guard text.count <= 32, text.hasSuffix("s"), let m = text.firstIndex(of: "m"),
              let minutes = Int(text[..<m]), minutes >= 0 else { return nil }
        let fraction = text[text.index(after: m)..<text.index(before: text.endIndex)]
        guard fraction.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let seconds = Double(fraction), seconds.isFinite else { return nil }
        return Double(minutes) * 60 + seconds
    }

    enum CodingKeys: String, CodingKey {
        case cpuUserSeconds = "cpu_user_seconds", cpuSystemSeconds = "cpu_system_seconds"
        case memoryPeakBytes = "memory_peak_bytes", unavailable
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cpuUserSeconds, forKey: .cpuUserSeconds)
        try c.encode(cpuSystemSeconds, forKey: .cpuSystemSeconds)
        try c.encode(memoryPeakBytes, forKey: .memoryPeakBytes)
        try c.encode(unavailable, forKey: .unavailable)
    }
}
