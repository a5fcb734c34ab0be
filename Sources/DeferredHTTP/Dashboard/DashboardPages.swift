import DeferredCore
import DeferredStore
import Foundation

// What the dashboard's pages show, as plain values for the templates. swift-mustache reads
// stored properties by name, so these hold text ready to print (the templates escape it).

/// One job in a table: what started it, where it is, how long it waited and ran.
struct JobRow: Sendable {
    let id: String
    let project: String
    let trigger: String
    let status: String
    let queued: String
    let wait: String
    let duration: String
    let host: String

    init(_ job: Job, now: Date = Date()) {
        id = job.id.rawValue
        project = job.project
        trigger = Self.describe(job.trigger)
        status = job.status.rawValue
        queued = Self.time(job.queuedAt)
        wait = job.startedAt.map { DurationText.precise($0.timeIntervalSince(job.queuedAt)) }
            ?? (job.status.isFinal ? "-" : DurationText.precise(now.timeIntervalSince(job.queuedAt)) + "…")
        duration = job.startedAt.map { started in
            job.finishedAt.map { DurationText.precise($0.timeIntervalSince(started)) } ?? DurationText.precise(now.timeIntervalSince(started)) + "…"
        } ?? "-"
        host = job.hostName ?? "-"
    }

    static func describe(_ trigger: Trigger) -> String {
        switch trigger {
        case .push(let push):
            let ref = push.ref.hasPrefix("refs/heads/") ? String(push.ref.dropFirst("refs/heads/".count)) : push.ref
            return "push \(ref) @ \(push.commit.prefix(7)) by \(push.pusher)"
        case .script(let script):
            return "script \(script.sha256.prefix(12)) signed by \(script.signer)"
        }
    }

    /// Seconds and UTC, the way the store keeps them.
    static func time(_ date: Date) -> String {
        Date.ISO8601FormatStyle().format(date).replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: " UTC")
    }
}

/// One host: its state, how long it has been idle, and what the buttons did to it.
struct HostRow: Sendable {
    let name: String
    let provider: String
    let state: String
    let jobs: Int
    let idleFor: String
    let lastJob: String?
    /// Cloud hosts have wake and sleep buttons; a static host is always on.
    let cloud: Bool
    let waking: Bool
    let note: String?
    let noteFailed: Bool

    init(_ host: HostStatus, note: HostActions.Note?, waking: Bool, now: Date = Date()) {
        name = host.name
        provider = host.fleet.map { "\(host.provider) (fleet \($0))" } ?? host.provider
        state = host.state.rawValue
        jobs = host.activeJobs
        idleFor = host.activeJobs == 0 ? host.idleSince.map { DurationText.minutes(now.timeIntervalSince($0)) } ?? "-" : "-"
        lastJob = host.lastJobID?.rawValue
        cloud = host.provider != ProviderKind.static.rawValue
        self.waking = waking
        self.note = note.map { "\($0.text) (\(JobRow.time($0.at)))" }
        noteFailed = note?.failed ?? false
    }
}

/// A project's settings as its page shows them.
struct ProjectRow: Sendable {
    let name: String
    let repository: String
    let branches: String
    let command: String
    let hosts: String
    let timeout: String
    let last: JobRow?

    init(_ project: ProjectConfig, last: Job?) {
        name = project.name
        repository = project.repository
        branches = project.branches.isEmpty ? "the default branch" : project.branches.joined(separator: ", ")
        command = project.command ?? "the .deferred_server file of the pushed commit"
        hosts = project.hosts.joined(separator: ", ")
        timeout = DurationText.minutes(project.timeoutMinutes * 60)
        self.last = last.map { JobRow($0) }
    }
}

struct OverviewPage: Sendable {
    let title = "deferred"
    let formToken: String
    let hosts: [HostRow]
    /// Fleets whose new instances keep failing to answer.
    let fleetNotes: [String]
    let projects: [ProjectRow]
    let jobs: [JobRow]
}

struct ProjectPage: Sendable {
    let title: String
    let formToken: String
    let project: ProjectRow
    let jobs: [JobRow]
}

/// A job's whole story: its trigger, state changes, output so far, and once it ended its
/// results.json and artifacts.
struct JobPage: Sendable {
    struct Fact: Sendable {
        let label: String
        let value: String
    }

    struct Event: Sendable {
        let at: String
        let status: String
        let detail: String
    }

    struct Output: Sendable {
        let stream: String
        let text: String
    }

    struct Artifact: Sendable {
        let path: String
        let href: String
        let bytes: String
        let type: String
    }

    let title: String
    let formToken: String
    let job: JobRow
    let ended: Bool
    let facts: [Fact]
    let events: [Event]
    let output: [Output]
    /// Earlier output was left off the page; output.log has it all.
    let outputCut: Bool
    /// The event stream the live log follows, from where the page's backlog ends.
    let eventsPath: String?
    let resultsPath: String
    let outputLogPath: String
    let results: String?
    let artifacts: [Artifact]
    let expired: Bool
    let payload: String?
    let script: String?
}

/// The login form, with what went wrong last time.
struct LoginPage: Sendable {
    let title = "deferred: sign in"
    let next: String
    let problem: String?
}
