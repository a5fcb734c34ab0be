import Foundation

/// `[server]`: where deferred listens, is reached, and how long it waits for clients. (Where it
/// keeps its state is `[store]`.)
public struct ServerConfig: Sendable {
    public var listenHost: String
    public var listenPort: Int
    /// Base of every result URL, without a trailing slash.
    public var publicURL: String
    public var adminToken: String?
    /// A connection that sends nothing for this long is closed: an idle keep-alive, a request
    /// whose headers or body stall (slowloris). A response being written is never cut.
    public var idleTimeoutSeconds: Double
    /// A request body must arrive whole within this time, however it trickles.
    public var bodyTimeoutSeconds: Double
    /// Open connections at most (fewer when the file limit leaves less room); past it new
    /// ones wait in the listen queue.
    public var maxConnections: Int

    public init(listenHost: String, listenPort: Int, publicURL: String, adminToken: String?,
                idleTimeoutSeconds: Double = 30, bodyTimeoutSeconds: Double = 60, maxConnections: Int = 4096) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.publicURL = publicURL
        self.adminToken = adminToken
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.bodyTimeoutSeconds = bodyTimeoutSeconds
        self.maxConnections = maxConnections
    }

    public var bodyTimeout: Duration { .milliseconds(Int64(bodyTimeoutSeconds * 1000)) }
}
