import DeferredCloud
import DeferredCore
import DeferredDemo
import Foundation
import Synchronization

/// `moto_server` (from PyPI) on a free loopback port: a real EC2, S3 and IAM API for tests.
/// It keeps state until `reset()`. Most tests want `account()` instead: an account of their own
/// on one server shared by the whole test run; a server of one's own is for what changes the
/// whole server (`checkSignaturesAfter`).
public final class ThrowawayMoto: @unchecked Sendable {
    public let port: Int
    public let logPath: String
    private let process: SpawnedProcess

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    public enum Failure: Error, CustomStringConvertible {
        case notInstalled
        case didNotStart(log: String)

        public var description: String {
            switch self {
            case .notInstalled: "moto_server is not on PATH; run scripts/setup (it installs moto[server] from PyPI)"
            case .didNotStart(let log): "moto_server did not answer: \(log.suffix(2000))"
            }
        }
    }

    /// `checkSignaturesAfter`: moto's INITIAL_NO_AUTH_ACTION_COUNT, after which it checks
    /// every request's SigV4 against the IAM users made before.
    public static func start(checkSignaturesAfter actions: Int? = nil) async throws -> ThrowawayMoto {
        guard let executable = Programs.path(of: "moto_server") else { throw Failure.notInstalled }
        await slots.acquire()
        do {
            return try await launch(executable, checkSignaturesAfter: actions)
        } catch {
            await slots.release()
            throw error
        }
    }

    /// At most this many moto_servers at once in one test run (two): each imports its world at its
    /// first requests, and a score of them doing that together starved the machine until a
    /// request timed out, was sent again, and RunInstances launched twice.
    private static let slots = Slots(2)

    /// `outlivingNoTest`: the shared server is never stopped by a test, so a watchdog shell
    /// beside it ends it once this test process is gone, however it went.
    static func launch(_ executable: String, checkSignaturesAfter actions: Int?, outlivingNoTest: Bool = false) async throws -> ThrowawayMoto {
        let log = NSTemporaryDirectory() + "deferred-moto-\(UUID().uuidString.prefix(8)).log"
        var environment = ProcessInfo.processInfo.environment
        if let actions { environment["INITIAL_NO_AUTH_ACTION_COUNT"] = String(actions) }
        for _ in 0..<5 {
            let port = try FreePort.find()
            let serve = [executable, "-H", "127.0.0.1", "-p", String(port)]
            let process = outlivingNoTest
                ? try SpawnedProcess(executable: "/bin/sh", arguments: [
                    "-c", #""$@" & moto=$!; while kill -0 \#(getpid()) 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 1; done; kill $moto"#,
                    "sh"] + serve, stderrPath: log, environment: environment)
                : try SpawnedProcess(executable: executable, arguments: Array(serve.dropFirst()), stderrPath: log, environment: environment)
            for _ in 0..<300 where process.isRunning {
                if let fd = FreePort.connectLoopback(port: port) {
                    close(fd)
                    // Whoever answered, ours is the one only if it is still running.
                    if process.isRunning { return ThrowawayMoto(port: port, logPath: log, process: process) }
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            process.terminate()
        }
        throw Failure.didNotStart(log: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    private init(port: Int, logPath: String, process: SpawnedProcess) {
        self.port = port
        self.logPath = logPath
        self.process = process
    }

    /// Forgets every instance, bucket and user.
    public func reset() async throws {
        _ = try await HTTPClient().send(HTTPClientRequest(method: "POST", url: endpoint + "/moto-api/reset"))
    }

    /// An IAM user allowed everything, and its access key: with `checkSignaturesAfter: 4`,
    /// these are the first three actions, and from then on moto checks every signature.
    public func makeUser(_ name: String = "deferred") async throws -> AWSCredentials {
        let iam = AWSQueryClient(service: "iam", version: "2010-05-08", region: "us-east-1",
                                 credentials: AWSCredentials(accessKeyID: "AKIDBOOTSTRAP", secretAccessKey: "unchecked"), endpoint: endpoint)
        _ = try await iam.call("CreateUser", [("UserName", name)])
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        _ = try await iam.call("PutUserPolicy", [("UserName", name), ("PolicyName", "all"), ("PolicyDocument", policy)])
        let key = try await iam.call("CreateAccessKey", [("UserName", name)])
        guard let id = key.value("CreateAccessKeyResult/AccessKey/AccessKeyId"),
              let secret = key.value("CreateAccessKeyResult/AccessKey/SecretAccessKey") else {
            throw Failure.didNotStart(log: "CreateAccessKey gave no key")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret)
    }

    public func stop() {
        guard stopped.withLock({ stopped in defer { stopped = true }; return !stopped }) else { return }
        process.terminate()
        try? FileManager.default.removeItem(atPath: logPath)
        Task { await Self.slots.release() }
    }

    private let stopped = Mutex(false)

    deinit { stop() }
}

/// A counting semaphore for tasks: `acquire` waits while none is free.
actor Slots {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { free = count }

    func acquire() async {
        if free > 0 { free -= 1; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}
