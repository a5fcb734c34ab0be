import DeferredCloud
import DeferredCore
import DeferredDemo
import Foundation
import Testing

/// The built `deferred serve`, run as an operator would under Debian's default file limit
/// (1,024, soft and hard alike), against a flood of connections that send nothing or stall
/// in their headers: idle ones are closed, the rest wait their turn, and a job posted in the
/// middle of it still runs and gets its results.json.
@Suite(.serialized) struct ConnectionLimitTests {
    /// Opens a TCP connection to 127.0.0.1:`port` without waiting for it to be accepted.
    static func connect(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        return fd
    }

    /// Whether the server closed `fd`: a read that answers end of file (or a reset).
    static func closedByServer(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINPROGRESS && errno != ENOTCONN)
    }

    @Test func aThousandIdleConnectionsUnderA1024FileLimitDoNotStopTheServer() async throws {
        let harness = try await ServerHarness()
        let served = try await BuiltServer.start(harness, server: ["idle_timeout_seconds = 3", "body_timeout_seconds = 2"])
        defer { served.stop() }
        let port = served.port, server = served.process
        let said = served.said
        #expect(said.contains("open files: soft 1024, hard 1024; HTTP connections at most 768"), "\(said)")

        // A body that trickles in, a byte at a time, never idle long enough to be closed for it.
        let trickle = Self.connect(port: port)
        defer { close(trickle) }
        // The headers, then a byte every quarter second for up to 10 s, well past the 2 s limit (which counts
        // from when the handler starts reading, later on a loaded machine), each answer read as
        // soon as it arrives. A bound against hanging, not a speed check. On a thread of its own:
        // the concurrency pool, busy with the other suites, could hold the trickle back past the
        // 3 s idle limit, and the server would rightly close the connection as idle.
        let (refusal, ended) = await OffPool.run { () -> (String, String?) in
            usleep(200_000)
            _ = "POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n".withCString {
                send(trickle, $0, strlen($0), Int32(MSG_NOSIGNAL))
            }
            var refusal = "", ended: String?
            let trickleEnds = ContinuousClock.now + .seconds(10)
            for _ in 0..<240 where refusal.isEmpty && ended == nil {
                if ContinuousClock.now < trickleEnds { _ = "x".withCString { send(trickle, $0, 1, Int32(MSG_NOSIGNAL)) } }
                var ready = pollfd(fd: trickle, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 250) > 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 2048)
                let n = recv(trickle, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if n > 0 { refusal = String(decoding: buffer[0..<n], as: UTF8.self) } else if n == 0 { ended = "closed" } else if errno != EAGAIN { ended = String(cString: strerror(errno)) }
            }
            return (refusal, ended)
        }
        #expect(refusal.hasPrefix("HTTP/1.1 408"), "\(refusal)\(ended.map { " (the connection ended without it: \($0))" } ?? "")\n\(OutOfFilesTests.tail(served.said))")
        #expect(refusal.contains("body_timeout_seconds"), "\(refusal)")

        // 1,100 connections that send nothing, and 200 that stall inside their headers.
        let idle = (0..<1100).map { _ in Self.connect(port: port) }
        let slow = (0..<200).map { _ in Self.connect(port: port) }
        defer { (idle + slow).forEach { close($0) } }
        try await Task.sleep(for: .milliseconds(500))
        for fd in slow { _ = "POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-Slow: ".withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) } }

        // A job posted in the middle of the flood waits its turn, runs, and is stored.
        let path = try await served.postScript("#!/bin/sh\necho through-the-flood\n")
        let results = try await served.results(at: path)
        #expect(results["status"] as? String == "succeeded", "\(results)")
        #expect(results["stdout"] as? String == "through-the-flood\n")

        // The idle and stalled connections are closed by the server (hundreds of them: the rest
        // wait in the kernel's queues for their turn, slower on a busy machine), and it never
        // ran out of files.
        try await StalledHostTests.eventually("the server closes the idle connections", seconds: 90) {
            (idle + slow).filter(Self.closedByServer).count >= 500
        }
        let open = served.openFiles
        print("connection flood: \((idle + slow).filter(Self.closedByServer).count) of \(idle.count + slow.count) closed by the server; it holds \(open) files")
        #expect(open > 0 && open < 1024)
        #expect(server.isRunning)
    }
}
