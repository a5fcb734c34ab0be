import DeferredArtifacts
import DeferredCore
import DeferredDemo
import DeferredHTTP
import DeferredStore
import Foundation
import Hummingbird

// N listeners follow one running job's event stream (clients in another process,
// scripts/bench/sse_listeners.py, so their memory is not counted here). Prints this server's
// RSS before, with N connected, and at its peak while output batches fan out to all of them,
// and the time from storing each batch to every listener having it.
func listenerBench(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let count = arguments.compactMap { Int($0) }.first ?? 1000
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = max(limit.rlim_cur, min(limit.rlim_max, rlim_t(count * 2 + 256)))
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)

    let folder = NSTemporaryDirectory() + "deferred-listeners-" + UUID().uuidString.prefix(8)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let port = try FreePort.find()
    let config = DeferredConfig(
        server: ServerConfig(listenHost: "127.0.0.1", listenPort: port, publicURL: "http://127.0.0.1:\(port)",
                             statePath: folder + "/state.sqlite", adminToken: nil),
        github: GitHubConfig(secret: "bench"), artifacts: ArtifactsConfig(directory: folder + "/artifacts"), idle: IdleConfig(),
        hosts: [HostConfig(name: "h", address: "127.0.0.1", user: "u", identity: nil, knownHosts: "/dev/null")],
        projects: [ProjectConfig(name: "bench", repository: "bench/bench", command: "true", hosts: ["h"])])
    let store = try JobStore(path: config.server.statePath)
    let job = Job(project: "bench", trigger: .script(ScriptTrigger(script: "true\n", signer: "bench", interpreter: .program("/bin/sh"))))
    _ = try await store.enqueue(job, delivery: nil)
    try await store.markRunning(job.id)
    let app = Application(router: ServerApplication.router(config: config, store: store, artifacts: FileArtifactStore(directory: config.artifacts.directory),
                                                           onQueued: {}),
                          configuration: .init(address: .hostname("127.0.0.1", port: port)))
    let serving = Task { try await app.runService(gracefulShutdownSignals: []) }
    defer { serving.cancel() }
    while FreePort.connectLoopbackForTests(port: port).map({ close($0); return true }) != true { try await Task.sleep(for: .milliseconds(20)) }

    try await Task.sleep(for: .milliseconds(300))
    let before = memory().rss
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/bench/sse_listeners.py").standardizedFileURL.path
    let client = Process()
    client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    client.arguments = ["python3", script, String(port), "/r/\(job.token.rawValue)/events", String(count)]
    let pipe = Pipe()
    client.standardOutput = pipe
    try client.run()
    let lines = LineReader(pipe.fileHandleForReading)
    guard await lines.next()?.hasPrefix("connected") == true else { print("the listeners did not connect"); return 1 }
    try await Task.sleep(for: .seconds(1))
    let connected = memory().rss
    resetPeak()

    // 20 batches of output, one at a time; the client says when all N have each.
    var fanOut: [Double] = []
    let batch = String(repeating: "a line of build output, as a job would print it\n", count: 20)
    for i in 0..<20 {
        let start = ContinuousClock.now
        try await store.appendOutput(job.id, [(.stdout, "batch \(i)\n" + batch)])
        guard await lines.next()?.hasPrefix("batch \(i)") == true else { print("the listeners missed batch \(i)"); return 1 }
        let elapsed = ContinuousClock.now - start
        fanOut.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
    }
    let peak = memory().peak
    try await store.finish(job.id, outcome: JobOutcome(status: .succeeded, exitStatus: 0, startedAt: Date(), finishedAt: Date()))
    let summary = await lines.next() ?? "no summary"
    client.waitUntilExit()

    fanOut.sort()
    print("")
    print("listeners on one job          \(count)")
    print("server RSS before             \(mib(before))")
    print("server RSS with \(count) listening  \(mib(connected))  (+\(mib(connected - before)), \(String(format: "%.1f", Double(connected - before) / Double(count) / 1024)) KiB each)")
    print("server peak RSS during fan-out \(mib(peak))")
    print("store → all \(count) listeners, per batch: median \(String(format: "%.1f", fanOut[fanOut.count / 2])) ms, worst \(String(format: "%.1f", fanOut.last ?? 0)) ms")
    print("clients: \(summary)")
    return 0
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
