import DeferredCore
import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// One implementation of `JobStore`, made fresh and empty for each test.
struct StoreUnderTest: Sendable, CustomTestStringConvertible {
    let name: String
    let make: @Sendable (_ folder: String) async throws -> any JobStore

    var testDescription: String { name }

    static let all: [StoreUnderTest] = [
        StoreUnderTest(name: "sqlite") { folder in try SQLiteJobStore(path: folder + "/state.sqlite") },
        // A database of its own on the test run's PostgreSQL server.
        StoreUnderTest(name: "postgres") { _ in
            let server = try await ThrowawayPostgres.shared()
            let url = server.url(database: try await server.makeDatabase())
            // These tests are of what is stored, not of time: a machine busy with the whole test
            // run may take longer than intake's 3 s to lend a connection.
            return try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password),
                                              intakeDeadline: .init(start: .seconds(120), total: .seconds(240)))
        },
    ]

    /// Runs `body` with a new store in a folder of its own, removed afterwards.
    func with(_ body: (any JobStore) async throws -> Void) async throws {
        try await TemporaryFolder.with("conformance") { folder in try await body(try await make(folder)) }
    }
}

/// Jobs, hosts and outcomes as the conformance tests need them.
enum Sample {
    /// Now, in whole seconds: a time a store keeps as seconds since 1970 reads back equal.
    static var now: Date { Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)) }

    static func push(project: String = "sample", queuedAt: Date = now) -> Job {
        let commit = String(repeating: "a", count: 40)
        return Job(project: project, trigger: .push(PushTrigger(
            repository: "octo/sample", ref: "refs/heads/main", commit: commit, delivery: UUID().uuidString,
            pusher: "octo", cloneURL: "https://github.com/octo/sample.git")), queuedAt: queuedAt)
    }

    /// A push queued 10 s ago, leased to `box` and running for 8 s: its feed's output and end to come.
    static func runningPush(in store: any JobStore) async throws -> Job {
        let job = push(queuedAt: Date().addingTimeInterval(-10))
        _ = try await store.enqueue(job, delivery: nil)
        _ = try await store.leaseNext(now: Date().addingTimeInterval(-9), targetsFor: { _ in [.host(name: "box", maxJobs: 1)] })
        try await store.markRunning(job.id, at: Date().addingTimeInterval(-8))
        return job
    }

    static func script(project: String = "sample", queuedAt: Date = now) -> Job {
        Job(project: project, trigger: .script(ScriptTrigger(script: "echo hi\n", signer: "ci", interpreter: .program("/bin/sh"))),
            queuedAt: queuedAt)
    }

    static func host(_ name: String, maxJobs: Int = 1) -> HostConfig {
        HostConfig(name: name, address: "127.0.0.1", user: "build", identity: nil, knownHosts: "/dev/null", maxJobs: maxJobs)
    }

    static func outcome(_ status: JobStatus, endingAt end: Date = Date()) -> JobOutcome {
        JobOutcome(status: status, exitStatus: status == .succeeded ? 0 : 1, startedAt: end.addingTimeInterval(-1), finishedAt: end)
    }
}
