import DeferredCore
import DeferredDemo
import DeferredDispatcher
import DeferredProviders
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Hosts of `provider = "wol"`: a real UDP listener on loopback plays the sleeping machine's
/// network card, and the test's sshd is the machine (stopped while it sleeps).
@Suite struct WakeOnLANTests {
    /// The machine: magic packets for its card start its sshd again; others wake nothing.
    final class SleepingMachine: Sendable {
        let mac: [UInt8]
        let port: Int
        private let socket: Int32
        private let counts = Mutex((woken: 0, foreign: 0, other: 0))
        private let booting = Mutex(false)
        private let stopping = Atomic(false)
        let sshd: ThrowawaySSHD

        var woken: Int { counts.withLock { $0.woken } }
        var foreign: Int { counts.withLock { $0.foreign } }

        init(sshd: ThrowawaySSHD, mac: [UInt8]) throws {
            self.sshd = sshd
            self.mac = mac
            let fd = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            socket = fd
            port = Int(UInt16(bigEndian: address.sin_port))
            // A shutdown does not wake a UDP socket's recv: it wakes on its own to look.
            var wake = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wake, socklen_t(MemoryLayout<timeval>.size))
            let expected = WakeOnLAN(mac: mac).magicPacket
            Thread.detachNewThread { [self] in
                var buffer = [UInt8](repeating: 0, count: 2048)
                // The thread closes the socket after its last recv: closed sooner, its number
                // could be another test's socket by the next recv.
                defer { close(socket) }
                while !stopping.load(ordering: .acquiring) {
                    let got = recv(socket, &buffer, buffer.count, 0)
                    if got < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                    guard got >= 0 else { return }
                    let packet = Array(buffer[0..<got])
                    if packet == expected {
                        counts.withLock { $0.woken += 1 }
                        boot()
                    } else if packet.count == 102, packet.prefix(6) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] {
                        counts.withLock { $0.foreign += 1 }
                    } else {
                        counts.withLock { $0.other += 1 }
                    }
                }
            }
        }

        /// Starts sshd unless it answers already or is starting.
        private func boot() {
            guard booting.withLock({ starting in defer { starting = true }; return !starting }) else { return }
            Task {
                if await TCPProbe.refusal(host: "127.0.0.1", port: sshd.port, timeout: .seconds(1)) != nil { try? await sshd.startAgain() }
                booting.withLock { $0 = false }
            }
        }

        func shutDown() { stopping.store(true, ordering: .releasing) }
    }

    /// Sends `packet` to the machine's port, as another machine's wake would.
    static func send(_ packet: [UInt8], to port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { to in
                packet.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, to, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
    }

    static func answers(_ sshd: ThrowawaySSHD) async -> Bool {
        await TCPProbe.refusal(host: "127.0.0.1", port: sshd.port, timeout: .seconds(1)) == nil
    }

    @Test func theMagicPacketIsSixFFsThenTheCardSixteenTimes() throws {
        let mac = try #require(WakeOnLAN.mac(parsing: "3c:7c:3f:1e:AA:09"))
        #expect(mac == [0x3C, 0x7C, 0x3F, 0x1E, 0xAA, 0x09])
        #expect(WakeOnLAN.mac(parsing: "3c-7c-3f-1e-aa-09") == mac)
        for bad in ["3c:7c:3f:1e:aa", "3c:7c:3f:1e:aa:09:00", "3c:7c:3f:1e:aa:0g", "3c7c3f1eaa09", "3c:7c:3f:1e:aa:009", ""] {
            #expect(WakeOnLAN.mac(parsing: bad) == nil, "\(bad)")
        }
        let packet = WakeOnLAN(mac: mac).magicPacket
        #expect(packet.count == 102)
        #expect(packet.prefix(6).allSatisfy { $0 == 0xFF })
        for copy in 0..<16 { #expect(Array(packet[(6 + copy * 6)..<(12 + copy * 6)]) == mac) }
    }

    @Test func aPushWakesTheMachineByMagicPacketAndIdleSleepPutsItToSleepOverSSH() async throws {
        let harness = try await ServerHarness()
        let mac: [UInt8] = [0x3C, 0x7C, 0x3F, 0x1E, 0xAA, 0x09]
        let machine = try SleepingMachine(sshd: harness.sshd, mac: mac)
        defer { machine.shutDown() }
        harness.sshd.stop()
        for _ in 0..<100 where await Self.answers(harness.sshd) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(await !Self.answers(harness.sshd), "the machine did not go to sleep for the test")

        // Another machine's packet wakes nothing.
        Self.send(WakeOnLAN(mac: [0x3C, 0x7C, 0x3F, 0x1E, 0xAA, 0x0A]).magicPacket, to: machine.port)
        for _ in 0..<100 where machine.foreign == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(machine.foreign == 1)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await !Self.answers(harness.sshd) && machine.woken == 0)

        harness.config.hosts[0].provider = .wol
        harness.config.hosts[0].wakeOnLAN = WakeOnLAN(mac: mac, broadcast: "127.0.0.1", port: machine.port,
                                                     sleepCommand: "kill \"$(cat '\(harness.folder)/sshd/sshd.pid')\"")
        harness.providers = HostProviders(ec2: nil, wol: WakeOnLANHostProvider(
            resend: RetryPolicy(base: .milliseconds(200), cap: .seconds(1), jittered: false), probeInterval: .milliseconds(50)))
        let store = harness.store
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho on the machine under the desk\n"])
            #expect(results["status"] as? String == "succeeded")
            #expect(results["stdout"] as? String == "on the machine under the desk\n")
            #expect((results["host"] as? [String: Any])?["woke"] as? Bool == true)
            #expect(machine.woken >= 1)
            let job = try #require(try await store.jobs().first)
            let waits = try await store.events(of: job.id).filter { $0.status == .waitingForHost }.compactMap(\.detail)
            #expect(waits.contains { $0.contains("sent a Wake-on-LAN packet for 3c:7c:3f:1e:aa:09 to 127.0.0.1:\(machine.port)") }, "\(waits)")
        }
        // Idle: sleep_command over SSH, and asleep once SSH stops answering.
        harness.config.idle.timeoutMinutes = 0
        let sleeper = IdleSleeper(config: harness.config, store: store, providers: harness.providers)
        let reports = await sleeper.pass()
        #expect(reports.map(\.host) == ["loopback"] && reports.allSatisfy(\.slept), "\(reports)")
        #expect(await !Self.answers(harness.sshd))
        #expect(try await store.hosts().first?.state == .stopped)

        // The next push wakes it again.
        let before = machine.woken
        try await harness.serve { client in
            let results = try await harness.runPush(client, files: ["script/job.sh": "#!/bin/sh\necho again\n"])
            #expect(results["stdout"] as? String == "again\n")
            #expect((results["host"] as? [String: Any])?["woke"] as? Bool == true)
        }
        #expect(machine.woken > before)
    }

    @Test func aMachineRunningAJobIsNotPutToSleepBesideIt() async throws {
        let harness = try await ServerHarness()
        let mac: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
        let machine = try SleepingMachine(sshd: harness.sshd, mac: mac)
        defer { machine.shutDown() }
        harness.config.hosts[0].provider = .wol
        harness.config.hosts[0].wakeOnLAN = WakeOnLAN(mac: mac, broadcast: "127.0.0.1", port: machine.port,
                                                     sleepCommand: "kill \"$(cat '\(harness.folder)/sshd/sshd.pid')\"")
        harness.providers = HostProviders(ec2: nil, wol: WakeOnLANHostProvider(probeInterval: .milliseconds(50)))
        let sshd = harness.sshd
        try await harness.expectIdleSleepSparesABusyHost(machine: { await Self.answers(sshd) ? "awake" : "asleep" }, up: "awake", down: "asleep")
    }
}
