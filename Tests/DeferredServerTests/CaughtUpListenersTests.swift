import DeferredArtifacts
import DeferredCore
@testable import DeferredHTTP
import DeferredStore
import Foundation
import NIOCore
import NIOEmbedded
import Testing

/// A group of caught-up listeners on channels whose writability the test sets: what the group
/// does with a listener that cannot take its chunk at once, whatever the machine's load.
@Suite struct CaughtUpListenersTests {
    /// Two listeners wait together; when the job's next output comes, one is not writable (its
    /// reader is slow). The group writes to the other and leaves that one behind to its own
    /// turns, which write it the same text; then both wait together again at the next place.
    @Test func aListenerNotWritableWhenItsGroupWakesIsLeftBehindAndGetsTheSameText() async throws {
        let scratch = try await ScratchStore()
        defer { scratch.remove() }
        let (store, job) = (scratch.store, scratch.job)
        try await store.appendOutput(job.id, [(.stdout, "first\n", Date())])
        let stream = EventStream(job: job.id, token: job.token, status: job.status, start: FeedCursor(), store: store,
                                 artifacts: FileArtifactStore(directory: scratch.folder + "/artifacts"), heartbeat: .seconds(600),
                                 formatted: FormattedEvents(), resultURL: "http://127.0.0.1/r/x")
        let caughtUp = CaughtUpListeners()
        let loop = NIOAsyncTestingEventLoop()
        let channels = [NIOAsyncTestingChannel(loop: loop), NIOAsyncTestingChannel(loop: loop)]
        let listeners = channels.map { EventStreamListener(stream, channel: $0, caughtUp: caughtUp) }
        listeners.forEach { $0.start() }
        #expect(try await EventStreamChannelTests.eventually { caughtUp.waiting(on: job.id) == 2 })
        let backlog = try await Self.written(channels)
        #expect(backlog.allSatisfy { $0.contains("first") }, "\(backlog)")

        channels[1].isWritable = false
        try await store.appendOutput(job.id, [(.stdout, "second\n", Date())])
        #expect(try await EventStreamChannelTests.eventually { caughtUp.handedBack.load(ordering: .relaxed) == 1 && caughtUp.waiting(on: job.id) == 2 })
        #expect(caughtUp.leftBehind.load(ordering: .relaxed) == 1)
        let change = try await Self.written(channels)
        #expect(change[0].contains("second") && !change[0].contains("first"), "\(change[0])")
        #expect(change[1] == change[0])

        // Writable again, it takes the group's next change with the other.
        channels[1].isWritable = true
        try await store.appendOutput(job.id, [(.stdout, "third\n", Date())])
        var after = ["", ""]
        #expect(try await EventStreamChannelTests.eventually {
            for (index, channel) in channels.enumerated() { after[index] += try await Self.written(channel) }
            return after.allSatisfy { $0.contains("third") }
        })
        #expect(after[0] == after[1])
        #expect(caughtUp.handedBack.load(ordering: .relaxed) == 1)

        listeners.forEach { $0.stop() }
        #expect(caughtUp.waiting(on: job.id) == 0)
        try await loop.shutdownGracefully()
    }

    /// What was written to each channel since the last look, as text.
    private static func written(_ channels: [NIOAsyncTestingChannel]) async throws -> [String] {
        var texts: [String] = []
        for channel in channels { texts.append(try await written(channel)) }
        return texts
    }

    /// What was written to `channel` since the last look, as text.
    private static func written(_ channel: NIOAsyncTestingChannel) async throws -> String {
        var text = ""
        while let buffer = try await channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }
}
