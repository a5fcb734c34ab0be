@testable import DeferredCloud
import DeferredCore
import Foundation
import Testing

/// The parts of the Hetzner and DigitalOcean clients that read what an API sends or shape
/// what deferred sends: hostile headers never trap, names and labels fit each cloud's rules.
@Suite struct ServerAPIClientTests {
    private func response(_ headers: [(String, String)]) -> HTTPClientResponse {
        HTTPClientResponse(status: 429, headers: headers.map { (name: $0.0.lowercased(), value: $0.1) }, body: Data(), bodyLength: 0)
    }

    @Test func aRateLimitsWaitIsReadFromEitherHeaderAndBounded() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(BearerJSONAPI.retryAfter(response([("Retry-After", "3")]), now: now) == .seconds(3))
        #expect(BearerJSONAPI.retryAfter(response([("RateLimit-Reset", "1000005")]), now: now) == .seconds(5))
        #expect(BearerJSONAPI.retryAfter(response([("RateLimit-Reset", "999000")]), now: now) == .zero)
        // Numbers no API means, which would trap a conversion unbounded: a day at most, or nothing.
        for hostile in ["1e300", "inf", "nan", "-1", "99999999999999999999999"] {
            let wait = BearerJSONAPI.retryAfter(response([("Retry-After", hostile), ("RateLimit-Reset", hostile)]), now: now)
            #expect(wait == nil || wait! <= .seconds(86_400), "\(hostile): \(String(describing: wait))")
        }
        #expect(BearerJSONAPI.retryAfter(response([]), now: now) == nil)
    }

    @Test func metricActionsNameThePathsShapeNotEachServer() {
        #expect(BearerJSONAPI.shape(of: "/servers/42/actions/poweron") == "/servers/{id}/actions/poweron")
        #expect(BearerJSONAPI.shape(of: "/droplets?tag_name=managed-by%3Adeferred&page=2") == "/droplets")
    }

    @Test func labelsAndTagsKeepToEachCloudsRules() {
        #expect(HetznerClient.labelValue("builders") == "builders")
        #expect(HetznerClient.labelValue("my project/ü") == "my_project")
        #expect(HetznerClient.labelValue(String(repeating: "a", count: 80)).count == 63)
        #expect(HetznerClient.labelValue("--x--") == "x")
        #expect(DigitalOceanClient.tag("deferred-fleet", "big builders:2") == "deferred-fleet:big_builders_2")
        #expect(DigitalOceanClient.tag("k", String(repeating: "v", count: 300)).count == 255)
        let client = DigitalOceanClient(token: "t")
        #expect(client.kept(label: "a b") == "a_b")
    }

    @Test func datesAreReadAsEitherCloudWritesThem() throws {
        let hetzner = try #require(RFC3339.date("2016-01-30T23:50:00+00:00"))
        let ocean = try #require(RFC3339.date("2016-01-30T23:50:00Z"))
        #expect(hetzner == ocean)
        #expect(RFC3339.date("2016-01-30T23:50:00.123Z") != nil)
        #expect(RFC3339.date("yesterday") == nil)
    }
}
