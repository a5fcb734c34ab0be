import DeferredCore
import DeferredDemo
import DeferredStore
@testable import DeferredHTTP
import DeferredTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The dashboard over real HTTP on loopback: who it lets in (bearer, basic, the login form's
/// cookie) and who it turns away, what its pages show, and that its forms change nothing
/// without their form token.
@Suite struct DashboardTests {
    static let token = "admin-token-for-tests"

    static func harness(adminToken: String? = Self.token) async throws -> ServerHarness {
        let harness = try await ServerHarness()
        harness.config.server.adminToken = adminToken
        return harness
    }

    static func text(_ response: TestResponse) -> String { String(buffer: response.body) }

    static let html: HTTPFields = [.accept: "text/html,application/xhtml+xml"]
    static let bearer: HTTPFields = [.authorization: "Bearer \(token)"]

    static func cookie(_ value: String) -> HTTPFields { [.cookie: "theme=dark; deferred_session=\(value)"] }

    /// A session cookie made the way the server documents it: an expiry and the hex HMAC-SHA256
    /// of "session <expiry>" under the admin token.
    static func session(expiring expiry: Int, token: String = Self.token) -> String {
        "\(expiry)." + WebhookSignature.sign(body: Data("session \(expiry)".utf8), secret: token).dropFirst("sha256=".count)
    }

    @Test func withoutAnAdminTokenTheDashboardIsOff() async throws {
        let harness = try await Self.harness(adminToken: nil)
        try await harness.serve(dispatching: false) { client in
            for path in ["/", "/jobs/j-0", "/projects/sample", "/login", "/dashboard/dashboard.css"] {
                let response = try await client.execute(uri: path, method: .get, headers: Self.bearer)
                #expect(response.status == .notFound, "\(path)")
                #expect((ServerHarness.json(response)["error"] as? String)?.contains("admin_token_env") == true, "\(path)")
            }
            let login = try await client.execute(uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                                 body: ByteBuffer(string: "token=anything"))
            #expect(login.status == .notFound)
            #expect(login.headers[.setCookie] == nil)
        }
    }

    @Test func pagesRefuseWithoutTheTokenAndOpenWithIt() async throws {
        let harness = try await Self.harness()
        try await harness.serve(dispatching: false) { client in
            // Nothing, a wrong bearer, a wrong basic password: 401 JSON for a program…
            for headers: HTTPFields in [[:], [.authorization: "Bearer nope"], [.authorization: "Basic " + Data("admin:nope".utf8).base64EncodedString()],
                                        [.authorization: "Bearer"], Self.cookie("garbage")] {
                let refused = try await client.execute(uri: "/", method: .get, headers: headers)
                #expect(refused.status == .unauthorized, "\(headers)")
                #expect(refused.headers[.wwwAuthenticate] == #"Bearer realm="deferred""#)
                #expect((ServerHarness.json(refused)["error"] as? String)?.contains("admin token") == true)
                #expect(!Self.text(refused).contains("loopback"))
            }
            // …and for a browser, the login form, coming back to the page it asked for.
            let redirected = try await client.execute(uri: "/jobs/j-1?x=1", method: .get, headers: Self.html)
            #expect(redirected.status == .seeOther)
            #expect(redirected.headers[.location] == "/login?next=/jobs/j-1%3Fx%3D1")
            let form = try await client.execute(uri: "/login?next=/jobs/j-1", method: .get, headers: Self.html)
            #expect(form.status == .ok)
            #expect(Self.text(form).contains(#"<input type="hidden" name="next" value="/jobs/j-1">"#))

            // The token as a bearer or as HTTP Basic's password opens the page.
            for headers: HTTPFields in [Self.bearer, [.authorization: "Basic " + Data("anyone:\(Self.token)".utf8).base64EncodedString()]] {
                let page = try await client.execute(uri: "/", method: .get, headers: headers)
                #expect(page.status == .ok)
                #expect(page.headers[.contentType] == "text/html; charset=utf-8")
                #expect(page.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("script-src 'self'") == true)
                let html = Self.text(page)
                #expect(html.contains(#"<td class="name">loopback</td>"#), "\(html)")
                #expect(html.contains(#"<a href="/projects/sample">sample</a>"#))
                #expect(html.contains("always on"), "a static host has no wake or sleep button")
            }
        }
    }

    @Test func theLoginFormSetsASessionCookieThatEndsByItself() async throws {
        let harness = try await Self.harness()
        try await harness.serve(dispatching: false) { client in
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .accept: "text/html"]
            // Not a form: refused as such, nothing set.
            let json = try await client.execute(uri: "/login", method: .post, headers: [.contentType: "application/json"],
                                                body: ByteBuffer(string: #"{"token": "\#(Self.token)"}"#))
            #expect(json.status == .unsupportedMediaType)
            #expect(json.headers[.setCookie] == nil)
            #expect((ServerHarness.json(json)["error"] as? String)?.contains("application/x-www-form-urlencoded") == true)
            let wrong = try await client.execute(uri: "/login", method: .post, headers: form, body: ByteBuffer(string: "token=guess&next=%2Fjobs%2Fj-1"))
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.setCookie] == nil)
            #expect(Self.text(wrong).contains("That is not the admin token."))

            // Another site is never where a sign-in leads.
            for next in ["https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example", "%2F%5Cevil.example"] {
                let signedIn = try await client.execute(uri: "/login", method: .post, headers: form,
                                                        body: ByteBuffer(string: "token=\(Self.token)&next=\(next)"))
                #expect(signedIn.headers[.location] == "/", "\(next)")
            }
            let signedIn = try await client.execute(uri: "/login", method: .post, headers: form,
                                                    body: ByteBuffer(string: "token=\(Self.token)&next=%2Fprojects%2Fsample"))
            #expect(signedIn.status == .seeOther)
            #expect(signedIn.headers[.location] == "/projects/sample")
            let cookie = try #require(signedIn.headers[.setCookie])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"))
            #expect(!cookie.contains(Self.token), "the cookie never holds the token")
            let value = try #require(cookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last.map(String.init))
            // It is what the server documents, made independently here.
            let expiry = try #require(value.split(separator: ".").first.flatMap { Int($0) })
            #expect(value == Self.session(expiring: expiry))
            #expect(abs(Double(expiry) - Date().timeIntervalSince1970 - 7 * 86_400) < 60)

            #expect(try await client.execute(uri: "/projects/sample", method: .get, headers: Self.cookie(value)).status == .ok)
            // Expired, tampered with, or made with another token: refused.
            let past = Int(Date().timeIntervalSince1970) - 10
            let mac = value.split(separator: ".").last.map(String.init) ?? ""
            for bad in [Self.session(expiring: past), "\(expiry + 86_400).\(mac)", Self.session(expiring: expiry, token: "another token")] {
                #expect(try await client.execute(uri: "/", method: .get, headers: Self.cookie(bad)).status == .unauthorized, "\(bad)")
            }
        }
    }

    /// A push whose branch name is HTML: its page shows it, escaped, with the payload as
    /// GitHub sent it, the output and results.json.
    @Test func aJobPageShowsTheJobEscapedWithItsPayloadAndResults() async throws {
        let harness = try await ServerHarness(branches: ["**"])
        harness.config.server.adminToken = Self.token
        try await harness.serve { client in
            let commit = try await harness.repo.commit([
                "script/job.sh": "#!/bin/sh\necho 'printed <b>bold</b>'\necho '{\"n\": 7}' > \"$DEFERRED_ARTIFACTS/result.json\"\necho hi > \"$DEFERRED_ARTIFACTS/report one.txt\"\n",
            ])
            let ref = "refs/heads/<img src=x onerror=alert(1)>".replacingOccurrences(of: " ", with: "-")
            let accepted = try await ServerHarness.post(client, harness.pushPayload(commit: commit, ref: ref))
            #expect(accepted.status == .accepted, "\(Self.text(accepted))")
            let id = try #require(ServerHarness.json(accepted)["id"] as? String)
            let results = try await ServerHarness.results(client, resultURL: ServerHarness.json(accepted)["result_url"] as? String ?? "")
            #expect(results["status"] as? String == "succeeded")

            let page = try await client.execute(uri: "/jobs/\(id)", method: .get, headers: Self.bearer)
            #expect(page.status == .ok)
            let html = Self.text(page)
            #expect(!html.contains("<img"), "payload text is never markup")
            #expect(html.contains("&lt;img-src=x-onerror=alert(1)&gt;"))
            #expect(html.contains(#"<span class="stdout">printed &lt;b&gt;bold&lt;/b&gt;"#), "\(html)")
            #expect(html.contains(#"<span id="status" class="status succeeded">succeeded</span>"#))
            #expect(html.contains(#"<pre id="payload" class="json">"#))
            #expect(html.contains("&quot;after&quot; : &quot;\(commit)&quot;"), "the stored payload, pretty-printed")
            #expect(html.contains("&quot;n&quot; : 7"), "results.json with the job's own result")
            #expect(html.contains(#"<a href="/r/"#) && html.contains(#"/artifacts/report%20one.txt">report one.txt</a>"#))
            #expect(!html.contains("data-events="), "an ended job's page follows no stream")

            // The overview and the project list the job with its trigger.
            let overview = Self.text(try await client.execute(uri: "/", method: .get, headers: Self.bearer))
            #expect(overview.contains(#"<a href="/jobs/\#(id)"><code>\#(id)</code></a>"#))
            #expect(overview.contains("push &lt;img-src=x-onerror=alert(1)&gt; @ \(commit.prefix(7)) by"))
            let project = Self.text(try await client.execute(uri: "/projects/sample", method: .get, headers: Self.bearer))
            #expect(project.contains(#"<a href="/jobs/\#(id)">"#))
            #expect(try await client.execute(uri: "/jobs/j-nothing", method: .get, headers: Self.bearer).status == .notFound)
            #expect(try await client.execute(uri: "/projects/other", method: .get, headers: Self.bearer).status == .notFound)
            // The stored payload is the one delivered.
            let stored = try #require(try await harness.store.payload(of: JobID(rawValue: id)))
            #expect(stored == harness.pushPayload(commit: commit, ref: ref))
        }
    }

    @Test func hostFormsWithoutTheirFormTokenChangeNothing() async throws {
        let harness = try await Self.harness()
        try await harness.serve(dispatching: false) { client in
            let signedIn = try await client.execute(uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                                    body: ByteBuffer(string: "token=\(Self.token)"))
            let value = try #require(signedIn.headers[.setCookie]?.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last)
            var headers = Self.cookie(String(value))
            headers[.contentType] = "application/x-www-form-urlencoded"
            let before = try await harness.store.host(named: "loopback")

            // A page on another site can make the browser post, but cannot know the form token.
            for body in ["", "form_token=", "form_token=00ff"] {
                for path in ["/hosts/loopback/sleep", "/hosts/loopback/wake", "/logout"] {
                    let refused = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body))
                    #expect(refused.status == .forbidden, "\(path) \(body)")
                    #expect(refused.headers[.setCookie] == nil)
                }
            }
            // A body of another type is no form at all.
            var jsonHeaders = headers
            jsonHeaders[.contentType] = "application/json"
            #expect(try await client.execute(uri: "/hosts/loopback/sleep", method: .post, headers: jsonHeaders,
                                             body: ByteBuffer(string: "{}")).status == .unsupportedMediaType)
            // Without any credential: refused before anything is read.
            #expect(try await client.execute(uri: "/hosts/loopback/sleep", method: .post).status == .unauthorized)
            #expect(try await harness.store.host(named: "loopback") == before)

            // The form token is on the page; with it the request is heard. A static host is not
            // put to sleep, and its row says so.
            let page = Self.text(try await client.execute(uri: "/", method: .get, headers: Self.cookie(String(value))))
            let formToken = try #require(page.slice(after: #"name="form_token" value=""#, before: "\""))
            headers[.accept] = "text/html"
            let sleep = try await client.execute(uri: "/hosts/loopback/sleep", method: .post, headers: headers,
                                                 body: ByteBuffer(string: "form_token=\(formToken)"))
            #expect(sleep.status == .seeOther)
            #expect(sleep.headers[.location] == "/#hosts")
            #expect(try await harness.store.host(named: "loopback")?.state == .ready)
            let after = Self.text(try await client.execute(uri: "/", method: .get, headers: Self.cookie(String(value))))
            #expect(after.contains(#"<tr class="note failed">"#) && after.contains("loopback is a static host; deferred does not stop it"), "\(after)")
            // A program with the bearer token gets JSON, and no host named so is 404.
            let json = try await client.execute(uri: "/hosts/loopback/sleep", method: .post, headers: Self.bearer)
            #expect(json.status == .conflict)
            #expect(try await client.execute(uri: "/hosts/nowhere/wake", method: .post, headers: Self.bearer).status == .notFound)

            // Signing out clears the cookie.
            let out = try await client.execute(uri: "/logout", method: .post, headers: headers, body: ByteBuffer(string: "form_token=\(formToken)"))
            #expect(out.status == .seeOther)
            #expect(out.headers[.setCookie]?.contains("Max-Age=0") == true)
        }
    }

    /// The host's SSH sits behind a proxy that holds its banner back, so a wake lasts until the
    /// host's wake timeout (15 s here), SSH tried all along, as a job's wake does: a second
    /// press meanwhile is refused, the row says a wake is on, and then why it failed.
    @Test func aSecondWakeWhileOneGoesOnIsRefusedAndAFailedWakeIsShown() async throws {
        let harness = try await Self.harness()
        let slow = try SlowHostProxy(to: harness.sshd.port, delay: .seconds(30))
        defer { slow.stop() }
        harness.config.hosts[0].port = slow.port
        harness.config.hosts[0].wakeTimeoutMinutes = 0.25
        try await harness.serve(dispatching: false) { client in
            let first = try await client.execute(uri: "/hosts/loopback/wake", method: .post, headers: Self.bearer)
            #expect(first.status == .accepted)
            let second = try await client.execute(uri: "/hosts/loopback/wake", method: .post, headers: Self.bearer)
            #expect(second.status == .conflict)
            #expect((ServerHarness.json(second)["error"] as? String)?.contains("is being woken already") == true)
            var page = Self.text(try await client.execute(uri: "/", method: .get, headers: Self.bearer))
            #expect(page.contains("waking: starting its machine, then waiting for SSH"), "\(page)")
            for _ in 0..<600 where !page.contains("could not wake it") {
                try await Task.sleep(for: .milliseconds(100))
                page = Self.text(try await client.execute(uri: "/", method: .get, headers: Self.bearer))
            }
            #expect(page.contains(#"<tr class="note failed">"#) && page.contains("could not wake it"), "\(page)")
            // Once it has failed, the host may be woken again.
            let again = try await client.execute(uri: "/hosts/loopback/wake", method: .post, headers: Self.bearer)
            #expect(again.status == .accepted)
        }
    }

    /// The files are found beside the binary or in the source folder; missing, loading says where
    /// it looked instead of stopping the process (as `Bundle.module` would).
    @Test func dashboardFilesAreFoundAndTheirAbsenceIsAnError() throws {
        let folder = try DashboardTemplates.resourceFolder()
        #expect(FileManager.default.fileExists(atPath: folder + "/Templates/page.mustache"))
        let loaded = try DashboardTemplates(resources: folder)
        #expect(Set(loaded.assets.keys) == ["dashboard.css", "live-log.js", "favicon.svg"])
        let empty = NSTemporaryDirectory() + "deferred-no-templates-" + UUID().uuidString.prefix(8)
        let missing = #expect(throws: DashboardTemplates.LoadError.self) { try DashboardTemplates(resources: empty) }
        #expect(missing?.description.contains("deferred_DeferredHTTP.resources") == true)
    }

    @Test func theStaticFilesAreServed() async throws {
        let harness = try await Self.harness()
        try await harness.serve(dispatching: false) { client in
            let css = try await client.execute(uri: "/dashboard/dashboard.css", method: .get)
            #expect(css.status == .ok && css.headers[.contentType] == "text/css; charset=utf-8")
            let script = try await client.execute(uri: "/dashboard/live-log.js", method: .get)
            #expect(script.status == .ok && Self.text(script).contains("new EventSource("))
            #expect(try await client.execute(uri: "/dashboard/..%2Fpage.mustache", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/dashboard/page.mustache", method: .get).status == .notFound)
        }
    }
}

extension String {
    init(buffer: ByteBuffer) {
        self = String(decoding: buffer.readableBytesView, as: UTF8.self)
    }
}
