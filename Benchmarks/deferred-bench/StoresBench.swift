import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredStore
import DeferredTestSupport
import Foundation

// The stores side by side, in one run on this machine: signed pushes under wrk (as `intake`)
// against adnanh/webhook, deferred on SQLite, deferred on PostgreSQL with one server, three
// deferred servers sharing one PostgreSQL database (a wrk each, a third of the connections each,
// their requests added up), and one server again on a PostgreSQL with fsync on; then the time a
// live server takes to follow a running job again after the server running it was killed with
// SIGKILL (takeover_seconds = 5), median of N. Every round checks that each 202 is a stored job.
// Usage: deferred-bench stores [seconds (15)] [connections (32)] [takeovers (10)]
func storesBench(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let numbers = arguments.compactMap { Int($0) }
    let seconds = numbers.first ?? 15, connections = numbers.dropFirst().first ?? 32, takeovers = numbers.dropFirst(2).first ?? 10
    guard let (executable, wrk, webhook) = intakePrograms() else { return 1 }
    let folder = NSTemporaryDirectory() + "deferred-stores-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let postgres = try await ThrowawayPostgres.own()
    // Enough different pushes for 10,000 requests a second per set; past that a round fails as wrapped.
    let perSet = 10_000 * seconds
    let sets = try (0..<3).map { set in
        try SignedPushes.write(count: perSet, threads: 2, to: "\(folder)/bodies-\(set)", secret: BenchServer.secret, first: set * perSet)
    }
    let load = { (set: Int, connections: Int) in
        WrkLoad(wrk: wrk, script: benchScript("intake.lua"), bodies: sets[set], seconds: seconds, connections: connections,
                deliveryPrefix: "bench\(set)")
    }

    var rows: [(String, IntakeFigures)] = []
    FileHandle.standardError.write(Data("bench: adnanh/webhook\n".utf8))
    rows.append(("adnanh/webhook (peer)", try await WebhookRig(folder: folder + "/webhook", executable: webhook).run(load(0, connections))))
    FileHandle.standardError.write(Data("bench: deferred on SQLite\n".utf8))
    rows.append(("deferred, SQLite", try await IntakeRig(folder: folder + "/sqlite", executable: executable).run(load(0, connections))))
    // The last round against a server whose commits wait for its disk, as in production.
    let durable = try await ThrowawayPostgres.own(durable: true)
    for (servers, database) in [(1, postgres), (3, postgres), (1, durable)] {
        let kind = database === durable ? ", fsync on" : ""
        FileHandle.standardError.write(Data("bench: deferred on PostgreSQL\(kind), \(servers) server(s)\n".utf8))
        let url = database.url(database: try await database.makeDatabase())
        let rig = SharedIntakeRig(folder: "\(folder)/postgres-\(servers)\(kind.isEmpty ? "" : "-durable")", executable: executable,
                                  postgres: url, servers: servers)
        rows.append(("deferred, PostgreSQL\(kind), \(servers) server\(servers == 1 ? "" : "s")",
                     try await rig.run((0..<servers).map { load($0, max(1, connections / servers)) })))
    }

    FileHandle.standardError.write(Data("bench: takeover after kill -9, \(takeovers) times\n".utf8))
    let times = try await TakeoverRig(folder: folder + "/takeover", executable: executable, postgres: postgres).run(times: takeovers)

    print("")
    print("signed pushes, wrk -t2 -c\(connections) -d\(seconds)s (three servers: a wrk each with a third of the connections), "
          + "one round each, on this machine, in the same run")
    var table = [["", "requests/s", "p50", "p99", "non-2xx", "202s", "jobs stored", "RSS after (per server)"]]
    for (name, figures) in rows {
        table.append([name, String(format: "%.0f", figures.perSecond), milliseconds(figures.p50), milliseconds(figures.p99),
                      "\(figures.refused)", "\(figures.accepted)", figures.stored.map { "\($0)" } ?? "–", mib(figures.rssAfter)])
    }
    let widths = (0..<table[0].count).map { column in table.map { $0[column].count }.max() ?? 0 }
    for row in table {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "   "))
    }
    let sorted = times.sorted()
    print("")
    print("takeover after kill -9 of the server running a job (takeover_seconds = 5), \(times.count) times: median "
          + String(format: "%.2f s", sorted[sorted.count / 2]) + ", min " + String(format: "%.2f s", sorted.first ?? 0)
          + ", max " + String(format: "%.2f s", sorted.last ?? 0))
    let lost = rows.dropFirst().filter { !$0.1.storedEvery202(connections: connections) }
    if !lost.isEmpty {
        print("FAILED: the jobs stored do not match the 202s answered (or requests reused a body): "
              + "\(lost.map { "\($0.0), \($0.1.wrapped) reused" })")
    }
    return lost.isEmpty ? 0 : 2
}

/// `servers` release `deferred serve`s on one PostgreSQL database, one wrk each at once.
struct SharedIntakeRig {
    let folder: String
    let executable: String
    let postgres: String
    let servers: Int

    func run(_ loads: [WrkLoad]) async throws -> IntakeFigures {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let sshd = try await ThrowawaySSHD.start(in: folder + "/sshd", isolatedHome: true)
        sshd.stop()
        var processes: [SpawnedProcess] = [], urls: [String] = []
        defer { for process in processes { process.terminate() } }
        for index in 0..<servers {
            let port = try FreePort.find()
            let config = "\(folder)/deferred-\(index).toml"
            try IntakeRig.config(port: port, folder: folder, closedHost: sshd, postgres: postgres)
                .write(toFile: config, atomically: true, encoding: .utf8)
            let process = try BenchServer.spawn(executable, config: config, folder: folder, log: "serve-\(index).log")
            processes.append(process)
            try await waitUntilAnswers("http://127.0.0.1:\(port)/healthz", process, log: "\(folder)/serve-\(index).log")
            urls.append("http://127.0.0.1:\(port)/hooks/github")
        }
        let before = processes.map { memory(of: $0.pid).rss }
        let each = try await withThrowingTaskGroup(of: IntakeFigures.self) { group in
            for (load, url) in zip(loads, urls) { group.addTask { try await load.run(url) } }
            return try await group.reduce(into: [IntakeFigures]()) { $0.append($1) }
        }
        var figures = IntakeFigures(perSecond: each.map(\.perSecond).reduce(0, +), requests: each.map(\.requests).reduce(0, +), p50: each.map(\.p50).max() ?? 0,
                                    p99: each.map(\.p99).max() ?? 0, accepted: each.map(\.accepted).reduce(0, +),
                                    refused: each.map(\.refused).reduce(0, +), socketErrors: each.map(\.socketErrors).reduce(0, +),
                                    wrapped: each.map(\.wrapped).reduce(0, +))
        figures.rssBefore = before.max() ?? 0
        figures.rssAfter = processes.map { memory(of: $0.pid).rss }.max() ?? 0
        for process in processes { process.terminate() }
        let store = try await PostgresJobStore(settings: PostgresSettings(url: postgres, password: BenchServer.databasePassword))
        figures.stored = try await store.jobCount()
        return figures
    }
}

/// Two servers on one database and one real host: a script that sleeps runs on one, which is
/// killed; the time until the other says it follows the job again is one figure.
struct TakeoverRig {
    let folder: String
    let executable: String
    let postgres: ThrowawayPostgres

    func run(times: Int) async throws -> [Double] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let sshd = try await ThrowawaySSHD.start(in: folder + "/sshd", isolatedHome: true)
        defer { sshd.stop() }
        var figures: [Double] = []
        for round in 0..<times {
            let url = postgres.url(database: try await postgres.makeDatabase())
            let roundFolder = "\(folder)/\(round)"
            try FileManager.default.createDirectory(atPath: roundFolder, withIntermediateDirectories: true)
            var servers: [(process: SpawnedProcess, port: Int, log: String)] = []
            defer { for server in servers { server.process.terminate() } }
            for index in 0..<2 {
                let port = try FreePort.find()
                let config = "\(roundFolder)/deferred-\(index).toml"
                try """
                    \(BenchServer.tables(port: port, folder: roundFolder, postgres: url))
                    \(sshd.hostTable(name: "loopback", extra: []))
                    [[projects]]
                    name = "hello"
                    repository = "Codertocat/Hello-World"
                    hosts = ["loopback"]
                    script_secret_env = "BENCH_SECRET"

                    """.write(toFile: config, atomically: true, encoding: .utf8)
                let process = try BenchServer.spawn(executable, config: config, folder: roundFolder, log: "serve-\(index).log")
                servers.append((process, port, "\(roundFolder)/serve-\(index).log"))
                try await waitUntilAnswers("http://127.0.0.1:\(port)/healthz", process, log: "\(roundFolder)/serve-\(index).log")
            }
            let script = "#!/bin/sh\necho started\nsleep 120\n"
            let body = try JSONSerialization.data(withJSONObject: [
                "script": script, "signature": WebhookSignature.sign(body: Data(script.utf8), secret: BenchServer.secret)])
            let posted = try await HTTPClient().send(HTTPClientRequest(
                method: "POST", url: "http://127.0.0.1:\(servers[0].port)/projects/hello/scripts",
                headers: [("Content-Type", "application/json")], body: body, timeout: .seconds(30)))
            guard posted.status == 202 else { throw BenchFailure("the script was refused: \(posted.status)") }
            let store = try await PostgresJobStore(settings: PostgresSettings(url: url, password: BenchServer.databasePassword))
            let said = { (log: String) in (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
            var runner: Int?
            let end = ContinuousClock.now + .seconds(60)
            while runner == nil, ContinuousClock.now < end {
                runner = servers.indices.first { said(servers[$0].log).contains("] running") }
                try await Task.sleep(for: .milliseconds(50))
            }
            guard let runner, let id = try await store.jobs(project: nil, limit: 1).first?.id else {
                throw BenchFailure("no server ran the job")
            }
            kill(servers[runner].process.pid, SIGKILL)
            let killed = ContinuousClock.now
            let other = servers[1 - runner].log
            while !said(other).contains("taking up again") {
                guard ContinuousClock.now - killed < .seconds(120) else { throw BenchFailure("no takeover of \(id) within 2 minutes") }
                try await Task.sleep(for: .milliseconds(20))
            }
            let elapsed = ContinuousClock.now - killed
            figures.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            FileHandle.standardError.write(Data("bench: takeover \(round + 1): \(String(format: "%.2f", figures.last ?? 0)) s\n".utf8))
        }
        return figures
    }
}
