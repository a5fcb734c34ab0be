import DeferredCore
import DeferredDemo
import DeferredRunner
import DeferredStore
import Foundation

// Jobs through one host, with the release `deferred serve` against a throwaway sshd: N signed
// scripts of `true` (default 200) with `max_jobs` M (default 4), beside `xargs -P M` running
// `ssh` over one OpenSSH ControlMaster with deferred's own remote commands for each job (start,
// follow and collect in one exec, then forget: `JobCommands`, the same text the runner sends).
// Twice: with the remote user's rc files as they are (HOME is the user's own) and with them
// skipped (an empty HOME). Measured: jobs per minute from the first post (the first xargs
// start) to the last job's stored end (the end of the last start; the trailing clean-up of the
// host is counted by neither), and each job's own time from its start to its end, p50 and p90.
// Usage: deferred-bench dispatch [N] [M]
func dispatchBench(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let numbers = arguments.compactMap { Int($0) }
    let count = numbers.first ?? 200, slots = numbers.dropFirst().first ?? 4
    guard let executable = builtDeferred() else { return 1 }
    var rows = [["", "deferred", "peer (xargs -P \(slots) ssh, ControlMaster)", "ratio"]]
    for (label, isolated) in [("rc files as they are", false), ("rc files skipped", true)] {
        let folder = NSTemporaryDirectory() + "deferred-dispatch-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let sshd = try await ThrowawaySSHD.start(in: folder + "/sshd", isolatedHome: isolated)
        defer { sshd.stop() }
        let rig = try ReattachRig(folder: folder, executable: executable, sshd: sshd, maxJobs: slots)
        let (ours, trigger) = try await rig.dispatchMany(count)
        let peer = try await rig.peerDispatch(count, slots: slots, trigger: trigger)
        rows.append(["\(count) jobs, \(label): jobs/min", String(format: "%.0f", ours.perMinute), String(format: "%.0f", peer.perMinute),
                     String(format: "%.2f×", ours.perMinute / peer.perMinute)])
        rows.append(["  job start → end, p50 / p90", "\(ms(ours.p50)) / \(ms(ours.p90))", "\(ms(peer.p50)) / \(ms(peer.p90))",
                     String(format: "%.2f×", ours.p50 / peer.p50)])
    }
    print("")
    print("jobs through one host (max_jobs = \(slots)), on this machine, in the same run")
    let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "   "))
    }
    return 0
}

func ms(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1000) }

/// Jobs per minute over a run, and its jobs' own times.
struct Throughput {
    let perMinute: Double
    let p50: Double
    let p90: Double

    init(jobs: Int, elapsed: Double, times: [Double]) {
        perMinute = Double(jobs) / elapsed * 60
        p50 = percentile(times, 0.5)
        p90 = percentile(times, 0.9)
    }
}

/// The value `share` of the way up `values` sorted (0 when there are none).
func percentile(_ values: [Double], _ share: Double) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * share))]
}

extension ReattachRig {
    /// Posts `count` scripts of `true` and waits for every end; returns the figures and the
    /// stored trigger, for the peer to send the same script.
    func dispatchMany(_ count: Int) async throws -> (Throughput, Trigger) {
        let server = try await serve()
        defer { server.terminate() }
        let store = try SQLiteJobStore(path: state)
        let start = Date()
        var ids: Set<JobID> = []
        for _ in 0..<count { ids.insert(try await post("#!/bin/sh\ntrue\n").id) }
        var jobs: [Job] = []
        try await until("all \(count) jobs end", seconds: 1800) {
            jobs = try await store.jobs(limit: count + 10).filter { ids.contains($0.id) }
            return jobs.count == count && jobs.allSatisfy(\.status.isFinal)
        }
        let failed = jobs.filter { $0.status != .succeeded }
        guard failed.isEmpty, let trigger = jobs.first?.trigger else {
            throw BenchFailure("\(failed.count) jobs did not succeed: \(failed.prefix(3).map { "\($0.id.rawValue) \($0.status.rawValue)" })")
        }
        let last = jobs.compactMap(\.finishedAt).max() ?? Date()
        let times = jobs.compactMap { job in job.startedAt.flatMap { started in job.finishedAt?.timeIntervalSince(started) } }
        return (Throughput(jobs: count, elapsed: last.timeIntervalSince(start), times: times), trigger)
    }

    /// The same jobs by hand: `xargs -P slots` runs a small script per job that sends
    /// deferred's own start (which collects too) and forget commands over one ControlMaster.
    func peerDispatch(_ count: Int, slots: Int, trigger: Trigger) async throws -> Throughput {
        let project = ProjectConfig(name: "bench", repository: "bench/bench", command: nil, hosts: ["loopback"])
        let work = folder + "/peer"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        for index in 0..<count {
            let job = Job(project: "bench", trigger: trigger)
            let start = JobCommands.start(job, project: project, attempt: 1)
            try start.command.write(toFile: "\(work)/\(index).start", atomically: false, encoding: .utf8)
            try Data(start.stdin).write(to: URL(fileURLWithPath: "\(work)/\(index).stdin"))
            try JobCommands.forget([job.id]).write(toFile: "\(work)/\(index).forget", atomically: false, encoding: .utf8)
        }
        try (0..<count).map(String.init).joined(separator: "\n").appending("\n").write(toFile: work + "/list", atomically: false, encoding: .utf8)
        // $1 the folder, $2 the job's index, then the ssh command line. Times in seconds since
        // the epoch: its start, and the end of its start exec, which collects the job.
        try #"""
            d=$1 i=$2; shift 2
            s=$(date +%s.%N)
            "$@" "$(cat "$d/$i.start")" < "$d/$i.stdin" > /dev/null 2>&1 || echo "$i start $?" >> "$d/failed"
            e=$(date +%s.%N)
            "$@" "$(cat "$d/$i.forget")" < /dev/null > /dev/null 2>&1
            echo "$i $s $e" >> "$d/times"

            """#.write(toFile: work + "/job.sh", atomically: false, encoding: .utf8)

        let socket = folder + "/dispatch-master.sock"
        let ssh = ["/usr/bin/ssh", "-o", "UserKnownHostsFile=\(sshd.knownHosts)", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                   "-i", sshd.clientKey, "-p", String(sshd.port), "-S", socket, "\(sshd.user)@127.0.0.1"]
        let master = try SpawnedProcess(executable: "/usr/bin/ssh", arguments: ["-M", "-N"] + ssh.dropFirst(), stderrPath: folder + "/peer.log")
        defer { master.terminate() }
        try await until("the master connection is up", seconds: 30) { FileManager.default.fileExists(atPath: socket) }
        let start = Date().timeIntervalSince1970
        _ = try await LocalCommand.runOffPool(["xargs", "-a", work + "/list", "-P", String(slots), "-I{}", "sh", work + "/job.sh", work, "{}"] + ssh)
        if let failed = try? String(contentsOfFile: work + "/failed", encoding: .utf8) {
            throw BenchFailure("the peer's jobs failed: \(failed.prefix(500))")
        }
        let lines = try String(contentsOfFile: work + "/times", encoding: .utf8).split(separator: "\n")
        let spans = lines.compactMap { line -> (Double, Double)? in
            let fields = line.split(separator: " ")
            guard fields.count == 3, let started = Double(fields[1]), let ended = Double(fields[2]) else { return nil }
            return (started, ended)
        }
        guard spans.count == count, let last = spans.map(\.1).max() else {
            throw BenchFailure("the peer timed \(spans.count) of \(count) jobs")
        }
        return Throughput(jobs: count, elapsed: last - start, times: spans.map { $0.1 - $0.0 })
    }
}
