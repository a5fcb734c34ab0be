import Hummingbird
import NIOCore

/// The request context of deferred's routes: Hummingbird's core storage and the peer's
/// address, which `[github] allowed_networks` checks.
public struct DeferredRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
