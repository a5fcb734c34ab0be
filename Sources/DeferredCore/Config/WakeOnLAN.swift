/// How a machine of provider `wol` is woken and put to sleep: a magic packet for its network
/// card, and a command over SSH.
public struct WakeOnLAN: Sendable, Equatable {
    /// The network card's six bytes.
    public var mac: [UInt8]
    /// Where the packet goes: the LAN's broadcast address (or the machine's own).
    public var broadcast: String
    /// The UDP port (9, discard, by custom; 7 on some cards).
    public var port: Int
    /// Run over SSH to put the machine to sleep (`poweroff` for one that wakes from off).
    public var sleepCommand: String

    public init(mac: [UInt8], broadcast: String = "255.255.255.255", port: Int = 9, sleepCommand: String = "systemctl suspend") {
        self.mac = mac
        self.broadcast = broadcast
        self.port = port
        self.sleepCommand = sleepCommand
    }

    /// Six hex pairs separated by ':' or '-' ("3c:7c:3f:1e:aa:09"); nil for anything else.
    public static func mac(parsing text: String) -> [UInt8]? {
        let pairs = text.split(omittingEmptySubsequences: false) { $0 == ":" || $0 == "-" }
        guard pairs.count == 6 else { return nil }
        let bytes = pairs.compactMap { $0.count == 2 ? UInt8($0, radix: 16) : nil }
        return bytes.count == 6 ? bytes : nil
    }

    /// The card's address as `ip link` shows it: "3c:7c:3f:1e:aa:09".
    public var macText: String { mac.map { Hex.encode([$0]) }.joined(separator: ":") }

    /// The magic packet: six bytes of 0xFF, then the card's address sixteen times.
    public var magicPacket: [UInt8] {
        [UInt8](repeating: 0xFF, count: 6) + Array([[UInt8]](repeating: mac, count: 16).joined())
    }
}
