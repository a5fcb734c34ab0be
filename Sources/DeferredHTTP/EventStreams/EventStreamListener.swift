import DeferredStore
import NIOCore
import Synchronization

/// An event stream served below the router: it takes the stream's turns in a short task and,
/// caught up, leaves nothing running — it waits in `CaughtUpListeners` with every listener
/// caught up at the same place, until their next change or heartbeat, which they take
/// together. A thousand listeners waiting on a job cost their connections and these few bytes
/// each, not a thousand suspended tasks. Its connection has no HTTP handlers left
/// (`ConnectionSplitter` wrote the head): it writes the chunks itself.
final class EventStreamListener: Sendable {
    private struct State {
        var cursor: FeedCursor
        /// Where it waits with others, while it does.
        var place: CaughtUpListeners.Place?
        var task: Task<Void, Never>?
        /// Which turns the latest task takes: a task that ended must not be taken for a newer one.
        var turn: UInt64 = 0
        var stopped = false
    }

    private let stream: EventStream
    private let channel: any Channel
    private let caughtUp: CaughtUpListeners
    private let state: Mutex<State>

    init(_ stream: EventStream, channel: any Channel, caughtUp: CaughtUpListeners) {
        self.stream = stream
        self.channel = channel
        self.caughtUp = caughtUp
        self.state = Mutex(State(cursor: stream.start))
    }

    var eventLoop: any EventLoop { channel.eventLoop }

    var isStopped: Bool { state.withLock { $0.stopped } }

    func start() { takeTurns() }

    /// The listener went or the server stops: no more turns, and its group forgets it.
    func stop() {
        let (place, task) = state.withLock { state in
            state.stopped = true
            defer { (state.place, state.task) = (nil, nil) }
            return (state.place, state.task)
        }
        if let place { caughtUp.leave(self, at: place) }
        task?.cancel()
    }

    /// Takes turns of its own from its cursor, until it is caught up again.
    func takeTurns() {
        let turn: UInt64? = state.withLock { state in
            guard !state.stopped else { return nil }
            state.turn += 1
            state.place = nil
            return state.turn
        }
        guard let turn else { return }
        let task = Task { await self.turns(turn) }
        let stopped = state.withLock { state in
            if state.turn == turn { state.task = task }
            return state.stopped
        }
        if stopped { task.cancel() }
    }

    /// It waits at `place` now, unless it stopped.
    func waits(at place: CaughtUpListeners.Place) -> Bool {
        state.withLock { state in
            guard !state.stopped else { return false }
            state.place = place
            return true
        }
    }

    /// Its group wrote it the feed up to `cursor`.
    func moved(to cursor: FeedCursor) {
        state.withLock { $0.cursor = cursor }
    }

    /// On its event loop: writes `chunk` if the listener is there and takes it without waiting.
    /// A stop, and the end a graceful stop writes, happen on the same loop: nothing follows them.
    func sendNow(_ chunk: ByteBuffer) -> Bool {
        guard !isStopped, channel.isWritable else { return false }
        channel.writeAndFlush(chunk, promise: nil)
        return true
    }

    private func turns(_ turn: UInt64) async {
        do {
            var cursor = state.withLock { $0.cursor }
            while !Task.isCancelled {
                switch try await stream.turn(from: cursor, write) {
                case .readOn(let next):
                    cursor = next
                case .ended:
                    try Task.checkCancellation()
                    try await channel.writeAndFlush(Self.lastChunk).get()
                    channel.close(promise: nil)
                    return
                case .wait(let next, let version):
                    // The task ends here; its group holds the listener until they are woken.
                    state.withLock { state in
                        state.cursor = next
                        if state.turn == turn { state.task = nil }
                    }
                    caughtUp.join([self], at: .init(job: stream.job, cursor: next, version: version), of: stream)
                    return
                }
            }
        } catch {
            // The listener went, or the store failed: it reconnects and resumes from its last id.
            channel.close(promise: nil)
        }
    }

    /// Waits for a write only when the listener reads slower than the job writes: then it
    /// holds its own turn, not the server's memory. A write to a listener that went fails
    /// unseen; its connection's end stops the listener.
    private func write(_ buffer: ByteBuffer) async throws {
        // Stopped: the stream's end may be written already, and nothing may follow it.
        try Task.checkCancellation()
        guard buffer.readableBytes > 0 else { return }  // an empty chunk would end the stream
        let chunk = Self.chunk(buffer)
        if channel.isWritable {
            channel.writeAndFlush(chunk, promise: nil)
        } else {
            try await channel.writeAndFlush(chunk).get()
        }
    }

    /// `data` as one chunk of HTTP/1.1's chunked body.
    static func chunk(_ data: ByteBuffer) -> ByteBuffer {
        var data = data
        var chunk = ByteBuffer()
        chunk.reserveCapacity(data.readableBytes + 12)
        chunk.writeString(String(data.readableBytes, radix: 16))
        chunk.writeStaticString("\r\n")
        chunk.writeBuffer(&data)
        chunk.writeStaticString("\r\n")
        return chunk
    }

    /// The chunked body's end.
    static let lastChunk = ByteBuffer(string: "0\r\n\r\n")
}
