@testable import DeferredCore
import Foundation
import Testing

/// The resources line a host sends back is the host's word: what parses is kept, the rest is
/// none with its reason.
struct JobResourcesTests {
    @Test func readsBothShellsSpellingOfTimesAndAMemoryPeak() throws {
        let dash = JobResources(times: ["1m2.500000s", "0m0.031000s"], memoryPeak: "52428800")
        #expect(dash.cpuUserSeconds == 62.5 && dash.cpuSystemSeconds == 0.031 && dash.memoryPeakBytes == 52_428_800)
        #expect(dash.unavailable.isEmpty)
        let bash = JobResources(times: ["0m0.004s", "0m0.000s"], memoryPeak: nil)
        #expect(bash.cpuUserSeconds == 0.004 && bash.cpuSystemSeconds == 0)
        #expect(bash.memoryPeakBytes == nil && bash.unavailable["memory_peak_bytes"]?.contains("memory.peak") == true)

        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(bash)) as? [String: Any])
        #expect(Set(json.keys) == ["cpu_user_seconds", "cpu_system_seconds", "memory_peak_bytes", "unavailable"])
        #expect(json["memory_peak_bytes"] is NSNull)
    }

    @Test func refusesWhatIsNotATimeOrASize() {
        for bad in ["-", "", "1m", "ms", "-1m2s", "1m-2s", "0mNaNs", "0minfs", "0m1e400s", "99999999999999999999m1s",
                    "0m1.0", "1h2s", String(repeating: "9", count: 40) + "m1s", "0m0x10s"] {
            #expect(JobResources.seconds(Substring(bad)) == nil, "\(bad)")
        }
        let hostile = JobResources(times: ["0m1s"], memoryPeak: "-5")
        #expect(hostile.cpuUserSeconds == nil && hostile.memoryPeakBytes == nil)
        #expect(hostile.unavailable.keys.sorted() == ["cpu_seconds", "memory_peak_bytes"])
        #expect(JobResources(times: ["0m1s", "0m2s"], memoryPeak: "12abc").memoryPeakBytes == nil)
    }
}
