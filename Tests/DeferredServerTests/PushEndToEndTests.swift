import DeferredCore
import DeferredDemo
import DeferredStore
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Testing

/// Signed pushes over loopback HTTP, run on a real sshd, polled to their results.json.
@Suite struct PushEndToEndTests {
    @Test func aSignedPushRunsItsExactCommitAndIsPolledToResults() async throws {
        let harness = try await ServerHarness()
        let store = harness.store
        try await harness.serve { client in
            let commit = try await harness.repo.commit([
                "script/job.sh": "#!/bin/sh\necho \"built $DEFERRED_COMMIT\"\ngit rev-parse HEAD\necho oops >&2\nprintf '{\"ok\": true}' > \"$DEFERRED_ARTIFACTS/result.json\"\n",
            ])
            // A later commit on the same branch must not be what runs.
            try await harness.repo.commit(["later.txt": "later"])
            let payload = harness.pushPayload(commit: commit)
            let delivery = UUID().uuidString
            let first = try await ServerHarness.post(client, payload, delivery: delivery)
            #expect(first.status == .accepted)
            let answer = ServerHarness.json(first)
            let url = try #require(answer["result_url"] as? String)
            #expect(url.hasPrefix("http://deferred.test/r/"))

            // The same delivery again: the same job, nothing run twice.
            let again = try await ServerHarness.post(client, payload, delivery: delivery)
            #expect(again.status == .accepted)
            #expect(ServerHarness.json(again)["id"] as? String == answer["id"] as? String)

            let results = try await ServerHarness.results(client, resultURL: url)
            #expect(results["status"] as? String == "succeeded")
            #expect(results["exit_status"] as? Int == 0)
            #expect(results["stdout"] as? String == "built \(commit)\n\(commit)\n")
            #expect(results["stderr"] as? String == "oops\n")
            #expect((results["result"] as? [String: Any])?["ok"] as? Bool == true)
            let trigger = try #require(results["trigger"] as? [String: Any])
            #expect(trigger["commit"] as? String == commit)
            #expect(trigger["delivery"] as? String == delivery)
            #expect(try await store.jobCount() == 1)

            // Once a job ends its host's idle clock starts, not before.
            let job = try #require(try await store.jobs().first)
            let host = try #require(try await store.hosts().first)
            #expect(host.activeJobs == 0)
            #expect(host.state == .ready)
            #expect(try #require(host.idleSince) >= (try #require(job.finishedAt)).addingTimeInterval(-0.001))
            let events = try await store.events(of: job.id)
            #expect(events.map(\.status) == [.queued, .waitingForHost, .running, .succeeded],
                    "\(events.map { "\($0.status.rawValue): \($0.detail ?? "")" })")
        }
    }

    /// CPU time as the host's shell counts it; peak memory where the job's cgroup v2 scope
    /// accounts memory (this host's unified hierarchy may have no memory controller: then the
    /// value is null with the reason).
    @Test func resultsSayWhatTheCommandUsed() async throws {
        let harness = try await ServerHarness()
        let controllers = awkCgroup2Controllers()
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: [
                "script/job.sh": "#!/bin/sh\ni=0\nwhile [ $i -lt 300000 ]; do i=$((i+1)); done\necho counted $i\n",
            ])
            #expect(results["stdout"] as? String == "counted 300000\n")
            let resources = try #require(results["resources"] as? [String: Any], "\(results)")
            let user = try #require(resources["cpu_user_seconds"] as? Double)
            let system = try #require(resources["cpu_system_seconds"] as? Double)
            print("resources: user \(user) s, system \(system) s, memory peak \(resources["memory_peak_bytes"] ?? "-")")
            #expect(user + system > 0.01, "\(resources)")
            if controllers.contains("memory") {
                #expect((resources["memory_peak_bytes"] as? Int ?? 0) > 0, "\(resources)")
            } else {
                #expect(resources["memory_peak_bytes"] is NSNull)
                #expect(((resources["unavailable"] as? [String: Any])?["memory_peak_bytes"] as? String)?.contains("memory.peak") == true)
            }
        }
    }

    /// The controllers of this machine's cgroup v2 hierarchy, where jobs get their scopes.
    private func awkCgroup2Controllers() -> [String] {
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        guard let mount = mounts.split(separator: "\n").map({ $0.split(separator: " ") }).first(where: { $0.count > 2 && $0[2] == "cgroup2" })?[1],
              let here = ((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "").split(separator: "\n")
                .first(where: { $0.hasPrefix("0::") })?.dropFirst(3) else { return [] }
        let path = "\(mount)\(here == "/" ? "" : String(here))/cgroup.controllers"
        return ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
    }

    @Test func aFailingCommandEndsFailedWithItsExitStatus() async throws {
        let harness = try await ServerHarness()
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho partial\nexit 3\n"])
            #expect(results["status"] as? String == "failed")
            #expect(results["exit_status"] as? Int == 3)
            #expect(results["stdout"] as? String == "partial\n")
            #expect(results["result"] is NSNull)
        }
    }

    @Test func withoutACommandTheCommitsDeferredServerFileRuns() async throws {
        let harness = try await ServerHarness(command: nil)
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: [".deferred_server": "echo from-dotfile; exit 0\n"])
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "from-dotfile\n")
            // A commit whose file is empty ends in error, saying why.
            let missing = try await harness.runPush(client, files: [".deferred_server": ""])
            #expect(missing["status"] as? String == "error")
            #expect((missing["error"] as? String)?.contains(".deferred_server") == true)
        }
    }

    @Test func aCommandPastItsTimeoutIsKilledWithItsWholeProcessGroup() async throws {
        let marker = "313.\(Int.random(in: 100_000...999_999))"
        // The timeout counts the checkout too: 30 s leaves room for it while the whole suite starts at once.
        let harness = try await ServerHarness(timeoutMinutes: 0.5)
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: [
                "script/job.sh": "#!/bin/sh\necho started\nsleep \(marker) &\nsleep \(marker)\n",
            ])
            #expect(results["status"] as? String == "timed_out")
            #expect(results["stdout"] as? String == "started\n")
            #expect((results["error"] as? String)?.contains("timeout") == true)
        }
        // Nothing the job started is left on the host (the host is this machine).
        let left = try? LocalCommand.run(["pgrep", "-f", "sleep \(marker)"])
        #expect(left == nil, "processes left behind: \(left ?? "")")
    }

    @Test func aRefFullOfShellMetacharactersRunsNothingItSpells() async throws {
        let pwned = NSTemporaryDirectory() + "deferred-pwned-\(UUID().uuidString.prefix(8))"
        let branch = "$(touch${IFS}\(pwned))`touch${IFS}\(pwned)-2`;touch${IFS}\(pwned)-3|x&y'q\"z"
        let ref = "refs/heads/" + branch
        #expect(GitRefName.isValid(ref))
        let harness = try await ServerHarness(branches: ["**"])
        try await harness.serve { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\nprintf '%s' \"$DEFERRED_REF\"\n"])
            try await harness.repo.git(["branch", branch, commit])
            let response = try await ServerHarness.post(client, harness.pushPayload(commit: commit, ref: ref))
            #expect(response.status == .accepted)
            let url = try #require(ServerHarness.json(response)["result_url"] as? String)
            let results = try await ServerHarness.results(client, resultURL: url)
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == ref)
        }
        for suffix in ["", "-2", "-3"] {
            #expect(!FileManager.default.fileExists(atPath: pwned + suffix), "the ref ran a command: \(pwned + suffix) exists")
        }
    }

    @Test func aFormEncodedDeliveryIsAcceptedLikeJSON() async throws {
        let harness = try await ServerHarness()
        try await harness.serve { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho form\n"])
            let json = String(decoding: harness.pushPayload(commit: commit), as: UTF8.self)
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            let body = Data(("payload=" + json.addingPercentEncoding(withAllowedCharacters: allowed)!).utf8)
            let response = try await ServerHarness.post(client, body, contentType: "application/x-www-form-urlencoded")
            #expect(response.status == .accepted)
            let url = try #require(ServerHarness.json(response)["result_url"] as? String)
            let results = try await ServerHarness.results(client, resultURL: url)
            #expect(results["stdout"] as? String == "form\n")
        }
    }

    @Test func aHostWithAnotherKeyEndsTheJobInErrorSayingSo() async throws {
        let other = NSTemporaryDirectory() + "deferred-other-\(UUID().uuidString.prefix(8))"
        let key = try await LocalKey.makeEd25519(at: other)
        defer { try? FileManager.default.removeItem(atPath: other); try? FileManager.default.removeItem(atPath: other + ".pub") }
        // known_hosts that names another key for the host's address and port.
        let knownHosts = other + ".known_hosts"
        let harness = try await ServerHarness(knownHosts: knownHosts)
        try "[127.0.0.1]:\(harness.sshd.port) \(key)\n".write(toFile: knownHosts, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: knownHosts) }
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho should-not-run\n"])
            #expect(results["status"] as? String == "error")
            #expect((results["error"] as? String)?.contains("does not match") == true)
            #expect(results["stdout"] as? String == "")
        }
    }

    @Test func aJobLeftRunningByAStoppedServerRunsAgainAtStart() async throws {
        let harness = try await ServerHarness()
        let job = try await harness.storePush(["script/job.sh": "#!/bin/sh\necho recovered\n"], delivery: "d-restart")
        // The server "crashed" while the job held its host.
        let lease = try #require(try await harness.store.leaseNext { _ in [.host(name: "loopback", maxJobs: 1)] })
        try await harness.store.markRunning(lease.job.id)
        try await harness.serve { client in
            let results = try await ServerHarness.results(client, resultURL: "http://deferred.test/r/\(job.token.rawValue)/results.json")
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "recovered\n")
        }
    }
}
