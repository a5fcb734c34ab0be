import DeferredDemo
import Foundation

/// A TCP proxy on loopback that waits before it connects each client to the target port:
/// a build host that takes its time to come up, so a test can watch a job wait for it.
public final class SlowHostProxy: Sendable {
    public var port: Int { acceptor.port }
    private let acceptor: LoopbackAcceptor

    public init(to targetPort: Int, delay: Duration) throws {
        acceptor = try LoopbackAcceptor { client in
            Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
            guard let upstream = FreePort.connectLoopback(port: targetPort) else { close(client); return }
            let outbound = Thread { Self.pump(from: client, to: upstream) }
            outbound.start()
            Self.pump(from: upstream, to: client)
            while !outbound.isFinished { Thread.sleep(forTimeInterval: 0.01) }
            close(client)
            close(upstream)
        }
    }

    public func stop() { acceptor.stop() }

    /// Copies until `source` ends, then passes the end on and lets go of `source`.
    private static func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        while true {
            let n = read(source, &buffer, buffer.count)
            guard n > 0 else { break }
            var sent = 0
            while sent < n {
                let w = buffer[sent..<n].withUnsafeBytes { write(destination, $0.baseAddress, n - sent) }
                guard w > 0 else { break }
                sent += w
            }
            if sent < n { break }
        }
        shutdown(destination, Int32(SHUT_WR))
        shutdown(source, Int32(SHUT_RD))
    }
}
