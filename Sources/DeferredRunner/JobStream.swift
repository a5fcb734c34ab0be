/// The standard output of a job's start or reattach command, which carries two things in one
/// exec (each exec costs a start of the remote user's shell): first the job's own output in
/// frames, `o <n>\n` and n bytes of its stdout or `e <n>\n` and n bytes of its stderr, then,
/// once its command has ended, `c <verdict>\n` and the collect stream (the phase and resources
/// lines, then the artifacts as tar) to the end.
///
/// Every byte comes from a host the job controls: a line that is not a frame's header ends the
/// parse (`malformed`), the rest is dropped, and the server collects the job on its own. Memory
/// is one header line, whatever a frame's announced size.
public struct JobStream: Sendable {
    public enum Part {
        case stdout(ArraySlice<UInt8>)
        case stderr(ArraySlice<UInt8>)
        /// The command has ended and was followed to its end (`verdict` is the start's or
        /// reattach's own status, `RemoteScripts.Verdict`); what follows is the collect stream.
        case collectBegins(verdict: Int32)
        case collect(ArraySlice<UInt8>)
    }

    private enum State: Sendable {
        case header
        case frame(stdout: Bool, left: Int64)
        case collect
        case malformed
    }

    /// Longer than any header line deferred's scripts print (`o ` and up to 19 digits).
    static let headerLimit = 24

    private var state = State.header
    private var line: [UInt8] = []
    /// Why the parse ended early, when it did: shown in the job's error only if nothing else
    /// explains the outcome.
    public private(set) var malformed: String?

    public init() {}

    /// Parses `bytes`, handing each part to `each` in order.
    public mutating func feed(_ bytes: ArraySlice<UInt8>, _ each: (Part) -> Void) {
        var rest = bytes
        while !rest.isEmpty {
            switch state {
            case .malformed:
                return
            case .collect:
                each(.collect(rest))
                return
            case .frame(let stdout, let left):
                let count = Int(min(Int64(rest.count), left))
                let piece = rest.prefix(count)
                each(stdout ? .stdout(piece) : .stderr(piece))
                rest = rest.dropFirst(count)
                state = left == Int64(count) ? .header : .frame(stdout: stdout, left: left - Int64(count))
            case .header:
                guard let newline = rest.firstIndex(of: UInt8(ascii: "\n")) else {
                    line += rest
                    if line.count > Self.headerLimit { fail("a header line longer than \(Self.headerLimit) bytes") }
                    return
                }
                line += rest[..<newline]
                rest = rest[(newline + 1)...]
                let header = line
                line = []
                read(header, each)
            }
        }
    }

    private mutating func read(_ header: [UInt8], _ each: (Part) -> Void) {
        guard header.count <= Self.headerLimit, header.count >= 3, header[1] == UInt8(ascii: " "),
              let number = Self.number(header[2...]) else {
            return fail("a header line that is not `o|e|c <number>`")
        }
        switch header[0] {
        case UInt8(ascii: "o"), UInt8(ascii: "e"):
            // A frame of no bytes is never printed; taken as one, it is simply empty.
            state = number == 0 ? .header : .frame(stdout: header[0] == UInt8(ascii: "o"), left: number)
        case UInt8(ascii: "c") where number <= 255:
            state = .collect
            each(.collectBegins(verdict: Int32(number)))
        default:
            fail("a header line that is not `o|e|c <number>`")
        }
    }

    /// Decimal digits only, at most 18 of them (no sign, no overflow).
    private static func number(_ digits: ArraySlice<UInt8>) -> Int64? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value: Int64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        return value
    }

    private mutating func fail(_ reason: String) {
        state = .malformed
        line = []
        malformed = reason
    }
}
