import DeferredCore
import Foundation

/// Everything deferred reads from a JSON cloud API's answer (servers, lists, actions, error
/// bodies, rate-limit headers, dates) as one function of bytes: what the fuzzer drives and its
/// corpus replay runs. A build host's cloud is outside too; no bytes may trap.
public enum CloudAnswers {
    /// How many shapes `bytes` read as; the count only shows the fuzzer got somewhere.
    @discardableResult
    public static func read(_ bytes: [UInt8]) -> Int {
        let body = Data(bytes)
        var read = HetznerClient.readAnswers(body) + DigitalOceanClient.readAnswers(body)
        // The first line as header values and a date.
        let line = String(decoding: bytes.prefix { $0 != 0x0A }.prefix(256), as: UTF8.self)
        let response = HTTPClientResponse(status: 429, headers: [(name: "retry-after", value: line), (name: "ratelimit-reset", value: line)],
                                          body: body, bodyLength: bytes.count)
        if let wait = BearerJSONAPI.retryAfter(response) {
            precondition(wait >= .zero && wait <= .seconds(86_400), "a rate limit's wait out of bounds: \(wait)")
            read += 1
        }
        if RFC3339.date(line) != nil { read += 1 }
        _ = DigitalOceanClient.tag(line, line)
        _ = HetznerClient.labelValue(line)
        return read
    }
}
