import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// The dashboard's Mustache templates and its static files (CSS, the live log's script, icon),
/// kept as files in this module's resources and read once.
struct DashboardTemplates: Sendable {
    enum LoadError: Error, CustomStringConvertible {
        case missing(String)
        case unreadable(String, any Error)

        var description: String {
            switch self {
            case .missing(let path): "the dashboard's files are missing (looked in \(path)): install deferred_DeferredHTTP.resources beside the deferred binary"
            case .unreadable(let name, let error): "the dashboard's template \(name) does not parse: \(error)"
            }
        }
    }

    /// A static file and its type.
    struct Asset: Sendable {
        var body: Data
        var contentType: String
    }

    private let library: MustacheLibrary
    let assets: [String: Asset]

    /// Loaded once per process: the files do not change while it runs.
    static let shared: Result<DashboardTemplates, LoadError> = {
        do throws(LoadError) {
            return .success(try DashboardTemplates(resources: try resourceFolder()))
        } catch {
            return .failure(error)
        }
    }()

    /// The resource bundle beside the executable (how `swift build` lays it out, and how a
    /// release is installed), else this module's own source folder (a checkout). Not
    /// `Bundle.module`: that stops the whole process when the bundle is missing, and a server
    /// without its dashboard files should still serve everything else.
    static func resourceFolder() throws(LoadError) -> String {
        let installed = Bundle.main.bundleURL.appendingPathComponent("deferred_DeferredHTTP.resources").path
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
        for folder in [installed, source] where FileManager.default.fileExists(atPath: folder + "/Templates") {
            return folder
        }
        throw .missing("\(installed) and \(source)")
    }

    init(resources: String) throws(LoadError) {
        let templates = resources + "/Templates", assetFolder = resources + "/Assets"
        let files = FileManager.default
        guard let names = try? files.contentsOfDirectory(atPath: templates) else { throw .missing(templates) }
        var library = MustacheLibrary()
        for name in names where name.hasSuffix(".mustache") {
            let text = (try? String(contentsOfFile: templates + "/" + name, encoding: .utf8)) ?? ""
            do {
                try library.register(text, named: String(name.dropLast(".mustache".count)))
            } catch {
                throw .unreadable(name, error)
            }
        }
        self.library = library
        let types = ["css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml"]
        var assets: [String: Asset] = [:]
        for name in (try? files.contentsOfDirectory(atPath: assetFolder)) ?? [] {
            guard let type = types[URL(fileURLWithPath: name).pathExtension],
                  let body = files.contents(atPath: assetFolder + "/" + name) else { continue }
            assets[name] = Asset(body: body, contentType: type)
        }
        self.assets = assets
    }

    /// A page as HTML. The pages show what payloads and jobs wrote, always escaped; the policy
    /// lets nothing run on them but the dashboard's own script.
    func page(_ template: String, _ model: Any, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) throws -> Response {
        guard let html = library.render(model, withTemplate: template) else {
            throw APIError(.internalServerError, "the dashboard has no template named \(template)")
        }
        var headers = Self.pageHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static let pageHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!:
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
        .cacheControl: "no-store",
    ]
}
