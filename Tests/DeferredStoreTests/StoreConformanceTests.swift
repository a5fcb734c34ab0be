import DeferredCore
import DeferredStore
import Foundation
import Testing

/// What every `JobStore` must do, run against each implementation: a new one (PostgreSQL)
/// joins `StoreUnderTest.all` and passes the same tests.
struct StoreConformanceTests {
    // MARK: Intake

    @Test(arguments: StoreUnderTest.all)
    func aDeliverySeenBeforeAnswersWithItsFirstJobByIdOrBySignedBody(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let first = Sample.push()
            #expect(try await store.enqueue(first, delivery: "d-1", payload: nil, bodySHA256: "body-1", maxQueued: .max, detail: nil) == .created(first))
            // The same delivery id again, and the same signed body under a new id: the first job.
            let again = try await store.enqueue(Sample.push(), delivery: "d-1", payload: nil, bodySHA256: "body-other", maxQueued: .max, detail: nil)
            #expect(again.job?.id == first.id)
            guard case .duplicate = again else { Issue.record("not a duplicate: \(again)"); return }
            let replayed = try await store.enqueue(Sample.push(), delivery: "d-2", payload: nil, bodySHA256: "body-1", maxQueued: .max, detail: nil)
            #expect(replayed == .duplicate(first))
            #expect(try await store.jobCount() == 1)
            #expect(try await store.deliveryCount() == 1)
        }
    }

    @Test(arguments: StoreUnderTest.all)
    func aRerunKeepsItsTriggerAndIsFoundFromTheJobItRepeats(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let first = Sample.push()
            _ = try await store.enqueue(first, delivery: "d-1", payload: nil, bodySHA256: "body-1", maxQueued: .max, detail: nil)
            let rerun = Job(project: first.project, trigger: first.trigger, rerunOf: first.id)
            #expect(try await store.enqueue(rerun, delivery: nil, payload: nil, bodySHA256: nil, maxQueued: .max, detail: nil) == .created(rerun))
            let read = try #require(try await store.job(id: rerun.id))
            #expect(read.rerunOf == first.id && read.trigger == first.trigger)
            #expect(try await store.job(id: first.id)?.rerunOf == nil)
            #expect(try await store.reruns(of: first.id) == [rerun.id])
            #expect(try await store.reruns(of: rerun.id).isEmpty)
        }
    }

    /// The jobs list of the API: filters by project, state, host and time, newest first, and
    /// pages that follow each other through a cursor without a job twice or left out, even
    /// where jobs were queued in the same second.
    @Test(arguments: StoreUnderTest.all)
    func jobListsFilterAndPageNewestFirst(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let start = Sample.now.addingTimeInterval(-3600)
            var all: [Job] = []
            for index in 0..<23 {
                // Three jobs to a second: the cursor tells them apart by id.
                let job = Sample.push(project: index % 3 == 0 ? "other" : "sample", queuedAt: start.addingTimeInterval(Double(index / 3)))
                _ = try await store.enqueue(job, delivery: nil)
                all.append(job)
            }
            try await store.register(hosts: [Sample.host("h", maxJobs: 30)], at: start)
            // One job of "sample" leased to host h, so the state and host filters have one to find.
            let leased = try #require(try await store.leaseNext(now: Sample.now, targetsFor: { _ in [.host(name: "h", maxJobs: 30)] }))
            let newestFirst = all.sorted { ($0.queuedAt, $0.id.rawValue) > ($1.queuedAt, $1.id.rawValue) }

            var paged: [JobID] = [], cursor: JobCursor?
            repeat {
                let page = try await store.jobs(matching: JobQuery(after: cursor, limit: 5))
                #expect(page.count <= 5)
                paged += page.map(\.id)
                cursor = page.count == 5 ? page.last.map(JobCursor.init) : nil
                // The cursor's text is all a client keeps.
                cursor = cursor.flatMap { JobCursor(text: $0.text) }
            } while cursor != nil
            #expect(paged == newestFirst.map(\.id))

            let others = try await store.jobs(matching: JobQuery(project: "other", limit: 100))
            #expect(others.map(\.id) == newestFirst.filter { $0.project == "other" }.map(\.id))
            #expect(try await store.jobs(matching: JobQuery(statuses: [.waitingForHost, .running], limit: 100)).map(\.id) == [leased.job.id])
            #expect(try await store.jobs(matching: JobQuery(host: "h", limit: 100)).map(\.id) == [leased.job.id])
            #expect(try await store.jobs(matching: JobQuery(statuses: [.succeeded], limit: 100)).isEmpty)
            let window = try await store.jobs(matching: JobQuery(since: start.addingTimeInterval(2), before: start.addingTimeInterval(4), limit: 100))
            #expect(window.map(\.id) == newestFirst.filter { $0.queuedAt >= start.addingTimeInterval(2) && $0.queuedAt < start.addingTimeInterval(4) }.map(\.id))
            #expect(window.count == 6)
        }
    }

    @Test(arguments: StoreUnderTest.all)
    func aFullQueueRefusesAndCountsOnlyItsProject(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            for _ in 0..<2 { _ = try await store.enqueue(Sample.push(), delivery: nil, payload: nil, bodySHA256: nil, maxQueued: 2, detail: nil) }
            #expect(try await store.enqueue(Sample.push(), delivery: nil, payload: nil, bodySHA256: nil, maxQueued: 2, detail: nil) == .queueFull(queued: 2))
            let other = Sample.push(project: "other")
            #expect(try await store.enqueue(other, delivery: nil, payload: nil, bodySHA256: nil, maxQueued: 2, detail: nil) == .created(other))
            #expect(try await store.enqueueScript(Sample.script(), idempotency: nil, maxQueued: 2) == .queueFull(queued: 2))
            #expect(try await store.jobCount() == 3)
        }
    }

    /// Deliveries and scripts for one project arriving at once never fill its queue past the
    /// limit: the count and the write are one step, whichever connection or server they take.
    @Test(arguments: StoreUnderTest.all)
    func aQueueLimitHoldsUnderConcurrentIntake(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        if index % 2 == 0 {
                            let answer = try await store.enqueue(Sample.push(), delivery: "limit-\(index)", payload: nil, bodySHA256: nil,
                                                                 maxQueued: 7, detail: nil)
                            if case .created = answer { return true }
                            return false
                        }
                        if case .created = try await store.enqueueScript(Sample.script(), idempotency: nil, maxQueued: 7) { return true }
                        return false
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(created == 7)
            #expect(try await store.jobCount() == 7)
            // A refused delivery left nothing behind: its id is free for a later copy.
            #expect(try await store.deliveryCount() <= 7)
        }
    }

    /// Deliveries that arrive together (and are committed together): each is stored once, a
    /// repeat of one sent at the same moment answers with the same job, and every job's
    /// events start with its `queued`.
    @Test(arguments: StoreUnderTest.all)
    func deliveriesArrivingTogetherAreEachStoredOnceAndTheirRepeatsAnswerWithThem(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let deliveries = (0..<200).map { "d-\($0)" }
            let answers = try await withThrowingTaskGroup(of: (String, EnqueueResult).self) { group in
                for (index, delivery) in deliveries.enumerated() {
                    // Every fourth delivery is sent twice at once, as GitHub's redelivery may.
                    for _ in 0..<(index % 4 == 0 ? 2 : 1) {
                        group.addTask {
                            (delivery, try await store.enqueue(Sample.push(), delivery: delivery, payload: Data(delivery.utf8),
                                                               bodySHA256: "body-\(delivery)", maxQueued: .max, detail: nil))
                        }
                    }
                }
                return try await group.reduce(into: [String: [EnqueueResult]]()) { $0[$1.0, default: []].append($1.1) }
            }
            for delivery in deliveries {
                let mine = answers[delivery] ?? []
                let created = mine.filter { if case .created = $0 { true } else { false } }
                #expect(created.count == 1, "\(delivery): \(mine)")
                #expect(Set(mine.map(\.job?.id)).count == 1, "\(delivery): \(mine)")
            }
            #expect(try await store.jobCount() == deliveries.count)
            #expect(try await store.deliveryCount() == deliveries.count)
            for (delivery, mine) in answers {
                guard let job = mine.compactMap({ if case .created(let job) = $0 { job } else { nil } }).first else { continue }
                let events = try await store.events(of: job.id, after: 0)
                #expect(events.map(\.status) == [.queued], "\(job.id): \(events)")
                #expect(try await store.payload(of: job.id) == Data(delivery.utf8))
            }
        }
    }

    /// A write that fails among others sent at the same moment stores nothing of its own (not
    /// its delivery either) and keeps none of the others from being stored.
    @Test(arguments: StoreUnderTest.all)
    func aFailedWriteAmongOthersStoresNothingOfItsOwnAndStopsNoneOfThem(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let first = Sample.push()
            _ = try await store.enqueue(first, delivery: "d-first", payload: nil, bodySHA256: nil, maxQueued: .max, detail: nil)
            let outcomes = await withTaskGroup(of: (String, Result<EnqueueResult, StoreError>).self) { group in
                // The same job id under a new delivery: the store's key refuses it.
                group.addTask {
                    do throws(StoreError) {
                        return ("clash", .success(try await store.enqueue(first, delivery: "d-clash", payload: nil, bodySHA256: nil,
                                                                          maxQueued: .max, detail: nil)))
                    } catch { return ("clash", .failure(error)) }
                }
                for index in 0..<40 {
                    group.addTask {
                        do throws(StoreError) {
                            return ("d-\(index)", .success(try await store.enqueue(Sample.push(), delivery: "d-\(index)", payload: nil,
                                                                                  bodySHA256: nil, maxQueued: .max, detail: nil)))
                        } catch { return ("d-\(index)", .failure(error)) }
                    }
                }
                return await group.reduce(into: [String: Result<EnqueueResult, StoreError>]()) { $0[$1.0] = $1.1 }
            }
            guard case .failure = outcomes["clash"] else { Issue.record("the clash was stored: \(String(describing: outcomes["clash"]))"); return }
            for index in 0..<40 {
                guard case .success(.created) = outcomes["d-\(index)"] else {
                    Issue.record("d-\(index): \(String(describing: outcomes["d-\(index)"]))"); continue
                }
            }
            #expect(try await store.jobCount() == 41)
            #expect(try await store.deliveryCount() == 41)
            let again = try await store.enqueue(Sample.push(), delivery: "d-clash", payload: nil, bodySHA256: nil, maxQueued: .max, detail: nil)
            guard case .created = again else { Issue.record("the refused delivery was kept: \(again)"); return }
        }
    }

    /// The queue limit counts the jobs that wait (queued, or leased and waiting for their host)
    /// as they move: a job that runs, ends, is sent back or is cancelled in the queue counts or
    /// stops counting at once.
    @Test(arguments: StoreUnderTest.all)
    func theQueueLimitFollowsJobsAsTheyMove(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            try await store.register(hosts: [Sample.host("box")], at: Date())
            let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "box", maxJobs: 1)] }
            let jobs = [Sample.push(), Sample.push()]
            for job in jobs { #expect(try await store.enqueue(job, delivery: nil, payload: nil, bodySHA256: nil, maxQueued: 2, detail: nil) == .created(job)) }
            func refused() async throws -> Bool {
                try await store.enqueue(Sample.push(), delivery: nil, payload: nil, bodySHA256: nil, maxQueued: 2, detail: nil) == .queueFull(queued: 2)
            }
            #expect(try await refused())
            // Leased and waiting for its host: still waiting.
            let lease = try #require(try await store.leaseNext(now: Date(), targetsFor: targets))
            #expect(try await refused())
            // Running: no longer waiting; a third job fits, a fourth does not.
            try await store.markRunning(lease.job.id, at: Date())
            let third = Sample.push()
            #expect(try await store.enqueue(third, delivery: nil, payload: nil, bodySHA256: nil, maxQueued: 2, detail: nil) == .created(third))
            #expect(try await refused())
            // Sent back to the queue: waiting again, one over the limit until another leaves.
            try await store.requeue(lease.job.id, reason: "ssh dropped", notBefore: Date(), countAttempt: false, at: Date())
            #expect(try await store.enqueueScript(Sample.script(), idempotency: nil, maxQueued: 3) == .queueFull(queued: 3))
            // Cancelled in the queue and ended: two wait.
            let other = jobs.first { $0.id != lease.job.id }!
            _ = try await store.requestCancel(other.id, by: "admin", at: Date())
            try await store.finish(other.id, outcome: Sample.outcome(.cancelled))
            let script = Sample.script()
            #expect(try await store.enqueueScript(script, idempotency: nil, maxQueued: 3) == .created(script))
            #expect(try await store.enqueueScript(Sample.script(), idempotency: nil, maxQueued: 3) == .queueFull(queued: 3))
        }
    }

    @Test(arguments: StoreUnderTest.all)
    func anIdempotencyKeyReplaysItsJobConflictsOnAnotherBodyAndExpires(_ kind: StoreUnderTest) async throws {
        try await kind.with { (store: any JobStore) async throws in
            let first = Sample.script()
            let claim = IdempotencyClaim(key: "k-1", bodySHA256: "aaa")
            #expect(try await store.enqueueScript(first, idempotency: claim, maxQueued: .max) == .created(first))
            #expect(try await store.enqueueScript(Sample.script(), idempotency: claim, maxQueued: .max) == .replayed(first))
            #expect(try await store.enqueueScript(Sample.script(), idempotency: IdempotencyClaim(key: "k-1", bodySHA256: "bbb"), maxQueued: .max) == .conflict(first))
            // The same key in another project is another key.
            let elsewhere = Sample.script(project: "other")
            #expect(try await store.enqueueScript(elsewhere, idempotency: claim, maxQueued: .max) == .created(elsewhere))
            // Past the window, the key makes a new job.
            let later = Sample.script(queuedAt: Date().addingTimeInterval(StorePolicy.idempotencyWindow + 60))
            #expect(try await store.enqueueScript(later, idempotency: claim, maxQueued: .max) == .created(later))
            #expect(try await store.jobCount() == 3)
        }
    }

    // MARK: Leases

    @Test(arguments: StoreUnderTest.all)
    func aHostTakesAtMostItsMaxJobsAndTheOldestJobFirst(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            try await store.register(hosts: [Sample.host("box", maxJobs: 2)], at: Date())
            let base = Date().addingTimeInterval(-60)
            let jobs = (0..<3).map { Sample.push(queuedAt: base.addingTimeInterval(Double($0))) }
            for job in jobs.reversed() { _ = try await store.enqueue(job, delivery: nil) }
            let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "box", maxJobs: 2)] }
            let first = try await store.leaseNext(now: Date(), targetsFor: targets)
            let second = try await store.leaseNext(now: Date(), targetsFor: targets)
            #expect([first?.job.id, second?.job.id] == [jobs[0].id, jobs[1].id])
            #expect(first?.hostWasUp == true)
            #expect(try await store.leaseNext(now: Date(), targetsFor: targets) == nil)
            #expect(try await store.host(named: "box")?.activeJobs == 2)
            #expect(try await store.host(named: "box")?.state == .busy)
            // A job that ends frees its place.
            try await store.finish(jobs[0].id, outcome: Sample.outcome(.succeeded))
            #expect(try await store.leaseNext(now: Date(), targetsFor: targets)?.job.id == jobs[2].id)
        }
    }

    /// Jobs of a project whose hosts are full do not hold back an older-queued project's
    /// neighbour: a later job of another project, on a host with room, is leased.
    @Test(arguments: StoreUnderTest.all)
    func aFullHostHoldsBackOnlyItsOwnProjectsJobs(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            try await store.register(hosts: [Sample.host("a"), Sample.host("b")], at: Date())
            let base = Date().addingTimeInterval(-60)
            let first = (0..<3).map { Sample.push(project: "first", queuedAt: base.addingTimeInterval(Double($0))) }
            let second = Sample.push(project: "second", queuedAt: base.addingTimeInterval(10))
            for job in first + [second] { _ = try await store.enqueue(job, delivery: nil) }
            let targets: @Sendable (String) -> [LeaseTarget] = { project in [.host(name: project == "first" ? "a" : "b", maxJobs: 1)] }
            #expect(try await store.leaseNext(now: Date(), targetsFor: targets)?.job.id == first[0].id)
            #expect(try await store.leaseNext(now: Date(), targetsFor: targets)?.job.id == second.id)
            #expect(try await store.leaseNext(now: Date(), targetsFor: targets) == nil)
            try await store.finish(first[0].id, outcome: Sample.outcome(.succeeded))
            #expect(try await store.leaseNext(now: Date(), targetsFor: targets)?.job.id == first[1].id)
        }
    }

    /// A host held back (it did not answer) takes only jobs queued before the target's
    /// `queuedBefore`, the oldest first; a project with another host still places its newer jobs there.
    @Test(arguments: StoreUnderTest.all)
    func aHeldHostTakesOnlyJobsQueuedBeforeItsCutoff(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            try await store.register(hosts: [Sample.host("held", maxJobs: 5), Sample.host("spare", maxJobs: 5)], at: Date())
            let base = Date().addingTimeInterval(-60)
            let jobs = (0..<3).map { Sample.push(queuedAt: base.addingTimeInterval(Double(10 * $0))) }
            for job in jobs.reversed() { _ = try await store.enqueue(job, delivery: nil) }
            let cutoff = base.addingTimeInterval(15)
            let heldOnly: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "held", maxJobs: 5, queuedBefore: cutoff)] }
            #expect(try await store.leaseNext(now: Date(), targetsFor: heldOnly)?.job.id == jobs[0].id)
            #expect(try await store.leaseNext(now: Date(), targetsFor: heldOnly)?.job.id == jobs[1].id)
            #expect(try await store.leaseNext(now: Date(), targetsFor: heldOnly) == nil, "the newest job waits out the hold")
            let withSpare: @Sendable (String) -> [LeaseTarget] = { _ in
                [.host(name: "held", maxJobs: 5, queuedBefore: cutoff), .host(name: "spare", maxJobs: 5)]
            }
            let placed = try await store.leaseNext(now: Date(), targetsFor: withSpare)
            #expect(placed?.job.id == jobs[2].id && placed?.hostName == "spare", "\(String(describing: placed))")
        }
    }

    @Test(arguments: StoreUnderTest.all)
    func aJobSentBackWaitsOutItsNotBefore(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            try await store.register(hosts: [Sample.host("box")], at: Date())
            let job = Sample.push()
            _ = try await store.enqueue(job, delivery: nil)
            let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "box", maxJobs: 1)] }
            _ = try await store.leaseNext(now: Date(), targetsFor: targets)
            let now = Date()
            try await store.requeue(job.id, reason: "ssh dropped", notBefore: now.addingTimeInterval(30), countAttempt: true, at: now)
            #expect(try await store.job(id: job.id)?.attempts == 1)
            #expect(try await store.job(id: job.id)?.status == .queued)
            #expect(try await store.host(named: "box")?.activeJobs == 0)
            #expect(try await store.leaseNext(now: now.addingTimeInterval(29), targetsFor: targets) == nil)
            #expect(try await store.leaseNext(now: now.addingTimeInterval(31), targetsFor: targets)?.job.id == job.id)
        }
    }

    /// A job sent back after its host's wake failed leaves the host `unknown` in the same
    /// transaction: the next lease finds it not up (so it wakes it), never `ready` in between.
    @Test(arguments: StoreUnderTest.all)
    func aRequeueSetsItsHostsStateInTheSameWrite(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            try await store.register(hosts: [Sample.host("box")], at: Date())
            try await store.markHost("box", .ready)
            let job = Sample.push()
            _ = try await store.enqueue(job, delivery: nil)
            let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "box", maxJobs: 1)] }
            #expect(try await store.leaseNext(now: Date(), targetsFor: targets)?.hostWasUp == true)
            try await store.requeue(job.id, reason: "wake failed", notBefore: Date(), countAttempt: true, hostState: .unknown, at: Date())
            #expect(try await store.host(named: "box")?.state == .unknown)
            #expect(try await store.leaseNext(now: Date().addingTimeInterval(1), targetsFor: targets)?.hostWasUp == false)
            // Without a state, the host is freed as ready, as before.
            try await store.requeue(job.id, reason: "ssh dropped", notBefore: Date(), countAttempt: false, at: Date())
            #expect(try await store.host(named: "box")?.state == .ready)
        }
    }

    /// However many leases run at once, a fleet never has more hosts than `max_hosts`: the
    /// count is taken in the lease's own transaction.
    @Test(arguments: StoreUnderTest.all)
    func aFleetGrowsToItsMaxHostsAndNoFurtherUnderConcurrentLeases(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            for _ in 0..<12 { _ = try await store.enqueue(Sample.push(), delivery: nil) }
            let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.fleet(name: "fl", maxHosts: 3, maxJobs: 2, provider: "hetzner")] }
            let leases = try await withThrowingTaskGroup(of: Lease?.self) { group in
                for _ in 0..<12 { group.addTask { try await store.leaseNext(now: Date(), targetsFor: targets) } }
                return try await group.reduce(into: [Lease]()) { if let lease = $1 { $0.append(lease) } }
            }
            let hosts = try await store.hosts().filter { $0.fleet == "fl" }
            #expect(hosts.count == 3, "\(hosts.map(\.name))")
            #expect(leases.count == 6)
            #expect(hosts.allSatisfy { $0.activeJobs == 2 && $0.state == .provisioning })
            // Recorded as the fleet's own provider's, for `deferred hosts` and the dashboard.
            #expect(hosts.allSatisfy { $0.provider == "hetzner" }, "\(hosts.map(\.provider))")
            #expect(leases.allSatisfy { !$0.hostWasUp })
            #expect(Set(leases.map(\.job.id)).count == 6)
        }
    }

    /// A fleet whose new instances never answered launches again only after its backoff; one
    /// that answers lets launches go at once again.
    @Test(arguments: StoreUnderTest.all)
    func bootFailuresHoldAFleetsNextLaunchBack(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            for _ in 0..<3 { _ = try await store.enqueue(Sample.push(), delivery: nil) }
            let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.fleet(name: "fl", maxHosts: 3, maxJobs: 1)] }
            let now = Date()
            try await store.recordBootFailure(fleet: "fl", reason: "never answered", at: now)
            try await store.recordBootFailure(fleet: "fl", reason: "never answered again", at: now)
            let failures = try #require(try await store.fleetBootFailures().first)
            #expect(failures.count == 2 && failures.lastReason == "never answered again")
            #expect(abs(failures.nextLaunch.timeIntervalSince(now) - LaunchBackoff.hold(afterFailures: 2)) < 0.001)
            #expect(LaunchBackoff.hold(afterFailures: 1) == 30 && LaunchBackoff.hold(afterFailures: 2) == 60)
            #expect(try await store.leaseNext(now: now.addingTimeInterval(59), targetsFor: targets) == nil)
            #expect(try await store.leaseNext(now: now.addingTimeInterval(61), targetsFor: targets) != nil)
            try await store.recordBootSuccess(fleet: "fl")
            #expect(try await store.fleetBootFailures().isEmpty)
            #expect(try await store.leaseNext(now: now, targetsFor: targets) != nil)
        }
    }

    @Test(arguments: StoreUnderTest.all)
    func aHostBeingPutToSleepTakesNoJob(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            try await store.register(hosts: [Sample.host("box")], at: Date().addingTimeInterval(-3600))
            let claimed = try await store.idleHosts(among: ["box"], idleSince: Date(), claim: true)
            #expect(claimed.map(\.name) == ["box"])
            #expect(try await store.host(named: "box")?.state == .stopping)
            _ = try await store.enqueue(Sample.push(), delivery: nil)
            #expect(try await store.leaseNext(now: Date(), targetsFor: { _ in [.host(name: "box", maxJobs: 1)] }) == nil)
        }
    }

    // MARK: The idle claim

    @Test(arguments: StoreUnderTest.all)
    func theIdleClaimNeverTakesAHostWithAJobOrOneIdleTooShortly(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let longAgo = Date().addingTimeInterval(-7200)
            try await store.register(hosts: [Sample.host("busy"), Sample.host("idle"), Sample.host("fresh")], at: longAgo)
            try await store.markWoken("fresh", at: Date())
            _ = try await store.enqueue(Sample.push(), delivery: nil)
            _ = try await store.leaseNext(now: Date(), targetsFor: { _ in [.host(name: "busy", maxJobs: 1)] })
            let cutoff = Date().addingTimeInterval(-1800)
            // Without the claim nothing changes.
            #expect(try await store.idleHosts(among: ["busy", "idle", "fresh"], idleSince: cutoff, claim: false).map(\.name) == ["idle"])
            #expect(try await store.host(named: "idle")?.state == .ready)
            #expect(try await store.idleHosts(among: ["busy", "idle", "fresh"], idleSince: cutoff, claim: true).map(\.name) == ["idle"])
            #expect(try await store.host(named: "busy")?.state == .busy)
            #expect(try await store.host(named: "fresh")?.state == .ready)
            // A claimed host is not claimed twice.
            #expect(try await store.idleHosts(among: ["idle"], idleSince: cutoff, claim: true).isEmpty)
        }
    }

    @Test(arguments: StoreUnderTest.all)
    func aHostsIdleClockStartsWhenItsLastJobEnds(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            try await store.register(hosts: [Sample.host("box", maxJobs: 2)], at: Date().addingTimeInterval(-7200))
            let jobs = [Sample.push(), Sample.push()]
            for job in jobs { _ = try await store.enqueue(job, delivery: nil) }
            for _ in jobs { _ = try await store.leaseNext(now: Date(), targetsFor: { _ in [.host(name: "box", maxJobs: 2)] }) }
            #expect(try await store.host(named: "box")?.idleSince == nil)
            let firstEnd = Date().addingTimeInterval(-100), lastEnd = Date().addingTimeInterval(-50)
            try await store.finish(jobs[0].id, outcome: Sample.outcome(.succeeded, endingAt: firstEnd))
            #expect(try await store.host(named: "box")?.idleSince == nil)
            try await store.finish(jobs[1].id, outcome: Sample.outcome(.failed, endingAt: lastEnd))
            let host = try await store.host(named: "box")
            #expect(host?.state == .ready)
            #expect(abs((host?.idleSince ?? .distantPast).timeIntervalSince(lastEnd)) < 0.01)
            #expect(host?.lastJobID == jobs[1].id)
        }
    }

    // MARK: Ends and recovery

    @Test(arguments: StoreUnderTest.all)
    func aFinishedJobKeepsItsEnd(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let job = Sample.push()
            _ = try await store.enqueue(job, delivery: nil)
            _ = try await store.leaseNext(now: Date(), targetsFor: { _ in [.host(name: "box", maxJobs: 1)] })
            try await store.markRunning(job.id, at: Date())
            try await store.finish(job.id, outcome: Sample.outcome(.succeeded))
            try await store.finish(job.id, outcome: Sample.outcome(.error))
            #expect(try await store.job(id: job.id)?.status == .succeeded)
            #expect(try await store.events(of: job.id).map(\.status) == [.queued, .waitingForHost, .running, .succeeded])
        }
    }

    @Test(arguments: StoreUnderTest.all)
    func interruptedJobsGoBackToTheQueueUntilTheyHaveCrashedTooManyStarts(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let (running, held, queued) = (Sample.push(), Sample.push(), Sample.push(queuedAt: Date().addingTimeInterval(10)))
            for job in [running, held, queued] { _ = try await store.enqueue(job, delivery: nil) }
            let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "box", maxJobs: 2)] }
            _ = try await store.leaseNext(now: Date(), targetsFor: targets)
            _ = try await store.leaseNext(now: Date(), targetsFor: targets)
            // One of the two leased jobs ran and waits only for its results.json to be stored.
            try await store.holdResults(held.id, outcome: Sample.outcome(.succeeded), results: Data("{}".utf8), at: Date())
            var recovery = try await store.recoverInterrupted(limit: 2, at: Date())
            #expect(recovery.requeued == [running.id])
            #expect(recovery.givenUp.isEmpty)
            #expect(try await store.job(id: running.id)?.status == .queued)
            #expect(try await store.pendingResults().map(\.job.id) == [held.id])
            // Leased again and interrupted again: at the limit it is handed back, not queued.
            _ = try await store.leaseNext(now: Date(), targetsFor: targets)
            recovery = try await store.recoverInterrupted(limit: 2, at: Date())
            #expect(recovery.requeued.isEmpty)
            #expect(recovery.givenUp.map(\.id) == [running.id])
            try await store.finish(held.id, outcome: Sample.outcome(.succeeded))
            #expect(try await store.pendingResults().isEmpty)
        }
    }

    @Test(arguments: StoreUnderTest.all)
    func runningJobsKeepTheirHostAndAreTakenUpAgainFromWhereTheirStoredOutputEnds(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let (running, silent) = (Sample.push(), Sample.push())
            try await store.register(hosts: [Sample.host("box", maxJobs: 2)], at: Date())
            for job in [running, silent] { _ = try await store.enqueue(job, delivery: nil) }
            let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "box", maxJobs: 2)] }
            for _ in 0..<2 { _ = try await store.leaseNext(now: Date(), targetsFor: targets) }
            for job in [running, silent] { try await store.markRunning(job.id, at: Date()) }
            let position = OutputPosition(stdout: 12, stderr: 3, cut: false)
            try await store.appendOutput(running.id, [(stream: .stdout, text: "hello\n", at: Date())], through: position)
            #expect(try await store.outputPosition(of: running.id) == position)
            #expect(try await store.outputPosition(of: silent.id) == nil)

            var recovery = try await store.recoverInterrupted(limit: 2, at: Date())
            #expect(recovery.requeued.isEmpty && recovery.givenUp.isEmpty)
            let resumed = Dictionary(uniqueKeysWithValues: recovery.resumed.map { ($0.job.id, $0) })
            #expect(resumed[running.id]?.resuming == position)
            #expect(resumed[silent.id]?.resuming == .start)
            #expect(resumed[running.id]?.hostName == "box")
            #expect(try await store.job(id: running.id)?.status == .running)
            #expect(try await store.host(named: "box")?.activeJobs == 2)

            // A graceful stop left one running: its next start does not count towards the guard.
            try await store.leaveRunning(running.id, detail: "left running", at: Date())
            recovery = try await store.recoverInterrupted(limit: 2, at: Date())
            #expect(recovery.resumed.map(\.job.id) == [running.id])
            #expect(recovery.givenUp.map(\.id) == [silent.id])
        }
    }

    // MARK: The feed

    @Test(arguments: StoreUnderTest.all)
    func theFeedMergesStatesAndOutputInTimeAndResumesFromACursorWithoutGapsOrRepeats(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let job = try await Sample.runningPush(in: store)
            let lines = (0..<(StorePolicy.feedPageRows + 8)).map { "line \($0)\n" }
            for (i, line) in lines.enumerated() {
                try await store.appendOutput(job.id, [(stream: .stdout, text: line, at: Date().addingTimeInterval(-7 + Double(i) * 0.01))])
            }
            try await store.finish(job.id, outcome: Sample.outcome(.succeeded))
            var cursor = FeedCursor(event: 0, output: 0)
            var items: [FeedItem] = [], pages = 0
            while true {
                let feed = try await store.feed(of: job.id, after: cursor)
                pages += 1
                items += feed.items
                cursor = feed.items.last?.cursor ?? cursor
                if feed.jobEnded { break }
                #expect(feed.hasMore || !feed.items.isEmpty, "a page with nothing new and the job not ended")
                if pages > 10 { Issue.record("the feed does not end"); break }
            }
            #expect(pages >= 2, "the output came in pages")
            let output = items.compactMap { if case .output(let chunk) = $0.kind { chunk.text } else { nil } }
            #expect(output == lines)
            let states = items.compactMap { if case .state(let event) = $0.kind { event.status } else { nil } }
            #expect(states == [.queued, .waitingForHost, .running, .succeeded])
            // Time order: the end comes after every line.
            #expect(items.last.map { if case .state(let e) = $0.kind { e.status == .succeeded } else { false } } == true)
            // From the last cursor there is nothing more.
            let after = try await store.feed(of: job.id, after: cursor)
            #expect(after.items.isEmpty && after.jobEnded)
        }
    }

    /// Text a job's host had a hand in (its output, an error quoting what it said, an instance's
    /// boot failure) may hold a NUL, which SQLite's text binding ends a string at and PostgreSQL refuses: each store keeps
    /// it as U+FFFD, and the text after it.
    @Test(arguments: StoreUnderTest.all)
    func textWithNULIsKeptWholeWithTheNULAsAReplacementCharacter(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let job = try await Sample.runningPush(in: store)
            try await store.appendOutput(job.id, [(stream: .stdout, text: "a\0b\n", at: Date().addingTimeInterval(-7))])
            var outcome = Sample.outcome(.failed)
            outcome.error = "the host said: c\0d"
            try await store.holdResults(job.id, outcome: outcome, results: Data("{}".utf8))
            #expect(try await store.pendingResults().map(\.outcome.error) == ["the host said: c\u{FFFD}d"])
            try await store.finish(job.id, outcome: outcome)
            let items = try await store.feed(of: job.id, after: FeedCursor(event: 0, output: 0)).items
            let output = items.compactMap { if case .output(let chunk) = $0.kind { chunk.text } else { nil } }
            #expect(output == ["a\u{FFFD}b\n"])
            let details = items.compactMap { if case .state(let event) = $0.kind { event.detail } else { nil } }
            #expect(details.last == "exit status 1; the host said: c\u{FFFD}d", "\(details)")
            // A fleet's instance that never answered, its reason quoting what the cloud said.
            try await store.recordBootFailure(fleet: "spot", reason: "console: e\0f", at: Date())
            #expect(try await store.fleetBootFailures().map(\.lastReason) == ["console: e\u{FFFD}f"])
        }
    }

    // MARK: Retention

    @Test(arguments: StoreUnderTest.all)
    func retentionFindsOnlyJobsEndedBeforeTheCutoffAndExpiresThemOnce(_ kind: StoreUnderTest) async throws {
        try await kind.with { store in
            let now = Date()
            let (old, recent, open) = (Sample.push(), Sample.push(), Sample.push())
            for job in [old, recent, open] {
                _ = try await store.enqueue(job, delivery: nil, payload: Data("{}".utf8), bodySHA256: nil, maxQueued: .max, detail: nil)
            }
            let targets: @Sendable (String) -> [LeaseTarget] = { _ in [.host(name: "box", maxJobs: 3)] }
            for _ in 0..<3 { _ = try await store.leaseNext(now: now, targetsFor: targets) }
            try await store.finish(old.id, outcome: Sample.outcome(.succeeded, endingAt: now.addingTimeInterval(-15 * 86400)))
            try await store.finish(recent.id, outcome: Sample.outcome(.succeeded, endingAt: now.addingTimeInterval(-86400)))
            let cutoff = now.addingTimeInterval(-14 * 86400)
            #expect(try await store.jobsPastRetention(finishedBefore: cutoff, limit: 10).map(\.id) == [old.id])
            try await store.markExpired(old.id, at: now)
            #expect(try await store.jobsPastRetention(finishedBefore: cutoff, limit: 10).isEmpty)
            #expect(try await store.job(id: old.id)?.expiredAt != nil)
            #expect(try await store.payload(of: old.id) == nil)
            #expect(try await store.payload(of: recent.id) != nil)
        }
    }
}
