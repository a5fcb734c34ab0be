import DeferredCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether something takes a TCP connection at host:port within a timeout, without logging in:
/// `check-config`'s quick look at a static host, and whether a `wol` machine is awake.
public enum TCPProbe {
    /// Nil when a connection was made; else why not. The wait runs on a thread of its own.
    public static func refusal(host: String, port: Int, timeout: Duration) async -> String? {
        await OffPool.run { attempt(host: host, port: port, timeout: timeout) }
    }

    private static func attempt(host: String, port: Int, timeout: Duration) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let looked = getaddrinfo(host, String(port), &hints, &list)
        guard looked == 0, let first = list else { return "cannot resolve \(host): \(String(cString: gai_strerror(looked)))" }
        defer { freeaddrinfo(list) }
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        var last = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let address = entry {
            defer { entry = address.pointee.ai_next }
            let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
            guard fd >= 0 else { last = String(cString: strerror(errno)); continue }
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            if connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return nil }
            guard errno == EINPROGRESS else { last = String(cString: strerror(errno)); continue }
            var watch = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&watch, 1, milliseconds) == 1 else { last = "no answer within \(timeout)"; continue }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error == 0 { return nil }
            last = String(cString: strerror(error))
        }
        return last
    }
}
