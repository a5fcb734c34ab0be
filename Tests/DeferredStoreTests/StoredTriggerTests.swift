import DeferredCore
@testable import DeferredStore
import DeferredTestSupport
import Foundation
import Testing

/// A push's trigger is stored as text written by hand: the fields JSONEncoder writes for it,
/// read back as the same trigger, whatever its strings hold.
@Suite struct StoredTriggerTests {
    @Test func aPushIsStoredAsJSONEncoderWritesItAndReadsBackTheSame() throws {
        let encoder = JSONEncoder()
        var generator = SeededGenerator(seed: 61)
        for _ in 0..<1_000 {
            let trigger = Trigger.push(PushTrigger(repository: generator.hostileString(), ref: generator.hostileString(),
                                                   commit: generator.hostileString(), delivery: generator.hostileString(),
                                                   pusher: generator.hostileString(), cloneURL: generator.hostileString()))
            let stored = try JobRecord.storedText(of: trigger)
            // JSONEncoder's key order changes from run to run: the same fields and values.
            let fields = try JSONSerialization.jsonObject(with: Data(stored.utf8)) as? [String: String]
            let encoded = try JSONSerialization.jsonObject(with: encoder.encode(trigger)) as? [String: String]
            #expect(fields != nil && fields == encoded, "\(trigger)")
            #expect(try JSONDecoder().decode(Trigger.self, from: Data(stored.utf8)) == trigger)
        }
    }
}
