import DeferredFuzzTargets
import Foundation
import Testing

/// Every input the fuzzers kept (Fuzz/Corpus) and every crash they found (Fuzz/Regressions),
/// run again through its parser: a trap here stops the test run, so a parser that regresses
/// cannot pass. `scripts/fuzz` is the long run; this is its replay, in seconds.
@Suite struct CorpusReplayTests {
    static let fuzzFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func inputs(_ kind: String, of target: FuzzTarget) -> [URL] {
        let folder = fuzzFolder.appendingPathComponent(kind).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.sorted().filter { !$0.hasPrefix(".") }.map { folder.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func replaysTheCorpusAndEveryCrashFound(_ target: FuzzTarget) throws {
        let corpus = Self.inputs("Corpus", of: target)
        let regressions = Self.inputs("Regressions", of: target)
        // An empty folder would make this test pass on nothing.
        #expect(!corpus.isEmpty, "Fuzz/Corpus/\(target.rawValue) holds no seed")
        for input in corpus + regressions {
            target.run(Array(try Data(contentsOf: input)))
        }
    }

    @Test func theTarHeadersThatOnceCrashedTheServerAreKept() {
        let names = Set(Self.inputs("Regressions", of: .tar).map(\.lastPathComponent))
        #expect(names.isSuperset(of: ["pax-record-length-too-small.tar", "pax-negative-size.tar", "long-name-negative-base256-size.tar"]))
    }
}
