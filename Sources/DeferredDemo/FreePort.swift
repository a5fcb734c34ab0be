import Foundation
import Synchronization

/// Loopback port helpers for starting peers.
public enum FreePort {
    /// A TCP port on 127.0.0.1 that nothing listens on now and that this process never handed
    /// out before. It lies below the kernel's ephemeral range: a peer such as moto_server takes
    /// seconds to bind its port, and meanwhile a port the kernel picked for it could be picked
    /// again for another listener (bind to port 0) in a test running beside it, which would then
    /// answer in its place.
    public static func find() throws -> Int {
        let upper = ephemeralRangeStart()
        if upper > 11_000 {
            for _ in 0..<500 {
                let port = Int.random(in: 10_000..<upper)
                guard handedOut.withLock({ $0.insert(port).inserted }) else { continue }
                if let (fd, _) = try? listenLoopback(port: port) {
                    close(fd)
                    return port
                }
            }
        }
        // No room below the range: the kernel's pick, as good as it gets.
        let (fd, port) = try listenLoopback()
        close(fd)
        return port
    }

    private static let handedOut = Mutex<Set<Int>>([])

    /// The first port the kernel hands to `bind(0)` and outgoing connections.
    private static func ephemeralRangeStart() -> Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32_768
    }

    /// The first line a server on 127.0.0.1:port sends, or nil if none answers within a second.
    public static func banner(port: Int) -> String? {
        guard let fd = connectLoopback(port: port) else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = recv(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    /// A TCP socket connected to 127.0.0.1:port, or nil.
    /// `receiveBuffer`: the socket's receive buffer in bytes, set before connecting (so the
    /// window it offers is small from the start), for a peer that reads slowly.
    public static func connectLoopback(port: Int, receiveBuffer: Int32? = nil) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); return nil }
        return fd
    }

    /// A TCP socket listening on 127.0.0.1 at `port` (0: a port the kernel picks), and that port.
    /// Never accepted from, it is also a peer that says nothing.
    public static func listenLoopback(port: Int = 0) throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
