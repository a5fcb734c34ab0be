import DeferredCore
import DeferredDemo
import DeferredRunner
import DeferredSSH
import Foundation
import Testing

/// A posted script, and a fleet's set-up script, travel to the host on the standard input of
/// the exec that runs them. A connection that breaks while one is sent (a server killed or
/// stopped mid-start) ends that input early: the host then has only part of the script, which
/// must never run. `scripts/soak` found a job that "succeeded" without its command running:
/// its empty upload had run as an empty script.
@Suite(.serialized) struct ScriptUploadTests {
    /// A throwaway sshd, a session on it, and a folder the scripts leave their marks in.
    struct Host {
        let sshd: ThrowawaySSHD
        let session: SSHSession
        let folder: String

        static func start() async throws -> Host {
            let sshd = try await ThrowawaySSHD.start(isolatedHome: true)
            let folder = NSTemporaryDirectory() + "deferred-upload-" + UUID().uuidString.prefix(8)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let session = try await SSHSession.connect(to: SSHEndpoint(
                host: "127.0.0.1", port: sshd.port, user: sshd.user, identityFile: sshd.clientKey, knownHostsFile: sshd.knownHosts))
            return Host(sshd: sshd, session: session, folder: folder)
        }

        func stop() async {
            await session.disconnect()
            sshd.stop()
            sshd.removeFiles()
            try? FileManager.default.removeItem(atPath: folder)
        }

        func marks(_ name: String) -> [Substring] {
            ((try? String(contentsOfFile: folder + "/" + name, encoding: .utf8)) ?? "").split(separator: "\n")
        }
    }

    /// A script whose every line leaves a mark, and whose every prefix cut at a line's end is a
    /// script that runs and exits 0: only the whole one exits 3.
    static func markingScript(in folder: String) -> String {
        (1...20).map { "echo line\($0) >> '\(folder)/ran'\n" }.joined() + "exit 3\n"
    }

    static func scriptJob(_ script: String) -> (Job, ProjectConfig) {
        let job = Job(project: "p", trigger: .script(ScriptTrigger(script: script, signer: "ci", interpreter: .program("/bin/sh"))))
        return (job, ProjectConfig(name: "p", repository: "octo/p", command: nil, hosts: ["h"]))
    }

    @Test(arguments: [0, 1, 2])
    func aJobScriptCutShortNeverRunsAndIsTakenForNeverStarted(cut: Int) async throws {
        let host = try await Host.start()
        let script = Self.markingScript(in: host.folder)
        let (job, project) = Self.scriptJob(script)
        let start = JobCommands.start(job, project: project, attempt: 1)
        // Nothing of it, its first line only, all but its last line.
        let sent = [0, script.split(separator: "\n")[0].utf8.count + 1, script.utf8.count - "exit 3\n".utf8.count][cut]
        let first = try await host.session.run(start.command, stdin: Array(start.stdin.prefix(sent)))
        let said = String(decoding: first.stderr, as: UTF8.self)
        // The start's own verdict: preparing failed (97), saying why.
        #expect(first.exit.status == 97, "\(first.exit) \(said)")
        #expect(said.contains("cut short (\(sent) of \(script.utf8.count) bytes)"), "\(said)")
        #expect(host.marks("ran").isEmpty, "the cut script ran: \(host.marks("ran"))")
        // A server that stopped during that start, started again, follows the job: the host
        // says the command never started (91), so the job is started again, whole.
        let again = try await host.session.run(JobCommands.reattach(job.id, stdout: 0, stderr: 0))
        #expect(again.exit.status == 91, "\(again.exit) \(String(decoding: again.stderr, as: UTF8.self))")
        #expect(host.marks("ran").isEmpty)
        let whole = try await host.session.run(start.command, stdin: start.stdin)
        #expect(whole.exit.status == 0, "\(whole.exit) \(String(decoding: whole.stderr, as: UTF8.self))")
        #expect(host.marks("ran").map(String.init) == (1...20).map { "line\($0)" })
        await host.stop()
    }

    @Test func aSetUpScriptCutShortNeitherRunsNorCountsAsRun() async throws {
        let host = try await Host.start()
        let script = Self.markingScript(in: host.folder).replacingOccurrences(of: "exit 3", with: "exit 0")
        let command = JobCommands.bootstrap(script)
        let cut = try await host.session.run(command, stdin: Array(script.utf8.prefix(script.utf8.count / 2)))
        #expect(cut.exit.status == 1, "\(cut.exit)")
        #expect(String(decoding: cut.stderr, as: UTF8.self).contains("arrived cut short"))
        #expect(host.marks("ran").isEmpty, "the cut set-up script ran: \(host.marks("ran"))")
        // Sent whole, it runs, once: the next time it is known to have run.
        let whole = try await host.session.run(command, stdin: Array(script.utf8))
        #expect(whole.exit.status == 0, "\(whole.exit) \(String(decoding: whole.stderr, as: UTF8.self))")
        let twice = try await host.session.run(command, stdin: Array(script.utf8))
        #expect(String(decoding: twice.stdout, as: UTF8.self).contains("ran before"))
        #expect(host.marks("ran").count == 20)
        await host.stop()
    }
}
