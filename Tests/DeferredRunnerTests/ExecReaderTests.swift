@testable import DeferredRunner
import DeferredSSH
import Foundation
import Testing

/// The server's side of a start or reattach exec: what goes to the job's output, what counts
/// towards the bytes of its files, and the collect stream.
@Suite struct ExecReaderTests {
    @Test func framesCountTheScriptsOwnStderrDoesNotAndABrokenStreamIsSaidOnce() {
        let folder = NSTemporaryDirectory() + "deferred-exec-reader-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var reader = ExecReader(artifacts: folder, limits: .init(maxBytes: 1 << 20, maxFiles: 10))
        var seen: [(String, Bool)] = []
        let output: (SSHExecEvent, Bool) -> Void = { event, counted in
            switch event {
            case .stdout(let b): seen.append(("out:" + String(decoding: b, as: UTF8.self), counted))
            case .stderr(let b): seen.append(("err:" + String(decoding: b, as: UTF8.self), counted))
            case .exit: seen.append(("exit", counted))
            }
        }
        _ = reader.take(.stderr(ArraySlice("deferred: preparing\n".utf8)), output: output)
        _ = reader.take(.stdout(ArraySlice("o 3\nhi\ne 4\nerr\n".utf8)), output: output)
        _ = reader.take(.stdout(ArraySlice("not a header\no 2\nno".utf8)), output: output)
        _ = reader.take(.stdout(ArraySlice("o 2\nno".utf8)), output: output)
        _ = reader.take(.exit(SSHExit(status: 0, signal: nil)), output: output)
        #expect(seen.map(\.0).prefix(3) == ["err:deferred: preparing\n", "out:hi\n", "err:err\n"])
        #expect(seen.map(\.1).prefix(3) == [false, true, true])
        let notices = seen.filter { $0.0.contains("broke off") }
        #expect(notices.count == 1 && notices.allSatisfy { !$0.1 }, "\(seen)")
        #expect(!seen.contains { $0.0.contains("no") && !$0.0.contains("broke off") && !$0.0.contains("not kept") })
        let verdict = reader.verdict, finished = reader.finish()
        #expect(verdict == 0)
        #expect(finished == nil)
    }

    @Test func theCollectStreamIsUnpackedAndItsVerdictKept() throws {
        let folder = NSTemporaryDirectory() + "deferred-exec-reader-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var reader = ExecReader(artifacts: folder + "/artifacts", limits: .init(maxBytes: 1 << 20, maxFiles: 10))
        let wire = Array("o 3\nok\nc 92\nrunning -\nresources 0m0.01s 0m0.00s -\n".utf8)
        let wanted = reader.take(.stdout(wire[...]), output: { _, _ in })
        #expect(wanted)
        let finished = reader.finish(), verdict = reader.verdict
        let read = try #require(finished)
        #expect(verdict == 92)
        #expect(read.phase == "running" && read.exitStatus == nil)
        #expect(FileManager.default.fileExists(atPath: folder + "/artifacts"))
    }
}
