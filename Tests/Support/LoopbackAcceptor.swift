import DeferredDemo
import Foundation
import Synchronization

/// A TCP listener on loopback whose thread accepts connections and hands each to `serve`, on a
/// thread of its own, until it is stopped. Its socket is closed once, by that thread, after its
/// last `accept`: tests run side by side in one process, and a socket number closed twice, or
/// accepted on after its close, would be another test's connection by then, ended or taken
/// from under it.
public final class LoopbackAcceptor: Sendable {
    public let port: Int
    private let socket: ListeningSocket

    /// `serve` owns the connection it is given, and closes it. `highDescriptor`: the listening
    /// socket gets a number from `HighDescriptor`, for a test that watches that number.
    public init(highDescriptor: Bool = false, serve: @escaping @Sendable (Int32) -> Void) throws {
        var (fd, port) = try FreePort.listenLoopback()
        if highDescriptor {
            fd = HighDescriptor.move(fd)
            guard fd >= 0 else { throw POSIXError(.EMFILE) }
        }
        self.port = port
        let socket = ListeningSocket(fd)
        self.socket = socket
        Thread.detachNewThread {
            while let client = socket.accept() {
                Thread.detachNewThread { serve(client) }
            }
            socket.close()
        }
    }

    /// Takes no more connections. Those under way go on to their end.
    public func stop() { socket.stop() }

    /// The listening socket's number, and whether its thread closed it: for a test that checks
    /// nothing touches that number afterwards.
    public var descriptor: Int32 { socket.fd }
    public var isClosed: Bool { socket.isClosed }

    deinit { stop() }

    private final class ListeningSocket: Sendable {
        let fd: Int32
        private let state = Mutex((stopping: false, closed: false))

        init(_ fd: Int32) { self.fd = fd }

        /// The next connection, or nil once stopped or the socket fails.
        func accept() -> Int32? {
            while true {
                let client = Glibc.accept(fd, nil, nil)
                if client < 0 && errno == EINTR { continue }
                guard client >= 0 else { return nil }
                guard !state.withLock({ $0.stopping }) else {
                    Glibc.close(client)
                    return nil
                }
                return client
            }
        }

        /// Wakes the accepting thread (a shutdown ends a waiting `accept` with EINVAL), once,
        /// and only while the socket is still ours.
        func stop() {
            state.withLock { state in
                guard !state.stopping, !state.closed else { return }
                state.stopping = true
                _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
            }
        }

        var isClosed: Bool { state.withLock { $0.closed } }

        func close() {
            state.withLock { state in
                state.closed = true
                _ = Glibc.close(fd)
            }
        }
    }
}
