import DeferredStore
import Foundation

/// A stored webhook payload read back (an LZ4 block): the rows are the server's own, but a
/// damaged or edited database must give an error, never a trap or an allocation its bytes do
/// not justify. What reads back, compressed again, reads back the same.
enum StoredPayloadFuzzing {
    static func run(_ bytes: [UInt8]) {
        guard let payload = try? StoredPayload(body: Data(bytes), compressed: true).payload() else { return }
        precondition(payload.count <= StoredPayload.limit && payload.count <= bytes.count * 255,
                     "a block of \(bytes.count) bytes gave \(payload.count)")
        let again = StoredPayload(keeping: payload)
        precondition((try? again.payload()) == payload, "a payload compressed again does not read back as it was")
    }
}
