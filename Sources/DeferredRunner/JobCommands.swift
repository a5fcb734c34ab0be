import Crypto
import DeferredCore
import Foundation

/// The commands the runner sends a build host for a job, each one exec: its fixed script from
/// `RemoteScripts` with every value a quoted positional parameter. Public so that a benchmark's
/// peer does exactly the remote work deferred does.
public enum JobCommands {
    /// A command line and what goes to its standard input.
    public struct Exec: Sendable {
        public let command: String
        public let stdin: [UInt8]
    }

    /// Prepares the job folder, starts the command detached and follows its output to the end.
    /// `forgetting`: folders of earlier jobs to remove first, in the same exec (each exec costs
    /// a start of the remote user's shell, rc files and all).
    public static func start(_ job: Job, project: ProjectConfig, attempt: Int, forgetting: [JobID] = []) -> Exec {
        let exec = prepareAndRun(job, project: project, attempt: attempt)
        guard !forgetting.isEmpty else { return exec }
        // Its own standard input is empty: a script's text on the channel is the job's.
        return Exec(command: forget(forgetting) + " </dev/null; " + exec.command, stdin: exec.stdin)
    }

    private static func prepareAndRun(_ job: Job, project: ProjectConfig, attempt: Int) -> Exec {
        switch job.trigger {
        case .push(let push):
            Exec(command: ShellQuote.command(
                     script: RemoteScripts.prepareAndRunPush, name: "deferred-job",
                     arguments: [job.id.rawValue, String(attempt), project.name, push.cloneURL, push.commit, push.ref, project.command ?? ""]),
                 stdin: [])
        case .script(let script):
            // The script travels on the channel's standard input, never inside a command line.
            Exec(command: ShellQuote.command(
                     script: RemoteScripts.prepareAndRunScript, name: "deferred-job",
                     arguments: [job.id.rawValue, String(attempt), script.interpreter.remoteArgument, script.interpreter.name,
                                 String(script.script.utf8.count)]),
                 stdin: Array(script.script.utf8))
        }
    }

    /// Runs a fleet's set-up script (sent on standard input) unless it ran on the host before.
    public static func bootstrap(_ script: String) -> String {
        let digest = Hex.encode(SHA256.hash(data: Data(script.utf8)))
        return ShellQuote.command(script: RemoteScripts.bootstrap, name: "deferred-bootstrap",
                                  arguments: [digest, String(script.utf8.count)])
    }

    /// Follows a started job's output again from the bytes the server has of each stream.
    public static func reattach(_ id: JobID, stdout: Int64, stderr: Int64) -> String {
        ShellQuote.command(script: RemoteScripts.reattach, name: "deferred-reattach",
                           arguments: [id.rawValue, String(stdout), String(stderr)])
    }

    /// The phase, status and resources, then the artifacts folder as a tar stream.
    public static func collect(_ id: JobID) -> String {
        ShellQuote.command(script: RemoteScripts.collect, name: "deferred-collect", arguments: [id.rawValue])
    }

    /// Removes the jobs' folders once their ends are stored.
    public static func forget(_ ids: [JobID]) -> String {
        ShellQuote.command(script: RemoteScripts.forget, name: "deferred-forget", arguments: ids.map(\.rawValue))
    }

    /// SIGTERM to the job's group, SIGKILL after `grace` seconds.
    public static func kill(_ id: JobID, grace: Int) -> String {
        ShellQuote.command(script: RemoteScripts.kill, name: "deferred-kill", arguments: [id.rawValue, String(grace)])
    }
}
