import ArgumentParser
import DeferredClient
import DeferredCore
import Foundation
import Synchronization

/// `deferred jobs`, in the manner of `gh run`: the server's jobs through its JSON API, from
/// anywhere that reaches the server with the admin token.
struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lists, shows, follows, cancels and reruns jobs on a deferred server (through its JSON API).",
        discussion: "The server comes from --server or DEFERRED_SERVER, the admin token from DEFERRED_ADMIN_TOKEN.",
        subcommands: [List.self, Show.self, Logs.self, Act<Cancelling>.self, Act<Rerunning>.self],
        defaultSubcommand: List.self
    )

    /// `--server`, and the token from the environment.
    struct Connection: ParsableArguments {
        @Option(help: "The server's base URL, such as https://deferred.example.com (default: DEFERRED_SERVER).") var server: String?

        func client(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AdminClient {
            guard let server = server ?? environment["DEFERRED_SERVER"], !server.isEmpty else {
                throw refuse("no server: pass --server URL or set DEFERRED_SERVER")
            }
            guard let token = environment["DEFERRED_ADMIN_TOKEN"], !token.isEmpty else {
                throw refuse("no admin token: set DEFERRED_ADMIN_TOKEN to the server's admin token ([server] admin_token_env)")
            }
            return AdminClient(server: server, token: token)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The latest jobs, newest first.")
        @OptionGroup var connection: Connection
        @Option(help: "Only this project's jobs.") var project: String?
        @Option(help: "Only jobs in these states, comma-separated (queued, waiting_for_host, running, succeeded, failed, timed_out, cancelled, error).")
        var status: String?
        @Option(help: "Only jobs on this host.") var host: String?
        @Option(help: "At most this many (1 to 200).") var limit = 20
        @Flag(help: "Print the API's JSON page as it came.") var json = false

        func run() async throws {
            var query = [("limit", String(limit))]
            if let project { query.append(("project", project)) }
            if let status { query.append(("status", status)) }
            if let host { query.append(("host", host)) }
            let path = "/api/jobs?" + query.map { "\($0.0)=\(Jobs.escaped($0.1))" }.joined(separator: "&")
            let client = try connection.client()
            if json {
                FileHandle.standardOutput.write(try await client.body(path) + Data("\n".utf8))
                return
            }
            let jobs = try await client.get(path)["jobs"] as? [[String: Any]] ?? []
            var rows = [["ID", "PROJECT", "STATUS", "TRIGGER", "HOST", "QUEUED", "TOOK"]]
            for job in jobs {
                rows.append([Jobs.text(job["id"]), Jobs.text(job["project"]), Jobs.text(job["status"]), Jobs.trigger(job),
                             Jobs.text(job["host"]), Jobs.text(job["queued_at"]), Jobs.took(job)])
            }
            Jobs.printTable(rows)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One job: what it is, its state changes and its end.")
        @OptionGroup var connection: Connection
        @Argument(help: "The job's id.") var id: String
        @Flag(help: "Print the API's JSON as it came.") var json = false

        func run() async throws {
            let client = try connection.client()
            let path = "/api/jobs/" + Jobs.escaped(id)
            if json {
                FileHandle.standardOutput.write(try await client.body(path) + Data("\n".utf8))
                return
            }
            let detail = try await client.get(path)
            let job = detail["job"] as? [String: Any] ?? [:]
            var facts = [("id", Jobs.text(job["id"])), ("project", Jobs.text(job["project"])), ("status", Jobs.text(job["status"])),
                         ("trigger", Jobs.trigger(job)), ("host", Jobs.text(job["host"])), ("attempts", Jobs.text(job["attempts"])),
                         ("queued", Jobs.text(job["queued_at"])), ("started", Jobs.text(job["started_at"])),
                         ("finished", Jobs.text(job["finished_at"])), ("took", Jobs.took(job))]
            if let results = detail["results"] as? [String: Any] {
                facts.append(("exit status", Jobs.text(results["exit_status"])))
                if let error = results["error"] as? String { facts.append(("error", error)) }
            }
            if let rerun = job["rerun_of"] as? String { facts.append(("rerun of", rerun)) }
            facts.append(("result URL", Jobs.text(job["result_url"])))
            let width = facts.map(\.0.count).max() ?? 0
            for (name, value) in facts { print("\(name.padding(toLength: width, withPad: " ", startingAt: 0))  \(value)") }
            print("")
            Jobs.printTable([["AT", "STATUS", "DETAIL"]] + (detail["events"] as? [[String: Any]] ?? []).map {
                [Jobs.text($0["at"]), Jobs.text($0["status"]), $0["detail"] as? String ?? ""]
            })
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A job's output: the whole log of an ended job, or with --follow its output as it comes, to its end.")
        @OptionGroup var connection: Connection
        @Argument(help: "The job's id.") var id: String
        @Flag(help: "Follow the job's output live until it ends (over its event stream).") var follow = false

        func run() async throws {
            let client = try connection.client()
            let job = try await client.get("/api/jobs/" + Jobs.escaped(id))["job"] as? [String: Any] ?? [:]
            let status = Jobs.text(job["status"])
            let ended = !["queued", "waiting_for_host", "running"].contains(status)
            // Followed over the event stream even when the job ended meanwhile: its streams
            // stay apart (stderr to stderr), the same whether the job ended a moment ago or not.
            if follow, let events = job["events_url"] as? String {
                let printed = Atomic<Bool>(false)
                let streamed = await EventFollower().follow(events) { event in
                    if case .output(let stream, let text) = event {
                        printed.store(true, ordering: .relaxed)
                        (stream == "stderr" ? FileHandle.standardError : FileHandle.standardOutput).write(Data(text.utf8))
                    }
                }
                if streamed { return }
                // The whole log instead only when none of it was printed.
                guard ended, !printed.load(ordering: .relaxed) else { throw refuse("the server's event stream could not be followed (a proxy that buffers?); try again once the job ended") }
            }
            guard ended else {
                throw refuse("job \(id) is \(status): its log is whole once it ends; --follow shows its output as it comes")
            }
            guard let results = job["result_url"] as? String else { throw refuse("the server gave no result URL for job \(id)") }
            let log = results.replacingOccurrences(of: "/results.json", with: "/output.log")
            FileHandle.standardOutput.write(try await client.file(at: log))
        }
    }

    /// `cancel` and `rerun`: a POST to the job's route, and one line saying what it did.
    protocol Action {
        static var name: String { get }
        static var abstract: String { get }
        static func said(_ answer: [String: Any], id: String) -> String
    }

    struct Act<Kind: Action>: AsyncParsableCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(commandName: Kind.name, abstract: Kind.abstract) }
        @OptionGroup var connection: Connection
        @Argument(help: "The job's id.") var id: String

        func run() async throws {
            print(Kind.said(try await connection.client().post("/api/jobs/\(Jobs.escaped(id))/\(Kind.name)"), id: id))
        }
    }

    enum Cancelling: Action {
        static let name = "cancel"
        static let abstract = "Cancels a job that has not ended: a running one is stopped on its host."
        static func said(_ answer: [String: Any], id: String) -> String {
            "cancelling \(Jobs.text(answer["id"])) (\(Jobs.text(answer["status"])) until its end is stored)"
        }
    }

    enum Rerunning: Action {
        static let name = "rerun"
        static let abstract = "Runs an ended job again, as a new job with the same commit or script."
        static func said(_ answer: [String: Any], id: String) -> String {
            "queued \(Jobs.text(answer["id"])), a rerun of \(id): \(Jobs.text(answer["result_url"]))"
        }
    }

    // MARK: Text

    /// A path or query value, percent-encoded: ids and names from the command line go into URLs.
    static func escaped(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? ""
    }

    static func text(_ value: Any?) -> String {
        switch value {
        case let string as String: string
        case let number as NSNumber: number.stringValue
        default: "-"
        }
    }

    /// `push main@1a2b3c4` or `script by alice`.
    static func trigger(_ job: [String: Any]) -> String {
        if let push = job["push"] as? [String: Any] {
            let ref = (push["ref"] as? String ?? "").replacingOccurrences(of: "refs/heads/", with: "")
            return "push \(ref)@\((push["commit"] as? String ?? "").prefix(7))"
        }
        if let script = job["script"] as? [String: Any] { return "script by \(text(script["signer"]))" }
        return text(job["trigger"])
    }

    /// From start to end, for an ended job.
    static func took(_ job: [String: Any]) -> String {
        guard let started = (job["started_at"] as? String).flatMap(RFC3339.date),
              let finished = (job["finished_at"] as? String).flatMap(RFC3339.date) else { return "-" }
        let seconds = finished.timeIntervalSince(started)
        return seconds < 60 ? String(format: "%.1fs", seconds) : "\(Int(seconds) / 60)m\(Int(seconds) % 60)s"
    }

    static func printTable(_ rows: [[String]]) {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
    }
}
