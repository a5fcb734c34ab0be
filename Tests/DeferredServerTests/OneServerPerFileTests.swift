import DeferredCloud
import DeferredDemo
@testable import DeferredStore
import Foundation
import Testing

/// A SQLite store serves one server: a second `deferred serve` on the same file took the
/// first one's running jobs for crashed and ran them again. It is refused at its start now.
@Suite struct OneServerPerFileTests {
    @Test func aSecondServingOpenIsRefusedUntilTheFirstLetsGo() throws {
        let folder = NSTemporaryDirectory() + "deferred-one-server-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        var first: SQLiteJobStore? = try SQLiteJobStore(path: path, serving: true)
        #expect(first != nil)
        #expect {
            _ = try SQLiteJobStore(path: path, serving: true)
        } throws: { error in
            guard case StoreError.anotherServer(let refused, let pid)? = error as? StoreError else { return false }
            return refused == path && pid == Int(getpid())
        }
        // What cron and the host commands open beside the server takes no such lock.
        _ = try SQLiteJobStore(path: path)
        first = nil
        _ = try SQLiteJobStore(path: path, serving: true)
    }

    /// The built executable, as an operator would start a second server by mistake.
    @Test func aSecondServeOnTheSameFileExitsWithAMessageAndTheFirstServesOn() async throws {
        let harness = try await ServerHarness()
        let store = try await ServedStore.sqlite.make(for: harness)
        let first = try await BuiltServer.start(harness, store: store.lines)
        defer { first.process.terminate() }
        let config = try harness.writeConfig(
            server: [#"listen = "127.0.0.1:\#(try FreePort.find())""#], store: store.lines,
            artifacts: [#"store = "file:\#(harness.folder)/serve-artifacts""#])
        let refusal = await #expect(throws: LocalCommand.Failure.self) {
            _ = try await LocalCommand.runOffPool([try BuiltServer.executable(), "serve", "--config", config],
                                                  environment: BuiltServer.environment())
        }
        let said = refusal?.stderr ?? ""
        #expect(refusal?.status == 1, "\(said)")
        #expect(said.contains("already uses the state database") && said.contains("pid \(first.process.pid)") && said.contains("PostgreSQL"),
                "\(said)")
        // The first server is untouched, and the host list reads the same file beside it.
        let health = try await HTTPClient().send(HTTPClientRequest(url: first.base + "/healthz", timeout: .seconds(5)))
        #expect(health.status == 200)
        let hosts = try await LocalCommand.runOffPool([try BuiltServer.executable(), "hosts", "--config", config],
                                                      environment: BuiltServer.environment())
        #expect(hosts.contains("loopback"), "\(hosts)")
    }
}
