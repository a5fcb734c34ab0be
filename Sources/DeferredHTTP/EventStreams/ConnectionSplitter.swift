import DeferredCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// Decides, at a connection's first request, who serves it: the job's event stream
/// (`EventStreamListener`, behind an `EventStreamSink` that takes this handler's place and the
/// HTTP handlers'), or Hummingbird, to which it hands the connection with the parts it held.
/// Until it has decided it holds what arrives and reads no more.
final class ConnectionSplitter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// No request yet.
        case waiting
        /// An event stream's request, while its job is looked up: the parts so far, and
        /// whether the peer closed its side.
        case asking(parts: [HTTPServerRequestPart], inputClosed: Bool)
        /// Hummingbird's: everything passes through.
        case handedOver
        /// The stream's, or closed: what still arrives here is dropped.
        case done
    }

    private let results: ResultsController
    private let serverName: String?
    private let handedOver: EventLoopPromise<HTTP1Channel.Value?>
    private var state = State.waiting
    /// A read asked for while the decision was pending, to be done once it is made.
    private var readHeld = false

    init(results: ResultsController, serverName: String?, handedOver: EventLoopPromise<HTTP1Channel.Value?>) {
        self.results = results
        self.serverName = serverName
        self.handedOver = handedOver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .waiting:
            guard case .head(let head) = part, Self.mayBeEventStream(head) else {
                return handOver(context, parts: [part], inputClosed: false)
            }
            state = .asking(parts: [part], inputClosed: false)
            let results = self.results, splitter = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let target = head.uri, origin = Self.field("Origin", of: head), lastEventID = Self.field("Last-Event-ID", of: head)
            Task {
                let opened = await results.openEventStream(target: target, origin: origin, lastEventID: lastEventID)
                splitter.eventLoop.execute {
                    let (splitter, context) = splitter.value
                    splitter.decided(context, head: head, opened)
                }
            }
        case .asking(var parts, let inputClosed):
            parts.append(part)
            state = .asking(parts: parts, inputClosed: inputClosed)
        case .handedOver:
            context.fireChannelRead(data)
        case .done:
            break
        }
    }

    /// A field's value as the router reads it: repeated fields joined by commas.
    private static func field(_ name: String, of head: HTTPRequestHead) -> String? {
        let values = head.headers[name]
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// Only an HTTP/1.1 GET of `/r/…/events` is worth a look in the store; the rest goes at
    /// once. (The stream is sent chunked, which HTTP/1.0 does not have.)
    private static func mayBeEventStream(_ head: HTTPRequestHead) -> Bool {
        guard head.method == .GET, head.version == .http1_1 else { return false }
        return head.uri.hasPrefix("/r/") && (head.uri.hasSuffix("/events") || head.uri.contains("/events?"))
    }

    private func decided(_ context: ChannelHandlerContext, head: HTTPRequestHead, _ opened: (headers: HTTPFields, stream: EventStream)?) {
        guard case .asking(let parts, let inputClosed) = state else { return }
        guard let opened else { return handOver(context, parts: parts, inputClosed: inputClosed) }
        state = .done
        handedOver.succeed(nil)
        var headers = HTTPHeaders(opened.headers.map { ($0.name.rawName, $0.value) })
        // What the router's answers carry too.
        headers.replaceOrAdd(name: "Date", value: HTTPDate.string(Date()))
        if let serverName { headers.replaceOrAdd(name: "Server", value: serverName) }
        headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
        let channel = context.channel, listener = EventStreamListener(opened.stream, channel: channel, caughtUp: results.caughtUp)
        do {
            try becomeStream(context, listener)
        } catch {
            channel.close(promise: nil)
            return
        }
        listener.start()
        // Reads go on, so a listener that leaves is noticed; what it sends is dropped.
        if readHeld { channel.read() }
    }

    /// With the head written, the HTTP handlers are no use to the stream: its chunks go out
    /// as bytes. The decoder goes first, while this handler still drops what it may yield.
    private func becomeStream(_ context: ChannelHandlerContext, _ listener: EventStreamListener) throws {
        let pipeline = context.pipeline.syncOperations
        try pipeline.addHandler(EventStreamSink(listener))
        _ = try pipeline.removeHandler(pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self))
        _ = try pipeline.removeHandler(pipeline.handler(type: HTTPResponseEncoder.self))
        _ = try pipeline.removeHandler(pipeline.handler(type: HTTPConnectionStateHandler.self))
        _ = try pipeline.removeHandler(pipeline.handler(type: HTTP1ToHTTPServerCodec.self))
        _ = pipeline.removeHandler(self)
    }

    /// Gives the connection to Hummingbird: its async channel goes behind the pipeline, and
    /// what arrived so far is passed on as if it came now.
    private func handOver(_ context: ChannelHandlerContext, parts: [HTTPServerRequestPart], inputClosed: Bool) {
        do {
            let channel = try HTTP1Channel.Value(wrappingChannelSynchronously: context.channel,
                                                 configuration: .init(isOutboundHalfClosureEnabled: true))
            state = .handedOver
            handedOver.succeed(channel)
        } catch {
            state = .done
            handedOver.succeed(nil)
            context.close(promise: nil)
            return
        }
        for part in parts { context.fireChannelRead(wrapInboundOut(part)) }
        if inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.fireChannelReadComplete()
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if case .asking = state {
            readHeld = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch (state, event as? ChannelEvent) {
        case (.waiting, .inputClosed?):
            // The peer closed its side before a whole request: none will come.
            state = .done
            handedOver.succeed(nil)
            context.close(promise: nil)
        case (.asking(let parts, _), .inputClosed?):
            state = .asking(parts: parts, inputClosed: true)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .waiting:
            // Hummingbird answers what went wrong (a malformed request: 400) as it always has.
            handOver(context, parts: [], inputClosed: false)
            context.fireErrorCaught(error)
        case .asking(let parts, let inputClosed):
            handOver(context, parts: parts, inputClosed: inputClosed)
            context.fireErrorCaught(error)
        case .handedOver:
            context.fireErrorCaught(error)
        case .done:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        settle()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        settle()
    }

    /// A connection that closed before its first request was decided was no one's.
    private func settle() {
        switch state {
        case .waiting, .asking:
            state = .done
            handedOver.succeed(nil)
        case .handedOver, .done:
            break
        }
    }
}
