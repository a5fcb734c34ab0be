import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredStore
import Foundation

// Following running jobs again, with the release `deferred serve` against a throwaway sshd:
//   1. N jobs (default 50) print a line every 0.1 s; the server is killed with SIGKILL and
//      started again; measured: from the new server's spawn until every job's stored output
//      has grown again (reattached and storing), beside OpenSSH doing the same follow by hand
//      (one ControlMaster, then `tail -c +OFFSET -f` of each job's stdout file until its first
//      byte).
//   2. One job prints 20,000 numbered lines over ~10 s while every SSH connection is killed 20
//      times; measured: bytes lost and bytes twice in the stored output and in output.log,
//      beside the home-made way (`ssh host tail -n 0 -f` started again after each drop).
// Usage: deferred-bench reattach [N]
func reattachBench(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let count = arguments.compactMap { Int($0) }.first ?? 50
    guard let executable = builtDeferred() else { return 1 }
    let folder = NSTemporaryDirectory() + "deferred-reattach-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let sshd = try await ThrowawaySSHD.start(in: folder + "/sshd", isolatedHome: true)
    defer { sshd.stop() }
    let bench = try ReattachRig(folder: folder, executable: executable, sshd: sshd, maxJobs: count)

    let (deferredSeconds, peerSeconds) = try await bench.reattachMany(count)
    let (ours, peer) = try await bench.reconnectMany(drops: 20)
    print("")
    print("following jobs again, on this machine, in the same run")
    let rows = [["", "deferred", "peer"],
                ["\(count) running jobs: spawn → all followed again", seconds(deferredSeconds),
                 "\(seconds(peerSeconds)) (OpenSSH ControlMaster + \(count) × tail -c +OFFSET -f)"],
                ["20 dropped connections: bytes lost / twice (stored output)", "\(ours.stored.lost) / \(ours.stored.twice)",
                 "\(peer.lost) / \(peer.twice) (ssh tail -n 0 -f, started again after each drop)"],
                ["20 dropped connections: bytes lost / twice (output.log)", "\(ours.log.lost) / \(ours.log.twice)", ""]]
    let widths = (0..<3).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "   "))
    }
    return ours.stored.lost + ours.stored.twice + ours.log.lost + ours.log.twice == 0 ? 0 : 2
}

/// The release `deferred` beside this program, or nil (having said how to build it).
func builtDeferred() -> String? {
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("deferred").path
    guard FileManager.default.isExecutableFile(atPath: executable) else {
        print("build deferred first (swift build -c release --product deferred): \(executable) is missing")
        return nil
    }
    return executable
}

func seconds(_ value: Double) -> String { String(format: "%.2f s", value) }

/// Bytes of expected lines missing from what was followed, and of lines that came twice.
struct LineDamage {
    var lost = 0
    var twice = 0

    init(expected: [Substring], got: [Substring]) {
        var seen: [Substring: Int] = [:]
        for line in got { seen[line, default: 0] += 1 }
        for line in expected {
            let times = seen[line] ?? 0
            if times == 0 { lost += line.utf8.count + 1 }
            if times > 1 { twice += (line.utf8.count + 1) * (times - 1) }
        }
    }
}

/// A served deferred (restartable), its sshd and the helpers both measures use.
struct ReattachRig {
    let folder: String
    let executable: String
    let sshd: ThrowawaySSHD
    /// Each server's port and configuration; one server unless the store is shared.
    let ports: [Int]
    let configs: [String]
    var port: Int { ports[0] }
    var config: String { configs[0] }
    var base: String { base(of: 0) }
    func base(of server: Int) -> String { "http://127.0.0.1:\(ports[server])" }
    var state: String { folder + "/state.sqlite" }

    /// `postgres`: the servers' shared database (`servers` of them), else SQLite in `folder`.
    init(folder: String, executable: String, sshd: ThrowawaySSHD, maxJobs: Int, postgres: String? = nil, servers: Int = 1) throws {
        self.folder = folder
        self.executable = executable
        self.sshd = sshd
        ports = try (0..<servers).map { _ in try FreePort.find() }
        configs = (0..<servers).map { folder + ($0 == 0 ? "/deferred.toml" : "/deferred-\($0).toml") }
        for (port, config) in zip(ports, configs) {
            try """
                \(BenchServer.tables(port: port, folder: folder, postgres: postgres))
                [scripts]
                rate_per_minute = 100000
                burst = 1000
                max_queued = 100000
                \(sshd.hostTable(name: "loopback", extra: ["max_jobs = \(maxJobs)"]))
                [[projects]]
                name = "bench"
                repository = "bench/bench"
                hosts = ["loopback"]
                script_secret_env = "BENCH_SECRET"
                timeout_minutes = 30

                """.write(toFile: config, atomically: true, encoding: .utf8)
        }
    }

    /// `logFolder`: where its log goes, when not beside its state (a soak fills that disk).
    func serve(_ server: Int = 0, log: String = "serve.log", in logFolder: String? = nil) async throws -> SpawnedProcess {
        let process = try BenchServer.spawn(executable, config: configs[server], folder: logFolder ?? folder, log: log)
        try await until("the server answers", seconds: 60) {
            (try? await HTTPClient().send(HTTPClientRequest(url: base(of: server) + "/healthz", timeout: .seconds(2))))?.status == 200
        }
        return process
    }

    /// Posts a signed script; returns its job id and result URL.
    func post(_ script: String, to server: Int = 0) async throws -> (id: JobID, resultURL: String) {
        let body = try JSONSerialization.data(withJSONObject: [
            "script": script, "signature": WebhookSignature.sign(body: Data(script.utf8), secret: BenchServer.secret),
        ])
        let answer = try await HTTPClient().send(HTTPClientRequest(
            method: "POST", url: base(of: server) + "/projects/bench/scripts", headers: [("Content-Type", "application/json")], body: body,
            timeout: .seconds(30)))
        let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] ?? [:]
        guard answer.status == 202, let id = json["id"] as? String, let url = json["result_url"] as? String else {
            throw BenchFailure("the script was refused: \(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
        }
        return (JobID(rawValue: id), url)
    }

    func kill9(_ process: SpawnedProcess) {
        kill(process.pid, SIGKILL)
        _ = process.waitForExit()
    }

    // MARK: 1. Many jobs followed again after a kill -9

    func reattachMany(_ count: Int) async throws -> (deferred: Double, peer: Double) {
        let stop = folder + "/stop"
        var server = try await serve()
        var ids: [JobID] = []
        for _ in 0..<count {
            ids.append(try await post("#!/bin/sh\ni=0\nwhile [ ! -e '\(stop)' ]; do i=$((i+1)); echo \"tick $i\"; sleep 0.1; done\n").id)
        }
        let store = try SQLiteJobStore(path: state)
        try await until("all \(count) jobs print", seconds: 120) {
            for id in ids where (try? await store.outputPosition(of: id))?.stdout ?? 0 == 0 { return false }
            return true
        }
        kill9(server)
        var before: [JobID: Int64] = [:]
        for id in ids { before[id] = try await store.outputPosition(of: id)?.stdout ?? 0 }
        let start = ContinuousClock.now
        server = try await serve()
        try await until("every job is followed again", seconds: 120) {
            for id in ids where (try? await store.outputPosition(of: id))?.stdout ?? 0 <= before[id]! { return false }
            return true
        }
        let ours = (ContinuousClock.now - start).timeInterval
        kill9(server)

        // The peer: one ControlMaster, then each job's stdout followed from where it was.
        let home = sshd.home ?? NSHomeDirectory()
        let socket = folder + "/master.sock"
        let ssh = ["-o", "UserKnownHostsFile=\(sshd.knownHosts)", "-o", "StrictHostKeyChecking=yes", "-i", sshd.clientKey,
                   "-p", String(sshd.port), "-S", socket, "\(sshd.user)@127.0.0.1"]
        let peerStart = ContinuousClock.now
        let master = try SpawnedProcess(executable: "/usr/bin/ssh", arguments: ["-M", "-N"] + ssh, stderrPath: folder + "/peer.log")
        defer { master.terminate() }
        try await until("the master connection is up", seconds: 30) { FileManager.default.fileExists(atPath: socket) }
        var tails: [SpawnedProcess] = []
        for (index, id) in ids.enumerated() {
            let file = "\(home)/.deferred/jobs/\(id.rawValue)/stdout"
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            tails.append(try SpawnedProcess(executable: "/usr/bin/ssh", arguments: ssh + ["tail -c +\(size + 1) -f \(file)"],
                                            stdoutPath: "\(folder)/peer-\(index)", stderrPath: folder + "/peer.log"))
        }
        try await until("every tail has a byte", seconds: 120) {
            (0..<count).allSatisfy { ((try? FileManager.default.attributesOfItem(atPath: "\(folder)/peer-\($0)")[.size] as? Int) ?? 0) > 0 }
        }
        let peer = (ContinuousClock.now - peerStart).timeInterval
        for tail in tails { tail.terminate() }
        _ = FileManager.default.createFile(atPath: stop, contents: Data())
        // The jobs end and are collected by a server, so the host's processes are gone.
        server = try await serve()
        try await until("the jobs end", seconds: 120) {
            for id in ids where !((try? await store.job(id: id))?.status.isFinal ?? false) { return false }
            return true
        }
        server.terminate()
        return (ours, peer)
    }

    // MARK: 2. One job, 20 dropped connections

    func reconnectMany(drops: Int) async throws -> (ours: (stored: LineDamage, log: LineDamage), peer: LineDamage) {
        let lines = 20_000
        let script = "#!/bin/sh\ni=0\nwhile [ $i -lt \(lines) ]; do i=$((i+1)); echo \"line $i\"; case $i in *00) sleep 0.05;; esac; done\n"
        let expected = (1...lines).map { Substring("line \($0)") }

        let server = try await serve()
        defer { server.terminate() }
        let (id, resultURL) = try await post(script)
        let store = try SQLiteJobStore(path: state)
        try await until("the job prints", seconds: 60) { (try? await store.outputPosition(of: id))?.stdout ?? 0 > 0 }
        for _ in 0..<drops {
            for pid in connectionProcesses(of: sshd.pid) { kill(pid, SIGKILL) }
            try await Task.sleep(for: .milliseconds(300))
        }
        var results: [String: Any] = [:]
        try await until("results.json", seconds: 120) {
            guard let answer = try? await HTTPClient().send(HTTPClientRequest(url: resultURL, timeout: .seconds(10))),
                  answer.status == 200 else { return false }
            results = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] ?? [:]
            return true
        }
        var stored = "", cursor = FeedCursor()
        while true {
            let feed = try await store.feed(of: id, after: cursor)
            for item in feed.items {
                cursor = item.cursor
                if case .output(let chunk) = item.kind, chunk.stream == .stdout { stored += chunk.text }
            }
            if !feed.hasMore { break }
        }
        let logURL = results["output_log"] as? String ?? ""
        let log = try await HTTPClient().send(HTTPClientRequest(url: logURL, timeout: .seconds(30)))
        let ours = (LineDamage(expected: expected, got: stored.split(separator: "\n")),
                    LineDamage(expected: expected, got: String(decoding: log.body, as: UTF8.self).split(separator: "\n")))

        // The peer: the same job's output, written to a file on the host, followed by
        // `ssh host tail -n 0 -f` started again after each drop, as a home-made runner would.
        let file = folder + "/peer-job.out"
        let writer = try SpawnedProcess(executable: "/bin/sh", arguments: ["-c", script], stdoutPath: file, stderrPath: folder + "/peer.log")
        let ssh = ["-o", "UserKnownHostsFile=\(sshd.knownHosts)", "-o", "StrictHostKeyChecking=yes", "-i", sshd.clientKey,
                   "-p", String(sshd.port), "\(sshd.user)@127.0.0.1"]
        var followed = ""
        for part in 0...drops {
            let out = "\(folder)/peer-part-\(part)"
            let tail = try SpawnedProcess(executable: "/usr/bin/ssh", arguments: ssh + ["tail -n 0 -f \(file)"], stdoutPath: out,
                                          stderrPath: folder + "/peer.log")
            try await Task.sleep(for: .milliseconds(part == drops ? 0 : 300))
            if part == drops { _ = writer.waitForExit(); try await Task.sleep(for: .milliseconds(500)) }
            for pid in connectionProcesses(of: sshd.pid) { kill(pid, SIGKILL) }
            tail.terminate()
            followed += (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        }
        return (ours, LineDamage(expected: expected, got: followed.split(separator: "\n")))
    }

    /// The sshd processes serving connections of the listener `pid` (its sshd descendants; a
    /// job's own processes may descend from one too, and are left alone).
    func connectionProcesses(of listener: pid_t) -> [pid_t] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { pid_t($0) } ?? []
        var parent: [pid_t: pid_t] = [:]
        for pid in pids {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let fields = stat.split(separator: ")").last?.split(separator: " "), fields.count > 2,
                  let ppid = pid_t(fields[2]) else { continue }
            parent[pid] = ppid
        }
        return pids.filter { pid in
            guard (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("sshd") == true else { return false }
            var up = parent[pid], depth = 0
            // Bounded: a pid reused while /proc was read can make the chain a loop.
            while let next = up, next > 1, depth < 64 {
                if next == listener { return true }
                up = parent[next]
                depth += 1
            }
            return false
        }
    }

    func until(_ what: String, seconds: Int, _ check: () async throws -> Bool) async throws {
        FileHandle.standardError.write(Data("bench: waiting until \(what)\n".utf8))
        let end = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < end {
            if try await check() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchFailure("\(what): not within \(seconds) s")
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
