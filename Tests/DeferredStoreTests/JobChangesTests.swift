import DeferredCore
import DeferredStore
import Synchronization
import Testing

/// The waits of event-stream listeners: woken by a change of their job, by their time limit
/// (the heartbeat) through the one shared timer, or by cancellation.
@Suite struct JobChangesTests {
    /// A count shared with the waiting tasks.
    final class Count: Sendable {
        private let value = Atomic(0)
        func add() { value.add(1, ordering: .sequentiallyConsistent) }
        var now: Int { value.load(ordering: .sequentiallyConsistent) }
    }

    /// Runs `body` in a task and answers whether it ended within `seconds` (a bound far past what
    /// it needs, so a slow machine does not fail it; only a wait that never ends does).
    static func ends(within seconds: Int, _ body: @escaping @Sendable () async -> Void) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await body(); return true }
            group.addTask { try? await Task.sleep(for: .seconds(seconds)); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    @Test func aWaitEndsAtItsLimitWithoutAChange() async {
        let changes = JobChanges()
        let id = JobID.make()
        #expect(await Self.ends(within: 30) { await changes.wait(for: id, after: 0, upTo: .milliseconds(50)) })
        #expect(changes.version(of: id) == 0)
    }

    @Test func aShorterLimitAfterALongerOneStillEndsFirst() async {
        let changes = JobChanges()
        let id = JobID.make(), other = JobID.make()
        let longEnded = Count()
        let long = Task {
            await changes.wait(for: id, after: 0, upTo: .seconds(600))
            longEnded.add()
        }
        try? await Task.sleep(for: .milliseconds(50))
        // The timer was set for the 600 s wait: this one must set it earlier.
        #expect(await Self.ends(within: 30) { await changes.wait(for: other, after: 0, upTo: .milliseconds(50)) })
        #expect(longEnded.now == 0, "the long wait ended with the short one's timer")
        changes.notify(id)
        await long.value
        #expect(longEnded.now == 1)
    }

    @Test func oneChangeWakesAThousandListenersAndLeavesOthersWaiting() async {
        let changes = JobChanges()
        let id = JobID.make(), quiet = JobID.make()
        let woken = Count()
        let quietEnded = Count()
        let bystander = Task {
            await changes.wait(for: quiet, after: 0, upTo: .seconds(600))
            quietEnded.add()
        }
        let all = await Self.ends(within: 60) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<1000 {
                    group.addTask {
                        await changes.wait(for: id, after: 0, upTo: .seconds(600))
                        woken.add()
                    }
                }
                // Until every one waits (or saw the change already: its version is past 0).
                try? await Task.sleep(for: .milliseconds(200))
                changes.notify(id)
            }
        }
        #expect(all)
        #expect(woken.now == 1000)
        #expect(quietEnded.now == 0)
        bystander.cancel()
        await bystander.value
        #expect(quietEnded.now == 1, "a cancelled wait did not end")
    }

    @Test func aWaitForAVersionAlreadyPassedReturnsAtOnce() async {
        let changes = JobChanges()
        let id = JobID.make()
        changes.notify(id)
        #expect(await Self.ends(within: 30) { await changes.wait(for: id, after: 0, upTo: .seconds(600)) })
    }

    /// An observation (a listener with no task of its own) is woken once, by a change, by its
    /// limit or at once for a version already passed; a cancelled one never, and is forgotten.
    @Test func anObservationWakesOnceAndACancelledOneNever() async throws {
        let changes = JobChanges()
        let id = JobID.make()
        let changed = Count(), cancelled = Count(), limited = Count(), passed = Count()
        changes.observe(id, after: 0, upTo: .seconds(600)) { changed.add() }
        let gone = changes.observe(id, after: 0, upTo: .seconds(600)) { cancelled.add() }
        #expect(changes.observations(of: id) == 2)
        changes.cancel(gone)
        #expect(changes.observations(of: id) == 1)
        changes.notify(id)
        changes.notify(id)
        #expect(changed.now == 1 && cancelled.now == 0)
        #expect(changes.observations(of: id) == 0)

        changes.observe(id, after: 0, upTo: .seconds(600)) { passed.add() }
        #expect(passed.now == 1, "the version had passed 0: woken at once")
        #expect(changes.observations(of: id) == 0)

        changes.observe(id, after: changes.version(of: id), upTo: .milliseconds(50)) { limited.add() }
        let deadline = ContinuousClock.now + .seconds(30)
        while limited.now == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(limited.now == 1)
        #expect(changes.observations(of: id) == 0)
        changes.notify(id)
        #expect(limited.now == 1 && changed.now == 1 && cancelled.now == 0)
    }

    /// A cancelled wait leaves no observation behind (a thousand listeners that come and go
    /// must not pile up in the job's list).
    @Test func aCancelledWaitLeavesNothingBehind() async {
        let changes = JobChanges()
        let id = JobID.make()
        let waiting = Task { await changes.wait(for: id, after: 0, upTo: .seconds(600)) }
        let deadline = ContinuousClock.now + .seconds(30)
        while changes.observations(of: id) == 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        #expect(changes.observations(of: id) == 1)
        waiting.cancel()
        await waiting.value
        #expect(changes.observations(of: id) == 0)
    }
}
