import DeferredDemo
import Foundation
import Testing

/// The built `deferred serve` runs out of file descriptors as a job ends, for longer than its
/// own tries at storing the job's files (31 s): the end is held, the server stays up, and once
/// descriptors are free again its timer writes results.json and ends the job, which ran once.
@Suite struct OutOfFilesTests {
    @Test func aJobThatEndsWithNoFreeDescriptorGetsItsResultsOnceThereAreSome() async throws {
        let harness = try await ServerHarness()
        let served = try await BuiltServer.start(harness, tables: ["[idle]", "check_interval_seconds = 1"])
        defer { served.stop() }
        let started = harness.folder + "/started", release = harness.folder + "/release", runs = harness.folder + "/runs"
        let path = try await served.postScript("""
            #!/bin/sh
            echo run >> '\(runs)'
            touch '\(started)'
            while [ ! -e '\(release)' ]; do sleep 0.1; done
            echo after the drought

            """)
        try await StalledHostTests.eventually("the job runs") { FileManager.default.fileExists(atPath: started) }

        // Every descriptor the limit allows in use, as when something leaks them: with the soft
        // limit at 3, nothing new can be opened, accepted or created (a limit at the lowest free
        // number would let the server reuse what it closes meanwhile); poll() of up to three
        // descriptors, as libssh's, still works, as it would under any real limit.
        let pid = String(served.process.pid)
        _ = try await LocalCommand.runOffPool(["prlimit", "--pid", pid, "--nofile=3:1024"])
        #expect(FileManager.default.createFile(atPath: release, contents: Data()))
        try await StalledHostTests.eventually("the job's end is held for want of descriptors", seconds: 45) {
            served.said.contains("results.json is not stored yet") || !served.process.isRunning
        }
        guard served.process.isRunning else {
            // libdispatch's thread-pool monitor (Linux) opens /proc/<tid>/stat every second while
            // work waits for a thread, and traps when it cannot: no Swift server survives that
            // for sure. What is promised then is what a kill -9 gets: the restarted server takes
            // the job up again on its host, and it ends once, with its results.json.
            print("out of files: the server was stopped by libdispatch's monitor: \(served.said.contains("Signal 4") ? "SIGILL" : "no trap in the log")")
            // The trap can come before the server's own first complaint; either says the drought hit.
            #expect(served.said.contains("Too many open files") || served.said.contains("Error 24"), "\(Self.tail(served.said))")
            let restarted = try await BuiltServer.start(harness, tables: ["[idle]", "check_interval_seconds = 1"])
            defer { restarted.stop() }
            let results = try await restarted.results(at: path)
            #expect(results["status"] as? String == "succeeded", "\(results)\n\(Self.tail(restarted.said))")
            #expect(results["stdout"] as? String == "after the drought\n", "\(results)")
            #expect(try String(contentsOfFile: runs, encoding: .utf8) == "run\n", "the job's command ran more than once")
            return
        }

        #expect(served.said.contains("Too many open files"), "\(Self.tail(served.said))")
        _ = try await LocalCommand.runOffPool(["prlimit", "--pid", pid, "--nofile=1024:1024"])
        let results = try await served.results(at: path)
        #expect(results["status"] as? String == "succeeded", "\(results)\n\(Self.tail(served.said))")
        #expect(results["stdout"] as? String == "after the drought\n", "\(results)")
        #expect(try String(contentsOfFile: runs, encoding: .utf8) == "run\n", "the job's command ran more than once")
        #expect(served.process.isRunning, "\(Self.tail(served.said))")
    }

    /// The log's last lines, without housekeeping's note of each pass it could not make.
    static func tail(_ log: String) -> String {
        log.split(separator: "\n").filter { !$0.contains("cannot expire") }.suffix(30).joined(separator: "\n")
    }
}
