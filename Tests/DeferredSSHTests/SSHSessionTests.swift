import DeferredDemo
import DeferredSSH
import DeferredTestSupport
import Foundation
import Testing

/// The libssh wrapper against a real OpenSSH sshd on loopback.
@Suite(.serialized) struct SSHSessionTests {
    static func endpoint(_ sshd: ThrowawaySSHD, knownHosts: String? = nil) -> SSHEndpoint {
        SSHEndpoint(host: "127.0.0.1", port: sshd.port, user: sshd.user, identityFile: sshd.clientKey,
                    knownHostsFile: knownHosts ?? sshd.knownHosts)
    }

    @Test func runsACommandWithSeparateStreamsAndExitStatus() async throws {
        let sshd = try await ThrowawaySSHD.start(isolatedHome: true)
        defer { sshd.stop(); sshd.removeFiles() }
        let session = try await SSHSession.connect(to: Self.endpoint(sshd))
        let result = try await session.run("printf 'to stdout'; printf 'to stderr' >&2; exit 3")
        #expect(String(decoding: result.stdout, as: UTF8.self) == "to stdout")
        #expect(String(decoding: result.stderr, as: UTF8.self) == "to stderr")
        #expect(result.exit == SSHExit(status: 3, signal: nil))
        // The same connection serves the next command.
        let again = try await session.run("cat", stdin: Array("fed through stdin".utf8))
        #expect(String(decoding: again.stdout, as: UTF8.self) == "fed through stdin")
        #expect(again.exit.status == 0)
        await session.disconnect()
    }

    /// A command that ends without reading all its standard input (a set-up script that ran
    /// before, a job folder that cannot be made) is that command's answer, with its output
    /// and exit status, not a lost connection: the connection serves the next command.
    @Test func aCommandThatEndsWithoutReadingItsInputIsItsOwnAnswer() async throws {
        let sshd = try await ThrowawaySSHD.start(isolatedHome: true)
        defer { sshd.stop(); sshd.removeFiles() }
        let session = try await SSHSession.connect(to: Self.endpoint(sshd))
        // More than the channel's window, so the write cannot be done before the command ends.
        let input = [UInt8](repeating: 0x61, count: 8 << 20)
        let result = try await session.run("echo 'ran before'; exit 7", stdin: input)
        #expect(String(decoding: result.stdout, as: UTF8.self) == "ran before\n")
        #expect(result.exit == SSHExit(status: 7, signal: nil))
        let again = try await session.run("echo still here")
        #expect(String(decoding: again.stdout, as: UTF8.self) == "still here\n")
        // A command that ends at once, its close arriving with the answer to the exec request
        // (a set-up script whose marker says it ran before): its exit, every time.
        for _ in 0..<30 {
            let quick = try await session.run("exit 0", stdin: Array("#!/bin/sh\necho set up\n".utf8))
            #expect(quick.exit == SSHExit(status: 0, signal: nil))
        }
        // Input larger than many windows, read whole, arrives whole.
        let counted = try await session.run("wc -c", stdin: input)
        #expect(String(decoding: counted.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == String(input.count))
        await session.disconnect()
    }

    @Test func reportsTheSignalThatKilledACommand() async throws {
        let sshd = try await ThrowawaySSHD.start(isolatedHome: true)
        defer { sshd.stop(); sshd.removeFiles() }
        let session = try await SSHSession.connect(to: Self.endpoint(sshd))
        let result = try await session.run("exec sh -c 'kill -TERM $$'")
        #expect(result.exit.signal == "TERM")
        #expect(result.exit.status == nil)
    }

    @Test func streamsLargeOutputWhole() async throws {
        let sshd = try await ThrowawaySSHD.start(isolatedHome: true)
        defer { sshd.stop(); sshd.removeFiles() }
        let session = try await SSHSession.connect(to: Self.endpoint(sshd))
        let result = try await session.run("head -c 3000000 /dev/zero; head -c 1000000 /dev/zero >&2")
        #expect(result.stdout.count == 3_000_000)
        #expect(result.stderr.count == 1_000_000)
        #expect(result.exit.status == 0)
    }

    @Test func refusesAHostWhoseKeyDiffers() async throws {
        let sshd = try await ThrowawaySSHD.start(isolatedHome: true)
        defer { sshd.stop(); sshd.removeFiles() }
        // known_hosts holding another key for the same host and port.
        let other = sshd.directory + "/other_host"
        let otherKey = try await LocalKey.makeEd25519(at: other)
        let wrongKnownHosts = sshd.directory + "/wrong_known_hosts"
        try "[127.0.0.1]:\(sshd.port) \(otherKey)\n".write(toFile: wrongKnownHosts, atomically: true, encoding: .utf8)
        do {
            _ = try await SSHSession.connect(to: Self.endpoint(sshd, knownHosts: wrongKnownHosts))
            Issue.record("connected despite a wrong host key")
        } catch {
            guard case .hostKeyMismatch(_, let port, let fingerprint, _) = error else {
                Issue.record("expected hostKeyMismatch, got \(error)")
                return
            }
            #expect(port == sshd.port)
            #expect(fingerprint.contains("SHA256:"))
            #expect(error.description.contains("does not match"))
        }
    }

    @Test func refusesAHostNotInKnownHosts() async throws {
        let sshd = try await ThrowawaySSHD.start(isolatedHome: true)
        defer { sshd.stop(); sshd.removeFiles() }
        let empty = sshd.directory + "/empty_known_hosts"
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        await #expect(throws: SSHError.self) {
            _ = try await SSHSession.connect(to: Self.endpoint(sshd, knownHosts: empty))
        }
    }
}

@Suite struct SSHSessionConcurrencyTests {
    @Test func aSecondChannelRunsWhileTheFirstIsBusy() async throws {
        let sshd = try await ThrowawaySSHD.start(isolatedHome: true)
        defer { sshd.stop(); sshd.removeFiles() }
        let session = try await SSHSession.connect(to: SSHSessionTests.endpoint(sshd))
        let marker = sshd.directory + "/released"
        // The first command waits for a file that only the second one makes.
        async let first = session.run("while [ ! -f '\(marker)' ]; do sleep 0.05; done; echo released")
        try await Task.sleep(for: .milliseconds(300))
        let second = try await session.run("touch '\(marker)'; echo made")
        #expect(String(decoding: second.stdout, as: UTF8.self) == "made\n")
        let done = try await first
        #expect(String(decoding: done.stdout, as: UTF8.self) == "released\n")
    }
}

@Suite struct SSHAgentTests {
    /// Without an identity file the session asks ssh-agent: here at the socket the endpoint
    /// names, since setting SSH_AUTH_SOCK would change the environment under the other tests'
    /// threads (a Process.run copying it crashed once in a full run).
    @Test func authenticatesThroughSSHAgent() async throws {
        let sshd = try await ThrowawaySSHD.start(isolatedHome: true)
        defer { sshd.stop(); sshd.removeFiles() }
        let agent = try await ThrowawaySSHAgent.start(socketIn: sshd.directory, holding: sshd.clientKey)
        defer { agent.stop() }
        var endpoint = SSHEndpoint(host: "127.0.0.1", port: sshd.port, user: sshd.user, identityFile: nil, knownHostsFile: sshd.knownHosts)
        endpoint.agentSocket = agent.socket
        let session = try await SSHSession.connect(to: endpoint)
        let result = try await session.run("echo via-agent")
        #expect(String(decoding: result.stdout, as: UTF8.self) == "via-agent\n")
    }
}
