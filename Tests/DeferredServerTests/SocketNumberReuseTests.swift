import DeferredTestSupport
import Foundation
import Testing

/// The tests' own sockets are closed once and never touched after: the suites run side by side
/// in one process, and a socket number freed is soon another test's connection, which a second
/// close or a late shutdown would end with nothing written (four tests failed that way under
/// load before a proxy's `deinit` closed its listener a second time).
@Suite struct SocketNumberReuseTests {
    /// Waits until `condition` holds (a bound against hanging, not a speed check).
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<600 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
        try #require(condition())
    }

    /// A connected pair of sockets that took `number` once it was free: the lowest free number
    /// is the next one made, unless a test beside this one took it first, so it tries again
    /// until they let go (a bound against hanging: a minute). Nil when it never got it.
    static func pair(taking number: Int32) async throws -> [Int32]? {
        for _ in 0..<6000 {
            var ends: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { return nil }
            if ends.contains(number) { return ends }
            ends.forEach { close($0) }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    /// The pair still carries a byte both ways: nothing closed or shut down either end.
    static func isIntact(_ ends: [Int32]) -> Bool {
        var byte: UInt8 = 7
        for (from, to) in [(ends[0], ends[1]), (ends[1], ends[0])] {
            guard send(from, &byte, 1, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) == 1, recv(to, &byte, 1, Int32(MSG_DONTWAIT)) == 1 else { return false }
        }
        return true
    }

    @Test func aStoppedProxyLetsGoOfItsListenerOnceAndNeverTouchesItsNumberAgain() async throws {
        var acceptor: LoopbackAcceptor? = try LoopbackAcceptor { close($0) }
        let number = try #require(acceptor?.descriptor)
        acceptor?.stop()
        try await Self.eventually { acceptor?.isClosed == true }
        let ends = try #require(try await Self.pair(taking: number), "socket \(number) stayed taken by another test")
        defer { ends.forEach { close($0) } }
        // A second stop, and the last reference's, find the socket gone.
        acceptor?.stop()
        acceptor = nil
        #expect(Self.isIntact(ends))
    }

    @Test func aReaderThatLeavesAfterTheServerClosedTouchesNoOtherSocket() async throws {
        let server = try LoopbackAcceptor { close($0) }
        defer { server.stop() }
        let reader = try SSE.Reader(port: server.port, request: "GET /r/x/events HTTP/1.1\r\n\r\n")
        try await Self.eventually { reader.isClosed }
        let ends = try #require(try await Self.pair(taking: reader.fd), "socket \(reader.fd) stayed taken by another test")
        defer { ends.forEach { close($0) } }
        reader.finishSending()
        reader.hangUp()
        #expect(Self.isIntact(ends))
    }
}
