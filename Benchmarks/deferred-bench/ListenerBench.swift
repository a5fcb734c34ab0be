import DeferredArtifacts
import DeferredCore
import DeferredDemo
import DeferredHTTP
import DeferredStore
import Foundation
import Hummingbird

// N listeners follow one running job's event stream (clients in another process,
// scripts/bench/sse_listeners.py, so their memory is not counted), first on deferred, then on
// its peer, scripts/bench/sse_peer.py: the asyncio Server-Sent Events broadcaster a home-made
// setup would run, with no store and no resuming. For each: the server's RSS before, with N
// connected, and at its peak while 20 output batches fan out, and the time from publishing
// each batch to every listener having it.
func listenerBench(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let numbers = arguments.compactMap { Int($0) }
    let count = numbers.first ?? 1000, rounds = max(1, numbers.dropFirst().first ?? 3)
    raiseFileLimit(for: count)

    // Rounds taken in turn, so both see the same moods of the machine; each figure is the median of its rounds.
    var ours: [FanOutFigures] = [], theirs: [FanOutFigures] = []
    for round in 1...rounds {
        guard let deferred = try await fanOutApart("listener-round", count: count), let peer = try await peerFanOut(count: count) else { return 1 }
        ours.append(deferred)
        theirs.append(peer)
        print("round \(round): deferred \(perListener(deferred, count)) a listener, publish median \(milliseconds(deferred.median)); "
              + "peer \(perListener(peer, count)), \(milliseconds(peer.median))")
    }
    guard let floor = try await fanOutApart("listener-floor", count: count) else { return 1 }
    let deferred = FanOutFigures.median(ours), peer = FanOutFigures.median(theirs)
    print("")
    print("\(count) listeners on one job's event stream, 20 batches of 21 lines, medians of \(rounds) rounds")
    let rows = [["", "deferred", "peer: asyncio SSE broadcaster", "ratio", "a Hummingbird route alone (connect only)"],
                ["RSS before", mib(deferred.before), mib(peer.before), "", mib(floor.before)],
                ["RSS with \(count) listening", mib(deferred.connected), mib(peer.connected), "", mib(floor.connected)],
                ["per listener", perListener(deferred, count), perListener(peer, count),
                 String(format: "%.2f×", Double(deferred.connected - deferred.before) / Double(max(1, peer.connected - peer.before))),
                 perListener(floor, count)],
                ["peak RSS during fan-out", mib(deferred.peak), mib(peer.peak), "", "-"],
                ["publish → all listeners, median", milliseconds(deferred.median), milliseconds(peer.median),
                 String(format: "%.2f×", deferred.median / max(0.001, peer.median)), "-"],
                ["publish → all listeners, worst", milliseconds(deferred.worst), milliseconds(peer.worst), "", "-"]]
    let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "   "))
    }
    print("(deferred also stores every batch in SQLite, keeps the backlog for late listeners and resumes after Last-Event-ID; the peer does none of that)")
    print("(a Hummingbird route alone: one route that writes a comment and waits, what a listener would cost served by the router; deferred serves streams below it)")
    return 0
}

/// Room for `count` connections, both ends of each when in one process.
func raiseFileLimit(for count: Int) {
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = max(limit.rlim_cur, min(limit.rlim_max, rlim_t(count * 2 + 256)))
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
}

/// What one server showed while N listeners followed one stream.
struct FanOutFigures {
    var before: Int64
    var connected: Int64
    var peak: Int64
    var median: Double
    var worst: Double

    /// Each figure the median of the rounds' (the memory a listener costs: of their differences).
    static func median(_ rounds: [FanOutFigures]) -> FanOutFigures {
        let before = middleValue(rounds.map(\.before))
        return FanOutFigures(before: before, connected: before + middleValue(rounds.map { $0.connected - $0.before }),
                             peak: middleValue(rounds.map(\.peak)), median: middleValue(rounds.map(\.median)), worst: middleValue(rounds.map(\.worst)))
    }
}

func perListener(_ figures: FanOutFigures, _ count: Int) -> String {
    String(format: "%.1f KiB", Double(figures.connected - figures.before) / Double(count) / 1024)
}

func milliseconds(_ value: Double) -> String { String(format: "%.1f ms", value) }

/// deferred serving a running job: batches go into its store, as a job's output does.
func deferredFanOut(count: Int) async throws -> FanOutFigures? {
    let folder = NSTemporaryDirectory() + "deferred-listeners-" + UUID().uuidString.prefix(8)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let port = try FreePort.find()
    let config = DeferredConfig(
        server: ServerConfig(listenHost: "127.0.0.1", listenPort: port, publicURL: "http://127.0.0.1:\(port)",
                             adminToken: nil),
        store: .sqlite(folder + "/state.sqlite"), github: GitHubConfig(secret: "bench"), artifacts: ArtifactsConfig(directory: folder + "/artifacts"), idle: IdleConfig(),
        hosts: [HostConfig(name: "h", address: "127.0.0.1", user: "u", identity: nil, knownHosts: "/dev/null")],
        projects: [ProjectConfig(name: "bench", repository: "bench/bench", command: "true", hosts: ["h"])])
    let store = try SQLiteJobStore(path: config.store.sqlitePath!)
    let job = Job(project: "bench", trigger: .script(ScriptTrigger(script: "true\n", signer: "bench", interpreter: .program("/bin/sh"))))
    _ = try await store.enqueue(job, delivery: nil)
    try await store.markRunning(job.id)
    let artifacts = FileArtifactStore(directory: config.artifacts.directory)
    // Served as `deferred serve` serves: event streams below the router.
    let app = Application(router: ServerApplication.router(config: config, store: store, artifacts: artifacts, onQueued: {}),
                          server: ServerApplication.server(config: config, store: store, artifacts: artifacts),
                          configuration: .init(address: .hostname("127.0.0.1", port: port)))
    let serving = Task { try await app.runService(gracefulShutdownSignals: []) }
    defer { serving.cancel() }
    while FreePort.connectLoopback(port: port).map({ close($0); return true }) != true { try await Task.sleep(for: .milliseconds(20)) }
    return try await fanOut(count: count, port: port, path: "/r/\(job.token.rawValue)/events", pid: nil,
                            publish: { text in try await store.appendOutput(job.id, [(.stdout, text, Date())]) },
                            end: { try await store.finish(job.id, outcome: JobOutcome(status: .succeeded, exitStatus: 0, startedAt: Date(), finishedAt: Date())) })
}

/// A fan-out measured in a process of its own (`deferred-bench listener-round N` or
/// `listener-floor N`): in this one, the memory an earlier server freed would be reused and
/// hide what the connections cost.
func fanOutApart(_ subcommand: String, count: Int) async throws -> FanOutFigures? {
    let own = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    let output = try await LocalCommand.runOffPool([own, subcommand, String(count)])
    if let clients = output.split(separator: "\n").last(where: { $0.hasPrefix("clients of deferred") }) { print(clients) }
    let words = output.split(separator: "\n").last { $0.hasPrefix("figures ") }?.split(separator: " ") ?? []
    guard words.count == 6, let before = Int64(words[1]), let connected = Int64(words[2]), let peak = Int64(words[3]),
          let median = Double(words[4]), let worst = Double(words[5]) else {
        print("\(subcommand) gave no figures: \(output.suffix(500))")
        return nil
    }
    return FanOutFigures(before: before, connected: connected, peak: peak, median: median, worst: worst)
}

/// One measurement in this process, printed as `fanOutApart` reads it:
/// "figures <RSS before> <with N listening> <peak> <publish median ms> <worst ms>".
func fanOutHere(_ arguments: ArraySlice<String>, _ measure: (Int) async throws -> FanOutFigures?) async throws -> Int32 {
    let count = arguments.compactMap { Int($0) }.first ?? 1000
    raiseFileLimit(for: count)
    guard let figures = try await measure(count) else { return 1 }
    print("figures \(figures.before) \(figures.connected) \(figures.peak) \(figures.median) \(figures.worst)")
    return 0
}

/// The floor under deferred's figure: a bare Hummingbird server in this process whose one route
/// answers an event stream with a comment and then waits, with N listeners connected. Its
/// waiting streams end only with the process.
func hummingbirdFloor(count: Int) async throws -> FanOutFigures? {
    let port = try FreePort.find()
    let router = Router()
    router.get("/floor") { _, _ -> Response in
        Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: ": connected\n\n"))
            try? await Task.sleep(for: .seconds(3600))
            try await writer.finish(nil)
        })
    }
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
    let serving = Task { try await app.runService(gracefulShutdownSignals: []) }
    defer { serving.cancel() }
    while FreePort.connectLoopback(port: port).map({ close($0); return true }) != true { try await Task.sleep(for: .milliseconds(20)) }
    try await Task.sleep(for: .milliseconds(300))
    let before = memory(of: nil).rss
    let client = try SpawnedProcess(executable: "/usr/bin/env", arguments: ["python3", benchScript("sse_listeners.py"), String(port), "/floor", String(count)],
                                    standardOutput: .pipe)
    defer { client.terminate() }
    guard let output = client.output, await LineReader(output).next()?.hasPrefix("connected") == true else {
        print("the listeners did not connect to the bare server")
        return nil
    }
    try await Task.sleep(for: .seconds(1))
    return FanOutFigures(before: before, connected: memory(of: nil).rss, peak: 0, median: 0, worst: 0)
}

/// The peer, its own process; batches go to it on its standard input.
func peerFanOut(count: Int) async throws -> FanOutFigures? {
    let port = try FreePort.find()
    let peer = try SpawnedProcess(executable: "/usr/bin/env", arguments: ["python3", benchScript("sse_peer.py"), String(port)],
                                  standardInput: .pipe, standardOutput: .pipe)
    defer { peer.terminate() }
    guard let commands = peer.input, let answers = peer.output, await LineReader(answers).next() == "ready" else {
        print("the peer did not start")
        return nil
    }
    let send = { (command: [String: Any]) in
        commands.write(try JSONSerialization.data(withJSONObject: command) + Data("\n".utf8))
    }
    let figures = try await fanOut(count: count, port: port, path: "/events", pid: peer.pid,
                                   publish: { text in try send(["text": text]) }, end: { try send(["end": true]) })
    peer.waitForExit()
    return figures
}

/// Connects N listeners (another process) to `path`, then publishes 20 batches one at a time,
/// each timed until every listener has it, and ends the stream. Memory is the server's:
/// this process's (`pid` nil) or the peer's.
func fanOut(count: Int, port: Int, path: String, pid: Int32?,
            publish: (String) async throws -> Void, end: () async throws -> Void) async throws -> FanOutFigures? {
    try await Task.sleep(for: .milliseconds(300))
    let before = memory(of: pid).rss
    let client = try SpawnedProcess(executable: "/usr/bin/env", arguments: ["python3", benchScript("sse_listeners.py"), String(port), path, String(count)],
                                    standardOutput: .pipe)
    guard let output = client.output else { return nil }
    let lines = LineReader(output)
    guard await lines.next()?.hasPrefix("connected") == true else { print("the listeners did not connect to \(path)"); return nil }
    try await Task.sleep(for: .seconds(1))
    let connected = memory(of: pid).rss
    resetPeak(of: pid)

    var times: [Double] = []
    let batch = String(repeating: "a line of build output, as a job would print it\n", count: 20)
    for i in 0..<20 {
        let start = ContinuousClock.now
        try await publish("batch \(i)\n" + batch)
        guard await lines.next()?.hasPrefix("batch \(i)") == true else { print("the listeners missed batch \(i)"); return nil }
        let elapsed = ContinuousClock.now - start
        times.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
    }
    let peak = memory(of: pid).peak
    try await end()
    print("clients of \(pid == nil ? "deferred" : "the peer"): \(await lines.next() ?? "no summary")")
    client.waitForExit()
    times.sort()
    return FanOutFigures(before: before, connected: connected, peak: peak, median: times[times.count / 2], worst: times.last ?? 0)
}

func benchScript(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/bench/\(name)").standardizedFileURL.path
}

/// Lines from a pipe, one at a time, read off the concurrency pool.
final class LineReader: @unchecked Sendable {
    private let handle: FileHandle
    private var buffer = Data()
    init(_ handle: FileHandle) { self.handle = handle }

    func next() async -> String? {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { [self] in
                while true {
                    if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = String(decoding: buffer[..<newline], as: UTF8.self)
                        buffer.removeSubrange(...newline)
                        continuation.resume(returning: line)
                        return
                    }
                    let chunk = handle.availableData
                    if chunk.isEmpty { continuation.resume(returning: nil); return }
                    buffer += chunk
                }
            }
        }
    }
}
