import DeferredCore
import DeferredStore
import NIOCore
import Synchronization

/// The event-stream listeners served below the router that are caught up and wait for their
/// job's next change, in groups by the place they wait at. A group is woken as one: one
/// observation of the job's changes, one task, one read of the feed, one chunk, and one pass
/// over the listeners on each event loop; then it waits at the next place. A thousand
/// listeners of a running job cost one turn a change, not a thousand.
///
/// Whatever a group cannot take in that one step (a page of many, the job's end, a failed
/// read, a listener that reads slower than the job writes) goes back to each listener's own
/// turns (`EventStreamListener`), which take it from the listener's cursor as ever.
public final class CaughtUpListeners: Sendable {
    /// Where listeners wait: a job's feed at a cursor, as of a version of its changes.
    struct Place: Hashable {
        var job: JobID
        var cursor: FeedCursor
        var version: UInt64
    }

    private struct Group {
        /// Which group at a place this is: a newer one may stand there once it woke.
        var serial: UInt64
        var members: [ObjectIdentifier: EventStreamListener]
        /// Any member's stream: they share its job, store and heartbeat.
        var stream: EventStream
        var observation: JobChanges.Observation?
    }

    private struct State {
        var groups: [Place: Group] = [:]
        var serials: UInt64 = 0
    }

    private let state = Mutex(State())
    /// Listeners a group's turn gave back to their own turns, for the tests of what the groups take.
    public let handedBack = Atomic<Int>(0)
    /// Of those, listeners that did not take a group's chunk at once (reading slower than the job writes).
    public let leftBehind = Atomic<Int>(0)
    private static let keepalive = EventStreamListener.chunk(EventStream.keepalive)

    public init() {}

    /// How many listeners of the job wait for its next change now.
    public func waiting(on job: JobID) -> Int {
        state.withLock { state in
            state.groups.reduce(0) { $0 + ($1.key.job == job ? $1.value.members.count : 0) }
        }
    }

    /// `listeners`, caught up at `place`, wait there with whoever waits there already.
    /// `stream` is any of theirs: they share its job, store and heartbeat.
    func join(_ listeners: [EventStreamListener], at place: Place, of stream: EventStream) {
        let staying = listeners.filter { $0.waits(at: place) }
        guard !staying.isEmpty else { return }
        let formed: UInt64? = state.withLock { state in
            if state.groups[place] != nil {
                for listener in staying { state.groups[place]?.members[ObjectIdentifier(listener)] = listener }
                return nil
            }
            state.serials += 1
            let members = Dictionary(staying.map { (ObjectIdentifier($0), $0) }, uniquingKeysWith: { first, _ in first })
            state.groups[place] = Group(serial: state.serials, members: members, stream: stream)
            return state.serials
        }
        // One stopped after it took its place but before it was in the group: out again.
        for listener in staying where listener.isStopped { leave(listener, at: place) }
        guard let serial = formed else { return }
        let changes = stream.store.changes
        let observation = changes.observe(place.job, after: place.version, upTo: stream.heartbeat) { [self] in
            wake(place, serial)
        }
        let kept = state.withLock { state in
            guard state.groups[place]?.serial == serial else { return false }
            state.groups[place]?.observation = observation
            return true
        }
        // Woken at once, or every member left before it was set.
        if !kept { changes.cancel(observation) }
    }

    /// The listener went: its group forgets it, and a group left empty stops observing.
    func leave(_ listener: EventStreamListener, at place: Place) {
        let emptied = state.withLock { state -> Group? in
            guard state.groups[place]?.members.removeValue(forKey: ObjectIdentifier(listener)) != nil,
                  state.groups[place]?.members.isEmpty == true else { return nil }
            return state.groups.removeValue(forKey: place)
        }
        if let emptied, let observation = emptied.observation { emptied.stream.store.changes.cancel(observation) }
    }

    /// The group's change or time limit came: its members leave the place together.
    private func wake(_ place: Place, _ serial: UInt64) {
        let group = state.withLock { state -> Group? in
            guard let group = state.groups[place], group.serial == serial else { return nil }
            state.groups[place] = nil
            return group
        }
        guard let group, !group.members.isEmpty else { return }
        Task { await turn(Array(group.members.values), from: place, of: group.stream) }
    }

    /// What EventStream.turn does for one listener, done once for all of them.
    private func turn(_ members: [EventStreamListener], from place: Place, of stream: EventStream) async {
        let version = stream.store.changes.version(of: place.job)
        guard version != place.version else {
            // The time limit, without a change.
            let sent = await send(Self.keepalive, to: members)
            return join(sent, at: place, of: stream)
        }
        guard let feed = try? await stream.store.feed(of: place.job, after: place.cursor), !feed.hasMore, !feed.jobEnded else {
            handBack(members)
            return
        }
        var next = place
        next.version = version
        if let last = feed.items.last {
            next.cursor = last.cursor
            let sent = await send(EventStreamListener.chunk(stream.text(of: feed, from: place.cursor)), to: members)
            for member in sent { member.moved(to: next.cursor) }
            join(sent, at: next, of: stream)
        } else {
            join(members, at: next, of: stream)
        }
    }

    /// Writes `chunk` to each member that takes it now, in one pass on each event loop; the
    /// rest (not writable, or stopped) take their own turns. Returns those written to.
    private func send(_ chunk: ByteBuffer, to members: [EventStreamListener]) async -> [EventStreamListener] {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, members: [EventStreamListener])] = [:]
        for member in members {
            byLoop[ObjectIdentifier(member.eventLoop), default: (member.eventLoop, [])].members.append(member)
        }
        var sent: [EventStreamListener] = []
        sent.reserveCapacity(members.count)
        for (loop, members) in byLoop.values {
            let written = (try? await loop.submit { members.filter { $0.sendNow(chunk) } }.get()) ?? []
            sent += written
            if written.count < members.count {
                let took = Set(written.map(ObjectIdentifier.init))
                let behind = members.filter { !took.contains(ObjectIdentifier($0)) && !$0.isStopped }
                leftBehind.add(behind.count, ordering: .relaxed)
                handBack(behind)
            }
        }
        return sent
    }

    private func handBack(_ members: [EventStreamListener]) {
        let staying = members.filter { !$0.isStopped }
        handedBack.add(staying.count, ordering: .relaxed)
        for member in staying { member.takeTurns() }
    }
}
