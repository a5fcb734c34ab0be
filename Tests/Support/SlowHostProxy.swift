import DeferredDemo
import Foundation

/// A TCP proxy on loopback that waits before it connects each client to the target port:
/// a build host that takes its time to come up, so a test can watch a job wait for it.
public final class SlowHostProxy: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var stopped = false

    public init(to targetPort: Int, delay: Duration) throws {
        (listener, port) = try FreePort.listenLoopback()
        let listener = self.listener
        Thread.detachNewThread { [weak self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                if self?.isStopped ?? true { close(client); return }
                Thread.detachNewThread {
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
        }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    public func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { stop() }

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
