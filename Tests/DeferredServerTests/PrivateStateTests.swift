import DeferredCore
import Foundation
import Testing

/// Result tokens, payloads, scripts and artifacts are the server user's alone: the store,
/// its folders and every file of a job are made 0700/0600, even under a umask of 0.
@Suite struct PrivateStateTests {
    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o777 : nil
    }

    @Test func theStoreAndAJobsFilesAreOnlyTheServersUsers() async throws {
        let previous = umask(0)
        defer { umask(previous) }
        let harness = try await ServerHarness()
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: [
                "script/job.sh": "#!/bin/sh\nmkdir -p \"$DEFERRED_ARTIFACTS/deep\"\necho report > \"$DEFERRED_ARTIFACTS/deep/report.txt\"\necho done\n",
            ])
            #expect(results["status"] as? String == "succeeded")
            let token = try #require((results["output_log"] as? String)?.split(separator: "/").dropLast().last.map(String.init))
            let job = harness.config.artifacts.directory + "/" + token
            for folder in [harness.config.artifacts.directory, job, job + "/artifacts", job + "/artifacts/deep"] {
                #expect(Self.mode(folder) == 0o700, "\(folder): \(String(Self.mode(folder) ?? 0, radix: 8))")
            }
            for file in [job + "/results.json", job + "/output.log", job + "/artifacts/deep/report.txt"] {
                #expect(Self.mode(file) == 0o600, "\(file): \(String(Self.mode(file) ?? 0, radix: 8))")
            }
            let state = harness.config.store.sqlitePath!
            for file in [state, state + "-wal", state + "-shm"] where FileManager.default.fileExists(atPath: file) {
                #expect(Self.mode(file) == 0o600, "\(file): \(String(Self.mode(file) ?? 0, radix: 8))")
            }
            #expect(Self.mode(state) != nil)
        }
    }
}
