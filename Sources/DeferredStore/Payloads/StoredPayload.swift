import Foundation

/// A webhook payload as the store keeps it: an LZ4 block when that makes it smaller. A push is
/// 7–30 KB of JSON; kept whole, its overflow pages were a third of what the intake wrote to disk
/// for each delivery, on the single writer every webhook waits for. It is compressed by the
/// request's own task, before its turn at the writer; LZ4, as it runs for every webhook, for
/// its speed rather than its ratio.
public struct StoredPayload: Equatable, Sendable {
    /// What the `body` column holds.
    public var body: Data
    /// Whether `body` is an `LZ4Block` (the `compressed` column); rows of earlier releases are not.
    public var compressed: Bool

    /// The largest payload a stored one may decompress to: more than any webhook may send.
    public static let limit = 25 << 20

    public init(body: Data, compressed: Bool) {
        self.body = body
        self.compressed = compressed
    }

    /// `payload` compressed, or as it is if compressing does not make it smaller.
    public init(keeping payload: Data) {
        if let smaller = LZ4Block.compress(payload), smaller.count < payload.count {
            self.init(body: smaller, compressed: true)
        } else {
            self.init(body: payload, compressed: false)
        }
    }

    /// The payload as GitHub sent it.
    public func payload() throws(StoreError) -> Data {
        guard compressed else { return body }
        do throws(LZ4Block.Failure) {
            return try LZ4Block.decompress(body, limit: Self.limit)
        } catch {
            throw .corrupt("a stored webhook payload cannot be read: \(error)")
        }
    }
}
