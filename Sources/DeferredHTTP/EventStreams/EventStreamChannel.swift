import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1 connection, but one whose first request is a job's event stream is
/// served by the stream alone, below the router: no task for the connection, no async channel
/// and, once its answer's head is written, no HTTP handlers either, since a listener may stay
/// for as long as its job runs and a thousand of them were the server's largest cost in
/// memory. Every other connection, and every stream request the router must answer itself (no
/// such job, a refused origin, a malformed request), is handed to `HTTP1Channel` with what it
/// sent, and served as before.
struct EventStreamChannel: ServerChildChannel {
    struct Connection: ServerChildChannelValue {
        let channel: any Channel
        /// The connection as Hummingbird's once it was handed over; nil when the event stream
        /// served it or it closed first.
        let handedOver: EventLoopFuture<HTTP1Channel.Value?>
    }

    let http1: HTTP1Channel
    let results: ResultsController
    /// The `Server` header the router's answers carry.
    let serverName: String?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Connection> {
        channel.eventLoop.makeCompletedFuture {
            // HTTP1Channel.setup's pipeline, with the splitter behind the HTTP/1 codec (it needs
            // the request's version) and where the async channel goes when it hands over.
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = http1.configuration.httpDecoder.maxHeaderFieldSize
            limits.maxHeaderListSize = http1.configuration.httpDecoder.maxHeaderListSize
            limits.maxHeaderFieldCount = http1.configuration.httpDecoder.maxHeaderFieldCount
            let pipeline = channel.pipeline.syncOperations
            // A first read sized for a request's head: each connection keeps its receive buffer,
            // and NIO's default (2 KiB) is most of what a waiting listener costs. Larger
            // requests grow it at the next read.
            try channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536))
            try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false,
                                                     withOutboundHeaderValidation: false, withEncoderConfiguration: .init(),
                                                     withDecoderLimitConfiguration: limits)
            let handedOver = channel.eventLoop.makePromise(of: HTTP1Channel.Value?.self)
            try pipeline.addHandler(ConnectionSplitter(results: results, serverName: serverName, handedOver: handedOver))
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandlers(http1.configuration.additionalChannelHandlers())
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: http1.configuration.idleTimeout.map(Duration.init), logger: logger))
            return Connection(channel: channel, handedOver: handedOver.futureResult)
        }
    }

    func handle(value: Connection, logger: Logger) async {
        guard let handedOver = try? await value.handedOver.get() else { return }
        await http1.handle(value: handedOver, logger: logger)
    }
}
