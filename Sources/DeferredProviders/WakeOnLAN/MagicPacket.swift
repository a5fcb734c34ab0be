import DeferredCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Sends a Wake-on-LAN magic packet over UDP, to a broadcast address or a host's own.
enum MagicPacket {
    /// Nil when it went; else why not.
    static func send(_ wake: WakeOnLAN) -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let looked = getaddrinfo(wake.broadcast, String(wake.port), &hints, &list)
        guard looked == 0, let address = list else { return "cannot resolve \(wake.broadcast): \(String(cString: gai_strerror(looked)))" }
        defer { freeaddrinfo(list) }
        let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        guard fd >= 0 else { return "no UDP socket: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        var on: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, socklen_t(MemoryLayout<Int32>.size))
        let packet = wake.magicPacket
        let sent = packet.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, address.pointee.ai_addr, address.pointee.ai_addrlen) }
        return sent == packet.count ? nil : "sending to \(wake.broadcast):\(wake.port) failed: \(String(cString: strerror(errno)))"
    }
}
