import DeferredCore
import DeferredDemo
import DeferredSSH
import Foundation

// The SSH floor: N execs of `true`, one after another, over one connection: deferred's
// SSHSession (libssh) beside OpenSSH's client over a ControlMaster, on a throwaway sshd whose
// sessions skip the rc files. Prints each side's median and p90 per exec.
// Usage: deferred-bench exec [N]
func execBench(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let count = arguments.compactMap { Int($0) }.first ?? 200
    let folder = NSTemporaryDirectory() + "deferred-exec-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let sshd = try await ThrowawaySSHD.start(in: folder + "/sshd", isolatedHome: true)
    defer { sshd.stop() }

    let session = try await SSHSession.connect(to: SSHEndpoint(host: "127.0.0.1", port: sshd.port, user: sshd.user,
                                                               identityFile: sshd.clientKey, knownHostsFile: sshd.knownHosts))
    var ours: [Double] = []
    for _ in 0..<count {
        let start = ContinuousClock.now
        let run = try await session.run("true")
        guard run.exit.status == 0 else { throw BenchFailure("true exited \(String(describing: run.exit))") }
        ours.append((ContinuousClock.now - start).timeInterval)
    }

    let socket = folder + "/master.sock"
    let ssh = ["-o", "UserKnownHostsFile=\(sshd.knownHosts)", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
               "-i", sshd.clientKey, "-p", String(sshd.port), "-S", socket, "\(sshd.user)@127.0.0.1"]
    let master = try SpawnedProcess(executable: "/usr/bin/ssh", arguments: ["-M", "-N"] + ssh, stderrPath: folder + "/peer.log")
    defer { master.terminate() }
    let end = ContinuousClock.now + .seconds(30)
    while !FileManager.default.fileExists(atPath: socket), ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(20)) }
    var peer: [Double] = []
    for _ in 0..<count {
        let start = ContinuousClock.now
        try await LocalCommand.runOffPool(["/usr/bin/ssh"] + ssh + ["true"])
        peer.append((ContinuousClock.now - start).timeInterval)
    }
    print("")
    print("\(count) execs of `true` one after another over one connection, rc files skipped, on this machine, in the same run")
    print("deferred (libssh):            p50 \(String(format: "%.1f", percentile(ours, 0.5) * 1000)) ms, p90 \(String(format: "%.1f", percentile(ours, 0.9) * 1000)) ms")
    print("peer (ssh over ControlMaster): p50 \(String(format: "%.1f", percentile(peer, 0.5) * 1000)) ms, p90 \(String(format: "%.1f", percentile(peer, 0.9) * 1000)) ms")
    return 0
}
