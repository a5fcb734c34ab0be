import NIOCore

/// What is left of a connection's pipeline while its event stream runs: bytes from the
/// listener are dropped, and its end, or the server's graceful stop, stops the stream.
final class EventStreamSink: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let listener: EventStreamListener

    init(_ listener: EventStreamListener) {
        self.listener = listener
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // The stream ends; the listener reconnects to whichever server serves next.
            listener.stop()
            let channel = context.channel
            channel.writeAndFlush(EventStreamListener.lastChunk).whenComplete { _ in channel.close(promise: nil) }
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            // The listener closed its side (the server lets peers half-close): it is gone, and
            // would otherwise be noticed only when a heartbeat fails to reach it.
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The listener went: the job's changes forget it.
        listener.stop()
        context.fireChannelInactive()
    }
}
