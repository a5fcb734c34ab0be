import DeferredDemo
import Foundation
import Testing

/// The dashboard in headless Chromium (`scripts/web/dashboard_tour.py`), against a live
/// deferred on loopback running a push on the test's sshd: the login form turns the browser
/// away without the token and lets it in with it, the job's page shows each line while the
/// job runs, then its results. Screenshots of every step stay in
/// `.build/screenshots/dashboard/` for a person to look at.
@Suite struct DashboardBrowserTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardizedFileURL.path

    @Test func signingInAndWatchingARunningJobsLiveLog() async throws {
        let harness = try await ServerHarness()
        harness.config.server.adminToken = DashboardTests.token
        let first = harness.folder + "/release-1", second = harness.folder + "/release-2"
        // The job waits for the browser: each line is printed only after the page showed the one before.
        let commit = try await harness.repo.commit(["script/job.sh": """
            #!/bin/sh
            echo "compiling part one"
            while [ ! -e '\(first)' ]; do sleep 0.1; done
            echo "part two done" >&2
            while [ ! -e '\(second)' ]; do sleep 0.1; done
            echo '{"pages": 3}' > "$DEFERRED_ARTIFACTS/result.json"
            echo report > "$DEFERRED_ARTIFACTS/report.txt"
            echo "all done"

            """])
        let shots = Self.packageRoot + "/.build/screenshots/dashboard"
        try? FileManager.default.removeItem(atPath: shots)
        let payload = harness.pushPayload(commit: commit)
        let (id, output) = try await harness.serve { client in
            let port = try #require(client.port)
            let accepted = try await ServerHarness.post(client, payload)
            let id = try #require(ServerHarness.json(accepted)["id"] as? String)
            let output = try await LocalCommand.runOffPool([
                "python3", BrowserClientTests.webFolder + "/dashboard_tour.py", "http://127.0.0.1:\(port)", DashboardTests.token, id, shots,
                "--live", "compiling part one=\(first)", "--live", "part two done=\(second)",
            ])
            // Whatever the browser saw, the job is let go.
            for release in [first, second] { #expect(FileManager.default.createFile(atPath: release, contents: Data())) }
            return (id, output)
        }
        let report = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)")
        #expect(report["failure"] == nil, "\(report["failure"] ?? "") \(report["failure_page"] ?? "")")

        // Without a session: the login form, nothing of the job.
        #expect(report["refused_to"] as? String == "/login?next=/jobs/\(id)")
        #expect((report["refused_shows"] as? String)?.contains("compiling") == false)
        #expect(report["wrong_token"] as? String == "That is not the admin token.")
        #expect(report["signed_in_at"] as? String == "/jobs/\(id)")

        // While it ran, each line arrived in the same document: the live log, not a reload.
        let live = report["live"] as? [[String: Any]] ?? []
        #expect(live.count == 2, "\(report)")
        for step in live {
            #expect(step["same_document"] as? Bool == true, "\(step)")
            #expect(step["status"] as? String == "running", "\(step)")
            #expect((step["log"] as? String)?.contains(step["line"] as? String ?? "?") == true, "\(step)")
        }
        #expect((live.last?["log"] as? String)?.contains("compiling part one\npart two done\n") == true, "\(live)")
        #expect((live.last?["states"] as? String)?.contains("running") == true)

        // At the end the page reloaded itself with the results.
        let ended = report["ended"] as? [String: Any] ?? [:]
        #expect(ended["status"] as? String == "succeeded", "\(ended)")
        #expect(ended["reloaded"] as? Bool == true)
        #expect((ended["log"] as? String)?.hasSuffix("all done\n") == true, "\(ended)")
        #expect((ended["results"] as? String)?.contains(#""pages" : 3"#) == true, "\(ended)")
        #expect(ended["artifacts"] as? [String] == ["report.txt", "result.json"], "\(ended)")
        #expect((ended["payload"] as? String)?.contains(commit) == true)

        let overview = report["overview"] as? [String: String] ?? [:]
        #expect(overview["hosts"]?.contains("loopback") == true, "\(overview)")
        #expect(overview["projects"]?.contains("octo-org/sample") == true)
        #expect(overview["jobs"]?.contains(id) == true)
        #expect((report["project"] as? String)?.contains(id) == true, "\(report["project"] ?? "no project page")")
        #expect((report["after_sign_out"] as? String)?.hasPrefix("/login") == true)
        // No script error, no refused script or style (the page's security policy) on the way.
        #expect((report["problems"] as? [Any])?.isEmpty == true, "\(report["problems"] ?? "")")

        let screenshots = report["screenshots"] as? [String] ?? []
        #expect(screenshots.count == 7, "\(screenshots)")
        for path in screenshots {
            let png = FileManager.default.contents(atPath: path) ?? Data()
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 5_000, "\(path)")
        }
        print("dashboard screenshots: \(shots)")
    }
}
