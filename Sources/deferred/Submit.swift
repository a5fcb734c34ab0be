import ArgumentParser
import DeferredClient
import Foundation

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Signs FILE, posts it to a project's scripts, and prints the result URL.",
        discussion: """
            With --wait, follows the job (queued → waiting for host → running → done), prints its \
            output, and exits with its exit status (124 when it timed out, 1 when it could not run).
            """
    )

    @Argument(help: "The script to run.") var file: String
    @Option(help: "The deferred server's base URL, such as https://deferred.example.com.") var server: String
    @Option(help: "The project's name in deferred.toml.") var project: String
    @Option(help: "The private key to sign with (listed in the project's allowed_signers).") var key: String
    @Option(help: "Run the script with this interpreter (one the project allows) instead of its shebang.") var interpreter: String?
    @Option(help: "An Idempotency-Key: posting again with the same key gives the same job.") var idempotencyKey: String?
    @Flag(help: "Follow the job to its end and exit with its exit status.") var wait = false

    func run() async throws {
        let submission = ScriptSubmission(server: server, project: project, interpreter: interpreter, idempotencyKey: idempotencyKey)
        let accepted: ScriptSubmission.Accepted
        do {
            let script = try ScriptSubmission.read(file)
            accepted = try await submission.post(script, signature: try ScriptSubmission.sign(script, key: key).armored)
        } catch let error as ScriptSubmission.Failure {
            throw ValidationError(error.description)
        }
        print(accepted.resultURL)
        guard wait else { return }

        let progress = Progress()
        // The event stream shows output as it comes; a server or proxy that does not stream is polled.
        let streamed = await EventFollower().follow(accepted.eventsURL) { event in
            switch event {
            case .state(let state): progress.show(ResultFollower.describe(state))
            case .output(let stream, let text): progress.output(text, stderr: stream == "stderr")
            case .done: break
            }
        }
        let results = try await ResultFollower().follow(accepted.resultURL) { progress.show(ResultFollower.describe($0)) }
        progress.finish("done: \(results["status"] as? String ?? "?")")
        if !streamed {
            FileHandle.standardOutput.write(Data((results["stdout"] as? String ?? "").utf8))
            FileHandle.standardError.write(Data((results["stderr"] as? String ?? "").utf8))
        }
        if let error = results["error"] as? String { progress.note("deferred: \(error)") }
        throw ExitCode(ScriptSubmission.exitCode(of: results))
    }
}

/// State changes on standard error: one line rewritten in place on a terminal, a line each otherwise.
private struct Progress {
    let terminal = isatty(STDERR_FILENO) == 1

    func show(_ state: String) { write(terminal ? "\r\u{1B}[K" + state + "…" : state + "\n") }
    /// The job's own output, as it streams: the state line is cleared first on a terminal.
    func output(_ text: String, stderr: Bool) {
        if terminal { write("\r\u{1B}[K") }
        (stderr ? FileHandle.standardError : FileHandle.standardOutput).write(Data(text.utf8))
    }
    func finish(_ text: String) { write(terminal ? "\r\u{1B}[K" + text + "\n" : text + "\n") }
    func note(_ text: String) { write(text + "\n") }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
