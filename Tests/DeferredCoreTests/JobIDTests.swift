import DeferredCore
import Foundation
import Testing

@Suite struct JobIDTests {
    @Test func idsKeepTheirShapeAndSortByTheTimeTheyWereMade() {
        let start = Date(timeIntervalSince1970: 1_764_700_000)
        let ids = (0..<1000).map { JobID.make(at: start.addingTimeInterval(Double($0) / 100)) }
        for id in ids {
            #expect(id.rawValue.count == 22 && id.rawValue.hasPrefix("j-"), "\(id)")
            #expect(id.rawValue.dropFirst(2).allSatisfy { $0.isHexDigit && !$0.isUppercase }, "\(id)")
        }
        // Each a millisecond or more apart (10 ms here): in the order they were made.
        #expect(ids.map(\.rawValue) == ids.map(\.rawValue).sorted())
        // The same millisecond, or a clock that stepped back: each id still after the one before.
        let same = (0..<1000).map { _ in JobID.make(at: start).rawValue }
        for (earlier, later) in zip(same, same.dropFirst()) {
            #expect(earlier < later, "\(earlier) then \(later)")
        }
    }

    @Test func resultTokensStay128RandomBits() {
        let tokens = Set((0..<1000).map { _ in ResultToken.make().rawValue })
        #expect(tokens.count == 1000)
        #expect(tokens.allSatisfy { ResultToken(validating: $0) != nil })
    }
}
