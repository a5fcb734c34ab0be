import Foundation
import Synchronization

/// A job's id: what logs, the store and `DEFERRED_JOB_ID` name it by.
public struct JobID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// A new id: `j-` and 20 hex digits, safe in paths and URLs: the milliseconds since 1970 in
    /// the first 12, a number in the last 8. Ids made later sort later, so the store's indexes by
    /// job id grow at their end (a batch of new jobs shares its pages there) rather than each
    /// new job dirtying a page of its own. The number starts random in each millisecond and
    /// counts up within it, so one server never makes the same id twice, even when its clock
    /// steps back. The result token, not the id, is the secret.
    public static func make(at now: Date = Date()) -> JobID {
        let milliseconds = SortableTime.milliseconds(at: now)
        let (time, number) = last.withLock { last -> (UInt64, UInt32) in
            if milliseconds > last.time {
                // The lower half: room to count up in a busy millisecond.
                var generator = SystemRandomNumberGenerator()
                last = (milliseconds, UInt32.random(in: 0...(UInt32.max / 2), using: &generator))
            } else if last.number == UInt32.max {
                last = (last.time + 1, 0)
            } else {
                last.number += 1
            }
            return last
        }
        // Big-endian: the hex digits sort as the numbers do.
        return JobID(rawValue: "j-" + SortableTime.hex(time) + Hex.encode(withUnsafeBytes(of: number.bigEndian) { Array($0) }))
    }

    /// The last id's millisecond and number, made by this process.
    private static let last = Mutex<(time: UInt64, number: UInt32)>((0, 0))

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// The secret part of a job's result URL. 128 random bits, so knowing one result URL tells
/// nothing about another, after 12 hex digits of the milliseconds since 1970 it was made at:
/// tokens made later sort later, so the store's unique index of tokens grows at its end (a
/// batch of new jobs shares its pages there) instead of each new job rewriting a page of its
/// own somewhere in the index. The time says no more than the job's id does.
public struct ResultToken: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// Accepts what `make` produces, 44 lowercase hex digits, and the 32 of tokens made before
    /// they began with the time (their result URLs keep working).
    public init?(validating text: String) {
        guard text.utf8.count == 44 || text.utf8.count == 32,
              text.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        rawValue = text
    }

    public static func make(at now: Date = Date()) -> ResultToken {
        ResultToken(rawValue: SortableTime.hex(SortableTime.milliseconds(at: now)) + RandomHex.make(bytes: 16))
    }

    public var description: String { rawValue }
}

/// The time at the head of ids and tokens that sort as they were made: milliseconds since
/// 1970 in 48 bits (until the year 10889), as 12 hex digits, big-endian.
enum SortableTime {
    static func milliseconds(at now: Date) -> UInt64 {
        UInt64(max(now.timeIntervalSince1970, 0) * 1000) & 0xFFFF_FFFF_FFFF
    }

    static func hex(_ milliseconds: UInt64) -> String {
        Hex.encode(withUnsafeBytes(of: milliseconds.bigEndian) { Array($0.suffix(6)) })
    }
}

enum RandomHex {
    /// Hex of `bytes` bytes from the system's cryptographic generator.
    static func make(bytes: Int) -> String {
        // Eight bytes a draw: each draw is a getrandom call (intake makes two ids a delivery).
        var generator = SystemRandomNumberGenerator()
        var random: [UInt8] = []
        random.reserveCapacity(bytes + 8)
        while random.count < bytes { withUnsafeBytes(of: generator.next() as UInt64) { random += $0 } }
        return Hex.encode(random.prefix(bytes))
    }
}

