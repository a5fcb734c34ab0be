import DeferredStore
import NIOCore
import Synchronization

/// An event stream served below the router: it takes the stream's turns in a short task and,
/// caught up, leaves nothing running — only an observation of the job's changes holds it
/// until the next change or heartbeat. A thousand listeners waiting on a job cost their
/// connections and these few bytes each, not a thousand suspended tasks. Its connection has
/// no HTTP handlers left (`ConnectionSplitter` wrote the head): it writes the chunks itself.
final class EventStreamListener: Sendable {
    private struct State {
        var cursor: FeedCursor
        var observation: JobChanges.Observation?
        var task: Task<Void, Never>?
        /// Which wake-up the latest task answers: an observation woken at once must not be
        /// taken for the one its newer task sets.
        var turn: UInt64 = 0
        var stopped = false
    }

    private let stream: EventStream
    private let channel: any Channel
    private let state: Mutex<State>

    init(_ stream: EventStream, channel: any Channel) {
        self.stream = stream
        self.channel = channel
        self.state = Mutex(State(cursor: stream.start))
    }

    func start() { takeTurns(afterWaitingOn: nil) }

    /// The listener went or the server stops: no more turns, and the job's changes forget it.
    func stop() {
        let (observation, task) = state.withLock { state in
            state.stopped = true
            defer { (state.observation, state.task) = (nil, nil) }
            return (state.observation, state.task)
        }
        if let observation { stream.store.changes.cancel(observation) }
        task?.cancel()
    }

    private func takeTurns(afterWaitingOn version: UInt64?) {
        let turn: UInt64? = state.withLock { state in
            guard !state.stopped else { return nil }
            state.turn += 1
            state.observation = nil
            return state.turn
        }
        guard let turn else { return }
        let task = Task { await self.turns(turn, afterWaitingOn: version) }
        let stopped = state.withLock { state in
            if state.turn == turn { state.task = task }
            return state.stopped
        }
        if stopped { task.cancel() }
    }

    private func turns(_ turn: UInt64, afterWaitingOn version: UInt64?) async {
        do {
            if let version { try await stream.woke(after: version, write) }
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
                    // The task ends here; the observation holds the listener until it is woken.
                    state.withLock { $0.cursor = next }
                    let observation = stream.store.changes.observe(stream.job, after: version, upTo: stream.heartbeat) {
                        self.takeTurns(afterWaitingOn: version)
                    }
                    let stopped = state.withLock { state in
                        if !state.stopped, state.turn == turn { (state.observation, state.task) = (observation, nil) }
                        return state.stopped
                    }
                    if stopped { stream.store.changes.cancel(observation) }
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
