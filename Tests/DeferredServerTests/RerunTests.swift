import DeferredCore
import DeferredStore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// `POST /jobs/{id}/rerun` with the admin token: a new job with the ended job's trigger,
/// linked to it both ways; every other request is refused and changes nothing.
@Suite struct RerunTests {
    static func rerun(_ client: any TestClientProtocol, _ id: String, headers: HTTPFields = DashboardTests.bearer) async throws -> TestResponse {
        try await client.execute(uri: "/jobs/\(id)/rerun", method: .post, headers: headers)
    }

    @Test func aPushAndAScriptRunAgainAsNewJobsLinkedToTheFirst() async throws {
        let harness = try await ServerHarness()
        harness.config.server.adminToken = DashboardTests.token
        let runs = harness.folder + "/runs"
        let key = try await harness.addSigner("rerun", principal: "ci@example.com")
        let script = "#!/bin/sh\necho script >> '\(runs)'\necho from the script\n"
        let signature = try await harness.sign(script, key: key)
        let store = harness.store
        try await harness.serve { client in
            let push = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho push >> '\(runs)'\necho from the push\n"])
            let posted = ServerHarness.json(try await ServerHarness.postScript(client, ["script": script, "signature": signature]))
            let scripted = try await ServerHarness.results(client, resultURL: try #require(posted["result_url"] as? String))
            #expect(scripted["status"] as? String == "succeeded")

            for first in [push, scripted] {
                let id = try #require(first["id"] as? String)
                let answer = try await Self.rerun(client, id)
                #expect(answer.status == .accepted, "\(DashboardTests.text(answer))")
                let body = ServerHarness.json(answer)
                #expect(body["rerun_of"] as? String == id)
                let again = try await ServerHarness.results(client, resultURL: try #require(body["result_url"] as? String))
                #expect(again["status"] as? String == "succeeded", "\(again)")
                #expect(again["stdout"] as? String == first["stdout"] as? String)
                #expect(again["rerun_of"] as? String == id)
                #expect(again["id"] as? String != id)
                // Same trigger: the same commit, or the same signed script.
                let (before, after) = (try #require(first["trigger"] as? [String: Any]), try #require(again["trigger"] as? [String: Any]))
                #expect(before["commit"] as? String == after["commit"] as? String && before["sha256"] as? String == after["sha256"] as? String)
                // Linked both ways: the new job names the first, the first knows its rerun.
                #expect(try await store.reruns(of: JobID(rawValue: id)) == [JobID(rawValue: try #require(again["id"] as? String))])
                let page = DashboardTests.text(try await client.execute(uri: "/jobs/\(try #require(again["id"] as? String))", method: .get,
                                                                        headers: DashboardTests.bearer))
                #expect(page.contains("rerun of") && page.contains(id))
                #expect(page.contains(#"action="/jobs/\#(try #require(again["id"] as? String))/rerun""#), "an ended job's page has a Rerun button")
            }
        }
        let counted = try String(contentsOfFile: runs, encoding: .utf8).split(separator: "\n").sorted()
        #expect(counted == ["push", "push", "script", "script"], "\(counted)")
    }

    @Test func badRerunRequestsAreRefusedAndChangeNothing() async throws {
        let harness = try await ServerHarness()
        harness.config.server.adminToken = DashboardTests.token
        let store = harness.store
        try await harness.serve(dispatching: false) { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho never\n"])
            let queued = ServerHarness.json(try await ServerHarness.post(client, harness.pushPayload(commit: commit)))
            let id = try #require(queued["id"] as? String)
            let before = try await store.jobCount()

            let anonymous = try await Self.rerun(client, id, headers: [:])
            #expect(anonymous.status == .unauthorized)
            let wrong = try await Self.rerun(client, id, headers: [.authorization: "Bearer not-the-token"])
            #expect(wrong.status == .unauthorized)
            let unknown = try await Self.rerun(client, "j-00000000000000000000")
            #expect(unknown.status == .notFound)
            #expect(DashboardTests.text(unknown).contains("no job has the id"))
            let running = try await Self.rerun(client, id)
            #expect(running.status == .conflict)
            #expect(DashboardTests.text(running).contains("a job runs again once it has ended"), "\(DashboardTests.text(running))")
            for answer in [anonymous, wrong, unknown, running] {
                #expect(answer.headers[.contentType]?.hasPrefix("application/json") == true)
            }
            #expect(try await store.jobCount() == before)
            #expect(try await store.reruns(of: JobID(rawValue: id)).isEmpty)
        }
    }
}
