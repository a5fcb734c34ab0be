import DeferredCore
import DeferredStore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// A job that prints 100 MiB under a 1 MiB `max_output_bytes`: output.log, the store and the
/// event stream keep the first MiB and a marker line, results.json says `output_truncated`,
/// and reading the output (a listener, the dashboard) goes a page at a time.
@Suite struct OutputLimitTests {
    static func residentBytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    @Test func outputPastTheLimitIsCutWithAMarkerAndReadInPages() async throws {
        let harness = try await ServerHarness()
        let limit = 1 << 20
        harness.config.projects[0].maxOutputBytes = Int64(limit)
        harness.config.server.adminToken = DashboardTests.token
        let store = harness.store
        try await harness.serve { client in
            let before = Self.residentBytes()
            let results = try await harness.runPush(client, files: [
                "script/job.sh": "#!/bin/sh\nyes 'a line of the job output, again and again' | head -c 104857600\necho the-end >&2\n",
            ])
            let after = Self.residentBytes()
            #expect(results["status"] as? String == "succeeded")
            #expect(results["output_truncated"] as? Bool == true)
            #expect((results["stderr"] as? String)?.contains("the-end") == true, "the tails see everything")

            let id = try #require((results["id"] as? String).map(JobID.init(rawValue:)))
            let job = try #require(try await store.job(id: id))
            let log = try Data(contentsOf: URL(fileURLWithPath: harness.config.artifacts.directory + "/" + job.token.rawValue + "/output.log"))
            let logText = String(decoding: log, as: UTF8.self)
            #expect(log.count > limit && log.count < limit + 512, "output.log holds \(log.count) bytes")
            #expect(logText.hasSuffix("(max_output_bytes); the job runs on, and results.json keeps the last 64 KiB of each stream]\n"))

            // The feed, page by page: what was stored is output.log, no more.
            var cursor = FeedCursor(), pages = 0, stored = 0, ended = false
            while !ended {
                let feed = try await store.feed(of: id, after: cursor)
                pages += 1
                let rows = feed.items.filter { if case .output = $0.kind { true } else { false } }
                #expect(rows.count <= 32)
                for item in feed.items { if case .output(let chunk) = item.kind { stored += chunk.text.utf8.count; #expect(chunk.text.utf8.count <= 64 << 10) } }
                cursor = feed.items.last?.cursor ?? cursor
                ended = feed.jobEnded
                if !feed.hasMore, !ended { Issue.record("a page without more that does not end the job"); break }
            }
            #expect(stored == log.count)
            #expect(pages >= 1)

            // A listener from the start gets the same bytes and the end.
            let events = SSE.parse(String(buffer: try await client.execute(uri: "/r/\(job.token.rawValue)/events", method: .get).body))
            let streamed = SSE.output(of: events)
            #expect(streamed.utf8.count == log.count)
            #expect(events.last?.event == "done")

            // The dashboard shows the end of the log, not all of it.
            let page = try await client.execute(uri: "/jobs/\(id.rawValue)", method: .get, headers: DashboardTests.bearer)
            #expect(page.status == .ok)
            #expect(page.body.readableBytes < 700 << 10, "the job page is \(page.body.readableBytes) bytes")
            print("output limit: 100 MiB printed, \(log.count) bytes kept in \(pages) feed page(s); test process RSS \(before >> 20) → \(after >> 20) MiB while it ran")
        }
    }
}
