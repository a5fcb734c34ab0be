import DeferredArtifacts
import DeferredCore
import DeferredDemo
import Foundation
import Testing

/// The artifact folder fills up while a job runs: the job is not recorded as ended without
/// its results.json. Its result URL answers 202 meanwhile (never a 500), and once space is
/// freed the housekeeping timer writes the file and ends the job.
@Suite(.serialized) struct FullDiskTests {
    @Test func aFullArtifactFolderHoldsTheEndUntilSpaceIsFreed() async throws {
        let harness = try await ServerHarness()
        let artifacts = harness.folder + "/small-disk"
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        // A real full disk: a 256 KiB tmpfs, nearly filled before the job starts.
        try await LocalCommand.runOffPool(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", artifacts])
        defer { _ = try? LocalCommand.run(["umount", "-l", artifacts]) }
        let filler = artifacts + "/filler"
        try Data(repeating: 1, count: 200 << 10).write(to: URL(fileURLWithPath: filler))
        harness.artifacts = FileArtifactStore(directory: artifacts)
        harness.sleepCheckInterval = .milliseconds(500)
        // Three tries (1 s and 2 s apart) before the end is held, not the production six (31 s).
        harness.publishAttempts = 3
        let store = harness.store

        try await harness.serve { client in
            // 100 KB of output: output.log takes what is left, and results.json finds no room.
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\nyes xxxxxxxxx | head -c 100000\n"])
            let response = try await ServerHarness.post(client, harness.pushPayload(commit: commit))
            let url = try #require(ServerHarness.json(response)["result_url"] as? String)
            let path = String(url.dropFirst("http://deferred.test".count))
            let id = try #require((ServerHarness.json(response)["id"] as? String).map(JobID.init(rawValue:)))

            // Wait until the job's end is held for want of space (after the store's own retries).
            var held = false
            for _ in 0..<900 where !held {
                held = try await !store.pendingResults().isEmpty
                if !held { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(held, "the job's end was never held")
            for _ in 0..<3 {
                let poll = try await client.execute(uri: path, method: .get)
                #expect(poll.status == .accepted, "\(poll.status): \(String(buffer: poll.body))")
                try await Task.sleep(for: .milliseconds(600))
            }
            #expect(try await store.job(id: id)?.status.isFinal == false)

            try FileManager.default.removeItem(atPath: filler)
            let results = try await ServerHarness.results(client, resultURL: url)
            #expect(results["status"] as? String == "succeeded")
            #expect((results["stdout"] as? String)?.hasPrefix("xxxx") == true)
            #expect(try await store.pendingResults().isEmpty)
            #expect(try await store.job(id: id)?.status == .succeeded)
        }
    }
}
