import DeferredCloud
import DeferredCore
import DeferredDemo
import Foundation
import Synchronization

// The promise under abuse, for as long as one cares to watch: signed scripts posted without a
// pause to the release `deferred serve` (a throwaway sshd its host, `max_jobs = 4`) while the
// server is killed with SIGKILL or stopped with SIGTERM every 0.5–4 s and started again, and now
// and then every SSH connection is dropped or another process holds the database's write lock
// for 1–6 s (as a backup or an `sqlite3` shell would). Each script appends its own token to a file and
// ends with an exit status of its own. Afterwards, with the server left up until every accepted
// job has ended: every 202 has a results.json with the status and exit status its script chose,
// and no token was written twice (not even by a job whose 202 was lost with a killed server).
// Prints what happened and what broke; exits 2 when anything did.
//   deferred-bench soak [seconds (300)]
func soakRun(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let seconds = arguments.compactMap { Int($0) }.first ?? 300
    guard let executable = builtDeferred() else { return 1 }
    let folder = NSTemporaryDirectory() + "deferred-soak-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let sshd = try await ThrowawaySSHD.start(in: folder + "/sshd", isolatedHome: true)
    defer { sshd.stop() }
    let rig = try ReattachRig(folder: folder, executable: executable, sshd: sshd, maxJobs: 4)
    let marks = folder + "/marks"
    let soak = Soak()

    var server = try await rig.serve(log: "serve-0.log")
    let end = ContinuousClock.now + .seconds(seconds)
    let posters = (0..<3).map { _ in
        Task {
            while ContinuousClock.now < end {
                let token = UUID().uuidString, exit = Int.random(in: 0...3), pause = Double(Int.random(in: 0...1200)) / 1000
                let script = "#!/bin/sh\necho \(token) >> '\(marks)'\nsleep \(pause)\nexit \(exit)\n"
                soak.posted(token)
                if let (id, url) = try? await rig.post(script) {
                    soak.accepted(SoakJob(id: id, resultURL: url, token: token, exit: exit))
                }
                try? await Task.sleep(for: .milliseconds(Int.random(in: 200...700)))
            }
        }
    }
    var starts = 1, locks: [SpawnedProcess] = []
    while ContinuousClock.now < end {
        try await Task.sleep(for: .milliseconds(Int.random(in: 500...4000)))
        switch Int.random(in: 0..<12) {
        case 0..<6:
            rig.kill9(server)
            soak.count(\.killed)
        case 6..<8:
            server.terminate()
            soak.count(\.stopped)
        case 8..<10:
            for pid in rig.connectionProcesses(of: sshd.pid) { kill(pid, SIGKILL) }
            soak.count(\.dropped)
            continue
        default:
            // Not waited for: the server goes on meanwhile, and may be killed while it waits.
            locks.append(try SpawnedProcess(executable: "/usr/bin/python3", arguments: ["-c", """
                import sqlite3, sys, time
                db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
                db.execute("BEGIN IMMEDIATE"); time.sleep(float(sys.argv[2])); db.execute("ROLLBACK")
                """, rig.state, String(Double(Int.random(in: 1000...6000)) / 1000)], stderrPath: folder + "/lock.log"))
            soak.count(\.locked)
            continue
        }
        server = try await rig.serve(log: "serve-\(starts).log")
        starts += 1
    }
    for poster in posters { await poster.value }
    for lock in locks { lock.waitForExit() }

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
    server.terminate()

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

    let acceptedTokens = Set(jobs.map { Substring($0.token) })
    let unanswered = written.keys.filter { !acceptedTokens.contains($0) }.count
    let counts = soak.counts
    print("")
    print("soak of \(seconds) s against the release deferred serve, one throwaway sshd host (max_jobs = 4), on this machine")
    print("scripts posted \(soak.postedCount), accepted (202) \(jobs.count), commands run \(written.values.reduce(0, +)) "
          + "(\(unanswered) of them from posts whose answer was lost with a server)")
    print("servers killed (SIGKILL) \(counts.killed), stopped (SIGTERM) \(counts.stopped), every SSH connection dropped \(counts.dropped) times, "
          + "the database's write lock held by another process \(counts.locked) times")
    print("accepted jobs ended as their script chose: \(jobs.count - failed.count) of \(jobs.count)")
    for problem in problems.prefix(40) { print("PROBLEM: \(problem)") }
    if problems.isEmpty {
        try? FileManager.default.removeItem(atPath: folder)
        return 0
    }
    print("kept for a look: \(folder) (serve-N.log: each server's log, marks: the tokens the commands wrote)")
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
    struct Counts { var killed = 0, stopped = 0, dropped = 0, locked = 0 }
    private struct State {
        var posted: Set<String> = []
        var jobs: [SoakJob] = []
        var counts = Counts()
    }
    private let state = Mutex(State())

    func posted(_ token: String) { state.withLock { _ = $0.posted.insert(token) } }
    func accepted(_ job: SoakJob) { state.withLock { $0.jobs.append(job) } }
    func count(_ what: WritableKeyPath<Counts, Int>) { state.withLock { $0.counts[keyPath: what] += 1 } }
    func wasPosted(_ token: String) -> Bool { state.withLock { $0.posted.contains(token) } }
    var postedCount: Int { state.withLock { $0.posted.count } }
    var jobs: [SoakJob] { state.withLock { $0.jobs } }
    var counts: Counts { state.withLock { $0.counts } }
}
