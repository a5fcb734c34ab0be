import DeferredCore
import DeferredDispatcher
import DeferredProviders
import DeferredStore
import Foundation
import Synchronization
import Testing

/// Hosts of `provider = "command"`: real scripts play the machine's CLI (its state in a file,
/// each call written to a log), and the test's sshd is the machine's SSH.
@Suite struct CommandHostTests {
    /// The machine's scripts in `folder`; it starts `state`. `no-power` makes the wake fail.
    struct Machine {
        let folder: String
        var state: String { (try? String(contentsOfFile: folder + "/state", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "" }
        var calls: [String] { ((try? String(contentsOfFile: folder + "/calls", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        var commands: HostCommandLines { HostCommandLines(wake: [folder + "/wake", "--now"], sleep: [folder + "/sleep"], status: [folder + "/status"]) }

        init(in harness: ServerHarness, state: String) throws {
            folder = harness.folder + "/machine"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try state.write(toFile: folder + "/state", atomically: true, encoding: .utf8)
            let scripts = [
                "wake": #"""
                    #!/bin/sh
                    here=$(dirname "$0")
                    echo "wake $1 $DEFERRED_HOST" >> "$here/calls"
                    if [ -e "$here/no-power" ]; then echo "no power at the socket" >&2; exit 3; fi
                    echo running > "$here/state"
                    echo "powered on"
                    """#,
                "sleep": #"""
                    #!/bin/sh
                    here=$(dirname "$0")
                    echo "sleep $DEFERRED_HOST" >> "$here/calls"
                    echo stopped > "$here/state"
                    """#,
                "status": #"""
                    #!/bin/sh
                    cat "$(dirname "$0")/state"
                    """#,
            ]
            for (name, text) in scripts {
                FileManager.default.createFile(atPath: folder + "/" + name, contents: Data((text + "\n").utf8), attributes: [.posixPermissions: 0o755])
            }
        }

        func setPower(_ on: Bool) {
            if on { try? FileManager.default.removeItem(atPath: folder + "/no-power") }
            else { FileManager.default.createFile(atPath: folder + "/no-power", contents: Data()) }
        }
    }

    private func commandHost(_ harness: ServerHarness, state: String) throws -> Machine {
        let machine = try Machine(in: harness, state: state)
        harness.config.hosts[0].provider = .command
        harness.config.hosts[0].commands = machine.commands
        harness.providers = HostProviders(ec2: nil, command: CommandHostProvider(pollInterval: .milliseconds(100)))
        return machine
    }

    @Test func aPushWakesAStoppedMachineByItsCommandsAndIdleSleepStopsIt() async throws {
        let harness = try await ServerHarness()
        let machine = try commandHost(harness, state: "stopped")
        let store = harness.store
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho on the woken machine\n"])
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "on the woken machine\n")
            #expect((results["host"] as? [String: Any])?["woke"] as? Bool == true)
            #expect(machine.state == "running")
            #expect(machine.calls == ["wake --now loopback"])
            let job = try #require(try await store.jobs().first)
            let waits = try await store.events(of: job.id).filter { $0.status == .waitingForHost }.compactMap(\.detail)
            #expect(waits.contains { $0.contains("status: the machine is stopped") }, "\(waits)")
            #expect(waits.contains { $0.contains("wake command exited 0: powered on") }, "\(waits)")
            #expect(waits.contains { $0.contains("status: the machine is running") }, "\(waits)")
        }
        harness.config.idle.timeoutMinutes = 0
        let sleeper = IdleSleeper(config: harness.config, store: store, providers: harness.providers)
        #expect(await sleeper.pass(dryRun: true).map(\.slept) == [false])
        #expect(machine.state == "running")
        let reports = await sleeper.pass()
        #expect(reports.map(\.host) == ["loopback"] && reports.allSatisfy(\.slept), "\(reports)")
        #expect(machine.state == "stopped")
        #expect(machine.calls == ["wake --now loopback", "sleep loopback"])
        #expect(try await store.hosts().first?.state == .stopped)
        #expect(await sleeper.pass().isEmpty)

        // Running already (started by hand): the next job uses it without a wake.
        try "running".write(toFile: machine.folder + "/state", atomically: true, encoding: .utf8)
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho again\n"])
            #expect(results["stdout"] as? String == "again\n")
            #expect((results["host"] as? [String: Any])?["woke"] as? Bool == false)
        }
        #expect(machine.calls == ["wake --now loopback", "sleep loopback"])
    }

    @Test func aMachineRunningAJobIsNotPutToSleepBesideIt() async throws {
        let harness = try await ServerHarness()
        let machine = try commandHost(harness, state: "stopped")
        try await harness.expectIdleSleepSparesABusyHost(machine: { machine.state }, up: "running", down: "stopped")
        // Woken once, put to sleep once: after its job.
        #expect(machine.calls == ["wake --now loopback", "sleep loopback"])
    }

    /// A wake command that fails sends the job back to the queue with what the command said; once
    /// the machine can be woken the job runs, once.
    @Test func aFailingWakeCommandQueuesTheJobAgainWithWhatItSaid() async throws {
        let harness = try await ServerHarness()
        let machine = try commandHost(harness, state: "stopped")
        machine.setPower(false)
        let store = harness.store
        try await harness.serve { client in
            let commit = try await harness.repo.commit(["script/job.sh": "#!/bin/sh\necho ran >> '\(harness.folder)/runs'\necho woken at last\n"])
            let response = try await ServerHarness.post(client, harness.pushPayload(commit: commit))
            let url = try #require(ServerHarness.json(response)["result_url"] as? String)
            // The reason it went back to the queue (the progress line before it says "exited 3" too).
            let said = try await harness.firstJobsEventDetails { $0.contains("the wake command `") }
            #expect(said.contains { $0.contains("the wake command `\(machine.folder)/wake --now` exited 3: no power at the socket") }, "\(said)")
            let job = try #require(try await store.jobs().first)
            #expect(!job.status.isFinal, "the job ended as \(job.status) instead of waiting for its host")
            machine.setPower(true)
            let results = try await ServerHarness.results(client, resultURL: url)
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "woken at last\n")
        }
        #expect(try String(contentsOfFile: harness.folder + "/runs", encoding: .utf8) == "ran\n")
        // The first wake failed, and the retry woke it again: the requeue left the host
        // `unknown` in its own transaction, so no retry found it `ready` and skipped the wake.
        #expect(machine.calls.first == "wake --now loopback")
        #expect(machine.calls.filter { $0.hasPrefix("wake ") }.count >= 2, "\(machine.calls)")
    }

    /// A command host with `commands`, for the provider alone (no server, no SSH).
    private static func host(_ commands: HostCommandLines) -> HostConfig {
        var host = HostConfig(name: "desk", provider: .command, address: "127.0.0.1", user: "build", identity: nil, knownHosts: "/dev/null")
        host.commands = commands
        return host
    }

    /// Past its limit a command gets SIGTERM, and one that ignores it SIGKILL 5 s later; either
    /// way the wake fails with the status and the last of what it printed (600 KB of it here,
    /// kept to its last lines).
    @Test(arguments: [("", 128 + SIGTERM), ("trap '' TERM; ", 128 + SIGKILL)])
    func aCommandPastItsLimitIsStoppedAndFailsWithWhatItPrinted(trap: String, status: Int32) async throws {
        let wake = ["/bin/sh", "-c", trap + "seq 1 100000; echo waiting for the machine; while :; do sleep 1; done"]
        let provider = CommandHostProvider(commandLimit: .milliseconds(500))
        let started = ContinuousClock.now
        do {
            _ = try await provider.wake(Self.host(HostCommandLines(wake: wake, sleep: ["true"])), progress: { _ in })
            Issue.record("a wake command stopped at its limit woke the machine")
        } catch {
            #expect(error.reason.contains("exited \(status): 99999 / 100000 / waiting for the machine"), "\(error.reason)")
        }
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    /// A command's end is its own, not that of what it leaves running: a wake that starts a
    /// daemon holding its output ends when the command does, and the daemon lives on. At its
    /// time limit, what a command started is stopped with it (its process group).
    @Test func aCommandEndsWithoutWhatItLeftRunningAndItsLimitStopsWhatItStarted() async throws {
        let provider = CommandHostProvider(commandLimit: .milliseconds(500))
        let said = Mutex<[String]>([])
        let daemon = ["/bin/sh", "-c", "sleep 120 & echo $!; echo powered on"]
        _ = try await provider.wake(Self.host(HostCommandLines(wake: daemon, sleep: ["true"])), progress: { line in said.withLock { $0.append(line) } })
        let line = try #require(said.withLock { $0 }.first { $0.hasPrefix("wake command exited 0: ") }, "\(said.withLock { $0 })")
        let left = try #require(Int32(line.dropFirst("wake command exited 0: ".count).prefix { $0.isNumber }))
        #expect(StalledHostTests.isAlive(left), "the daemon a wake started was stopped")
        kill(left, SIGKILL)

        let stuck = ["/bin/sh", "-c", "sleep 120 & echo $!; wait"]
        do {
            _ = try await provider.wake(Self.host(HostCommandLines(wake: stuck, sleep: ["true"])), progress: { _ in })
            Issue.record("a wake command stopped at its limit woke the machine")
        } catch {
            let started = try #require(Int32(error.reason.split(separator: ": ").last?.prefix { $0.isNumber } ?? ""), "\(error.reason)")
            #expect(error.reason.contains("exited \(128 + SIGTERM)"), "\(error.reason)")
            #expect(try await EventStreamChannelTests.eventually { !StalledHostTests.isAlive(started) }, "what the command started outlived its time limit")
        }
    }
}

