import Foundation

/// The process's limit on open files. Every HTTP connection, SSH session, artifact being
/// written and database file holds one; Debian's default soft limit (1,024) is far below
/// what a busy server needs, and the hard limit is usually much higher.
struct FileLimit: CustomStringConvertible {
    var soft: UInt64
    var hard: UInt64

    /// What the limit is now.
    static func current() -> FileLimit {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return FileLimit(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max))
    }

    /// Raises the soft limit to the hard one; answers the limit in force afterwards.
    static func raised() -> FileLimit {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < limit.rlim_max {
            var wanted = limit
            wanted.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &wanted)
        }
        return current()
    }

    /// How many HTTP connections fit beside what jobs need: the configured cap, or fewer when
    /// the file limit leaves less room (a quarter, and at least 256, kept for the rest).
    func connectionCap(configured: Int) -> Int {
        let reserve = max(256, soft / 4)
        let room = soft > reserve ? Int(clamping: soft - reserve) : 16
        return max(16, min(configured, room))
    }

    var description: String {
        let unlimited = UInt64.max
        return "soft \(soft == unlimited ? "unlimited" : String(soft)), hard \(hard == unlimited ? "unlimited" : String(hard))"
    }
}
