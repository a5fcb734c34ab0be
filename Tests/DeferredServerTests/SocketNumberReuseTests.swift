import DeferredTestSupport
import Foundation
import Testing

/// The tests' own sockets are closed once and never touched after: the suites run side by side
/// in one process, and a socket number freed is soon another test's connection, which a second
/// close or a late shutdown would end with nothing written (four tests failed that way under
/// load before a proxy's `deinit` closed its listener a second time). The sockets watched here
/// have numbers from `HighDescriptor`, where no other test's socket lands, so each test takes
/// the freed number back itself; serialized, since both take their numbers there.
@Suite(.serialized) struct SocketNumberReuseTests {
    /// Waits until `condition` holds (a bound against hanging, not a speed check).
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<600 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
        try #require(condition())
    }

    /// A connected pair of sockets, one end at `number`, which must be free.
    static func pair(taking number: Int32) throws -> [Int32] {
        var ends: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        guard let taken = HighDescriptor.take(number, with: ends[0]) else {
            close(ends[1])
            Issue.record("socket \(number) is not free")
            throw POSIXError(.EBADF)
        }
        return [taken, ends[1]]
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
        var acceptor: LoopbackAcceptor? = try LoopbackAcceptor(highDescriptor: true) { close($0) }
        let number = try #require(acceptor?.descriptor)
        #expect(number >= HighDescriptor.floor)
        acceptor?.stop()
        try await Self.eventually { acceptor?.isClosed == true }
        let ends = try Self.pair(taking: number)
        defer { ends.forEach { close($0) } }
        // A second stop, and the last reference's, find the socket gone.
        acceptor?.stop()
        acceptor = nil
        #expect(Self.isIntact(ends))
    }

    @Test func aReaderThatLeavesAfterTheServerClosedTouchesNoOtherSocket() async throws {
        let server = try LoopbackAcceptor { close($0) }
        defer { server.stop() }
        let reader = try SSE.Reader(port: server.port, request: "GET /r/x/events HTTP/1.1\r\n\r\n", highDescriptor: true)
        #expect(reader.fd >= HighDescriptor.floor)
        try await Self.eventually { reader.isClosed }
        let ends = try Self.pair(taking: reader.fd)
        defer { ends.forEach { close($0) } }
        reader.finishSending()
        reader.hangUp()
        #expect(Self.isIntact(ends))
    }
}
