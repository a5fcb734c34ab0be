import Foundation

/// Stalls a throwaway sshd's connections as a host that hangs would: the processes serving
/// them (every `sshd` below the listener) are stopped with SIGSTOP, so TCP stays open and
/// nothing answers; `resume` continues them. The listener itself keeps accepting.
struct HostStall {
    let listener: pid_t
    private(set) var stopped: [pid_t] = []

    init(listener: pid_t) { self.listener = listener }

    mutating func stall() {
        stopped = Self.descendants(of: listener).filter { Self.command(of: $0) == "sshd" }
        for pid in stopped { kill(pid, SIGSTOP) }
    }

    func resume() {
        for pid in stopped { kill(pid, SIGCONT) }
    }

    static func descendants(of root: pid_t) -> [pid_t] {
        var parents: [pid_t: [pid_t]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // Fields after "(comm)": state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { parents[parent, default: []].append(pid) }
        }
        var found: [pid_t] = [], queue = [root]
        while let next = queue.popLast() {
            for child in parents[next] ?? [] { found.append(child); queue.append(child) }
        }
        return found
    }

    static func command(of pid: pid_t) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
