/// Waking or stopping a host by hand, as `deferred hosts` and the dashboard's buttons do.
/// The dispatcher's `HostControl` is what acts; the HTTP side sees only this, so it needs
/// neither providers nor SSH.
public protocol HostCommands: Sendable {
    /// Starts the host's machine and returns once SSH answers.
    func wake(_ name: String) async throws
    /// Stops the host's machine now; refuses a static host and a host with a job on it.
    func sleep(_ name: String) async throws
}
