import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML answer, small enough for AWS's Query APIs: elements by local name, their
/// text and children. Namespaces are dropped; AWS answers use one default namespace.
public struct XMLTree: Sendable {
    public var name: String
    public var text: String
    public var children: [XMLTree]

    /// The first child named `name`.
    public subscript(_ name: String) -> XMLTree? { children.first { $0.name == name } }

    /// The child at a `/`-separated path of names.
    public func at(_ path: String) -> XMLTree? {
        path.split(separator: "/").reduce(Optional(self)) { node, name in node?[String(name)] }
    }

    /// The text at a path, nil when missing or empty.
    public func value(_ path: String) -> String? {
        at(path).map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The `item` children of the element at `path` (AWS's lists).
    public func items(_ path: String) -> [XMLTree] {
        at(path)?.children.filter { $0.name == "item" } ?? []
    }

    public static func parse(_ data: Data) -> XMLTree? {
        let builder = Builder()
        let parser = XMLParser(data: data)
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else { return nil }
        return root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLTree] = []
        var root: XMLTree?

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            stack.append(XMLTree(name: name.split(separator: ":").last.map(String.init) ?? name, text: "", children: []))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            let done = stack.removeLast()
            if stack.isEmpty { root = done } else { stack[stack.count - 1].children.append(done) }
        }
    }
}
