import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredTestSupport
import Foundation
import Synchronization

// The promise under abuse, for as long as one cares to watch: signed scripts posted without a
// pause to the release `deferred serve` (a throwaway sshd its host, `max_jobs = 4`) while a
// server is killed with SIGKILL or stopped with SIGTERM every 0.5–4 s and started again, and now
// and then every SSH connection is dropped, or stalled (its sshd processes stopped with SIGSTOP
// for 1–20 s, TCP left open), another process holds the database's write lock for 1–6 s (as a
// backup or an `sqlite3` shell would), or the server's disk fills up for 1–8 s (its state and
// artifacts on a tmpfs of their own, mounted when run as root; now and then the server is killed
// while it is full). With `postgres`: two servers share a throwaway PostgreSQL (Debian's), which
// is also restarted now and then, and the lock is a table lock on the jobs.
// Each script appends its own token to a file and ends with an exit status of its own.
// Afterwards, with the servers left up until every accepted job has ended: every 202 has a
// results.json with the status and exit status its script chose, and no token was written twice
// (not even by a job whose 202 was lost with a killed server).
// Prints what happened and what broke; exits 2 when anything did.
//   deferred-bench soak [seconds (300)] [sqlite | postgres]
func soakRun(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let seconds = arguments.compactMap { Int($0) }.first ?? 300
    let stores = arguments.filter { Int($0) == nil }
    guard stores.count <= 1, stores.allSatisfy({ $0 == "sqlite" || $0 == "postgres" }) else {
        print("usage: deferred-bench soak [seconds (300)] [sqlite | postgres]: not \(stores.joined(separator: " "))")
        return 1
    }
    let onPostgres = stores == ["postgres"]
    guard let executable = builtDeferred() else { return 1 }
    let folder = NSTemporaryDirectory() + "deferred-soak-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let sshd = try await ThrowawaySSHD.start(in: folder + "/sshd", isolatedHome: true)
    defer { sshd.stop() }
    // The servers' own disk, which the soak fills: their state (SQLite) and artifacts. The
    // host's files, the marks, the logs and PostgreSQL stay on the machine's disk.
    let serverFolder = folder + "/server"
    try FileManager.default.createDirectory(atPath: serverFolder, withIntermediateDirectories: true)
    let disk = OwnDisk(mountedAt: serverFolder)
    defer { disk?.unmount() }
    if disk == nil { FileHandle.standardError.write(Data("soak: no tmpfs of its own (not root?): the disk is never filled\n".utf8)) }
    let postgres = onPostgres ? try await ThrowawayPostgres.own(durable: true) : nil
    let database = try await postgres?.makeDatabase()
    let rig = try ReattachRig(folder: serverFolder, executable: executable, sshd: sshd, maxJobs: 4,
                              postgres: database.flatMap { postgres?.url(database: $0) }, servers: onPostgres ? 2 : 1)
    let marks = folder + "/marks"
    let soak = Soak()

    var starts = 0
    func serve(_ index: Int) async throws -> SpawnedProcess {
        defer { starts += 1 }
        return try await rig.serve(index, log: "serve-\(starts).log", in: folder)
    }
    var servers: [SpawnedProcess] = []
    for index in rig.ports.indices { servers.append(try await serve(index)) }
    let end = ContinuousClock.now + .seconds(seconds)
    let posters = (0..<3).map { _ in
        Task {
            while ContinuousClock.now < end {
                let token = UUID().uuidString, exit = Int.random(in: 0...3), pause = Double(Int.random(in: 0...1200)) / 1000
                let script = "#!/bin/sh\necho \(token) >> '\(marks)'\nsleep \(pause)\nexit \(exit)\n"
                soak.posted(token)
                if let (id, url) = try? await rig.post(script, to: rig.ports.indices.randomElement() ?? 0) {
                    soak.accepted(SoakJob(id: id, resultURL: url, token: token, exit: exit))
                }
                try? await Task.sleep(for: .milliseconds(Int.random(in: 200...700)))
            }
        }
    }
    var locks: [Task<Void, Never>] = [], stalls: [Task<Void, Never>] = []
    while ContinuousClock.now < end {
        try await Task.sleep(for: .milliseconds(Int.random(in: 500...4000)))
        // A server that ended by itself (one fenced after its database went away, say) is
        // started again: the soak counts it.
        for index in servers.indices where !servers[index].isRunning {
            soak.exitedAlone(servers[index].waitForExit())
            servers[index] = try await serve(index)
        }
        let chosen = servers.indices.randomElement() ?? 0
        switch Int.random(in: 0..<(onPostgres ? 18 : 16)) {
        case 0..<6:
            rig.kill9(servers[chosen])
            soak.count(\.killed)
        case 6..<8:
            servers[chosen].terminate()
            soak.count(\.stopped)
        case 8..<10:
            for pid in rig.connectionProcesses(of: sshd.pid) { kill(pid, SIGKILL) }
            soak.count(\.dropped)
            continue
        case 10..<12:
            // Not waited for: the servers go on meanwhile, and may be killed while they wait.
            let held = Double(Int.random(in: 1000...6000)) / 1000
            if let postgres, let database {
                locks.append(Task {
                    _ = try? await postgres.sql("BEGIN; LOCK TABLE job IN EXCLUSIVE MODE; SELECT pg_sleep(\(held)); COMMIT;",
                                                database: database)
                })
            } else {
                // Waited for off the concurrency pool, whose few threads the posters need.
                let state = rig.state
                locks.append(Task {
                    _ = try? await LocalCommand.runOffPool(["/usr/bin/python3", "-c", """
                        import sqlite3, sys, time
                        db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
                        db.execute("BEGIN IMMEDIATE"); time.sleep(float(sys.argv[2])); db.execute("ROLLBACK")
                        """, state, String(held)])
                })
            }
            soak.count(\.locked)
            continue
        case 12..<14:
            // Resumed later by a task of its own: kills and drops go on meanwhile.
            let stopped = rig.connectionProcesses(of: sshd.pid)
            for pid in stopped { kill(pid, SIGSTOP) }
            soak.count(\.stalled)
            stalls.append(Task {
                try? await Task.sleep(for: .milliseconds(Int.random(in: 1000...20000)))
                for pid in stopped { kill(pid, SIGCONT) }
            })
            continue
        case 14..<16:
            guard let disk else { continue }
            disk.fill()
            soak.count(\.filled)
            let killedWhileFull = Int.random(in: 0..<3) == 0
            try await Task.sleep(for: .milliseconds(Int.random(in: 1000...8000)))
            if killedWhileFull {
                rig.kill9(servers[chosen])
                soak.count(\.killed)
            }
            disk.free()
            guard killedWhileFull else { continue }
        default:
            // The database goes away for 1–5 s, as in an operator's restart.
            guard let postgres else { continue }
            try await postgres.stop()
            soak.count(\.databaseRestarted)
            try await Task.sleep(for: .milliseconds(Int.random(in: 1000...5000)))
            try await postgres.restart()
            continue
        }
        servers[chosen] = try await serve(chosen)
    }
    for poster in posters { await poster.value }
    for lock in locks { await lock.value }
    for stall in stalls { await stall.value }
    for index in servers.indices where !servers[index].isRunning {
        soak.exitedAlone(servers[index].waitForExit())
        servers[index] = try await serve(index)
    }

    // Every accepted job's end, with the server left up.
    let jobs = soak.jobs
    FileHandle.standardError.write(Data("soak: \(jobs.count) jobs accepted; waiting for their ends\n".utf8))
    var ended: [JobID: [String: Any]] = [:]
    let patience = ContinuousClock.now + .seconds(max(300, jobs.count))
    while ended.count < jobs.count, ContinuousClock.now < patience {
        for job in jobs where ended[job.id] == nil {
            guard let answer = try? await HTTPClient().send(HTTPClientRequest(url: job.resultURL, timeout: .seconds(10))),
                  answer.status == 200 else { continue }
            ended[job.id] = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] ?? [:]
        }
        if ended.count < jobs.count { try await Task.sleep(for: .milliseconds(500)) }
    }
    for server in servers { server.terminate() }

    var written: [Substring: Int] = [:]
    for line in ((try? String(contentsOfFile: marks, encoding: .utf8)) ?? "").split(separator: "\n") { written[line, default: 0] += 1 }
    var problems: [String] = [], failed: Set<JobID> = []
    for job in jobs {
        guard let results = ended[job.id] else {
            problems.append("\(job.id): no end within the wait")
            failed.insert(job.id)
            continue
        }
        let status = results["status"] as? String, exitStatus = results["exit_status"] as? Int
        let expected = job.exit == 0 ? "succeeded" : "failed"
        if status != expected || exitStatus != job.exit {
            problems.append("\(job.id): \(status ?? "no status"), exit status \(exitStatus.map(String.init) ?? "none"), error "
                            + "\(results["error"] as? String ?? "none"); its script chose \(expected), \(job.exit)")
            failed.insert(job.id)
        }
        let times = written[Substring(job.token)] ?? 0
        if times != 1 {
            problems.append("\(job.id): its command ran \(times) times")
            failed.insert(job.id)
        }
    }
    let twice = written.filter { $0.value > 1 }.count
    if twice > 0 { problems.append("\(twice) tokens written more than once in all") }
    let strangers = written.keys.filter { !soak.wasPosted(String($0)) }.count
    if strangers > 0 { problems.append("\(strangers) lines no script wrote") }

    // 75 is a server's own choice when it finds itself taken for dead (its database gone too
    // long): it leaves its jobs to the others. Anything else (a trap, say) is a crash.
    let crashes = soak.exitStatuses.filter { $0 != 75 }
    if !crashes.isEmpty { problems.append("servers ended by themselves with exit statuses \(crashes)") }

    let acceptedTokens = Set(jobs.map { Substring($0.token) })
    let unanswered = written.keys.filter { !acceptedTokens.contains($0) }.count
    let counts = soak.counts
    print("")
    print("soak of \(seconds) s against the release deferred serve, "
          + (onPostgres ? "two servers sharing a throwaway PostgreSQL" : "one server on SQLite")
          + ", one throwaway sshd host (max_jobs = 4), on this machine")
    print("scripts posted \(soak.postedCount), accepted (202) \(jobs.count), commands run \(written.values.reduce(0, +)) "
          + "(\(unanswered) of them from posts whose answer was lost with a server)")
    print("servers killed (SIGKILL) \(counts.killed), stopped (SIGTERM) \(counts.stopped); every SSH connection dropped \(counts.dropped) "
          + "times, stalled \(counts.stalled) times; the database's write lock held by another process \(counts.locked) times; "
          + (disk == nil ? "the disk never filled (no tmpfs of its own)" : "the servers' disk full \(counts.filled) times")
          + (onPostgres ? "; PostgreSQL restarted \(counts.databaseRestarted) times" : "")
          + "; servers that ended by themselves \(soak.exitStatuses.count) (exit statuses \(soak.exitStatuses))")
    print("accepted jobs ended as their script chose: \(jobs.count - failed.count) of \(jobs.count)")
    for problem in problems.prefix(40) { print("PROBLEM: \(problem)") }
    if problems.isEmpty {
        disk?.unmount()
        try? FileManager.default.removeItem(atPath: folder)
        return 0
    }
    disk?.keepCopy(in: folder + "/server-copy")
    print("kept for a look: \(folder) (serve-N.log: each server's log, marks: the tokens the commands wrote, "
          + "server\(disk == nil ? "" : "-copy"): its state and artifacts)")
    return 2
}

/// An accepted script: its job, and what its command writes and answers.
struct SoakJob: Sendable {
    let id: JobID
    let resultURL: String
    let token: String
    let exit: Int
}

/// What the posters and the chaos did, shared between their tasks.
final class Soak: Sendable {
    struct Counts { var killed = 0, stopped = 0, dropped = 0, stalled = 0, locked = 0, filled = 0, databaseRestarted = 0 }
    private struct State {
        var posted: Set<String> = []
        var exitedAlone: [Int32] = []
        var jobs: [SoakJob] = []
        var counts = Counts()
    }
    private let state = Mutex(State())

    func posted(_ token: String) { state.withLock { _ = $0.posted.insert(token) } }
    func accepted(_ job: SoakJob) { state.withLock { $0.jobs.append(job) } }
    func count(_ what: WritableKeyPath<Counts, Int>) { state.withLock { $0.counts[keyPath: what] += 1 } }
    /// A server that ended without being told to, with its exit status.
    func exitedAlone(_ status: Int32) { state.withLock { $0.exitedAlone.append(status) } }
    var exitStatuses: [Int32] { state.withLock { $0.exitedAlone } }
    func wasPosted(_ token: String) -> Bool { state.withLock { $0.posted.contains(token) } }
    var postedCount: Int { state.withLock { $0.posted.count } }
    var jobs: [SoakJob] { state.withLock { $0.jobs } }
    var counts: Counts { state.withLock { $0.counts } }
}

/// A tmpfs of the soak's own under the server's folder, so that filling it fills only the
/// server's disk. Needs root; nil when it cannot be mounted.
struct OwnDisk: Sendable {
    let path: String
    var filler: String { path + "/filler" }

    init?(mountedAt path: String) {
        guard geteuid() == 0,
              (try? SpawnedProcess(executable: "/bin/mount", arguments: ["-t", "tmpfs", "-o", "size=256m", "tmpfs", path],
                                   stderrPath: "/dev/null").waitForExit()) == 0 else { return nil }
        self.path = path
    }

    /// Writes a file until the disk has no room left.
    func fill() {
        let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
    }

    func free() { unlink(filler) }

    /// What the server left, copied out before the tmpfs goes.
    func keepCopy(in copy: String) {
        free()
        try? FileManager.default.copyItem(atPath: path, toPath: copy)
    }

    func unmount() {
        _ = try? SpawnedProcess(executable: "/bin/umount", arguments: ["-l", path], stderrPath: "/dev/null").waitForExit()
    }
}
