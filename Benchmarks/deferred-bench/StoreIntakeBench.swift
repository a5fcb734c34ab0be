import DeferredCore
import DeferredStore
import DeferredTestSupport
import Foundation
import Synchronization

// The store's side of the intake alone, in this process, without HTTP: N push jobs (the
// fixture push as payload, each with its own random delivery id and body hash) enqueued by C
// tasks at once, as C webhook connections would, into a new SQLite store; beside it the same enqueues
// into deferred's other store, a throwaway PostgreSQL with fsync on. Prints enqueues a second
// and this process's CPU an enqueue (the tasks', the writer's and the driver's together; for
// PostgreSQL, the server's own CPU is not counted), SQLite's bytes written to disk an enqueue, and
// checks that every enqueue is stored.
// Usage: deferred-bench store-intake [N (30000)] [C (32)] [rounds (3)]
func storeIntakeBench(_ arguments: ArraySlice<String>) async throws -> Int32 {
    let numbers = arguments.compactMap { Int($0) }
    let count = numbers.first ?? 30_000, concurrency = numbers.dropFirst().first ?? 32, rounds = numbers.dropFirst(2).first ?? 3
    let body = try Fixtures.data("github/push-new-branch.json")
    let postgres = try await ThrowawayPostgres.own(durable: true)
    var sqlite: [StoreIntakeFigures] = [], peer: [StoreIntakeFigures] = []
    for round in 1...rounds {
        FileHandle.standardError.write(Data("bench: round \(round) of \(rounds)\n".utf8))
        let folder = NSTemporaryDirectory() + "deferred-store-intake-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        sqlite.append(try await enqueueAll(count, by: concurrency, payload: body,
                                           into: try SQLiteJobStore(path: folder + "/state.sqlite", serving: true)))
        let url = postgres.url(database: try await postgres.makeDatabase())
        let store = try await PostgresJobStore(settings: PostgresSettings(url: url, password: ThrowawayPostgres.password))
        peer.append(try await enqueueAll(count, by: concurrency, payload: body, into: store))
        await store.resign()
    }
    print("")
    print("the store's intake alone: \(count) push jobs (\(body.count)-byte payload) enqueued by \(concurrency) tasks, "
          + "medians of \(rounds) rounds, on this machine, in the same run")
    let mine = StoreIntakeFigures.median(sqlite), theirs = StoreIntakeFigures.median(peer)
    print(String(format: "SQLite                      %7.0f enqueues/s   %6.1f µs CPU an enqueue   %5.1f KB written to disk an enqueue",
                 mine.perSecond, mine.cpuPerEnqueue * 1e6, mine.bytesPerEnqueue / 1000))
    print(String(format: "PostgreSQL, fsync on (peer) %7.0f enqueues/s   %6.1f µs CPU an enqueue (this process's)   ratio %.2f×",
                 theirs.perSecond, theirs.cpuPerEnqueue * 1e6, mine.perSecond / theirs.perSecond))
    let lost = (sqlite + peer).filter { $0.stored != count }
    guard lost.isEmpty else {
        print("FAILED: rounds stored \(lost.map(\.stored)) of \(count) jobs")
        return 2
    }
    return 0
}

struct StoreIntakeFigures {
    var perSecond: Double
    var cpuPerEnqueue: Double
    var stored: Int
    /// What this process made the kernel write to disk (/proc's write_bytes), an enqueue.
    var bytesPerEnqueue: Double

    static func median(_ rounds: [StoreIntakeFigures]) -> StoreIntakeFigures {
        return StoreIntakeFigures(perSecond: middleValue(rounds.map(\.perSecond)), cpuPerEnqueue: middleValue(rounds.map(\.cpuPerEnqueue)),
                                  stored: rounds.map(\.stored).min() ?? 0, bytesPerEnqueue: middleValue(rounds.map(\.bytesPerEnqueue)))
    }
}

/// Enqueues `count` new push jobs into `store` from `concurrency` tasks; each must be created.
private func enqueueAll(_ count: Int, by concurrency: Int, payload: Data, into store: some JobStore) async throws -> StoreIntakeFigures {
    // GitHub's delivery ids are GUIDs: random, so each lands on its own page of the delivery
    // index, where counted ids would share the index's last page.
    let deliveries = (0..<count).map { _ in UUID().uuidString.lowercased() }
    let jobs = (0..<count).map { n in
        Job(project: "hello", trigger: .push(PushTrigger(repository: "Codertocat/Hello-World", ref: "refs/heads/main",
                                                         commit: String(repeating: "a", count: 40), delivery: deliveries[n],
                                                         pusher: "Codertocat", cloneURL: "https://github.com/Codertocat/Hello-World.git")))
    }
    // Different for every job, as two pushes' bodies are.
    let hashes = (0..<count).map { n in String(format: "%064llx", UInt64(n) &* 0x9E37_79B9_7F4A_7C15) }
    let next = NumberDispenser()
    let cpuBefore = cpuSeconds(of: getpid()), writtenBefore = diskBytesWritten(of: getpid()), start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<concurrency {
            group.addTask {
                while let n = next.take(below: count) {
                    let result = try await store.enqueue(jobs[n], delivery: deliveries[n], payload: payload, bodySHA256: hashes[n],
                                                         maxQueued: Int.max, detail: nil)
                    guard case .created = result else { throw BenchFailure("enqueue \(n) was not created: \(result)") }
                }
            }
        }
        try await group.waitForAll()
    }
    let wall = (ContinuousClock.now - start).timeInterval, cpu = cpuSeconds(of: getpid()) - cpuBefore
    let written = Double(diskBytesWritten(of: getpid()) - writtenBefore)
    return StoreIntakeFigures(perSecond: Double(count) / wall, cpuPerEnqueue: cpu / Double(count), stored: try await store.jobCount(),
                              bytesPerEnqueue: written / Double(count))
}

/// Hands out 0, 1, 2 … to the tasks, each number once.
private final class NumberDispenser: Sendable {
    private let next = Mutex(0)

    func take(below limit: Int) -> Int? {
        next.withLock { value in
            guard value < limit else { return nil }
            defer { value += 1 }
            return value
        }
    }
}
