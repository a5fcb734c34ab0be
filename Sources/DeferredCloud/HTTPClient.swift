import CCurl
import DeferredCore
import Foundation

/// One HTTP request, as the cloud APIs and `deferred submit` need them.
public struct HTTPClientRequest: Sendable {
    /// Where the body comes from: bytes in memory, or a file read as it is sent (never
    /// whole in memory), from `offset` for `length` bytes (nil: to its end).
    public enum Body: Sendable {
        case bytes(Data)
        case file(path: String, offset: UInt64 = 0, length: UInt64? = nil)
    }

    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: Body
    public var timeout: Duration

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: Data = Data(),
                timeout: Duration = .seconds(30)) {
        self.init(method: method, url: url, headers: headers, streaming: .bytes(body), timeout: timeout)
    }

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], streaming body: Body,
                timeout: Duration = .seconds(30)) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }

    /// The bytes of an in-memory body (empty for a file: signers hash a file themselves).
    public var bodyBytes: Data {
        if case .bytes(let data) = body { return data }
        return Data()
    }
}

public struct HTTPClientResponse: Sendable {
    public var status: Int
    /// Header names in lower case, in the order received.
    public var headers: [(name: String, value: String)]
    /// Empty when the body went to a file.
    public var body: Data
    /// Bytes received, in memory or to the file.
    public var bodyLength: Int

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
/// thread of its own (curl's easy interface blocks), never on an event loop. TLS peers are
/// verified (curl's default, never turned off here).
public struct HTTPClient: Sendable {
    /// The proxy settings, read once from `http_proxy`, `https_proxy`, `all_proxy` and
    /// `no_proxy` (either case), as curl and most tools read them.
    let proxies: ProxySettings

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        _ = Self.globalInit
        proxies = ProxySettings(environment: environment)
    }

    struct ProxySettings: Sendable {
        var http: String?
        var https: String?
        var noProxy: String?

        init(environment: [String: String]) {
            func value(_ name: String) -> String? {
                (environment[name] ?? environment[name.uppercased()]).flatMap { $0.isEmpty ? nil : $0 }
            }
            let all = value("all_proxy")
            // Like curl, the lower-case http_proxy only: HTTP_PROXY may come from a CGI request's Proxy header.
            http = environment["http_proxy"].flatMap { $0.isEmpty ? nil : $0 } ?? all
            https = value("https_proxy") ?? all
            noProxy = value("no_proxy")
        }

        func proxy(for url: String) -> String? {
            url.lowercased().hasPrefix("https:") ? https : http
        }
    }

    /// curl_global_init must run once, before any other curl call.
    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Sends `request`; with `responseFile`, the answer's body is written there as it
    /// arrives instead of being kept in memory.
    public func send(_ request: HTTPClientRequest, responseFile: String? = nil) async throws(HTTPClientError) -> HTTPClientResponse {
        try await perform(request, responseFile: responseFile, onData: nil)
    }

    /// Sends `request` and hands its body to `onData` as it arrives (an event stream), until the
    /// answer ends or `onData` answers false. The response's `body` stays empty.
    public func stream(_ request: HTTPClientRequest, onData: @escaping @Sendable (Data) -> Bool) async throws(HTTPClientError) -> HTTPClientResponse {
        try await perform(request, responseFile: nil, onData: onData)
    }

    private func perform(_ request: HTTPClientRequest, responseFile: String?,
                         onData: (@Sendable (Data) -> Bool)?) async throws(HTTPClientError) -> HTTPClientResponse {
        let proxies = self.proxies
        return try await OffPool.run { Self.perform(request, responseFile: responseFile, onData: onData, proxies: proxies) }.get()
    }

    /// What the callbacks read from and fill in; passed to curl as their userdata.
    private final class Exchange {
        var upload: Data
        var uploaded = 0
        var source: FileHandle?
        var sourceLeft: UInt64 = 0
        var sink: FileHandle?
        var onData: (@Sendable (Data) -> Bool)?
        var stoppedByReader = false
        var body = Data()
        var received = 0
        var headers: [(name: String, value: String)] = []
        var failure: String?
        init(upload: Data) { self.upload = upload }
    }

    private static func perform(_ request: HTTPClientRequest, responseFile: String?, onData: (@Sendable (Data) -> Bool)?,
                                proxies: ProxySettings) -> Result<HTTPClientResponse, HTTPClientError> {
        let fail = { (reason: String) in Result<HTTPClientResponse, HTTPClientError>.failure(HTTPClientError(url: request.url, reason: reason)) }
        guard let curl = curl_easy_init() else { return fail("curl_easy_init failed") }
        defer { curl_easy_cleanup(curl) }
        let exchange = Exchange(upload: request.bodyBytes)
        exchange.onData = onData
        var uploadLength = UInt64(exchange.upload.count)
        if case .file(let path, let offset, let length) = request.body {
            guard let handle = FileHandle(forReadingAtPath: path) else { return fail("cannot read \(path)") }
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
            guard offset <= size else { return fail("\(path) is shorter than the offset \(offset)") }
            do { try handle.seek(toOffset: offset) } catch { return fail("cannot seek in \(path): \(error)") }
            exchange.source = handle
            uploadLength = min(length ?? (size - offset), size - offset)
            exchange.sourceLeft = uploadLength
        }
        defer { try? exchange.source?.close() }
        if let responseFile {
            guard FileManager.default.createFile(atPath: responseFile, contents: nil),
                  let handle = FileHandle(forWritingAtPath: responseFile) else { return fail("cannot write \(responseFile)") }
            exchange.sink = handle
        }
        defer { try? exchange.sink?.close() }
        let userdata = Unmanaged.passUnretained(exchange).toOpaque()
        var list: UnsafeMutablePointer<curl_slist>?
        for header in request.headers { list = curl_slist_append(list, "\(header.name): \(header.value)") }
        // "Expect: 100-continue" only slows small bodies down.
        list = curl_slist_append(list, "Expect:")
        defer { curl_slist_free_all(list) }

        _ = deferred_curl_set_string(curl, CURLOPT_URL, request.url)
        _ = deferred_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, request.method)
        _ = deferred_curl_set_headers(curl, list)
        _ = deferred_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        _ = deferred_curl_set_long(curl, CURLOPT_TIMEOUT_MS, Int(request.timeout.components.seconds * 1000))
        _ = deferred_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS, 10_000)
        _ = deferred_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
        // Set explicitly (an empty proxy turns curl's own environment lookup off), so the
        // settings are the ones this client was made with.
        _ = deferred_curl_set_string(curl, CURLOPT_PROXY, proxies.proxy(for: request.url) ?? "")
        if let noProxy = proxies.noProxy { _ = deferred_curl_set_string(curl, CURLOPT_NOPROXY, noProxy) }
        if request.method == "HEAD" { _ = deferred_curl_set_long(curl, CURLOPT_NOBODY, 1) }
        _ = deferred_curl_set_pointer(curl, CURLOPT_WRITEDATA, userdata)
        _ = deferred_curl_set_callback(curl, CURLOPT_WRITEFUNCTION) { buffer, size, count, userdata in
            let exchange = Unmanaged<Exchange>.fromOpaque(userdata!).takeUnretainedValue()
            let bytes = UnsafeRawBufferPointer(start: buffer, count: size * count)
            if let onData = exchange.onData {
                // Answering 0 makes curl stop with a write error, which the caller asked for.
                guard onData(Data(bytes)) else { exchange.stoppedByReader = true; return 0 }
            } else if let sink = exchange.sink {
                do { try sink.write(contentsOf: bytes) } catch { exchange.failure = "cannot write the answer: \(error)"; return 0 }
            } else {
                exchange.body.append(contentsOf: bytes)
            }
            exchange.received += bytes.count
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
        if uploadLength > 0 || ["POST", "PUT", "PATCH"].contains(request.method) {
            // CURLOPT_UPLOAD means PUT to curl; the custom request above names the real method.
            _ = deferred_curl_set_long(curl, CURLOPT_UPLOAD, 1)
            _ = deferred_curl_set_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(uploadLength))
            _ = deferred_curl_set_pointer(curl, CURLOPT_READDATA, userdata)
            _ = deferred_curl_set_callback(curl, CURLOPT_READFUNCTION) { buffer, size, count, userdata in
                let exchange = Unmanaged<Exchange>.fromOpaque(userdata!).takeUnretainedValue()
                if let source = exchange.source {
                    let wanted = Int(min(UInt64(size * count), exchange.sourceLeft))
                    guard wanted > 0 else { return 0 }
                    guard let chunk = try? source.read(upToCount: wanted), !chunk.isEmpty else { return 0 }
                    chunk.copyBytes(to: UnsafeMutableRawPointer(buffer!).assumingMemoryBound(to: UInt8.self), count: chunk.count)
                    exchange.sourceLeft -= UInt64(chunk.count)
                    return chunk.count
                }
                let n = min(size * count, exchange.upload.count - exchange.uploaded)
                exchange.upload.withUnsafeBytes { bytes in
                    UnsafeMutableRawPointer(buffer!).copyMemory(from: bytes.baseAddress! + exchange.uploaded, byteCount: n)
                }
                exchange.uploaded += n
                return n
            }
        }
        let code = withExtendedLifetime(exchange) { curl_easy_perform(curl) }
        if let failure = exchange.failure { return fail(failure) }
        guard code == CURLE_OK || exchange.stoppedByReader else { return fail(String(cString: curl_easy_strerror(code))) }
        var status = 0
        _ = deferred_curl_get_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return .success(HTTPClientResponse(status: status, headers: exchange.headers, body: exchange.body, bodyLength: exchange.received))
    }
}
