import DeferredArtifacts
import DeferredCloud
import DeferredCore
import DeferredDemo
import DeferredRunner
import DeferredSSH
import DeferredTestSupport
import Foundation

struct Figure {
    var what: String
    var bytes: Int64
    var seconds: Double
    var growth: Int64?
}

/// Runs `body`, timing it and measuring how far the peak RSS rose above the RSS before it.
func measure(_ what: String, bytes: Int64, _ body: () async throws -> Void) async throws -> Figure {
    resetPeak()
    let before = memory().rss
    let start = ContinuousClock.now
    try await body()
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Figure(what: what, bytes: bytes, seconds: seconds, growth: max(0, memory().peak - before))
}

func mib(_ bytes: Int64) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }

// Moves one large artifact the way a job's artifacts move, and prints bytes, time, throughput
// and how much this process's resident memory grew, beside `scp` of the same file on the same
// machine in the same run:
//   1. collect: the job's artifacts folder as one tar stream over an SSH exec channel to a
//      throwaway sshd on loopback, unpacked, checked and hashed as it arrives;
//   2. upload: the collected file to S3 (moto_server on loopback), multipart past 64 MiB.
// Usage: deferred-bench [size in MiB, default 1024] [--no-s3]

func artifactBench(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let sizeMiB = arguments.compactMap { Int($0) }.first ?? 1024
    let withS3 = !arguments.contains("--no-s3")
    let size = Int64(sizeMiB) << 20


    let folder = NSTemporaryDirectory() + "deferred-bench-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    print("making a \(sizeMiB) MiB file of random bytes…")
    let source = folder + "/source.bin"
    _ = try LocalCommand.run(["sh", "-c", "head -c \(size) /dev/urandom > \"$0\"", source])

    let sshd = try await ThrowawaySSHD.start(in: folder + "/sshd")
    defer { sshd.stop() }
    let session = try await SSHSession.connect(to: SSHEndpoint(host: "127.0.0.1", port: sshd.port, user: sshd.user,
                                                               identityFile: sshd.clientKey, knownHostsFile: sshd.knownHosts))
    var figures: [Figure] = []

    // 1. A job that puts the file in its artifacts folder (a hard link: the job itself costs
    // nothing), then the runner's collection: tar over SSH, checked and hashed while unpacked.
    let script = "ln \"$0\" \"$DEFERRED_ARTIFACTS/big.bin\" 2>/dev/null || cp \"$0\" \"$DEFERRED_ARTIFACTS/big.bin\"\n"
        .replacingOccurrences(of: "$0", with: source)
    let job = Job(project: "bench", trigger: .script(ScriptTrigger(script: script, signer: "bench", interpreter: .program("/bin/sh"))))
    let project = ProjectConfig(name: "bench", repository: "bench/bench", command: nil, hosts: ["loopback"], timeoutMinutes: 30,
                                maxArtifactBytes: size + 1, maxArtifactFiles: 10)
    let files = JobFiles(folder: folder + "/job")
    try FileManager.default.createDirectory(atPath: files.folder, withIntermediateDirectories: true)
    var outcome: JobOutcome?
    figures.append(try await measure("deferred: run + collect over SSH (tar, checked, SHA-256)", bytes: size) {
        outcome = try await JobRunner().run(job, project: project, on: session, files: files)
    })
    guard let outcome, outcome.artifacts.files.first?.bytes == size else {
        print("the artifact did not come back whole: \(String(describing: outcome?.artifacts))")
        return 1
    }

    // 2. The same file by scp, over the same sshd.
    let copy = folder + "/scp.bin"
    figures.append(try await measure("scp of the same file (same sshd)", bytes: size) {
        _ = try await LocalCommand.runOffPool(["scp", "-q", "-P", String(sshd.port), "-i", sshd.clientKey,
                                               "-o", "UserKnownHostsFile=\(sshd.knownHosts)", "-o", "StrictHostKeyChecking=yes",
                                               "-o", "BatchMode=yes", "\(sshd.user)@127.0.0.1:\(source)", copy])
    })
    figures[figures.count - 1].growth = nil // scp is another process

    // 3. Upload to S3 (moto_server): multipart, streamed from disk.
    if withS3 {
        let moto = try await ThrowawayMoto.start()
        defer { moto.stop() }
        let client = S3Client(bucket: "bench", region: "us-east-1", endpoint: moto.endpoint,
                              credentials: AWSCredentials(accessKeyID: "AKIDBENCH", secretAccessKey: "bench"))
        try await client.createBucket()
        let store = S3ArtifactStore(client: client, prefix: "bench", staging: folder + "/staging", retentionDays: 14)
        figures.append(try await measure("deferred: upload to S3 (moto_server), multipart", bytes: size) {
            try await store.publish(files, artifacts: outcome.artifacts.files, results: Data("{}".utf8), token: job.token)
        })
    }

    print("")
    print("what".padding(toLength: 58, withPad: " ", startingAt: 0), "bytes moved".padding(toLength: 14, withPad: " ", startingAt: 0),
          "seconds  ", "MiB/s    ", "peak RSS growth")
    for figure in figures {
        print(figure.what.padding(toLength: 58, withPad: " ", startingAt: 0),
              String(figure.bytes).padding(toLength: 14, withPad: " ", startingAt: 0),
              String(format: "%-9.2f", figure.seconds),
              String(format: "%-9.1f", Double(figure.bytes) / 1_048_576 / figure.seconds),
              figure.growth.map(mib) ?? "(another process)")
    }
    let worst = figures.compactMap(\.growth).max() ?? 0
    print("")
    print("largest growth of this process while moving \(mib(size)): \(mib(worst)) (limit 64 MiB): \(worst <= 64 << 20 ? "within" : "OVER")")
    return worst <= 64 << 20 ? 0 : 2
}
