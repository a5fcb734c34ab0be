import Foundation

// What the benches read about a process from /proc: its memory, CPU time and disk writes.

/// Resident and peak resident memory of this process, or of the process `pid`, in bytes.
func memory(of pid: Int32? = nil) -> (rss: Int64, peak: Int64) {
    let status = procFile("status", of: pid)
    // /proc/PID/status gives them in kB.
    return (procNumber("VmRSS", in: status) * 1024, procNumber("VmHWM", in: status) * 1024)
}

/// Starts a fresh peak: writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
func resetPeak(of pid: Int32? = nil) {
    try? "5".write(toFile: "/proc/\(pid.map(String.init) ?? "self")/clear_refs", atomically: false, encoding: .utf8)
}

/// A process's user and system CPU time so far, its waited-for children's included
/// (/proc/PID/stat: utime, stime, cutime, cstime, in clock ticks).
func cpuSeconds(of pid: pid_t) -> Double {
    let stat = procFile("stat", of: pid)
    // The name in parentheses may hold spaces; the fields after it are plain numbers.
    guard let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the name: state is field 3, so utime (14) … cstime (17) are at 11…14 here.
    guard fields.count > 14 else { return 0 }
    let ticks = fields[11...14].compactMap { Double($0) }.reduce(0, +)
    return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// How many bytes a process has made the kernel write to disk so far (/proc/PID/io's
/// write_bytes: the page cache's pages it dirtied, whenever they are flushed).
func diskBytesWritten(of pid: pid_t) -> Int64 {
    procNumber("write_bytes", in: procFile("io", of: pid))
}

/// /proc/PID/`name` (this process's when `pid` is nil), empty when it cannot be read.
private func procFile(_ name: String, of pid: Int32?) -> String {
    (try? String(contentsOfFile: "/proc/\(pid.map(String.init) ?? "self")/\(name)", encoding: .utf8)) ?? ""
}

/// The number after `field:` in a file of `Field: value` lines (status, io); 0 when absent.
private func procNumber(_ field: String, in text: String) -> Int64 {
    let line = text.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
    return Int64(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "0") ?? 0
}

/// The CPU time, user and system, of this process's children that have ended and been waited for.
func childrenCPUSeconds() -> Double {
    var usage = rusage()
    guard getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage) == 0 else { return 0 }
    let seconds = { (time: timeval) in Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
