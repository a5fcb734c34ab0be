import DeferredCore
import Foundation
import Testing

/// Children started by posix_spawn: what they inherit, their pipes, and signals sent while
/// another thread waits for them.
@Suite struct SpawnedProcessTests {
    /// With hundreds of descriptors open here (a server's connections), the child gets its
    /// three standard streams and nothing else of ours. (Foundation's `Process.run()`, which
    /// this replaced, crashed now and then with a thousand or more open: its scan of
    /// /proc/self/fd read past glibc's buffer. That depends on where the buffer lies, so no
    /// test can make it happen at will; CI's run at 7f8299f did.) Not thousands here: the
    /// other tests in this process need their descriptors too.
    @Test func aChildGetsOnlyItsThreeStreamsWhateverThisProcessHoldsOpen() throws {
        let held = (0..<300).map { _ in open("/dev/null", O_RDONLY) }
        defer { held.forEach { close($0) } }
        #expect(held.allSatisfy { $0 >= 0 })
        let child = try SpawnedProcess(executable: "/bin/ls", arguments: ["/proc/self/fd"], standardOutput: .pipe)
        let listed = String(decoding: try #require(child.output).readDataToEndOfFile(), as: UTF8.self)
        #expect(child.waitForExit() == 0)
        // ls's own descriptor for the folder it reads is the fourth.
        let names = listed.split(separator: "\n")
        #expect(names == ["0", "1", "2", "3"], "the child had \(names.count) descriptors")
    }

    @Test func bothPipesCarryWhatTheChildPrintsAndItsStatusIsKept() throws {
        let child = try SpawnedProcess(executable: "/bin/sh", arguments: ["-c", "read line; echo \"out $line\"; echo err >&2; exit 3"],
                                       standardInput: .pipe, standardOutput: .pipe, standardError: .pipe)
        try #require(child.input).write(contentsOf: Data("hello\n".utf8))
        try child.input?.close()
        #expect(String(decoding: try #require(child.output).readDataToEndOfFile(), as: UTF8.self) == "out hello\n")
        #expect(String(decoding: try #require(child.errors).readDataToEndOfFile(), as: UTF8.self) == "err\n")
        #expect(child.waitForExit() == 3)
        #expect(child.waitForExit() == 3)
        #expect(!child.isRunning)
    }

    /// Both pipes are read at once (a child that fills one while the other is read would never
    /// end), and of each only the last bytes are kept.
    @Test func bothOutputsAreReadAtOnceAndTheirLastBytesKept() throws {
        let child = try SpawnedProcess(executable: "/bin/sh", arguments: ["-c", "seq 1 50000 >&2; seq 1 60000"],
                                       standardOutput: .pipe, standardError: .pipe)
        let (output, errors) = child.readOutputs(keepingLast: 12, grace: .seconds(60))
        #expect(String(decoding: output, as: UTF8.self) == "59999\n60000\n")
        #expect(String(decoding: errors, as: UTF8.self) == "49999\n50000\n")
        #expect(child.waitForExit() == 0)
    }

    /// The provider command's time limit: one thread waits for the child while another asks
    /// whether it runs and stops it. Neither blocks the other, and a signal after the end
    /// reaches no one.
    @Test func aChildIsStoppedWhileAnotherThreadWaitsForIt() async throws {
        let child = try SpawnedProcess(executable: "/bin/sleep", arguments: ["30"])
        async let status = OffPool.run { child.waitForExit() }
        try await Task.sleep(for: .milliseconds(200))
        let asked = ContinuousClock.now
        #expect(child.isRunning)
        child.signal(SIGTERM)
        #expect(await status == 128 + SIGTERM)
        #expect(ContinuousClock.now - asked < .seconds(20), "isRunning or signal waited for the child's end")
        #expect(!child.isRunning)
        child.signal(SIGKILL)
        #expect(child.waitForExit() == 128 + SIGTERM)
    }

    @Test func aProgramThatCannotStartIsAnError() {
        #expect(throws: POSIXError.self) { try SpawnedProcess(executable: "/nonexistent/program", arguments: []) }
        #expect(throws: POSIXError.self) { try SpawnedProcess(executable: "/etc/hostname", arguments: []) }
    }
}
