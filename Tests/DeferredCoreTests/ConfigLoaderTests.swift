@testable import DeferredCore
import Foundation
import Testing

struct ConfigLoaderTests {
    let dir: String = {
        let d = NSTemporaryDirectory() + "deferred-config-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: d + "/key", contents: Data("k".utf8))
        FileManager.default.createFile(atPath: d + "/known_hosts", contents: Data())
        return d
    }()

    let valid = """
    [server]
    listen = "127.0.0.1:9090"
    state = "sqlite:state/db.sqlite"

    [github]
    secret_env = "HOOK_SECRET"

    [[hosts]]
    name = "builder-1"
    address = "127.0.0.1"
    port = 2222
    user = "deferred"
    identity = "key"
    known_hosts = "known_hosts"
    max_jobs = 2

    [[projects]]
    name = "resume"
    repository = "octo-org/resume"
    branches = ["main", "release/*"]
    command = "./script/deferred"
    hosts = ["builder-1"]
    timeout_minutes = 0.5
    """

    @Test func loadsAValidFileWithSecretsFromTheEnvironment() throws {
        let config = try ConfigLoader(environment: ["HOOK_SECRET": "s3cret"], homeDirectory: "/home/x")
            .load(text: valid, baseDirectory: dir)
        #expect(config.server.listenPort == 9090)
        #expect(config.server.publicURL == "http://127.0.0.1:9090")
        #expect(config.server.statePath == dir + "/state/db.sqlite")
        #expect(config.github.secret == "s3cret")
        #expect(config.hosts.first?.maxJobs == 2)
        #expect(config.hosts.first?.identity == dir + "/key")
        #expect(config.projects.first?.timeout == .seconds(30))
        #expect(config.project(forRepository: "Octo-Org/Resume")?.name == "resume")
    }

    @Test func reportsEveryProblemAtOnceWithItsKey() {
        let broken = """
        [server]
        listen = "nowhere"
        [[hosts]]
        name = "builder-1"
        user = "deferred"
        port = 70000
        identity = "missing-key"
        known_hosts = "known_hosts"
        [[projects]]
        name = "bad name!"
        repository = "no-slash"
        hosts = ["builder-9"]
        comand = "typo"
        """
        do {
            _ = try ConfigLoader(environment: [:]).load(text: broken, baseDirectory: dir)
            Issue.record("a broken config loaded")
        } catch {
            let keys = Set(error.problems.map(\.key))
            for key in ["server.listen", "hosts[0].address", "hosts[0].port", "hosts[0].identity",
                        "projects[0].name", "projects[0].repository", "projects[0].hosts[0]",
                        "projects[0].comand", "github.secret_env"] {
                #expect(keys.contains(key), "no problem reported for \(key); got \(keys.sorted())")
            }
            #expect(error.problems.allSatisfy { !$0.fix.isEmpty })
        }
    }
}
