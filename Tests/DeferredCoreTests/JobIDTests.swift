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
        #expect(tokens.allSatisfy { ResultToken(validating: $0) != nil && $0.count == 44 })
        // Made in the same millisecond: the time part alike, the random part all different.
        let start = Date(timeIntervalSince1970: 1_764_700_000)
        let same = (0..<1000).map { _ in ResultToken.make(at: start).rawValue }
        #expect(Set(same.map { $0.prefix(12) }).count == 1)
        #expect(Set(same.map { $0.dropFirst(12) }).count == 1000)
    }

    @Test func resultTokensSortByTheTimeTheyWereMade() {
        let start = Date(timeIntervalSince1970: 1_764_700_000)
        let tokens = (0..<1000).map { ResultToken.make(at: start.addingTimeInterval(Double($0) / 100)).rawValue }
        #expect(tokens == tokens.sorted())
        #expect(tokens.first?.hasPrefix("019ae0510f00") == true, "\(tokens.first ?? "")")
    }

    @Test func tokensOfEarlierReleasesStillAnswerAndNothingElseDoes() {
        // 32 hex digits: the tokens made before they began with the time.
        #expect(ResultToken(validating: "3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6d") != nil)
        for text in ["", "3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6", "3F2A9C0D5E6B7A8F9E0D1C2B3A4F5E6D", "3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6g",
                     String(repeating: "a", count: 43), String(repeating: "a", count: 45), "../" + String(repeating: "a", count: 41),
                     String(repeating: "é", count: 22)] {
            #expect(ResultToken(validating: text) == nil, "\(text)")
        }
    }
}
