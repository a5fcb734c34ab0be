/// The commands behind a host of provider `command`: argv arrays the server runs itself (never
/// through a shell), for any machine with a CLI that starts and stops it (`gcloud compute
/// instances start …`, `virsh start …`, `qm start …`).
public struct HostCommandLines: Sendable, Equatable {
    /// Starts the machine.
    public var wake: [String]
    /// Stops it (or suspends it): run by idle sleep and `deferred hosts sleep`.
    public var sleep: [String]
    /// Prints `running`, `stopped` or `pending`; nil when the machine cannot be asked (then a
    /// wake is run each time it may be asleep, and SSH tells when it is up).
    public var status: [String]?

    public init(wake: [String], sleep: [String], status: [String]? = nil) {
        self.wake = wake
        self.sleep = sleep
        self.status = status
    }
}
