import CCurl
import Foundation

/// One HTTP request, as the cloud APIs and `deferred submit` need them.
public struct HTTPClientRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: Data
    public var timeout: Duration

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: Data = Data(),
                timeout: Duration = .seconds(30)) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

public struct HTTPClientResponse: Sendable {
    public var status: Int
    /// Header names in lower case, in the order received.
    public var headers: [(name: String, value: String)]
    public var body: Data

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last { $0.name == lower }?.value
    }
}

/// Why a request got no HTTP answer at all (an answer with any status is a response).
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    public let url: String
    public let reason: String
    public var description: String { "cannot reach \(url): \(reason)" }
}

/// HTTP through libcurl: the one place deferred talks to libcurl. Each request runs on a
/// thread of its own (curl's easy interface blocks), never on an event loop.
public struct HTTPClient: Sendable {
    public init() { _ = Self.globalInit }

    /// curl_global_init must run once, before any other curl call.
    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public func send(_ request: HTTPClientRequest) async throws(HTTPClientError) -> HTTPClientResponse {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPClientResponse, HTTPClientError>, Never>) in
            Thread.detachNewThread { continuation.resume(returning: Self.perform(request)) }
        }
        return try result.get()
    }

    /// What the callbacks fill in; passed to curl as their userdata.
    private final class Exchange {
        let upload: Data
        var uploaded = 0
        var body = Data()
        var headers: [(name: String, value: String)] = []
        init(upload: Data) { self.upload = upload }
    }

    private static func perform(_ request: HTTPClientRequest) -> Result<HTTPClientResponse, HTTPClientError> {
        guard let curl = curl_easy_init() else { return .failure(HTTPClientError(url: request.url, reason: "curl_easy_init failed")) }
        defer { curl_easy_cleanup(curl) }
        let exchange = Exchange(upload: request.body)
        let userdata = Unmanaged.passUnretained(exchange).toOpaque()
        var list: UnsafeMutablePointer<curl_slist>?
        for header in request.headers { list = curl_slist_append(list, "\(header.name): \(header.value)") }
        // Without a body, curl adds no Content-Type; with one, "Expect: 100-continue" only slows us.
        list = curl_slist_append(list, "Expect:")
        defer { curl_slist_free_all(list) }

        _ = deferred_curl_set_string(curl, CURLOPT_URL, request.url)
        _ = deferred_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, request.method)
        _ = deferred_curl_set_headers(curl, list)
        _ = deferred_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        _ = deferred_curl_set_long(curl, CURLOPT_TIMEOUT_MS, Int(request.timeout.components.seconds * 1000))
        _ = deferred_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS, 10_000)
        _ = deferred_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = deferred_curl_set_pointer(curl, CURLOPT_WRITEDATA, userdata)
        _ = deferred_curl_set_callback(curl, CURLOPT_WRITEFUNCTION) { buffer, size, count, userdata in
            let exchange = Unmanaged<Exchange>.fromOpaque(userdata!).takeUnretainedValue()
            exchange.body.append(UnsafeRawPointer(buffer!).assumingMemoryBound(to: UInt8.self), count: size * count)
            return size * count
        }
        _ = deferred_curl_set_pointer(curl, CURLOPT_HEADERDATA, userdata)
        _ = deferred_curl_set_callback(curl, CURLOPT_HEADERFUNCTION) { buffer, size, count, userdata in
            let exchange = Unmanaged<Exchange>.fromOpaque(userdata!).takeUnretainedValue()
            let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: size * count), as: UTF8.self)
            if line.hasPrefix("HTTP/") { exchange.headers = [] }  // a new response (after 100 or a redirect)
            if let colon = line.firstIndex(of: ":") {
                exchange.headers.append((name: line[..<colon].lowercased(),
                                         value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)))
            }
            return size * count
        }
        if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
            _ = deferred_curl_set_long(curl, CURLOPT_UPLOAD, 1)
            _ = deferred_curl_set_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.count))
            _ = deferred_curl_set_pointer(curl, CURLOPT_READDATA, userdata)
            _ = deferred_curl_set_callback(curl, CURLOPT_READFUNCTION) { buffer, size, count, userdata in
                let exchange = Unmanaged<Exchange>.fromOpaque(userdata!).takeUnretainedValue()
                let n = min(size * count, exchange.upload.count - exchange.uploaded)
                exchange.upload.withUnsafeBytes { bytes in
                    UnsafeMutableRawPointer(buffer!).copyMemory(from: bytes.baseAddress! + exchange.uploaded, byteCount: n)
                }
                exchange.uploaded += n
                return n
            }
            // CURLOPT_UPLOAD means PUT; the custom request above names the real method.
        }
        let code = withExtendedLifetime(exchange) { curl_easy_perform(curl) }
        guard code == CURLE_OK else {
            return .failure(HTTPClientError(url: request.url, reason: String(cString: curl_easy_strerror(code))))
        }
        var status = 0
        _ = deferred_curl_get_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return .success(HTTPClientResponse(status: status, headers: exchange.headers, body: exchange.body))
    }
}
