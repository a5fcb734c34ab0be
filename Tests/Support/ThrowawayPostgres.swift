import DeferredCore
import DeferredDemo
import Foundation

/// A real PostgreSQL server (Debian's `postgresql`) for the tests: `initdb` in a temporary
/// folder as an unprivileged user, on a free loopback port, password authentication over TCP
/// as in production. One server serves a whole test run (`shared()`); each test takes a
/// database of its own (`makeDatabase()`). A watchdog shell beside it stops it and removes
/// its folder once this test process is gone, however it went.
public final class ThrowawayPostgres: Sendable {
    public static let user = "deferred"
    public static let password = "throwaway-password"

    public let port: Int
    public let folder: String
    let binaries: String
    let watchdog: SpawnedProcess
    let owned: Bool
    /// Commits wait for the disk, as in production. The tests run without (they are of what is
    /// stored, not of a crash of the machine), and so do the benchmarks unless they say so.
    let durable: Bool

    public enum Failure: Error, CustomStringConvertible {
        case notInstalled
        case didNotStart(log: String)

        public var description: String {
            switch self {
            case .notInstalled: "PostgreSQL's server programs are not installed (no /usr/lib/postgresql/*/bin/initdb); run scripts/setup"
            case .didNotStart(let log): "the throwaway PostgreSQL did not start: \(log.suffix(2000))"
            }
        }
    }

    private static let started = SharedStart()

    /// The server of this test run, started at the first call.
    public static func shared() async throws -> ThrowawayPostgres { try await started.server() }

    /// A new empty database; its URL's password is `password`.
    public func makeDatabase() async throws -> String {
        let name = "t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        _ = try await LocalCommand.runOffPool(Self.asServerUser(binaries + "/createdb", ["-h", folder, "-p", String(port), "-U", Self.user, name]))
        return name
    }

    /// Runs `statement` in `database` with psql; its rows, unaligned, one a line.
    public func sql(_ statement: String, database: String) async throws -> String {
        try await LocalCommand.runOffPool(Self.asServerUser(binaries + "/psql", [
            "-h", folder, "-p", String(port), "-U", Self.user, "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", statement,
        ])).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `postgres://deferred@127.0.0.1:PORT/name?sslmode=disable`
    public func url(database: String) -> String { "postgres://\(Self.user)@127.0.0.1:\(port)/\(database)?sslmode=disable" }

    /// A server of one's own, for a test that stops and starts it (`stop()`, `restart()`);
    /// stopped and removed when the value goes.
    /// `durable`: with `fsync`, `synchronous_commit` and `full_page_writes` on, as a production
    /// server runs.
    public static func own(durable: Bool = false) async throws -> ThrowawayPostgres { try await start(owned: true, durable: durable) }

    static func start(owned: Bool = false, durable: Bool = false) async throws -> ThrowawayPostgres {
        guard let binaries = Self.binaries() else { throw Failure.notInstalled }
        let folder = NSTemporaryDirectory() + "deferred-pg-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(password.utf8).write(to: URL(fileURLWithPath: folder + "/password"))
        if getuid() == 0 { _ = try await LocalCommand.runOffPool(["chown", "-R", serverUser + ":", folder]) }
        _ = try await LocalCommand.runOffPool(Self.asServerUser(binaries + "/initdb", [
            "-D", folder + "/data", "-U", user, "--pwfile=" + folder + "/password", "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions",
        ]))
        // Whatever becomes of this test process, the server goes with it.
        let stop = asServerUser(binaries + "/pg_ctl", ["stop", "-m", "immediate", "-D", folder + "/data"])
            .map { "'\($0)'" }.joined(separator: " ")
        let watchdog = try SpawnedProcess(executable: "/bin/sh", arguments: [
            "-c", "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; \(stop) >/dev/null 2>&1; rm -rf '\(folder)'",
        ], stderrPath: "/dev/null")
        var lastError: any Error = Failure.didNotStart(log: "")
        for _ in 0..<5 {
            let server = ThrowawayPostgres(port: try FreePort.find(), folder: folder, binaries: binaries, watchdog: watchdog, owned: owned,
                                           durable: durable)
            do {
                try await server.restart()
                return server
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private init(port: Int, folder: String, binaries: String, watchdog: SpawnedProcess, owned: Bool, durable: Bool) {
        self.port = port
        self.folder = folder
        self.binaries = binaries
        self.watchdog = watchdog
        self.owned = owned
        self.durable = durable
    }

    /// Starts the server (again) on its port, and returns once it takes connections.
    public func restart() async throws {
        do {
            _ = try await LocalCommand.runOffPool(Self.asServerUser(binaries + "/pg_ctl", [
                "start", "-w", "-t", "60", "-D", folder + "/data", "-l", folder + "/server.log", "-o",
                "-p \(port) -k \(folder) -c listen_addresses=127.0.0.1 -c max_connections=200"
                    + (durable ? "" : " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"),
            ]))
        } catch {
            throw Failure.didNotStart(log: "\(error)\n" + ((try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? ""))
        }
    }

    /// Stops the server as an operator's restart does (fast: connections are cut, what was
    /// committed stays).
    public func stop() async throws {
        _ = try await LocalCommand.runOffPool(stopCommand)
    }

    private var stopCommand: [String] { Self.asServerUser(binaries + "/pg_ctl", ["stop", "-w", "-m", "fast", "-D", folder + "/data"]) }

    deinit {
        guard owned else { return }
        // deinit cannot wait off the pool; stopping takes a moment once.
        _ = try? LocalCommand.run(stopCommand)
        watchdog.terminate()
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Debian keeps the server's programs out of PATH, under the major version's folder.
    static func binaries() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        return versions.reversed().map { "\(root)/\($0)/bin" }.first { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") }
    }

    /// PostgreSQL refuses to run as root: as root, its programs run as `postgres` (the user
    /// Debian's package makes) or else `nobody`.
    static var serverUser: String { getpwnam("postgres") != nil ? "postgres" : "nobody" }

    static func asServerUser(_ program: String, _ arguments: [String]) -> [String] {
        guard getuid() == 0 else { return [program] + arguments }
        return ["setpriv", "--reuid=" + serverUser, "--regid=" + serverUser, "--clear-groups", "--", program] + arguments
    }

    /// Starts the shared server once, whoever asks first.
    private actor SharedStart {
        private var starting: Task<ThrowawayPostgres, any Error>?

        func server() async throws -> ThrowawayPostgres {
            if let starting { return try await starting.value }
            let task = Task { try await ThrowawayPostgres.start() }
            starting = task
            return try await task.value
        }
    }
}
