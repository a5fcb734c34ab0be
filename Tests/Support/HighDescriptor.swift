import Foundation

/// Socket numbers near the top of the process's file limit. The kernel gives each new socket
/// the lowest free number, so with tests running side by side a freed low number is soon
/// another test's; up here no one else's socket lands, and a test can take a number back once
/// it is freed (`take`) to check that nothing touches it afterwards.
public enum HighDescriptor {
    /// The lowest number handed out here: 64 below the limit (at most 65,536, so the file table
    /// stays small).
    public static var floor: Int32 {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return Int32(min(limit.rlim_cur, 65_536)) - 64
    }

    /// `fd` moved to the lowest free number from `floor` on (the original closed), or -1.
    public static func move(_ fd: Int32) -> Int32 {
        let moved = fcntl(fd, F_DUPFD_CLOEXEC, floor)
        close(fd)
        return moved
    }

    /// `fd` copied to exactly `number` if that number is free (the original closed either
    /// way), or nil.
    public static func take(_ number: Int32, with fd: Int32) -> Int32? {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, number)
        close(fd)
        guard copy == number else {
            if copy >= 0 { close(copy) }
            return nil
        }
        return copy
    }
}
